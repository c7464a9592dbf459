"""flowgrad.debug.stats and flowgrad.debug.curves: statistics against direct NumPy computation,
planted problems found and named, curve verdicts on synthetic curves, figures written."""

import csv
import math

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn
from flowgrad.debug.curves import CurveReport, diagnose_curves, plot_curves
from flowgrad.debug.stats import StatsReport, TrainingMonitor, layer_statistics
from flowgrad.train import History, fit
from flowgrad.utils.data import DataLoader, TensorDataset

PNG = b"\x89PNG\r\n\x1a\n"


def _data(n=128, d=8, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    return x, np.minimum(y, classes - 1)


def _mlp(d=8, hidden=16, out=3, act=nn.ReLU, layers=2, seed=0):
    fg.manual_seed(seed)
    mods, width = [], d
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), act()]
        width = hidden
    return nn.Sequential(*mods, nn.Linear(width, out))


def _train_manual(model, monitor, x, y, steps, lr=0.1, batch=32):
    opt = fg.optim.SGD(model.parameters(), lr=lr)
    for i in range(steps):
        s = (i * batch) % len(x)
        xb, yb = fg.from_numpy(x[s:s + batch]), fg.from_numpy(y[s:s + batch])
        opt.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        monitor.after_backward()
        opt.step()
        monitor.after_step(loss.item())
    return opt


def _is_png(path):
    data = path.read_bytes()
    return data[:8] == PNG and len(data) > 2000


# --- statistics against NumPy ----------------------------------------------------------------

def test_parameter_statistics_match_numpy():
    x, y = _data(32)
    model = _mlp(layers=1)
    monitor = TrainingMonitor(model)
    before = {n: p.detach().numpy().copy() for n, p in model.named_parameters()}
    lr = 0.1
    opt = fg.optim.SGD(model.parameters(), lr=lr)
    loss = F.cross_entropy(model(fg.from_numpy(x)), fg.from_numpy(y))
    loss.backward()
    monitor.after_backward()
    grads = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    opt.step()
    monitor.after_step(loss.item())
    assert monitor.steps == [1]
    assert monitor.losses == [pytest.approx(loss.item())]
    for name, p in model.named_parameters():
        w, w0, g = p.detach().numpy().astype(np.float64), before[name].astype(np.float64), grads[name]
        assert monitor.series(name, "weight_mean")[0] == pytest.approx(w.mean(), rel=1e-6,
                                                                       abs=1e-9)
        assert monitor.series(name, "weight_std")[0] == pytest.approx(w.std(), rel=1e-6)
        assert monitor.series(name, "weight_norm")[0] == pytest.approx(np.linalg.norm(w),
                                                                       rel=1e-6)
        assert monitor.series(name, "grad_norm")[0] == pytest.approx(
            np.linalg.norm(g.astype(np.float64)), rel=1e-6)
        expected = np.linalg.norm(w - w0) / np.linalg.norm(w0)
        assert monitor.series(name, "update_ratio")[0] == pytest.approx(expected, rel=1e-4)
        # plain SGD: the step is lr * grad
        assert expected == pytest.approx(lr * np.linalg.norm(g) / np.linalg.norm(w0), rel=1e-3)


def test_activation_statistics_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(16, 5)).astype(np.float32)
    fg.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 12), nn.ReLU(), nn.Linear(12, 12), nn.Tanh(),
                          nn.Linear(12, 12), nn.Sigmoid(), nn.Linear(12, 2))
    with fg.no_grad():  # plant a few units that are negative for every example
        model[0].bias._data[:4] = -50.0
        model[2].weight._data *= 4.0
    y = np.zeros(16, np.int64)
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    w = {n: p.detach().numpy().astype(np.float64) for n, p in model.named_parameters()}
    h1 = np.maximum(x @ w["0.weight"].T + w["0.bias"], 0)
    h2 = np.tanh(h1 @ w["2.weight"].T + w["2.bias"])
    h3 = 1 / (1 + np.exp(-(h2 @ w["4.weight"].T + w["4.bias"])))
    rows = {r["name"]: r for r in report.activations}
    assert rows["1"]["kind"] == "dead" and rows["3"]["kind"] == rows["5"]["kind"] == "saturated"
    assert rows["1"]["fraction"] == pytest.approx((h1 <= 0).all(axis=0).mean())
    assert rows["1"]["fraction"] >= 4 / 12
    assert rows["3"]["fraction"] == pytest.approx((np.abs(h2) > 0.97).mean(), abs=1e-6)
    assert rows["5"]["fraction"] == pytest.approx(((h3 < 0.03) | (h3 > 0.97)).mean(), abs=1e-6)
    assert rows["3"]["mean"] == pytest.approx(h2.mean(), abs=1e-5)
    assert rows["5"]["std"] == pytest.approx(h3.std(), abs=1e-5)


