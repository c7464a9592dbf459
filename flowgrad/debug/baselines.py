"""Compare a network with simpler reference models (lecture: "Validate and Analyze": "Compare
with simpler reference models (logistic regression, SVMs, random forests)").

A network that does not beat logistic regression on the same features is a bug or a wasted
effort; a network that beats an RBF SVM by 0.2 % on 1,000 test examples has not shown anything.
``compare_with_baselines`` fits scikit-learn's classifiers on the same split and puts their test
errors, with Wilson intervals, beside the network's, and runs McNemar's test of the network
against the best of them.
"""

from __future__ import annotations

import time

import numpy as np

from ..utils.threads import limit_threads
from .analysis import Report, _np, _pct
from .significance import McNemarResult, _labels, mcnemar, wilson_interval

__all__ = ["BASELINES", "make_baseline", "compare_with_baselines", "BaselineComparison"]

BASELINES = {
    "logistic": "logistic regression (multinomial, L2, C=1, standardised inputs)",
    "linear_svm": "linear SVM (LinearSVC, C=1, standardised inputs)",
    "rbf_svm": "RBF-kernel SVM (SVC, C=10, gamma='scale', standardised inputs)",
    "random_forest": "random forest (100 trees)",
    "knn": "k-nearest neighbours (k=5, standardised inputs)",
}


