"""MNIST-1D (Greydanus 2020) with the official protocol: Adam lr 1e-2, batch 100, 6000 steps
of sequential minibatches; logistic regression, the residual MLP and the 1-D CNN. The official
run reports 32%, 68% and 94% test accuracy."""

from __future__ import annotations

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from .. import nn
from ..data import mnist1d as make_mnist1d
from ..models import ConvNet1d, ResidualMLP
from .common import Timer, evaluate, write_results

DEFAULTS = {"steps": 6000, "lr": 1e-2, "batch_size": 100, "seed": 42}
PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}


def train_official(model, x, y, steps, lr, batch_size):
    """The official loop: batch ``step * batch_size mod N``; Adam; loss per step."""
    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for step in range(steps + 1):
        b = (step * batch_size) % len(x)
        xb, yb = fg.from_numpy(x[b:b + batch_size]), fg.from_numpy(y[b:b + batch_size])
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def run(steps=6000, lr=1e-2, batch_size=100, seed=42, out="results", quick=False,
        progress=True, epochs=None) -> dict:
    data = make_mnist1d(seed=seed)
    xtr, ytr = np.asarray(data["x"], np.float32), np.asarray(data["y"], np.int64)
    xte, yte = np.asarray(data["x_test"], np.float32), np.asarray(data["y_test"], np.int64)
    steps = min(steps, 300) if quick else steps
    results, curves = {}, {}
    with Timer() as t:
        for name, make in (("logistic", lambda: nn.Linear(40, 10)), ("mlp", ResidualMLP),
                           ("cnn", ConvNet1d)):
            fg.manual_seed(seed)
            model = make()
            curves[name] = train_official(model, xtr, ytr, steps, lr, batch_size)
            results[name] = 1 - evaluate(model, xte, yte)["error"]
    summary = {"title": "MNIST-1D: logistic regression, MLP, CNN",
               **{f"{k}_test_accuracy": v for k, v in results.items()},
               "published": {f"{k}_test_accuracy": v for k, v in PUBLISHED.items()} | {
                   "source": "Greydanus 2020, official README / notebook"},
               "steps": steps, "command": f"flowgrad train mnist1d --steps {steps}",
               "seed": seed, "seconds": t.seconds}
    if not quick:
        fig = _plot(curves, out)
        write_results("mnist1d", out, summary, [
            (f"{k} test accuracy", f"{results[k]:.1%}", f"{PUBLISHED[k]:.0%}") for k in results
        ], figures=(fig,))
    return summary


def _plot(curves, out):
    import matplotlib

    matplotlib.use("Agg")
    from pathlib import Path

    import matplotlib.pyplot as plt

    Path(out).mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, losses in curves.items():
        smooth = np.convolve(losses, np.ones(50) / 50, mode="valid")
        ax.plot(smooth, label=name)
    ax.set(xlabel="step", ylabel="train loss (50-step mean)", yscale="log",
           title="MNIST-1D, Adam 1e-2, batch 100")
    ax.legend()
    path = f"{out}/mnist1d_curves.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