def test_layer_statistics_leaves_gradients_alone():
    x, y = _data(32)
    model = _mlp()
    F.cross_entropy(model(fg.from_numpy(x)), fg.from_numpy(y)).backward()
    saved = {n: p.grad.numpy().copy() for n, p in model.named_parameters()}
    report = layer_statistics(model, (fg.from_numpy(x[:8]), fg.from_numpy(y[:8])),
                              F.cross_entropy)
    for n, p in model.named_parameters():
        np.testing.assert_array_equal(p.grad.numpy(), saved[n])
    assert isinstance(report, StatsReport) and report.steps == 1
    assert all(math.isnan(r["update_ratio"]) for r in report.parameters)
    assert not model[0]._forward_hooks and not model[1]._forward_hooks  # hooks removed


def test_fit_callback_records_the_same_as_the_manual_loop():
    x, y = _data(96)
    manual = _mlp()
    m_monitor = TrainingMonitor(manual, every=2)
    _train_manual(manual, m_monitor, x, y, steps=6)

    model = _mlp()
    monitor = TrainingMonitor(model, every=2)
    loader = DataLoader(TensorDataset(fg.from_numpy(x), fg.from_numpy(y)), batch_size=32)
    fit(model, loader, F.cross_entropy, fg.optim.SGD(model.parameters(), lr=0.1), 2,
        callbacks=[monitor], progress=False)
    assert monitor.steps == m_monitor.steps == [1, 3, 5]
    assert monitor.epochs == [1, 1, 2]
    for name in monitor.params:
        for stat in ("weight_norm", "grad_norm", "update_ratio"):
            np.testing.assert_allclose(monitor.series(name, stat),
                                       m_monitor.series(name, stat), rtol=1e-5)
    assert np.isfinite(monitor.series("0.weight", "update_ratio")).all()
    np.testing.assert_allclose(monitor.series("1", "fraction"),
                               m_monitor.series("1", "fraction"))
    monitor.remove()
    assert not model[1]._forward_hooks


def test_every_and_eval_passes_are_not_recorded():
    x, y = _data(64)
    model = _mlp()
    monitor = TrainingMonitor(model, every=3)
    _train_manual(model, monitor, x, y, steps=10)
    assert monitor.steps == [1, 4, 7, 10]
    assert np.isfinite(monitor.series("2.weight", "update_ratio")).all()
    model.eval()
    with fg.no_grad():
        model(fg.from_numpy(x))  # a validation pass adds nothing
    assert monitor._pending_acts == {}
    with pytest.raises(KeyError, match="grad_norm"):
        monitor.series("nope", "grad_norm")
    with pytest.raises(ValueError):
        TrainingMonitor(model, every=0)


# --- planted problems --------------------------------------------------------------------------

def test_healthy_mlp_is_fine():
    x, y = _data(256)
    model = _mlp(layers=2)
    monitor = TrainingMonitor(model)
    _train_manual(model, monitor, x, y, steps=40)
    report = monitor.report()
    assert report.fine and report.verdict == "fine", str(report)
    assert all(r["status"] == "fine" for r in report.parameters + report.activations)
    assert "Verdict: fine" in str(report)


