"""The lecture's slide "Validate and Analyze", run on MNIST-1D (Greydanus 2020): a capacity sweep
of the MLP's width, a learning curve of the 1-D CNN, scikit-learn baselines beside the CNN, its
classification report and confusion matrix, its worst test examples, and whether the CNN is
significantly better than the MLP (Wilson and bootstrap intervals, McNemar's test).

Protocol: the official MNIST-1D data (4,000 train / 1,000 test, seed 42). Capacity and data size
are chosen on a validation split (the last 1,000 of the 4,000 training examples, never the test
set); the final CNN and MLP are retrained on all 4,000 and compared on the test set. Adam,
batch 100, cross-entropy, shuffled minibatches; BLAS limited to one thread (small matrices).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import flowgrad as fg

from ..datasets import mnist1d as make_mnist1d
from ..debug.analysis import (
    capacity_sweep,
    classification_report,
    learning_curve,
    predict_log_proba,
    train_model,
    worst_examples,
)
from ..debug.baselines import compare_with_baselines
from ..debug.significance import compare_models
from ..models import MLP, ConvNet1d
from ..utils.threads import limit_threads
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"epochs": 40, "lr": 3e-3, "batch_size": 100, "seed": 0,
            "widths": (4, 8, 16, 32, 64, 128, 256, 512), "sizes": (187, 375, 750, 1500, 3000)}
# Greydanus (2020), official README: test accuracy of the official models (one run each)
PUBLISHED = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94}


def run(out=None, quick=False, progress=True, seed=0, epochs=40, lr=3e-3, batch_size=100,
        widths=DEFAULTS["widths"], sizes=DEFAULTS["sizes"], write: bool = True,
        **ignored) -> dict:
    command = command_line("validate_analyze", run, locals())
    out = resolve_out("validate_analyze", out)
    with limit_threads(1, "blas"), Timer() as t:
        result = _run(quick, progress, seed, epochs, lr, batch_size, widths, sizes)
    summary = result.pop("summary")
    summary["command"] = command
    summary["seconds"] = t.seconds
    if write:
        _write(out, summary, **result)
    return summary


def _run(quick, progress, seed, epochs, lr, batch_size, widths, sizes):
    data = make_mnist1d(seed=42)
    xtr, ytr = np.asarray(data.x_train, np.float32), np.asarray(data.y_train, np.int64)
    xte, yte = np.asarray(data.x_test, np.float32), np.asarray(data.y_test, np.int64)
    n_train = 3000
    if quick:
        epochs, widths, sizes = min(epochs, 8), (8, 64), (250, 1000)
        n_train = 1000
        xtr, ytr = xtr[:n_train + 500], ytr[:n_train + 500]
    fit_kwargs = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed}
    train, valid = (xtr[:n_train], ytr[:n_train]), (xtr[n_train:], ytr[n_train:])
    log = print if progress else (lambda *a, **k: None)

    log("capacity sweep: MLP 40-w-w-10, validation split", flush=True)
    sweep = capacity_sweep(lambda w: MLP(sizes=(40, w, w, 10)), train, valid, widths,
                           fit_kwargs, name="width", progress=progress)
    log("learning curve: 1-D CNN", flush=True)
    curve = learning_curve(ConvNet1d, train, valid, sizes, {**fit_kwargs, "lr": 1e-2},
                           seed=seed, progress=progress)

    log("final models on all training examples, test set", flush=True)
    fg.manual_seed(seed)
    cnn = ConvNet1d()
    train_model(cnn, xtr, ytr, **{**fit_kwargs, "lr": 1e-2})
    fg.manual_seed(seed)
    mlp = MLP(sizes=(40, sweep.best, sweep.best, 10))
    train_model(mlp, xtr, ytr, **fit_kwargs)
    cnn_scores, mlp_scores = predict_log_proba(cnn, xte), predict_log_proba(mlp, xte)

    report = classification_report(cnn, xte, yte)
    worst = worst_examples(cnn, xte, yte, k=16)
    models = ("logistic", "random_forest") if quick else (
        "logistic", "linear_svm", "rbf_svm", "random_forest")
    baselines = compare_with_baselines(xtr, ytr, xte, yte,
                                       {"cnn": cnn_scores, f"mlp (width {sweep.best})":
                                        mlp_scores}, models=models, seed=seed,
                                       progress=progress)
    significance = compare_models(cnn_scores, mlp_scores, yte,
                                  names=("cnn", f"mlp (width {sweep.best})"), seed=seed)

    summary = {
        "title": "Validate and Analyze on MNIST-1D: capacity, data size, baselines, "
                 "worst examples, significance",
        "cnn_test_error": report.error, "cnn_test_nll": report.nll,
        "cnn_macro_f1": report.macro_f1, "mlp_test_error": significance.errors[1],
        "best_mlp_width": sweep.best, "capacity_verdict": sweep.verdict,
        "learning_curve_verdict": curve.verdict, "more_data_helps": curve.more_data_helps,
        "baselines_verdict": baselines.verdict, "significance_verdict": significance.verdict,
        "classification_verdict": report.verdict, "worst_examples_verdict": worst.verdict,
        "capacity_sweep": sweep.as_dict(), "learning_curve": curve.as_dict(),
        "baselines": baselines.as_dict(), "classification_report": report.as_dict(),
        "worst_examples": worst.as_dict(), "significance": significance.as_dict(),
        "published": {f"{k}_test_accuracy": v for k, v in PUBLISHED.items()} | {
            "source": "Greydanus 2020, official README (one run each)"},
        "epochs": epochs, "lr": lr, "batch_size": batch_size, "n_validation": len(valid[1]),
        "command": "",  # set by run()
        "seed": seed,
    }
    return {"summary": summary, "sweep": sweep, "curve": curve, "report": report,
            "worst": worst, "baselines": baselines, "significance": significance}


def _write(out, summary, sweep, curve, report, worst, baselines, significance):
    out = Path(out)
    figs = (sweep.plot(out / "validate_analyze_capacity.png",
                       "MNIST-1D MLP 40-w-w-10: error vs width"),
            curve.plot(out / "validate_analyze_learning_curve.png",
                       "MNIST-1D CNN: error vs training examples"),
            report.plot_confusion(out / "validate_analyze_confusion.png",
                                  title=f"MNIST-1D CNN, test (error {report.error:.1%})"),
            worst.plot_worst(out / "validate_analyze_worst.png",
                             title="MNIST-1D CNN: 16 highest-loss test examples, "
                                   "target → predicted (p)"))
    err = baselines.errors
    sig = significance
    rows = [
        ("CNN test error (95 % Wilson interval)",
         f"{sig.errors[0]:.1%} ({sig.wilson[0][0]:.1%}–{sig.wilson[0][1]:.1%})",
         f"{1 - PUBLISHED['cnn']:.0%}"),
        (f"MLP 40-{sweep.best}-{sweep.best}-10 test error (95 % Wilson)",
         f"{sig.errors[1]:.1%} ({sig.wilson[1][0]:.1%}–{sig.wilson[1][1]:.1%})",
         f"{1 - PUBLISHED['mlp']:.0%} (official residual MLP)"),
        ("logistic regression test error", f"{err['logistic']:.1%}",
         f"{1 - PUBLISHED['logistic']:.0%}"),
    ]
    rows += [(f"{name} test error (scikit-learn)", f"{e:.1%}", "—")
             for name, e in err.items() if name not in ("logistic",) and
             not name.startswith(("cnn", "mlp"))]
    rows += [
        ("CNN vs MLP, McNemar p", f"{sig.mcnemar.pvalue:.2g}", "—"),
        ("best MLP width (validation)", f"{sweep.best} (valid error {min(sweep.valid_errors):.1%})",
         "—"),
        ("CNN validation error at 3,000 / extrapolated 6,000 examples",
         f"{curve.valid_errors[-1]:.1%} / {curve.extrapolated:.1%}", "—"),
        ("CNN test NLL / macro F1", f"{report.nll:.3f} / {report.macro_f1:.3f}", "—"),
    ]
    notes = "\n\n".join([
        "Published: the official MNIST-1D models (Greydanus 2020) — logistic regression, a "
        "residual MLP and the same 1-D CNN — one run each, trained 6,000 steps (150 epochs) on "
        "sequential minibatches; ours are one run each of 40 epochs on shuffled minibatches, "
        "and our MLP is the plain 40-w-w-10 MLP at the width the sweep chose, not the residual "
        "one. The capacity sweep and the learning curve use a validation split (the last 1,000 "
        "training examples), never the test set; the final models are retrained on all 4,000.",
        "## Capacity sweep (MLP 40-w-w-10, train 3,000 / validation 1,000)\n\n" + str(sweep),
        "## Learning curve (1-D CNN, same number of steps at every size)\n\n" + str(curve),
        "## Baselines beside the networks (test set)\n\n" + str(baselines),
        "## Is the CNN significantly better than the MLP?\n\n" + str(sig),
        "## Classification report (CNN, test set)\n\n" + str(report),
        "## Worst test examples (CNN)\n\n" + str(worst),
    ])
    write_results("validate_analyze", out, summary, rows, notes=notes, figures=figs)
