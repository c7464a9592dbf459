"""The embedded default: an MLP on scikit-learn's bundled 8x8 digits (no download), with a
logistic-regression baseline beside it (lecture: "Validate and Analyze" — compare with simple
baselines)."""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets import digits
from ..models import MLP
from .common import Timer, train_classifier, write_results

DEFAULTS = {"epochs": 30, "lr": 0.1, "batch_size": 32, "seed": 0, "hidden": 64}


def run(epochs=30, lr=0.1, batch_size=32, seed=0, hidden=64, out="results", quick=False,
        progress=True) -> dict:
    fg.manual_seed(seed)
    xtr, ytr, xte, yte = _arrays(seed)
    if quick:
        epochs = min(epochs, 5)
    model = MLP(sizes=(64, hidden, 10))
    optimizer = fg.optim.SGD(model.parameters(), lr=lr)
    with Timer() as t:
        history, final = train_classifier(model, (xtr, ytr), (xte, yte), optimizer, epochs,
                                          batch_size, seed, out, "digits_mlp", progress=progress)
    baseline = _logistic_baseline(xtr, ytr, xte, yte)
    summary = {"title": "Digits MLP (scikit-learn's 8x8 digits)", "test_error": final["error"],
               "test_accuracy": 1 - final["error"], "train_loss": history.last.get("train_loss"),
               "baseline_logistic_regression_accuracy": baseline,
               "published": {"note": "no published figure; scikit-learn logistic regression "
                                     "on the same split is the baseline"},
               "epochs": epochs, "command": f"flowgrad train digits_mlp --epochs {epochs}",
               "seed": seed, "seconds": t.seconds}
    if not quick:
        write_results("digits_mlp", out, summary, [
            ("test accuracy", f"{1 - final['error']:.2%}", "—"),
            ("logistic regression (scikit-learn), same split", f"{baseline:.2%}", "—"),
        ], figures=(f"{out}/digits_mlp_curves.png",))
    return summary


def _arrays(seed):
    (xtr, ytr), (xte, yte) = digits(seed=seed)
    return (np.asarray(xtr, np.float32), np.asarray(ytr, np.int64), np.asarray(xte, np.float32),
            np.asarray(yte, np.int64))


def _logistic_baseline(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())