def test_zeroed_gradient_is_vanishing_and_named():
    x, y = _data(64)
    model = _mlp(layers=2)
    model[2].weight.register_hook(lambda g: g * 0)
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    assert report.named("vanishing") == ["2.weight"], str(report)
    assert "vanishing gradients" in report.verdict
    assert any("2.weight" in w and "vanish" in w for w in report.warnings)
    row = next(r for r in report.parameters if r["name"] == "2.weight")
    assert row["grad_norm"] == 0 and row["status"] == "vanishing"


def test_zeroed_gradient_found_by_the_monitor_over_training():
    x, y = _data(128)
    model = _mlp(layers=2)
    model[0].weight.register_hook(lambda g: g * 1e-9)
    monitor = TrainingMonitor(model)
    _train_manual(model, monitor, x, y, steps=10)
    report = monitor.report()
    assert "0.weight" in report.named("vanishing")
    assert "2.weight" not in report.named("vanishing")


def test_huge_init_explodes():
    x, y = _data(64)
    model = _mlp(layers=3, hidden=32)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 10.0)
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    assert report.verdict.startswith("exploding gradients"), str(report)
    assert "0.weight" in report.named("exploding")


def test_nan_gradient_is_exploding():
    x, y = _data(32)
    model = _mlp()
    model[4].weight.register_hook(lambda g: g * float("nan"))
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    assert "4.weight" in report.named("exploding")


def test_negative_bias_kills_relus_and_names_them():
    x, y = _data(64)
    model = _mlp(layers=2)
    with fg.no_grad():
        model[0].bias._data[:] = -100.0
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    assert report.named("dead") == ["1"], str(report)
    row = next(r for r in report.activations if r["name"] == "1")
    assert row["fraction"] == 1.0 and row["status"] == "dead units"
    assert "0.weight" in report.named("vanishing")  # nothing flows back through dead units


def test_large_init_saturates_tanh():
    x, y = _data(64)
    model = _mlp(layers=2, hidden=64, act=nn.Tanh)
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 3.0)
    report = layer_statistics(model, (fg.from_numpy(x), fg.from_numpy(y)), F.cross_entropy)
    assert set(report.named("saturated")) == {"1", "3"}, str(report)


