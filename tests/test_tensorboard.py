"""flowgrad.utils.tensorboard.SummaryWriter: the event files read back with TensorBoard's own
reader, and compared event by event with what torch's SummaryWriter writes for the same calls."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.plugins.hparams import plugin_data_pb2

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn, optim
from flowgrad.plotting import new_figure
from flowgrad.train import TensorBoardLogger, Trainer, fit
from flowgrad.utils.data import DataLoader, TensorDataset
from flowgrad.utils.tensorboard import SummaryWriter

ALL = {k: 0 for k in ("scalars", "histograms", "images", "tensors", "compressedHistograms",
                      "audio")}


def accumulate(path):
    acc = EventAccumulator(str(path), size_guidance=ALL)
    acc.Reload()
    return acc


def summaries(directory):
    """(relative dir, step, serialized Summary) for every summary event under directory."""
    out = []
    for f in sorted(glob.glob(os.path.join(directory, "**", "events.out.tfevents.*"),
                              recursive=True)):
        rel = os.path.relpath(os.path.dirname(f), directory)
        for event in EventFileLoader(f).Load():
            if event.HasField("summary"):
                out.append((rel, event.step, event.wall_time, event.summary))
    return out


def test_every_method_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(1000).astype(np.float32)
    fig, ax = new_figure(figsize=(3, 2))
    ax.plot([0, 1, 2], [1, 0, 2])
    with SummaryWriter(tmp_path) as w:
        assert w.get_logdir() == tmp_path
        for step, v in enumerate([0.1, fg.tensor(0.25), np.array([1.5]), np.float64(1 / 3)]):
            w.add_scalar("loss", v, step)
        w.add_scalar("exact", 1 / 3, 0, new_style=True, double_precision=True)
        w.add_scalars("pair", {"a": 1.0, "b": 2.0}, 7)
        w.add_histogram("weights", fg.tensor(values), 3)
        w.add_histogram("auto", values, 3, bins="auto", max_bins=10)
        w.add_image("chw", rng.random((3, 10, 12)), 1)
        w.add_image("hw", fg.rand(10, 12), 1, dataformats="HW")
        w.add_image("hwc_uint8", (rng.random((10, 12, 4)) * 255).astype(np.uint8), 1,
                    dataformats="HWC")
        w.add_images("batch", rng.random((10, 1, 5, 6)), 2)
        w.add_figure("fig", fig, 4)
        w.add_text("note", "hello *world*", 5)
        w.add_hparams({"lr": 0.1, "opt": "sgd", "layers": 2, "dropout": None},
                      {"hp/acc": 0.9}, hparam_domain_discrete={"opt": ["sgd", "adam"]},
                      run_name="hp", global_step=9)

    acc = accumulate(tmp_path)
    tags = acc.Tags()
    assert set(tags["scalars"]) == {"loss"}
    assert [(s.step, s.value) for s in acc.Scalars("loss")] == [
        (0, np.float32(0.1)), (1, 0.25), (2, 1.5), (3, np.float32(1 / 3))]
    (exact,) = acc.Tensors("exact")
    assert exact.tensor_proto.double_val[0] == 1 / 3
    for key, value in (("a", 1.0), ("b", 2.0)):
        sub = accumulate(tmp_path / f"pair_{key}")
        assert [(s.step, s.value) for s in sub.Scalars("pair")] == [(7, value)]

    (hist,) = acc.Histograms("weights")
    h = hist.histogram_value
    assert hist.step == 3 and h.num == 1000 and sum(h.bucket) == 1000
    assert h.min == values.min() and h.max == values.max()
    assert len(h.bucket) == len(h.bucket_limit) and h.bucket[0] == 0
    assert np.isclose(h.sum, values.astype(float).sum())
    (auto,) = acc.Histograms("auto")
    # max_bins merges len // max_bins neighbours, as PyTorch does (so up to 2 * max_bins stay)
    counts = np.histogram(values, bins="auto")[0]
    assert sum(auto.histogram_value.bucket) == 1000
    assert len(auto.histogram_value.bucket) <= -(-len(counts) // (len(counts) // 10)) + 1

    shapes = {t: (acc.Images(t)[0].height, acc.Images(t)[0].width) for t in tags["images"]}
    assert shapes == {"chw": (10, 12), "hw": (10, 12), "hwc_uint8": (10, 12),
                      "batch": (10, 48), "fig": (200, 300)}  # 8 to a row; 3x2 in at 100 dpi
    assert acc.Images("fig")[0].step == 4
    assert acc.Images("fig")[0].encoded_image_string[:8] == b"\x89PNG\r\n\x1a\n"

    (note,) = acc.Tensors("note/text_summary")
    assert note.step == 5 and note.tensor_proto.string_val == [b"hello *world*"]
    assert acc.SummaryMetadata("note/text_summary").plugin_data.plugin_name == "text"

    hp = accumulate(tmp_path / "hp")
    content = hp.PluginTagToContent("hparams")
    exp = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"])
    assert [i.name for i in exp.experiment.hparam_infos] == ["lr", "opt", "layers"]
    assert [v.string_value for v in exp.experiment.hparam_infos[1].domain_discrete.values] == [
        "sgd", "adam"]
    assert [m.name.tag for m in exp.experiment.metric_infos] == ["hp/acc"]
    start = plugin_data_pb2.HParamsPluginData.FromString(
        content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["lr"].number_value == 0.1 and start.hparams["opt"].string_value == "sgd"
    assert [(s.step, s.value) for s in hp.Scalars("hp/acc")] == [(9, np.float32(0.9))]


def test_same_events_as_torch(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter as TorchWriter

    rng = np.random.default_rng(1)
    values = (rng.standard_normal(500) * 3).astype(np.float32)
    image = rng.random((3, 9, 7)).astype(np.float32)
    batch = (rng.random((5, 3, 4, 6)) * 255).astype(np.uint8)

    def calls(w, tensor):
        w.add_scalar("loss", 0.125, 1, walltime=10.0)
        w.add_scalar("loss", tensor(np.array(2.5, np.float32)), 2, walltime=11.0)
        w.add_scalar("new", 0.1, 3, walltime=12.0, new_style=True)
        w.add_scalar("new64", 0.1, 3, walltime=12.0, new_style=True, double_precision=True)
        w.add_scalars("main/tag", {"x": 1.0, "y": 3.0}, 4, walltime=13.0)
        w.add_histogram("hist", tensor(values), 5, walltime=14.0)
        w.add_histogram("hist_np", values, 5, bins=30, walltime=14.0, max_bins=7)
        w.add_image("img", tensor(image), 6, walltime=15.0)
        w.add_images("imgs", batch, 6, walltime=15.0, dataformats="NCHW")
        w.add_text("txt", "some text", 7, walltime=16.0)

    with SummaryWriter(tmp_path / "fg") as w:
        calls(w, fg.tensor)
    with TorchWriter(str(tmp_path / "torch")) as w:
        calls(w, torch.tensor)
    ours, theirs = summaries(tmp_path / "fg"), summaries(tmp_path / "torch")
    assert len(ours) == len(theirs) == 11
    for a, b in zip(sorted(ours, key=str), sorted(theirs, key=str)):
        assert a[:3] == b[:3]
        assert a[3] == b[3], (a[3].value[0].tag, b[3].value[0].tag)  # every field, PNG bytes too

    hp = {"lr": 0.01, "opt": "adam", "depth": 3}
    with SummaryWriter(tmp_path / "fg_hp") as w:
        w.add_hparams(hp, {"acc": 0.5}, {"depth": [2, 3]}, run_name="r", global_step=1)
    with TorchWriter(str(tmp_path / "torch_hp")) as w:
        w.add_hparams(hp, {"acc": 0.5}, {"depth": [2, 3]}, run_name="r", global_step=1)
    ours, theirs = summaries(tmp_path / "fg_hp"), summaries(tmp_path / "torch_hp")
    assert [(r, s) for r, s, _, _ in ours] == [(r, s) for r, s, _, _ in theirs]
    for (_, _, _, x), (_, _, _, y) in zip(ours, theirs):
        assert _hparams_parsed(x) == _hparams_parsed(y)


def _hparams_parsed(summary):
    """The summary with each hparams plugin payload parsed: protobuf maps (the hparams) are
    serialised in no fixed order, so equal messages can differ as bytes."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    out = []
    for v in summary.value:
        v = type(v).FromString(v.SerializeToString())
        data = plugin_data_pb2.HParamsPluginData.FromString(v.metadata.plugin_data.content)
        v.metadata.plugin_data.content = b""
        out.append((v, data))
    return out


