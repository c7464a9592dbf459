"""The embedded default: an MLP on scikit-learn's bundled 8x8 digits (no download), with a
logistic-regression baseline beside it (lecture: "Validate and Analyze" — compare with simple
baselines)."""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets import digits
from ..models import MLP
from .common import (
    Timer,
    command_line,
    resolve_out,
    split_validation,
    train_classifier,
    write_results,
)

DATA_PARALLEL = True  # under mpirun, common.train_classifier trains data-parallel
DEFAULTS = {"epochs": 30, "lr": 0.1, "batch_size": 32, "seed": 0, "hidden": 64}
N_VALID = 300  # the last 300 of the shuffled training images are the validation set


def run(epochs=30, lr=0.1, batch_size=32, seed=0, hidden=64, out=None, quick=False,
        progress=True) -> dict:
    command = command_line("digits_mlp", run, locals())
    out = resolve_out("digits_mlp", out)
    fg.manual_seed(seed)
    xtr, ytr, xte, yte = _arrays(seed)
    (xtr, ytr), (xva, yva) = split_validation(xtr, ytr, N_VALID)
    if quick:
        epochs = min(epochs, 5)
    model = MLP(sizes=(64, hidden, 10))
    optimizer = fg.optim.SGD(model.parameters(), lr=lr)
    with Timer() as t:
        result = train_classifier(model, (xtr, ytr), (xva, yva), (xte, yte), optimizer, epochs,
                                  batch_size, out, "digits_mlp", progress=progress,
                                  title=f"Digits MLP 64-{hidden}-10")
    final, history = result["test"], result["history"]
    baseline = _logistic_baseline(xtr, ytr, xte, yte)
    summary = {"title": "Digits MLP (scikit-learn's 8x8 digits)", "test_error": final["error"],
               "test_accuracy": 1 - final["error"], "valid_error": result["valid"]["error"],
               "best_epoch": result["best_epoch"], "train_loss": history.last.get("train_loss"),
               "baseline_logistic_regression_accuracy": baseline,
               "published": {"note": "no published figure; scikit-learn logistic regression "
                                     "on the same split is the baseline"},
               "splits": {"train": len(xtr), "valid": len(xva), "test": len(xte)},
               "epochs": epochs, "command": command,
               "seed": seed, "seconds": t.seconds}
    write_results("digits_mlp", out, summary, [
        (f"MLP 64-{hidden}-10 ReLU, SGD lr {lr}: test accuracy", f"{1 - final['error']:.2%}",
         "—"),
        ("MLP: validation accuracy (kept epoch / epochs run)",
         f"{1 - result['valid']['error']:.2%} (epoch {result['best_epoch']} / {epochs})", "—"),
        ("logistic regression (scikit-learn, default C), same training images: test accuracy",
         f"{baseline:.2%}", "—"),
    ], figures=("digits_mlp_curves.png",), notes=(
        f"Splits: scikit-learn's 1,797 digits shuffled with seed {seed}; {len(xte):,} are the "
        f"test set; of the other {len(xtr) + len(xva):,}, the last {len(xva):,} are the "
        f"validation set and the first {len(xtr):,} are trained on. The MLP is trained for "
        f"{epochs} epochs, the weights of the epoch with the lowest validation error are kept, "
        "and the test set is evaluated once, with those weights; the baseline is fitted on the "
        "same training images and evaluated once on the test set. The curves show the "
        "training and validation splits only."))
    return summary


def _arrays(seed):
    (xtr, ytr), (xte, yte) = digits(seed=seed)
    return (np.asarray(xtr, np.float32), np.asarray(ytr, np.int64), np.asarray(xte, np.float32),
            np.asarray(yte, np.int64))


def _logistic_baseline(xtr, ytr, xte, yte) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000).fit(xtr, ytr)
    return float((clf.predict(xte) == yte).mean())