def test_update_ratio_verdicts_and_unused_parameter():
    x, y = _data(128)
    model = _mlp()
    monitor = TrainingMonitor(model)
    _train_manual(model, monitor, x, y, steps=5, lr=1e-5)
    assert "0.weight" in monitor.report().named("update_small")
    model = _mlp()
    monitor = TrainingMonitor(model)
    _train_manual(model, monitor, x, y, steps=5, lr=20.0)
    assert monitor.report().named("update_large")

    class WithSpare(nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.spare = nn.Linear(8, 3), nn.Linear(8, 3)

        def forward(self, x):
            return self.used(x)

    report = layer_statistics(WithSpare(), (fg.from_numpy(x), fg.from_numpy(y)),
                              F.cross_entropy)
    assert set(report.named("no_grad")) == {"spare.weight", "spare.bias"}
    with pytest.raises(TypeError, match="unknown thresholds"):
        monitor.report(vanish=1.0)
    assert not monitor.report(update_high=1e9).named("update_large")  # thresholds override


# --- curves --------------------------------------------------------------------------------------

E = np.arange(1, 31, dtype=float)
OVERFIT = {"train_loss": 2 * np.exp(-E / 5), "valid_loss": 0.5 + 0.0025 * (E - 8) ** 2,
           "train_error": 0.5 * np.exp(-E / 4), "valid_error": 0.2 + 0.005 * np.maximum(E - 8, 0)}
UNDERFIT = {"train_loss": 1.5 + 0.5 * np.exp(-E / 3), "valid_loss": 1.6 + 0.5 * np.exp(-E / 3),
            "train_error": 0.4 + 0.1 * np.exp(-E / 3), "valid_error": 0.42 + 0.1 * np.exp(-E / 3)}
FINE = {"train_loss": 0.1 + 2 * np.exp(-E / 3), "valid_loss": 0.15 + 2 * np.exp(-E / 3),
        "train_error": 0.02 + 0.5 * np.exp(-E / 3), "valid_error": 0.04 + 0.5 * np.exp(-E / 3)}


def test_curve_verdicts_on_synthetic_curves():
    over = diagnose_curves(OVERFIT)
    assert over.verdict == "overfitting" and over.best_epoch == 8
    assert over.error_gap == pytest.approx(OVERFIT["valid_error"][-1]
                                           - OVERFIT["train_error"][-1])
    assert over.valid_rise > 0.5 and "epoch 8" in over.advice
    under = diagnose_curves(UNDERFIT)
    assert under.verdict == "underfitting" and under.best_epoch == 30
    assert under.error_gap == pytest.approx(0.02)
    fine = diagnose_curves(FINE)
    assert fine.verdict == "fine" and fine.best_epoch == 30, str(fine)
    assert isinstance(fine, CurveReport) and "fine" in str(fine)
    # overfitting seen on the losses alone (valid rising while train falls), no error curves
    loss_only = diagnose_curves({k: OVERFIT[k] for k in ("train_loss", "valid_loss")})
    assert loss_only.verdict == "overfitting" and math.isnan(loss_only.error_gap)


def test_curve_details():
    # one noisy last epoch is not a rise; a training loss that does not fall is underfitting
    noisy = {k: list(v) for k, v in FINE.items()}
    noisy["valid_loss"][-1] *= 1.5
    assert diagnose_curves(noisy).verdict == "fine"
    flat = diagnose_curves({"loss": [2.3, 2.31, 2.3], "val_loss": [2.3, 2.3, 2.31]})
    assert flat.verdict == "underfitting" and "does not go down" in flat.reasons[0]
    h = History()
    for i in range(30):  # accuracy columns, as fit writes them, become errors
        h.log_epoch(i + 1, train_loss=OVERFIT["train_loss"][i],
                    valid_loss=OVERFIT["valid_loss"][i],
                    train_accuracy=1 - OVERFIT["train_error"][i],
                    valid_accuracy=1 - OVERFIT["valid_error"][i])
    r = diagnose_curves(h)
    assert r.verdict == "overfitting" and r.best_epoch == 8
    assert r.final["valid_error"] == pytest.approx(OVERFIT["valid_error"][-1])
    assert diagnose_curves(h, max_gap=0.5, min_rise=10).verdict == "fine"
    with pytest.raises(ValueError, match="valid"):
        diagnose_curves({"train_loss": [1.0, 0.5]})
    with pytest.raises(TypeError):
        diagnose_curves([1.0, 0.5])


# --- figures and CSV -----------------------------------------------------------------------------

def test_figures_and_csv_are_written(tmp_path):
    x, y = _data(64)
    model = _mlp(layers=2, act=nn.Tanh)
    monitor = TrainingMonitor(model, every=2, histograms=True)
    _train_manual(model, monitor, x, y, steps=6)
    monitor.plot(tmp_path / "stats.png")
    monitor.histograms(tmp_path / "hist.png")
    plain = TrainingMonitor(model)  # no samples kept: draws the current weights and grads
    plain.histograms(tmp_path / "hist_now.png")
    monitor.to_csv(tmp_path / "stats.csv")
    for name in ("stats.png", "hist.png", "hist_now.png"):
        assert _is_png(tmp_path / name), name
    rows = list(csv.DictReader((tmp_path / "stats.csv").open()))
    n_params, n_acts = len(monitor.params), len(monitor.acts)
    assert len(rows) == 3 * (n_params + n_acts)
    first = rows[0]
    assert first["step"] == "1" and first["name"] == "0.weight"
    assert float(first["grad_norm"]) == pytest.approx(monitor.series("0.weight", "grad_norm")[0])
    assert any(r["saturated_fraction"] for r in rows)
    report = plot_curves(OVERFIT, tmp_path / "curves.png", title="synthetic")
    assert report.verdict == "overfitting" and _is_png(tmp_path / "curves.png")
    plot_curves({k: OVERFIT[k] for k in ("train_loss", "valid_loss")}, tmp_path / "c2.png")
    assert _is_png(tmp_path / "c2.png")


# --- deep nets: vanishing is not exploding -----------------------------------------------------

def _deep(act, depth, width=32, d=16, seed=0, gain=None):
    fg.manual_seed(seed)
    mods, w = [], d
    for _ in range(depth - 1):
        mods += [nn.Linear(w, width), act()]
        w = width
    model = nn.Sequential(*mods, nn.Linear(w, 2))
    if gain is not None:
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, gain / math.sqrt(m.in_features))
    return model