def test_default_log_dir_purge_step_and_reopen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_exp", purge_step=3)
    assert w.get_logdir().startswith("runs" + os.sep) and w.get_logdir().endswith("_exp")
    w.close()
    w.close()  # a second close does nothing
    w.add_scalar("after", 1.0, 4)  # a new event file, as in PyTorch
    w.close()
    events = [e for f in sorted(glob.glob(os.path.join(w.get_logdir(), "events.*")))
              for e in EventFileLoader(f).Load()]
    assert any(e.HasField("session_log") and e.step == 3 for e in events)
    assert accumulate(w.get_logdir()).Scalars("after")[0].value == 1.0


def test_bad_input_says_what_was_expected(tmp_path):
    with SummaryWriter(tmp_path) as w:
        with pytest.raises(ValueError, match="one value"):
            w.add_scalar("x", np.ones(3))
        with pytest.raises(ValueError, match="dataformats"):
            w.add_image("x", np.ones((3, 4)), dataformats="CHW")
        with pytest.raises(TypeError, match="dictionaries"):
            w.add_hparams([("lr", 1)], {})


def test_imports_without_tensorboard_and_names_the_extra():
    code = ("import sys; sys.modules['tensorboard'] = None\n"
            "from flowgrad.utils.tensorboard import SummaryWriter\n"
            "try:\n    SummaryWriter('unused')\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert "flowgrad[tensorboard]" in out


def _blobs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 64)
    x = (rng.standard_normal((64, 2)) + 2 * y[:, None]).astype(np.float32)
    return TensorDataset(fg.tensor(x), fg.tensor(y))


