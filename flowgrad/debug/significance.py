"""Is one test error really lower than another? (lecture: "Validate and Analyze").

A test error measured on n examples is itself an estimate: with n = 1000 and 5 % error the
95 % interval is roughly 3.8 %..6.5 %. Before claiming "model A beats model B" check

* a confidence interval for each error rate (Wilson score interval, or the bootstrap), and
* McNemar's test on the *paired* predictions (both models see the same test examples; only the
  examples where exactly one of them is right carry information).

Everything here takes plain NumPy arrays (or anything ``np.asarray`` accepts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

__all__ = ["wilson_interval", "bootstrap_interval", "mcnemar", "McNemarResult",
           "required_test_size", "compare_models", "ComparisonReport"]


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def wilson_interval(errors, n, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (low, high) for an error rate of ``errors`` mistakes out of ``n``.

    Unlike the normal ("Wald") interval p +- z sqrt(p(1-p)/n) it stays inside [0, 1] and does
    not collapse to a single point when there are 0 errors.
    """
    errors, n = float(errors), float(n)
    if n <= 0:
        raise ValueError(f"wilson_interval: n must be positive, got {n}")
    if not 0 <= errors <= n:
        raise ValueError(f"wilson_interval: errors must be in [0, n], got {errors} of {n}")
    z = _z(confidence)
    p = errors / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo = 0.0 if errors == 0 else max(0.0, centre - half)
    hi = 1.0 if errors == n else min(1.0, centre + half)
    return lo, hi


