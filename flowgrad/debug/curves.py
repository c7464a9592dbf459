"""Reading learning curves: over- or underfitting (lecture: "Debugging": track error curves,
training error should roughly go down; "Validate and Analyze": vary capacity and observe the
error curves to tell overfitting from underfitting).

Example:
    >>> history = fit(model, train_loader, F.cross_entropy, opt, 30, valid_loader=valid_loader)
    >>> report = diagnose_curves(history)
    >>> report.verdict, report.best_epoch, report.error_gap
    ('overfitting', 7, 0.31)
    >>> plot_curves(history, "curves.png")
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

__all__ = ["diagnose_curves", "plot_curves", "CurveReport"]

# other spellings of the History columns (Keras', common hand-written dicts)
_ALIASES = {"loss": "train_loss", "val_loss": "valid_loss", "validation_loss": "valid_loss",
            "error": "train_error", "val_error": "valid_error", "accuracy": "train_accuracy",
            "acc": "train_accuracy", "val_accuracy": "valid_accuracy",
            "val_acc": "valid_accuracy"}

_ADVICE = {
    "overfitting": "more data or augmentation, regularisation (weight decay, dropout), a smaller "
                   "model, or early stopping at the best validation epoch",
    "underfitting": "a bigger model, longer training or a better learning rate; first check "
                    "that the model can reach 0 training error on a small set",
    "fine": "train and validation agree and the training error is low",
}


@dataclass
class CurveReport:
    """What the curves say.

    verdict: 'overfitting', 'underfitting' or 'fine'; reasons: the evidence, one sentence each;
    best_epoch: the epoch of lowest validation loss (of lowest validation error when there is no
    loss); loss_gap, error_gap: valid minus train at the last epoch; valid_rise: how far the
    validation loss (median of the last epochs) is above its minimum, relative to it.
    """

    verdict: str
    reasons: list[str]
    best_epoch: int | None
    best_valid_loss: float
    best_valid_error: float
    final: dict = field(default_factory=dict)
    loss_gap: float = math.nan
    error_gap: float = math.nan
    valid_rise: float = math.nan
    advice: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        gap = []
        if math.isfinite(self.error_gap):
            gap.append(f"error gap {self.error_gap:+.1%}")
        if math.isfinite(self.loss_gap):
            gap.append(f"loss gap {self.loss_gap:+.3g}")
        head = f"{self.verdict} (best validation at epoch {self.best_epoch}"
        head += f"; {', '.join(gap)})" if gap else ")"
        return "\n".join([head, *[f"- {r}" for r in self.reasons], f"Advice: {self.advice}"])


def _curves(history) -> dict[str, np.ndarray]:
    """train/valid loss and error as float arrays from a History or a dict of lists."""
    if hasattr(history, "epochs") and hasattr(history, "__getitem__") and \
            not isinstance(history, dict):
        raw = {k: history[k] for k in ("epoch", "train_loss", "valid_loss", "train_error",
                                       "valid_error", "train_accuracy", "valid_accuracy")
               if k in history}
    elif isinstance(history, dict):
        raw = {_ALIASES.get(k, k): v for k, v in history.items()}
    else:
        raise TypeError(f"diagnose_curves: expected a History or a dict of lists, got "
                        f"{type(history).__name__}")
    out = {}
    for k, v in raw.items():
        try:
            out[k] = np.asarray(v, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            continue
    for split in ("train", "valid"):
        if f"{split}_error" not in out and f"{split}_accuracy" in out:
            out[f"{split}_error"] = 1.0 - out[f"{split}_accuracy"]
    if not any(k in out for k in ("train_loss", "train_error")) or \
            not any(k in out for k in ("valid_loss", "valid_error")):
        raise ValueError("diagnose_curves: needs training and validation curves (train_loss/"
                         "valid_loss and/or train_error/valid_error or *_accuracy); got "
                         f"{sorted(raw)}. Pass valid_loader to fit() to get validation curves")
    n = max(len(v) for k, v in out.items() if k != "epoch")
    if "epoch" not in out or len(out["epoch"]) != n:
        out["epoch"] = np.arange(1, n + 1, dtype=np.float64)
    return out


def _last(a: np.ndarray | None) -> float:
    if a is None:
        return math.nan
    finite = a[np.isfinite(a)]
    return float(finite[-1]) if finite.size else math.nan


def _first(a: np.ndarray | None) -> float:
    if a is None:
        return math.nan
    finite = a[np.isfinite(a)]
    return float(finite[0]) if finite.size else math.nan


def diagnose_curves(history, *, target_error: float = 0.1, max_gap: float = 0.1,
                    min_rise: float = 0.1, loss_ratio: float = 2.0,
                    window: int = 3) -> CurveReport:
    """Over- or underfitting from train/valid loss and error curves.

    Args:
        history: a ``History`` (from ``fit``) or a dict of per-epoch lists with keys
            train_loss, valid_loss, train_error, valid_error (or *_accuracy; Keras' loss,
            val_loss, accuracy, val_accuracy also work).
        target_error: a final training error above this is high (the error you would accept
            on this task).
        max_gap: a validation error more than this above the training error is a large gap.
        min_rise: a final validation loss this fraction above its minimum, while the training
            loss kept falling, is overfitting.
        loss_ratio: without error curves, a validation loss this many times the training loss
            is a large gap.
        window: the rise is measured on the median of the last ``window`` validation losses,
            and only when the best epoch is at least ``window`` epochs before the end.

    Rules: overfitting when the validation loss has risen by ``min_rise`` since its best epoch
    (for ``window`` epochs) while the training loss kept falling, or when the error gap exceeds
    ``max_gap`` (the loss ratio without errors); underfitting when the training error stays
    above ``target_error`` with a small gap, or when the training loss does not go down; fine
    otherwise.
    """
    c = _curves(history)
    epochs = c["epoch"]
    tl, vl = c.get("train_loss"), c.get("valid_loss")
    ve = c.get("valid_error")
    reasons_over, reasons_under = [], []

    best_i = None
    for curve in (vl, ve):
        if curve is not None and np.isfinite(curve).any():
            best_i = int(np.nanargmin(np.where(np.isfinite(curve), curve, np.nan)))
            break
    best_epoch = int(epochs[best_i]) if best_i is not None else None
    best_vl = float(vl[best_i]) if vl is not None and best_i is not None else math.nan
    best_ve = float(ve[best_i]) if ve is not None and best_i is not None else math.nan
    final = {k: _last(c.get(k)) for k in ("train_loss", "valid_loss", "train_error",
                                          "valid_error")}
    loss_gap = final["valid_loss"] - final["train_loss"]
    error_gap = final["valid_error"] - final["train_error"]

    rise = math.nan
    if vl is not None and math.isfinite(best_vl) and abs(best_vl) > 0:
        tail = vl[np.isfinite(vl)][-window:]  # the last epochs, so one noisy epoch is not a rise
        rise = (float(np.median(tail)) - best_vl) / abs(best_vl)
        after = int(np.isfinite(vl[best_i + 1:]).sum())
        if tl is not None and best_i < len(tl) and rise > min_rise and after >= window:
            at_best = float(tl[best_i])
            if final["train_loss"] < at_best:
                reasons_over.append(
                    f"the validation loss rose {rise:.0%} above its minimum (epoch "
                    f"{best_epoch}) while the training loss fell "
                    f"{(at_best - final['train_loss']) / abs(at_best):.0%}")
    if math.isfinite(error_gap):
        if error_gap > max_gap:
            reasons_over.append(f"validation error {final['valid_error']:.1%} is "
                                f"{error_gap:.1%} above training error "
                                f"{final['train_error']:.1%} (gap > {max_gap:.0%})")
    elif math.isfinite(loss_gap) and final["train_loss"] > 0 and \
            final["valid_loss"] > loss_ratio * final["train_loss"]:
        reasons_over.append(f"validation loss {final['valid_loss']:.3g} is "
                            f"{final['valid_loss'] / final['train_loss']:.1f}× the training loss "
                            f"{final['train_loss']:.3g}")

    start = _first(tl)
    if tl is not None and math.isfinite(start) and len(tl) > 1 and \
            not final["train_loss"] < start:
        reasons_under.append(f"the training loss does not go down ({start:.3g} → "
                             f"{final['train_loss']:.3g}): check the learning rate, the "
                             "gradients and the data")
    if math.isfinite(final["train_error"]) and final["train_error"] > target_error and \
            not (math.isfinite(error_gap) and error_gap > max_gap):
        close = (f", close to the validation error {final['valid_error']:.1%}"
                 if math.isfinite(error_gap) else "")
        reasons_under.append(f"the training error stays high: {final['train_error']:.1%} > "
                             f"{target_error:.0%}{close}")

    if reasons_over:
        verdict, reasons = "overfitting", reasons_over + reasons_under
    elif reasons_under:
        verdict, reasons = "underfitting", reasons_under
    else:
        verdict = "fine"
        reasons = []
        if math.isfinite(error_gap):
            reasons.append(f"training error {final['train_error']:.1%}, validation error "
                           f"{final['valid_error']:.1%} (gap {error_gap:.1%} ≤ {max_gap:.0%})")
        if math.isfinite(rise):
            reasons.append(f"the final validation loss is within {max(rise, 0):.0%} of its "
                           f"minimum (epoch {best_epoch})")
    advice = _ADVICE[verdict]
    if verdict == "overfitting" and best_epoch is not None:
        advice += f" (here epoch {best_epoch})"
    return CurveReport(verdict, reasons, best_epoch, best_vl, best_ve, final, loss_gap,
                       error_gap, rise, advice)


def plot_curves(history, path, report: CurveReport | None = None, title: str | None = None,
                **diagnose_kwargs) -> CurveReport:
    """PNG of train vs valid loss (and error) per epoch, the best validation epoch marked and
    the verdict in the title; returns the report (computed with ``diagnose_kwargs`` unless
    given)."""
    from ..plotting import new_figure, save_figure

    report = report if report is not None else diagnose_curves(history, **diagnose_kwargs)
    c = _curves(history)
    panels = [n for n in ("loss", "error") if f"train_{n}" in c or f"valid_{n}" in c]
    fig, _ = new_figure(figsize=(5.5 * len(panels), 4), layout="constrained", axes=False)
    epochs = c["epoch"]
    for i, name in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        for split, color in (("train", "tab:blue"), ("valid", "tab:orange")):
            y = c.get(f"{split}_{name}")
            if y is not None:
                ax.plot(epochs[:len(y)], y, "o-", color=color, ms=3, label=split)
        if report.best_epoch is not None:
            ax.axvline(report.best_epoch, color="gray", ls=":", lw=1.2,
                       label=f"best valid (epoch {report.best_epoch})")
            y = c.get(f"valid_{name}")
            hit = np.flatnonzero(epochs[:len(y)] == report.best_epoch) if y is not None else []
            if len(hit):
                ax.plot(report.best_epoch, y[hit[0]], "*", color="tab:red", ms=12)
        ax.set(xlabel="epoch", ylabel="error rate" if name == "error" else "loss")
        if name == "loss" and np.nanmin(np.concatenate(
                [c.get(f"{s}_loss", np.array([np.nan])) for s in ("train", "valid")])) > 0:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    gap = (f", error gap {report.error_gap:+.1%}" if math.isfinite(report.error_gap)
           else f", loss gap {report.loss_gap:+.3g}" if math.isfinite(report.loss_gap) else "")
    fig.suptitle(f"{title + ': ' if title else ''}{report.verdict} "
                 f"(best valid epoch {report.best_epoch}{gap})")
    save_figure(fig, path, dpi=100)
    return report