def test_fit_logs_each_epoch(tmp_path):
    fg.manual_seed(0)
    model = nn.Linear(2, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    data = _blobs()
    history = fit(model, DataLoader(data, batch_size=16), F.cross_entropy, opt, epochs=3,
                  valid_loader=DataLoader(data, batch_size=32), progress=False,
                  tensorboard=str(tmp_path))
    acc = accumulate(tmp_path)
    expected = {"lr", "train/loss", "train/accuracy", "train/error", "valid/loss",
                "valid/accuracy", "valid/error"}
    assert set(acc.Tags()["scalars"]) == expected
    for tag in expected:
        key = tag.replace("/", "_")
        assert [(s.step, s.value) for s in acc.Scalars(tag)] == [
            (r["epoch"], np.float32(r[key])) for r in history.epochs]


def test_trainer_with_a_writer_continues_the_steps(tmp_path):
    fg.manual_seed(0)
    model = nn.Linear(2, 2)
    loader = DataLoader(_blobs(), batch_size=16)
    with SummaryWriter(tmp_path) as writer:
        trainer = Trainer(model, F.cross_entropy, optim.SGD(model.parameters(), lr=0.1),
                          progress=False, tensorboard=writer)
        trainer.fit(loader, epochs=2)
        trainer.fit(loader, epochs=1)
        assert writer.all_writers is not None  # a writer passed in stays open
        writer.add_scalar("extra", 1.0, 0)
    acc = accumulate(tmp_path)
    assert [s.step for s in acc.Scalars("train/loss")] == [1, 2, 3]
    assert "valid/loss" not in acc.Tags()["scalars"]
    assert isinstance(TensorBoardLogger(writer).writer, SummaryWriter)
