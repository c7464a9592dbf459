"""flowgrad.plotting: every figure flowgrad draws goes through one helper that never switches the
user's matplotlib backend (the old ``matplotlib.use("Agg")`` calls changed it for the whole
process) and never touches pyplot's figure list."""

import sys

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.nn.functional as F
from flowgrad import nn
from flowgrad.plotting import new_figure, save_figure

matplotlib = pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def svg_backend():
    """The user chose a non-Agg backend; every plotting call must leave it alone."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    assert matplotlib.get_backend() == "svg"
    yield
    matplotlib.use(before)


def _png(path):
    return path.read_bytes()[:8] == PNG


def test_new_figure_and_save_figure(tmp_path, svg_backend):
    fig, ax = new_figure(figsize=(3, 2))
    ax.plot([1, 2, 3])
    out = save_figure(fig, tmp_path / "sub" / "a.png", tight=True)
    assert _png(out) and out.parent.name == "sub"
    fig, axes = new_figure(2, 3, squeeze=False)
    assert axes.shape == (2, 3) and len(fig.axes) == 6
    fig, none = new_figure(axes=False)
    assert none is None and not fig.axes
    fig.add_subplot(1, 1, 1).plot([0, 1])
    assert save_figure(fig, tmp_path / "b.svg").read_text().lstrip().startswith("<?xml")
    assert _png(save_figure(fig, tmp_path / "c.unknown"))  # no known format: PNG
    assert matplotlib.get_backend() == "svg"
    plt = sys.modules.get("matplotlib.pyplot")
    assert plt is None or not plt.get_fignums()  # nothing left on pyplot's figure list


def test_no_flowgrad_plot_switches_the_backend(tmp_path, svg_backend):
    from flowgrad.debug.analysis import CapacitySweep, classification_report, worst_examples
    from flowgrad.debug.cost import GradientCost
    from flowgrad.debug.curves import plot_curves
    from flowgrad.debug.overfit import overfit_small
    from flowgrad.debug.stats import TrainingMonitor
    from flowgrad.train import History

    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    monitor = TrainingMonitor(model)
    opt = fg.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        F.cross_entropy(model(fg.from_numpy(x)), fg.from_numpy(y)).backward()
        monitor.after_backward()
        opt.step()
        monitor.after_step()
    monitor.plot(tmp_path / "stats.png")
    monitor.histograms(tmp_path / "hist.png")
    h = History()
    for e in range(1, 4):
        h.log_epoch(epoch=e, train_loss=1.0 / e, valid_loss=1.2 / e)
    h.plot(tmp_path / "history.png")
    plot_curves(h, tmp_path / "curves.png")
    rows = [{"size": s, "n_params": n, "forward": 1e-4 * n, "backprop": 3e-4 * n,
             "finite_differences": 2e-4 * n * n, "extrapolated": False}
            for s, n in ((2, 30), (4, 56), (8, 108))]
    GradientCost(rows, {"forward": 1.0, "backprop": 1.0, "finite_differences": 2.0}, 1e-6,
                 32).plot(tmp_path / "cost.png")
    CapacitySweep([1, 2, 4], [0.4, 0.1, 0.0], [0.45, 0.2, 0.3], [10, 20, 40], [0.1] * 3,
                  100).plot(tmp_path / "sweep.png")
    classification_report(model, x, y).plot_confusion(tmp_path / "confusion.png")
    worst_examples(model, x, y, k=4).plot_worst(tmp_path / "worst.png")
    overfit_small(model, (x, y), n=8, max_steps=3, control=False,
                  plot=tmp_path / "overfit.png")
    names = ["stats", "hist", "history", "curves", "cost", "sweep", "confusion", "worst",
             "overfit"]
    assert all(_png(tmp_path / f"{n}.png") for n in names)
    assert matplotlib.get_backend() == "svg"


def test_no_library_module_switches_the_backend_or_uses_pyplot():
    """Every figure goes through flowgrad.plotting (recipes included)."""
    import re
    from pathlib import Path

    import flowgrad

    root = Path(flowgrad.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib "
                              r"import pyplot", p.read_text())]
    assert offenders == []
