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

DEFAULTS = {"epochs": 5, "lr": 0.05, "batch_size": 64, "seed": 0, "depth": 5, "width": 256,
            "train_size": 20000}
ACTIVATIONS = ("relu", "tanh", "sigmoid")


def run(epochs=5, lr=0.05, batch_size=64, seed=0, depth=5, width=256, train_size=20000,
        out="results", quick=False, progress=True) -> dict:
    (xtr, ytr), (xte, yte) = mnist_arrays("mnist", flatten=True)
    if quick:
        epochs, train_size, xte, yte = 2, 2000, xte[:1000], yte[:1000]
    xtr, ytr = xtr[:train_size], ytr[:train_size]
    curves, final = {}, {}
    with Timer() as t:
        for act in ACTIVATIONS:
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
            losses, test_errors = [], []
            for _ in range(epochs):
                for xb, yb in loader:
                    loss = F.cross_entropy(model(xb), yb)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    losses.append(loss.item())
                test_errors.append(evaluate(model, xte, yte)["error"])
            curves[act] = (losses, test_errors)
            final[act] = {"train_loss": float(np.mean(losses[-50:])),
                          "test_error": test_errors[-1]}
    summary = {"title": f"Deep MLP ({depth} hidden layers of {width}): ReLU vs tanh vs sigmoid",
               **{f"{a}_test_error": final[a]["test_error"] for a in ACTIVATIONS},
               **{f"{a}_final_train_loss": final[a]["train_loss"] for a in ACTIVATIONS},
               "published": {"claim": "rectifiers train deep nets faster and better than tanh "
                                      "and sigmoid (Glorot, Bordes & Bengio 2011)"},
               "epochs": epochs, "train_size": train_size,
               "command": f"flowgrad train relu_vs_tanh --epochs {epochs} --lr {lr}",
               "seed": seed, "seconds": t.seconds}
    if not quick:
        fig = _plot(curves, out, batch_size, len(xtr))
        write_results("relu_vs_tanh", out, summary, [
            (f"{a}: test error / final train loss",
             f"{final[a]['test_error']:.2%} / {final[a]['train_loss']:.3f}", "—")
            for a in ACTIVATIONS
        ] + [("ranking", " < ".join(sorted(ACTIVATIONS, key=lambda a: final[a]["test_error"])),
              "relu < tanh < sigmoid (error)")], figures=(fig,))
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
    b.set(xlabel="epoch", ylabel="test error", yscale="log", title="test error")
    a.legend()
    b.legend()
    fig.tight_layout()
    path = f"{out}/relu_vs_tanh.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