def bootstrap_interval(correct, confidence: float = 0.95, n_boot: int = 2000,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval (low, high) for the error rate 1 - mean(correct).

    ``correct`` is a boolean array, one entry per test example (True = classified right).
    """
    correct = np.asarray(correct).astype(bool).reshape(-1)
    n = correct.size
    if n == 0:
        raise ValueError("bootstrap_interval: empty array")
    _z(confidence)  # validates
    rng = np.random.default_rng(seed)
    wrong = (~correct).astype(np.float64)
    errs = np.empty(n_boot)
    for s in range(0, n_boot, 256):  # in chunks: bounded memory for large n
        m = min(256, n_boot - s)
        errs[s:s + m] = wrong[rng.integers(0, n, size=(m, n))].mean(axis=1)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(errs, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


@dataclass
class McNemarResult:
    """McNemar's test on paired predictions. ``b``: A right and B wrong; ``c``: A wrong and B
    right (the discordant pairs); ``both_right``/``both_wrong`` are the concordant ones."""
    statistic: float
    pvalue: float
    b: int
    c: int
    both_right: int
    both_wrong: int
    exact: bool
    alpha: float = 0.05
    names: tuple = ("A", "B")

    @property
    def discordant(self) -> int:
        return self.b + self.c

    @property
    def significant(self) -> bool:
        return self.pvalue < self.alpha

    @property
    def verdict(self) -> str:
        a, b = self.names
        test = "exact binomial" if self.exact else "chi-square, continuity-corrected"
        if self.discordant == 0:
            return f"{a} and {b} make exactly the same mistakes: no evidence either way."
        if not self.significant:
            return (f"no significant difference between {a} and {b} (McNemar {test}, "
                    f"p = {self.pvalue:.3g} >= {self.alpha:.2g}; {self.b} vs {self.c} discordant)")
        better = a if self.b > self.c else b
        return (f"{better} is significantly better (McNemar {test}, p = {self.pvalue:.3g} < "
                f"{self.alpha:.2g}; {a} alone right on {self.b}, {b} alone right on {self.c})")

    def __str__(self) -> str:
        return self.verdict

    def as_dict(self) -> dict:
        return {"statistic": self.statistic, "pvalue": self.pvalue, "b": self.b, "c": self.c,
                "both_right": self.both_right, "both_wrong": self.both_wrong,
                "exact": self.exact, "significant": self.significant, "verdict": self.verdict}

    # tuple-like unpacking: statistic, pvalue = mcnemar(...)[:2]
    def __iter__(self):
        return iter((self.statistic, self.pvalue))

    def __getitem__(self, i):
        return (self.statistic, self.pvalue)[i]


def _labels(pred, y) -> np.ndarray:
    """Class labels from labels or from (N, C) scores."""
    pred, y = np.asarray(getattr(pred, "_data", pred)), np.asarray(y)
    if pred.ndim == y.ndim + 1:
        pred = pred.argmax(axis=1)
    if pred.shape != y.shape:
        raise ValueError(f"predictions of shape {pred.shape} do not match targets {y.shape}")
    return pred


def mcnemar(pred_a, pred_b, y, exact: bool | None = None, alpha: float = 0.05,
            names: tuple = ("A", "B")) -> McNemarResult:
    """McNemar's test of "A and B have the same error rate" on the same test examples.

    ``pred_a``/``pred_b`` are predicted labels (or (N, C) scores), ``y`` the targets. With
    ``exact=None`` the exact binomial test is used when there are fewer than 25 discordant
    pairs, otherwise the chi-square statistic (|b - c| - 1)^2 / (b + c) with 1 degree of freedom.
    """
    y = np.asarray(y).reshape(-1)
    ra = _labels(pred_a, y) == y
    rb = _labels(pred_b, y) == y
    b = int(np.sum(ra & ~rb))
    c = int(np.sum(~ra & rb))
    both_right, both_wrong = int(np.sum(ra & rb)), int(np.sum(~ra & ~rb))
    n = b + c
    if exact is None:
        exact = n < 25
    if n == 0:
        stat, p = 0.0, 1.0
    elif exact:
        stat = float(min(b, c))
        p = float(stats.binomtest(min(b, c), n, 0.5).pvalue)
    else:
        stat = float((abs(b - c) - 1) ** 2 / n) if abs(b - c) >= 1 else 0.0
        p = float(stats.chi2.sf(stat, 1))
    return McNemarResult(stat, min(1.0, p), b, c, both_right, both_wrong, bool(exact), alpha,
                         tuple(names))


def required_test_size(b: int, c: int, n: int, alpha: float = 0.05,
                       power: float = 0.8) -> float:
    """Test-set size needed for McNemar's test to detect the observed difference with the given
    power (Connor's 1987 approximation), assuming the observed discordance rates (b+c)/n and
    (c-b)/n hold. ``inf`` when the two models tie."""
    if n <= 0:
        return math.inf
    pd = (b + c) / n
    delta = abs(b - c) / n
    if delta == 0:
        return math.inf
    za = stats.norm.ppf(1 - alpha / 2)
    zb = stats.norm.ppf(power)
    need = (za * math.sqrt(pd) + zb * math.sqrt(max(pd - delta * delta, 0.0))) ** 2 / delta ** 2
    return float(math.ceil(need))


@dataclass
class ComparisonReport:
    """Both error rates with Wilson and bootstrap intervals, McNemar, and warnings."""
    names: tuple
    n: int
    errors: tuple
    wilson: tuple
    bootstrap: tuple
    mcnemar: McNemarResult
    required_n: float
    confidence: float
    warnings: list = field(default_factory=list)

    @property
    def verdict(self) -> str:
        text = self.mcnemar.verdict
        if self.warnings:
            text += f"; WARNING: the test set (n = {self.n}) is too small to separate them"
        return text

    @property
    def too_small(self) -> bool:
        return bool(self.warnings)

    def rows(self) -> list[tuple]:
        """(model, error, Wilson interval, bootstrap interval) as formatted strings."""
        out = []
        for i, name in enumerate(self.names):
            lo, hi = self.wilson[i]
            blo, bhi = self.bootstrap[i]
            out.append((name, f"{100 * self.errors[i]:.2f} %",
                        f"{100 * lo:.2f}-{100 * hi:.2f} %", f"{100 * blo:.2f}-{100 * bhi:.2f} %"))
        return out

    def to_markdown(self) -> str:
        rows, pct = self.rows(), round(100 * self.confidence)
        m = self.mcnemar
        lines = [f"| model | test error (n={self.n}) | Wilson {pct} % | bootstrap {pct} % |",
                 "|---|---|---|---|"]
        lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
        need = "never (tie)" if math.isinf(self.required_n) else f"{self.required_n:.0f}"
        lines += ["", f"McNemar ({'exact' if m.exact else 'chi-square'}): statistic "
                  f"{m.statistic:.3g}, p = {m.pvalue:.3g}; {self.names[0]} alone right on {m.b},"
                  f" {self.names[1]} alone right on {m.c}. Test size needed to detect this "
                  f"difference (80 % power): {need}.", "", f"Verdict: {self.verdict}"]
        for w in self.warnings:
            lines.append(f"\nWARNING: {w}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def as_dict(self) -> dict:
        return {"names": list(self.names), "n": self.n, "errors": list(self.errors),
                "wilson": [list(w) for w in self.wilson],
                "bootstrap": [list(b) for b in self.bootstrap],
                "mcnemar": self.mcnemar.as_dict(),
                "required_n": None if math.isinf(self.required_n) else self.required_n,
                "warnings": list(self.warnings), "verdict": self.verdict}


def compare_models(pred_a, pred_b, y, names: tuple = ("A", "B"), confidence: float = 0.95,
                   n_boot: int = 2000, seed: int = 0) -> ComparisonReport:
    """Compare two classifiers on the same test set: error rates with Wilson and bootstrap
    intervals, McNemar's test, and a WARNING when the test set is too small to tell them apart
    (the intervals overlap and McNemar is not significant, or the test size needed for 80 %
    power exceeds the one at hand)."""
    y = np.asarray(y).reshape(-1)
    n = y.size
    ra, rb = _labels(pred_a, y) == y, _labels(pred_b, y) == y
    errors = (float(1 - ra.mean()), float(1 - rb.mean()))
    wil = tuple(wilson_interval(round(e * n), n, confidence) for e in errors)
    boot = (bootstrap_interval(ra, confidence, n_boot, seed),
            bootstrap_interval(rb, confidence, n_boot, seed + 1))
    alpha = round(1.0 - confidence, 12)
    test = mcnemar(pred_a, pred_b, y, alpha=alpha, names=tuple(names))
    need = required_test_size(test.b, test.c, n, alpha=alpha)
    warnings = []
    overlap = wil[0][0] <= wil[1][1] and wil[1][0] <= wil[0][1]
    if not test.significant:
        if overlap:
            warnings.append(f"the {round(100 * confidence)} % intervals overlap and McNemar's "
                            f"p = {test.pvalue:.3g} > {alpha:.2g}: this test set (n = {n}) is too "
                            f"small to separate {names[0]} from {names[1]}.")
        if need > n:
            more = ("no finite test set would (identical error counts)" if math.isinf(need)
                    else f"about {need:.0f} test examples would be needed to detect a "
                         f"difference of this size with 80 % power")
            warnings.append(f"{more}; n = {n} is not enough.")
    return ComparisonReport(tuple(names), n, errors, wil, boot, test, need, confidence,
                            warnings)
