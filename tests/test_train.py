"""flowgrad.train: History, metrics, checkpoints, and the fit loop (incl. bit-identical resume)."""

import math
import os

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import backend, optim
from flowgrad.nn import Dropout, Linear, Module, ReLU, Sequential
from flowgrad.optim.lr_scheduler import ReduceLROnPlateau, StepLR
from flowgrad.serialization import SerializationError, save
from flowgrad.train import (
    EarlyStopping,
    History,
    Trainer,
    evaluate,
    fit,
    load_checkpoint,
    metrics,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from flowgrad.utils.data import DataLoader, Generator, TensorDataset


def blobs(n=240, seed=0):
    """Three Gaussian blobs in 2-D: a tiny classification problem."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    x = centers[y] + 1.0 * rng.standard_normal((n, 2))
    return x.astype(np.float32), y.astype(np.int64)


def parts(seed=0, momentum=0.9, generator=None, p=0.2, flip_valid=False):
    """Model, optimizer and loaders for the blobs, all built after seeding flowgrad."""
    fg.manual_seed(seed)
    x, y = (fg.from_numpy(a) for a in blobs())
    model = Sequential(Linear(2, 32), ReLU(), Dropout(p), Linear(32, 3))
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=momentum)
    gen = None if generator is None else Generator().manual_seed(generator)
    train = DataLoader(TensorDataset(x[:180], y[:180]), batch_size=16, shuffle=True,
                       generator=gen)
    yv = (y[180:] + 1) % 3 if flip_valid else y[180:]
    valid = DataLoader(TensorDataset(x[180:], yv), batch_size=64)
    return model, opt, train, valid


def params(model):
    return {k: p.detach().cpu().numpy().copy() for k, p in model.named_parameters()}


# --- History ------------------------------------------------------------------------------------

def test_history_csv_png_and_state(tmp_path):
    h = History()
    for e in range(1, 6):
        for s in range(4):
            h.log_step(epoch=e, fraction=(s + 1) / 4, loss=2.0 / (e + s / 4))
        h.log_epoch(e, train_loss=1.0 / e, valid_loss=[0.9, 0.6, 0.5, 0.55, 0.7][e - 1],
                    train_error=0.5 / e,
                    valid_error=0.6 / e, lr=0.1)
    assert h["epoch"] == [1, 2, 3, 4, 5] and len(h) == 5 and len(h.steps) == 20
    assert h.best("valid_loss")["epoch"] == 3
    h.to_csv(tmp_path / "h.csv")
    h.to_csv(tmp_path / "steps.csv", steps=True)
    lines = (tmp_path / "h.csv").read_text().splitlines()
    assert lines[0] == "epoch,train_loss,valid_loss,train_error,valid_error,lr"
    assert len(lines) == 6 and lines[1].startswith("1,1.0,")
    assert (tmp_path / "steps.csv").read_text().splitlines()[0] == "step,epoch,fraction,loss"
    h.plot(tmp_path / "curves.png")
    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    h2 = History()
    h2.load_state_dict(h.state_dict())
    assert h2.epochs == h.epochs and h2.steps == h.steps
    with pytest.raises(KeyError, match="no epoch"):
        History().best()


def test_history_plot_loss_only(tmp_path):
    h = History()
    h.log_epoch(train_loss=1.0)
    h.log_epoch(train_loss=0.5)
    h.plot(tmp_path / "c.png")
    assert os.path.getsize(tmp_path / "c.png") > 1000


# --- metrics ------------------------------------------------------------------------------------

def test_metrics():
    scores = fg.tensor([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 1.0]])
    target = fg.tensor([0, 1, 1, 2])
    assert metrics.accuracy(scores, target) == 0.5
    assert metrics.error_rate(scores, target) == 0.5
    assert metrics.accuracy(np.array([0, 1, 2]), np.array([0, 1, 1])) == pytest.approx(2 / 3)
    assert metrics.accuracy(np.array([-1.0, 2.0]), np.array([0, 1])) == 1.0  # binary logits
    assert metrics.top_k_accuracy(scores, target, k=2) == 0.75
    cm = metrics.confusion_matrix(scores, target)
    assert cm.tolist() == [[1, 0, 0], [0, 1, 1], [1, 0, 0]]
    avg = metrics.RunningAverage().update(1.0, 3).update(3.0, 1)
    assert avg.average == 1.5 and math.isnan(metrics.RunningAverage().average)
    ema = metrics.ExponentialAverage(0.9).update(2.0)
    assert ema.average == pytest.approx(2.0)
    assert metrics.get_metric("accuracy")[1] is metrics.accuracy
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get_metric("f1")
    with pytest.raises(ValueError, match="does not fit"):
        metrics.accuracy(np.zeros((4, 3, 2)), np.zeros(4))


# --- fit ----------------------------------------------------------------------------------------

def test_fit_learns_and_writes_outputs(tmp_path):
    model, opt, train, valid = parts()
    before = evaluate(model, valid, F.cross_entropy, {"accuracy": metrics.accuracy})
    h = fit(model, train, F.cross_entropy, opt, epochs=6, valid_loader=valid,
            scheduler=StepLR(opt, 3, 0.5), checkpoint_dir=tmp_path, progress=False)
    assert len(h) == 6 and len(h.steps) == 6 * len(train)
    assert h["train_loss"][-1] < 0.5 * h["train_loss"][0]
    assert h["valid_loss"][-1] < 0.5 * before["loss"]
    assert h["valid_accuracy"][-1] > max(0.85, before["accuracy"] + 0.3)
    assert h["valid_error"][-1] == pytest.approx(1 - h["valid_accuracy"][-1])
    assert h["lr"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05]  # logged before each epoch's step
    names = sorted(os.listdir(tmp_path))
    assert names == ["best.safetensors", "curves.png", "history.csv", "history_steps.csv",
                     "last.safetensors"]
    ckpt = load_checkpoint(tmp_path / "last.safetensors")
    assert ckpt["epoch"] == 6 and ckpt["scheduler"]["last_epoch"] == 6


def test_fit_with_progress_bar_and_plateau_scheduler(tmp_path, capsys):
    model, opt, train, valid = parts()
    sched = ReduceLROnPlateau(opt)
    seen = []
    step = sched.step
    sched.step = lambda metrics, *a, **k: (seen.append(metrics), step(metrics, *a, **k))
    h = fit(model, train, F.cross_entropy, opt, epochs=2, valid_loader=valid, scheduler=sched,
            progress=True)
    assert seen == h["valid_loss"]  # ReduceLROnPlateau is given the validation loss
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "val_loss" in err


def test_early_stopping_stops_and_restores_best():
    model, opt, train, flipped = parts(p=0.0, flip_valid=True)  # learning hurts the valid loss
    snapshots = {}

    def keep(state, logs):
        snapshots[state.epoch] = params(state.model)

    h = fit(model, train, F.cross_entropy, opt, epochs=30, valid_loader=flipped,
            early_stopping=EarlyStopping(patience=2), callbacks=[keep], progress=False)
    best = h.best("valid_loss")["epoch"]
    assert len(h) == best + 2 < 30  # stopped after `patience` epochs without improvement
    for k, v in params(model).items():  # the best epoch's parameters are put back
        assert np.array_equal(v, snapshots[best][k])
    with pytest.raises(ValueError, match="valid_loader"):
        fit(model, train, F.cross_entropy, opt, epochs=1, early_stopping=3, progress=False)


class ToDevice(Module):
    def __init__(self, device):
        super().__init__()
        self.device = device

    def forward(self, x):
        return x.to(self.device)


def _run(epochs, seed=0, generator=None, device="cpu", **kwargs):
    model, _, train, valid = parts(seed=seed, generator=generator)
    if device != "cpu":  # the model moves each batch to the device; the loss moves the target
        model = Sequential(ToDevice(device), *model).to(device)
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    history = fit(model, train, lambda out, y: F.cross_entropy(out, y.to(out.device)), opt,
                  epochs=epochs, valid_loader=valid, scheduler=StepLR(opt, 1, 0.7),
                  progress=False, **kwargs)
    return model, history


def _assert_resume_bit_identical(tmp_path, generator, device="cpu"):
    # uninterrupted: 4 epochs, with shuffling, dropout, momentum and a schedule
    model, straight = _run(4, generator=generator, device=device)
    expected = params(model)
    # interrupted after epoch 2 ...
    _run(2, generator=generator, device=device, checkpoint_dir=tmp_path)
    fg.rand(17)  # the process goes on drawing random numbers, or dies
    # ... and resumed in a fresh "process": new objects, another seed
    model, resumed = _run(4, seed=99, generator=generator, device=device,
                          checkpoint_dir=tmp_path, resume=True)
    got = params(model)
    assert got.keys() == expected.keys()
    for k in expected:
        assert np.array_equal(got[k], expected[k]), k
    drop = ("seconds",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.epochs] == \
        [{k: v for k, v in r.items() if k not in drop} for r in straight.epochs]
    assert resumed.steps == straight.steps


@pytest.mark.parametrize("generator", [None, 123])  # shuffling from the global stream / its own
def test_resume_is_bit_identical(tmp_path, generator):
    _assert_resume_bit_identical(tmp_path, generator)


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and CUDA")
def test_resume_is_bit_identical_on_gpu(tmp_path):
    _assert_resume_bit_identical(tmp_path, None, device="cuda")  # dropout draws from CuPy


def test_resume_without_checkpoint_starts_fresh_and_finished_run_stays_finished(tmp_path):
    model, opt, train, valid = parts()
    h = fit(model, train, F.cross_entropy, opt, epochs=1, checkpoint_dir=tmp_path, resume=True,
            progress=False)
    assert h["epoch"] == [1]
    h = fit(model, train, F.cross_entropy, opt, epochs=1, checkpoint_dir=tmp_path, resume=True,
            progress=False)
    assert h["epoch"] == [1]  # already done: nothing more to train
    with pytest.raises(ValueError, match="checkpoint_dir"):
        fit(model, train, F.cross_entropy, opt, epochs=1, resume=True, progress=False)


def test_trainer_continues_history_and_model_computes_loss():
    model, opt, train, valid = parts()

    class WithLoss(Module):  # a model that returns (output, loss), nanoGPT style
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x, y):
            out = self.inner(x)
            return out, F.cross_entropy(out, y)

    trainer = Trainer(WithLoss(model), None, opt, progress=False, max_grad_norm=1.0)
    trainer.fit(train, epochs=2, valid_loader=valid)
    h = trainer.fit(train, epochs=1, valid_loader=valid)
    assert h["epoch"] == [1, 2, 3]
    assert set(trainer.evaluate(valid)) == {"loss", "accuracy"}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_loss_is_reported():
    model, opt, train, _ = parts()
    opt.param_groups[0]["lr"] = 1e30
    with pytest.raises(FloatingPointError, match="learning rate"):
        fit(model, train, F.cross_entropy, opt, epochs=3, progress=False)


# --- checkpoints --------------------------------------------------------------------------------

def test_rng_state_round_trip():
    fg.rand(3)
    state = rng_state()
    a = fg.rand(5).numpy()
    fg.manual_seed(42)
    fg.rand(2)
    set_rng_state(state)
    assert np.array_equal(fg.rand(5).numpy(), a)


def test_checkpoint_round_trip_and_corruption(tmp_path, monkeypatch):
    model, opt, train, valid = parts()
    fit(model, train, F.cross_entropy, opt, epochs=1, progress=False)
    h = History()
    h.log_epoch(1, train_loss=0.5)
    path = tmp_path / "last.safetensors"
    save_checkpoint(path, model, opt, None, 1, h, rng_state(train), {"note": "first"})
    saved = params(model)
    saved_opt = {i: st["momentum_buffer"].numpy().copy()
                 for i, st in opt.state_dict()["state"].items()}

    # a failing second write leaves the first checkpoint intact
    fit(model, train, F.cross_entropy, opt, epochs=1, progress=False)

    def failing_fsync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, opt, None, 2, h)
    monkeypatch.undo()

    model2, opt2, train2, _ = parts(seed=5)
    h2 = History()
    ckpt = load_checkpoint(path, model2, opt2, history=h2, loaders=(train2,))
    assert ckpt["epoch"] == 1 and ckpt["extra"] == {"note": "first"} and h2.epochs == h.epochs
    for k, v in params(model2).items():
        assert np.array_equal(v, saved[k])
    state2 = opt2.state_dict()["state"]
    assert state2.keys() == saved_opt.keys()
    for i, buf in saved_opt.items():
        assert np.array_equal(state2[i]["momentum_buffer"].numpy(), buf)

    # a corrupt (truncated) checkpoint is refused with its name; the other one still loads
    data = path.read_bytes()
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(data[: len(data) - 100])
    with pytest.raises(SerializationError, match="corrupt.safetensors"):
        load_checkpoint(bad, model2)
    assert load_checkpoint(path, model2)["epoch"] == 1
    # a bare state_dict is not a checkpoint
    save({"w": fg.ones(2)}, tmp_path / "sd.safetensors")
    with pytest.raises(SerializationError, match="not a checkpoint"):
        load_checkpoint(tmp_path / "sd.safetensors", model2)


def test_manual_seed_makes_two_runs_bit_identical():
    first, _ = _run(2, seed=5)
    second, _ = _run(2, seed=5)
    other, _ = _run(2, seed=6)
    a, b, c = params(first), params(second), params(other)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not all(np.array_equal(a[k], c[k]) for k in a)