def make_baseline(name: str, seed: int = 0):
    """A fresh scikit-learn estimator for a name in ``BASELINES``."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC, LinearSVC

    if name == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    if name == "linear_svm":
        return make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=5000,
                                                         random_state=seed))
    if name == "rbf_svm":
        return make_pipeline(StandardScaler(), SVC(C=10.0, kernel="rbf", gamma="scale"))
    if name == "random_forest":
        return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=-1)
    if name == "knn":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(5))
    raise ValueError(f"unknown baseline {name!r}; expected one of {sorted(BASELINES)} or a "
                     f"(name, scikit-learn estimator) pair")


class BaselineComparison(Report):
    """One row per model: test error, Wilson interval, fit time; McNemar of the best network
    against the best baseline."""

    title = "baselines"

    def __init__(self, results: list[dict], n_test: int, mcnemar_result: McNemarResult | None,
                 network: str | None, best_baseline: str, confidence: float):
        super().__init__()
        self.results = results
        self.n_test = n_test
        self.mcnemar = mcnemar_result
        self.network, self.best_baseline = network, best_baseline
        self.errors = {r["model"]: r["error"] for r in results}
        pct = round(100 * confidence)
        self.columns = ("model", "kind", f"test error (n={n_test})", f"Wilson {pct} %",
                        "train examples", "fit seconds")
        self.rows = [(r["model"], r["kind"], _pct(r["error"]),
                      f"{100 * r['interval'][0]:.2f}-{100 * r['interval'][1]:.2f} %",
                      r["n_train"] if r["n_train"] is not None else "—",
                      f"{r['seconds']:.2f}" if r["seconds"] is not None else "—")
                     for r in results]
        best = self.errors[best_baseline]
        if network is None:
            self.verdict = f"best baseline: {best_baseline} (test error {_pct(best)})."
            return
        net = self.errors[network]
        m = self.mcnemar
        if m.significant and net < best:
            self.verdict = (f"{network} ({_pct(net)}) beats the best baseline {best_baseline} "
                            f"({_pct(best)}) significantly (McNemar p = {m.pvalue:.3g}).")
        elif m.significant:
            self.verdict = (f"{network} ({_pct(net)}) is significantly WORSE than the baseline "
                            f"{best_baseline} ({_pct(best)}, McNemar p = {m.pvalue:.3g}): check "
                            f"the network's training before anything else.")
        else:
            self.verdict = (f"{network} ({_pct(net)}) and the best baseline {best_baseline} "
                            f"({_pct(best)}) are not significantly different (McNemar p = "
                            f"{m.pvalue:.3g}, {m.b} vs {m.c} discordant): the network's extra "
                            f"cost is not justified on this test set.")

    def to_markdown(self) -> str:
        text = super().to_markdown()
        if self.mcnemar is not None:
            m = self.mcnemar
            text += (f"\n\nMcNemar, {self.network} vs {self.best_baseline}: "
                     f"{'exact' if m.exact else 'chi-square'} statistic {m.statistic:.3g}, "
                     f"p = {m.pvalue:.3g}; {self.network} alone right on {m.b}, "
                     f"{self.best_baseline} alone right on {m.c}.")
        return text

    def as_dict(self) -> dict:
        return {**super().as_dict(), "errors": self.errors, "network": self.network,
                "best_baseline": self.best_baseline,
                "results": [{k: v for k, v in r.items() if k != "pred"} for r in self.results],
                "mcnemar": self.mcnemar.as_dict() if self.mcnemar is not None else None}


def compare_with_baselines(x_train, y_train, x_test, y_test, network_predictions=None,
                           models=("logistic", "linear_svm", "rbf_svm", "random_forest"),
                           max_train: int | None = 10000, network_name: str = "network",
                           seed: int = 0, confidence: float = 0.95, blas_threads: int | None = 1,
                           progress: bool = False) -> BaselineComparison:
    """Fit scikit-learn baselines on (x_train, y_train) (inputs flattened; at most
    ``max_train`` examples, a random subset, so that the SVMs stay fast) and report their test
    errors with Wilson intervals beside the network's.

    ``network_predictions``: the network's test predictions (labels or (N, C) scores), or a
    dict name -> predictions for several networks. ``models``: names in ``BASELINES`` or
    (name, estimator) pairs. McNemar's test compares the best network with the best baseline.
    ``blas_threads`` limits the BLAS threads while fitting (None: leave them): on small
    problems, and on a busy machine, threads fight and one thread is often 10x faster.
    """
    xtr = _np(x_train).reshape(len(_np(x_train)), -1)
    ytr = _np(y_train).reshape(-1)
    xte = _np(x_test).reshape(len(_np(x_test)), -1)
    yte = _np(y_test).reshape(-1)
    if max_train is not None and len(xtr) > max_train:
        keep = np.sort(np.random.default_rng(seed).choice(len(xtr), max_train, replace=False))
        xtr, ytr = xtr[keep], ytr[keep]
    n = len(yte)
    results = []

    def add(name, kind, pred, n_train, seconds):
        errors = int((pred != yte).sum())
        results.append({"model": name, "kind": kind, "error": errors / n,
                        "interval": wilson_interval(errors, n, confidence),
                        "n_train": n_train, "seconds": seconds, "pred": pred})

    for spec in models:
        name, est = (spec, make_baseline(spec, seed)) if isinstance(spec, str) else spec
        start = time.perf_counter()
        with limit_threads(blas_threads, "blas"):
            est.fit(xtr, ytr)
            pred = np.asarray(est.predict(xte))
        seconds = time.perf_counter() - start
        add(name, "baseline", pred, len(xtr), seconds)
        if progress:
            print(f"baseline {name}: test error {results[-1]['error']:.4f} ({seconds:.1f} s)",
                  flush=True)
    if not results:
        raise ValueError("compare_with_baselines: no baseline models given")
    best_baseline = min((r for r in results), key=lambda r: r["error"])

    network, test = None, None
    if network_predictions is not None:
        nets = (network_predictions if isinstance(network_predictions, dict)
                else {network_name: network_predictions})
        for name, p in nets.items():
            add(name, "network", _labels(p, yte), None, None)
        best_net = min((r for r in results if r["kind"] == "network"), key=lambda r: r["error"])
        network = best_net["model"]
        test = mcnemar(best_net["pred"], best_baseline["pred"], yte,
                       alpha=round(1 - confidence, 12), names=(network, best_baseline["model"]))
    return BaselineComparison(results, n, test, network, best_baseline["model"], confidence)
