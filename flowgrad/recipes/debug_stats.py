"""Weight/gradient statistics and learning-curve diagnosis on MNIST-1D (lecture: "Debugging":
track distribution statistics of weights and gradients, track error curves; "Vanishing or
Exploding Gradients"; "Validate and Analyze": overfitting or underfitting).

Part 1, the monitor: three deep MLPs (8 affine layers of width 64) trained the same way, watched
by ``flowgrad.debug.stats.TrainingMonitor``: sigmoid with a small N(0, 0.1²) initialisation
(each layer multiplies the back-propagated gradient by about 0.25 · 0.1 · √64 = 0.2, so the
first layers get ~0.2⁷ ≈ 1e-5 of the last one's gradient: vanishing), tanh with a large N(0, 1)
initialisation (saturated units) and ReLU with Kaiming initialisation (He et al. 2015; fine).

Part 2, the curves: ``flowgrad.debug.curves.diagnose_curves`` on a big MLP (40-512-512-10)
trained on 500 examples (overfitting), the same MLP on all 3,000 (more data shrinks the gap),
logistic regression (underfitting) and the official 1-D CNN on 3,000 (a smaller gap than the
MLP's on the same data: weight sharing); validation is the last 1,000 of the 4,000 training
examples, never the test set.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from .. import nn
from ..datasets import mnist1d as make_mnist1d
from ..debug.curves import plot_curves
from ..debug.stats import TrainingMonitor
from ..models import MLP, ConvNet1d
from ..train import fit
from ..utils.data import DataLoader, TensorDataset
from .common import Timer, command_line, resolve_out, split_validation, write_results

DEFAULTS = {"epochs": 20, "lr": 0.1, "width": 64, "depth": 8, "every": 10, "curve_epochs": 40,
            "small_size": 500, "seed": 0}

DEEP_NETS = (  # name, activation, initialisation, expected verdict
    ("sigmoid_small_init", "sigmoid", "normal(0, 0.1)", "vanishing gradients"),
    ("tanh_large_init", "tanh", "normal(0, 1)", "saturated units"),
    ("relu_kaiming", "relu", "kaiming", "fine"),
)


def _loaders(x, y, xva, yva, batch_size, seed):
    generator = fg.Generator().manual_seed(seed)  # the same batches for every model
    train = DataLoader(TensorDataset(fg.from_numpy(x), fg.from_numpy(y)),
                       batch_size=batch_size, shuffle=True, generator=generator)
    valid = DataLoader(TensorDataset(fg.from_numpy(xva), fg.from_numpy(yva)), batch_size=1000)
    return train, valid


def _deep_mlp(activation: str, init: str, width: int, depth: int, seed: int):
    fg.manual_seed(seed)
    model = MLP(sizes=(40,) + (width,) * (depth - 1) + (10,), activation=activation)
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            if init == "kaiming":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            else:  # "normal(0, s)"
                nn.init.normal_(layer.weight, 0.0, float(init.split(",")[1].rstrip(")")))
            nn.init.zeros_(layer.bias)
    return model


def _layer_profile(monitor: TrainingMonitor) -> dict:
    """Gradient norm of each weight matrix, median over the first and over the last quarter
    of the records (input layer first)."""
    out = {}
    for name in monitor.layer_names():
        g = monitor.series(name, "grad_norm")
        q = max(1, len(g) // 4)
        out[name] = {"early": float(np.nanmedian(g[:q])), "late": float(np.nanmedian(g[-q:])),
                     "update_ratio": float(np.nanmedian(monitor.series(name, "update_ratio")))}
    return out


def _part_monitor(data, out, epochs, lr, width, depth, every, seed, progress, quick):
    (xtr, ytr), (xva, yva) = data
    results, figures = {}, []
    for name, act, init, _ in DEEP_NETS:
        model = _deep_mlp(act, init, width, depth, seed)
        monitor = TrainingMonitor(model, every=every, histograms=not quick)
        train, valid = _loaders(xtr, ytr, xva, yva, 100, seed)
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        history = fit(model, train, F.cross_entropy, optimizer, epochs, valid_loader=valid,
                      callbacks=[monitor], progress=progress)
        monitor.remove()
        report = monitor.report()
        monitor.plot(out / f"debug_stats_{name}.png", title=f"{act}, {init} init — "
                                                            f"{report.verdict}")
        if not quick:  # the slowest figure to draw
            monitor.histograms(out / f"debug_stats_{name}_histograms.png")
        monitor.to_csv(out / f"debug_stats_{name}.csv")
        (out / f"debug_stats_{name}_report.md").write_text(str(report) + "\n")
        profile = _layer_profile(monitor)
        layers = list(profile)
        acts = report.activations
        results[name] = {
            "activation": act, "init": init, "verdict": report.verdict,
            "warnings": report.warnings, "layers": profile,
            "first_over_last_grad": profile[layers[0]]["early"] / profile[layers[-1]]["early"],
            "dead_or_saturated": {r["name"]: r["fraction"] for r in acts},
            "mean_dead_or_saturated": float(np.mean([r["fraction"] for r in acts])),
            "train_error": history.last["train_error"],
            "valid_error": history.last["valid_error"]}
        figures.append(out / f"debug_stats_{name}.png")
    figures.insert(0, _plot_profiles(results, out))
    return results, figures


def _part_curves(data, out, epochs, small_size, seed, progress, quick):
    (xtr, ytr), (xva, yva) = data
    runs = (  # name, model, train size, lr, batch size, epochs
        ("mlp_500", lambda: MLP(sizes=(40, 512, 512, 10)), small_size, 1e-3, 50, epochs),
        ("mlp_3000", lambda: MLP(sizes=(40, 512, 512, 10)), len(xtr), 1e-3, 100,
         max(2, epochs // 4)),
        ("logistic", lambda: nn.Linear(40, 10), len(xtr), 1e-2, 100, max(2, epochs // 4)),
        ("cnn_3000", ConvNet1d, len(xtr), 1e-2, 100, max(2, epochs // 2)),
    )
    if quick:
        runs = runs[:1] + runs[2:3]
    results, figures = {}, []
    for name, make, n, lr, batch_size, n_epochs in runs:
        fg.manual_seed(seed)
        model = make()
        train, valid = _loaders(xtr[:n], ytr[:n], xva, yva, batch_size, seed)
        history = fit(model, train, F.cross_entropy, fg.optim.Adam(model.parameters(), lr=lr),
                      n_epochs, valid_loader=valid, progress=progress)
        path = out / f"debug_stats_curves_{name}.png"
        report = plot_curves(history, path, title=f"{name} ({n} examples)")
        results[name] = {"train_size": n, "epochs": n_epochs, **report.to_dict()}
        figures.append(path)
    return results, figures


def run(epochs=20, lr=0.1, width=64, depth=8, every=10, curve_epochs=40, small_size=500,
        out=None, quick=False, progress=True, seed=0, **ignored) -> dict:
    command = command_line("debug_stats", run, locals())
    out = resolve_out("debug_stats", out)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if quick:  # 1,500 generated examples (900 train / 300 valid): generation takes seconds
        epochs, curve_epochs, every = 2, 12, 5
    (xtr, ytr), _test = make_mnist1d(num_samples=1500 if quick else 5000, seed=42)
    n_valid = len(xtr) // 4  # validation: the last quarter of the training examples
    data = split_validation(xtr, ytr, n_valid)  # the test set is not used
    n_train = len(xtr) - n_valid
    with Timer() as t:
        monitor_results, figs1 = _part_monitor(data, out, epochs, lr, width, depth, every, seed,
                                               progress, quick)
        curve_results, figs2 = _part_curves(data, out, curve_epochs, small_size, seed,
                                            progress, quick)
    summary = {
        "title": "Debugging with statistics: vanishing gradients, saturation, over/underfitting",
        **{f"{k}_verdict": v["verdict"] for k, v in monitor_results.items()},
        **{f"{k}_first_over_last_grad": v["first_over_last_grad"]
           for k, v in monitor_results.items()},
        **{f"curves_{k}_verdict": v["verdict"] for k, v in curve_results.items()},
        "monitor": monitor_results, "curves": curve_results,
        "published": {
            "sigmoid_small_init": "vanishing gradients (Hochreiter 1991; Glorot & Bengio 2010)",
            "tanh_large_init": "saturated units (Glorot & Bengio 2010; LeCun et al. 1998)",
            "relu_kaiming": "gradients of the same order in every layer (He et al. 2015)",
            "update_ratio": "about 1e-3 (Karpathy, CS231n notes)",
            "source": "lecture: Debugging; Vanishing or Exploding Gradients; Validate and "
                      "Analyze"},
        "epochs": epochs, "curve_epochs": curve_epochs,
        "command": command, "seed": seed,
        "seconds": t.seconds}
    expected = {name: verdict for name, _, _, verdict in DEEP_NETS}
    rows = []
    for name, r in monitor_results.items():
        rows.append((f"{r['activation']}, {r['init']} init: monitor verdict", r["verdict"],
                     expected[name]))
        rows.append((f"{r['activation']}, {r['init']} init: grad norm first/last layer "
                     "(first records)", f"{r['first_over_last_grad']:.1e}",
                     {"sigmoid_small_init": "≪ 1e-3", "relu_kaiming": "≈ 1 (0.1 … 10)"}
                     .get(name, "—")))
        kind = "saturated" if r["activation"] in ("tanh", "sigmoid") else "dead"
        rows.append((f"{r['activation']}, {r['init']} init: mean {kind} fraction",
                     f"{r['mean_dead_or_saturated']:.1%}",
                     "high" if name.startswith("tanh") else "low"))
        rows.append((f"{r['activation']}, {r['init']} init: train / valid error after "
                     f"{epochs} epochs", f"{r['train_error']:.1%} / {r['valid_error']:.1%}",
                     "—"))
    expected_curves = {"mlp_500": "overfitting", "mlp_3000": "overfitting (smaller gap)",
                       "logistic": "underfitting",
                       "cnn_3000": "a smaller gap than mlp_3000's (weight sharing)"}
    for name, r in curve_results.items():
        rows.append((f"curves, {name} ({r['train_size']} examples, {r['epochs']} epochs): "
                     f"verdict / best epoch / error gap",
                     f"{r['verdict']} / {r['best_epoch']} / {r['error_gap']:+.1%}",
                     expected_curves[name]))
    write_results("debug_stats", out, summary, rows, figures=tuple(figs1 + figs2), notes=(
        f"Part 1: {depth}-layer MLPs of width {width} on MNIST-1D ({n_train:,} training "
        "examples), SGD with "
        f"momentum 0.9, lr {lr}, batch 100, {epochs} epochs, watched by "
        f"`TrainingMonitor(model, every={every})` as a `fit` callback. The 'published' column "
        "is what the literature predicts, not a number. Per-layer tables, CSVs and weight/"
        "gradient histograms: `debug_stats_<net>_report.md`, `.csv`, `_histograms.png`.\n\n"
        "Part 2: Adam; `diagnose_curves` with its defaults (target training error 10%, error "
        "gap 10%, validation-loss rise 10% sustained for 3 epochs).\n\n"
        f"Splits: MNIST-1D generated with seed 42; the models train on the first {n_train:,} "
        f"of its {n_train + n_valid:,} training examples, and the validation curves and "
        f"errors are on the last {n_valid:,} (never trained on). The test set is not used: "
        "nothing here is a final result."))
    (out / "debug_stats_details.json").write_text(
        json.dumps({"monitor": monitor_results, "curves": curve_results}, indent=2,
                   default=float) + "\n")
    return summary


def _plot_profiles(results: dict, out: Path) -> Path:
    """Gradient norm per layer (input → output) at the start and the end of training, one
    line per network: the vanishing-gradient picture."""
    from ..debug.stats import _figure, _save

    fig, axes = _figure(2, (5.2, 4))
    colors = {"sigmoid_small_init": "tab:red", "tanh_large_init": "tab:purple",
              "relu_kaiming": "tab:green"}
    for ax, when in zip(axes, ("early", "late")):
        for name, r in results.items():
            g = [v[when] for v in r["layers"].values()]
            ax.plot(range(1, len(g) + 1), g, "o-", color=colors.get(name), label=name)
        ax.set(yscale="log", xlabel="layer (1 = input)", ylabel="gradient norm (median)",
               title=f"gradient norm per layer, {'first' if when == 'early' else 'last'} "
                     "quarter of training")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Vanishing gradients in a deep sigmoid MLP with small initial weights")
    path = out / "debug_stats_layers.png"
    _save(fig, path)
    return path
