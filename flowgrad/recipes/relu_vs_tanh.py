"""Deep sparse rectifier networks (Glorot, Bordes & Bengio 2011; lecture: "Non-Linearities"):
a deep MLP trains faster and better with ReLU than with tanh or sigmoid under the same budget.
Same architecture (5 hidden layers), initialisation scheme (Glorot & Bengio 2010 normalized
uniform scaled by each non-linearity's gain, zero biases), data, optimizer and steps for all
three."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from ..models import MLP
from ..utils.data import DataLoader, TensorDataset
from .common import Timer, evaluate, mnist_arrays, write_results

DEFAULTS = {"epochs": 5, "lr": None, "batch_size": 64, "seed": 0, "depth": 5, "width": 256,
            "train_size": 20000}
ACTIVATIONS = ("relu", "tanh", "sigmoid")
LR_GRID = (0.01, 0.03, 0.1, 0.3)  # the same search budget for every non-linearity


def _train_one(act, lr, data, epochs, batch_size, seed, depth, width):
    """Train one deep MLP; returns per-step losses, per-epoch validation errors, the model."""
    (xtr, ytr), (xva, yva) = data
    fg.manual_seed(seed)
    model = MLP(sizes=(784,) + (width,) * depth + (10,), activation=act)
    gain = fg.nn.init.calculate_gain(act)
    for layer in model.modules():  # one scheme for all: Glorot uniform with the gain
        if isinstance(layer, fg.nn.Linear):
            fg.nn.init.xavier_uniform_(layer.weight, gain=gain)
            fg.nn.init.zeros_(layer.bias)
    optimizer = fg.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(fg.from_numpy(xtr), fg.from_numpy(ytr)),
                        batch_size=batch_size, shuffle=True)
    losses, valid_errors = [], []
    for _ in range(epochs):
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        valid_errors.append(evaluate(model, xva, yva)["error"])
    return losses, valid_errors, model


def run(epochs=5, lr=None, batch_size=64, seed=0, depth=5, width=256, train_size=20000,
        out="results", quick=False, progress=True) -> dict:
    (xtr, ytr), (xte, yte) = mnist_arrays("mnist", flatten=True)
    grid = LR_GRID if lr is None else (lr,)
    if quick:
        epochs, train_size, xte, yte, grid = 2, 2000, xte[:1000], yte[:1000], (lr or 0.1,)
    data = ((xtr[:train_size], ytr[:train_size]), (xtr[-10000:], ytr[-10000:]))  # valid: last 10k
    curves, final, table = {}, {}, []
    with Timer() as t:
        for act in ACTIVATIONS:
            best = None
            for rate in grid:
                losses, valid, model = _train_one(act, rate, data, epochs, batch_size, seed,
                                                  depth, width)
                table.append((act, rate, valid[-1]))
                if best is None or valid[-1] < best[1][-1]:
                    best = (losses, valid, model, rate)
            losses, valid, model, rate = best
            curves[act] = (losses, valid)
            final[act] = {"train_loss": float(np.mean(losses[-50:])), "lr": rate,
                          "valid_error": valid[-1],
                          "test_error": evaluate(model, xte, yte)["error"]}
    summary = {"title": f"Deep MLP ({depth} hidden layers of {width}): ReLU vs tanh vs sigmoid",
               **{f"{a}_test_error": final[a]["test_error"] for a in ACTIVATIONS},
               **{f"{a}_final_train_loss": final[a]["train_loss"] for a in ACTIVATIONS},
               **{f"{a}_best_lr": final[a]["lr"] for a in ACTIVATIONS},
               "grid": [{"activation": a, "lr": r, "valid_error": e} for a, r, e in table],
               "published": {"claim": "rectifiers train deep nets faster and better than tanh "
                                      "and sigmoid (Glorot, Bordes & Bengio 2011)"},
               "epochs": epochs, "train_size": train_size,
               "command": f"flowgrad train relu_vs_tanh --epochs {epochs}",
               "seed": seed, "seconds": t.seconds}
    if not quick:
        fig = _plot(curves, out, batch_size, train_size)
        rows = [(f"{a} (best lr {final[a]['lr']}): test error / final train loss",
                 f"{final[a]['test_error']:.2%} / {final[a]['train_loss']:.3f}", "—")
                for a in ACTIVATIONS]
        rows.append(("ranking by test error",
                     " < ".join(sorted(ACTIVATIONS, key=lambda a: final[a]["test_error"])),
                     "relu < tanh < sigmoid"))
        rows += [(f"grid: {a}, lr {r}", f"valid error {e:.2%}", "—") for a, r, e in table]
        write_results("relu_vs_tanh", out, summary, rows, figures=(fig,), notes=(
            "Each non-linearity gets the same budget: SGD at each learning rate of the grid "
            f"{list(grid)} for {epochs} epochs on {train_size} MNIST training images; the rate "
            "with the lowest error on 10,000 held-out training images is kept, and its test "
            "error is reported. Curves: the kept run of each (right panel: validation error)."))
    return summary


def _plot(curves, out, batch_size, n):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(out).mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    steps_per_epoch = -(-n // batch_size)
    for act, (losses, errors) in curves.items():
        smooth = np.convolve(losses, np.ones(50) / 50, mode="valid")
        a.plot(np.arange(len(smooth)) / steps_per_epoch, smooth, label=act)
        b.plot(np.arange(1, len(errors) + 1), errors, marker="o", label=act)
    a.set(xlabel="epoch", ylabel="train loss (50-step mean)", yscale="log",
          title="training loss")
    b.set(xlabel="epoch", ylabel="validation error", yscale="log", title="validation error")
    a.legend()
    b.legend()
    fig.tight_layout()
    path = f"{out}/relu_vs_tanh.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