def _deep_batch(n=64, d=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return fg.from_numpy(x), fg.from_numpy((x[:, 0] > 0).astype(np.int64))


@pytest.mark.parametrize("act", [nn.Sigmoid, nn.Tanh, nn.ReLU])
@pytest.mark.parametrize("depth", [4, 8, 16])
def test_deep_nets_with_default_init_vanish_and_never_explode(act, depth):
    """The old rule compared each layer with the median layer, which had vanished itself, and
    called the healthy layers near the output of a deep sigmoid/ReLU net "exploding"."""
    for width in (32, 64):
        report = layer_statistics(_deep(act, depth, width), _deep_batch(), F.cross_entropy)
        assert not report.named("exploding"), str(report)
        assert "exploding" not in report.verdict
        vanishing = report.named("vanishing")
        expect_vanishing = (act is nn.Sigmoid and depth >= 8) or (act is nn.ReLU and depth >= 16)
        if expect_vanishing:
            assert report.verdict.startswith("vanishing gradients"), str(report)
            assert "0.weight" in vanishing and f"{2 * (depth - 1)}.weight" not in vanishing
            first = report.findings[0]
            assert first.kind == "vanishing" and "shrinking toward the input" in first.message
            assert ("use ReLU" in first.message) == (act is nn.Sigmoid)
            assert "Kaiming" in first.message
        elif depth <= 8:
            assert not vanishing, str(report)
        else:  # tanh, 16 layers: the gradient shrinks about 100x; at most vanishing
            assert report.verdict in ("fine", "vanishing gradients"), str(report)
        if act is not nn.ReLU:
            assert report.verdict in ("fine", "vanishing gradients"), str(report)


@pytest.mark.parametrize("depth", [8, 16])
def test_large_gain_relu_net_explodes(depth):
    report = layer_statistics(_deep(nn.ReLU, depth, gain=3.0), _deep_batch(), F.cross_entropy)
    assert report.verdict.startswith("exploding gradients"), str(report)
    assert not report.named("vanishing")
    assert any("initialisation is too large" in w for w in report.warnings)


class _ReluRNN(nn.Module):
    def __init__(self, radius, d=4, hidden=16, steps=20):
        super().__init__()
        self.inp, self.rec = nn.Linear(d, hidden), nn.Linear(hidden, hidden, bias=False)
        self.act, self.head = nn.ReLU(), nn.Linear(hidden, 2)
        q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((hidden, hidden)))
        with fg.no_grad():
            self.rec.weight._data[...] = (radius * q).astype(np.float32)

    def forward(self, x):
        h = self.act(self.inp(x[:, 0]))
        for t in range(1, x.shape[1]):
            h = self.act(self.inp(x[:, t]) + self.rec(h))
        return self.head(h)


def test_rnn_with_large_recurrent_weights_explodes():
    rng = np.random.default_rng(0)
    x = fg.from_numpy(rng.normal(size=(32, 20, 4)).astype(np.float32))
    y = fg.from_numpy(rng.integers(0, 2, 32))
    fg.manual_seed(0)
    calm = layer_statistics(_ReluRNN(radius=0.5), (x, y), F.cross_entropy)
    assert calm.verdict == "fine", str(calm)
    fg.manual_seed(0)
    report = layer_statistics(_ReluRNN(radius=3.0), (x, y), F.cross_entropy)
    assert report.verdict == "exploding gradients", str(report)
    assert "rec.weight" in report.named("exploding")
