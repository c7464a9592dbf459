"""Analyse a trained classifier (lecture: "Validate and Analyze").

* ``capacity_sweep``: the same family at several capacities -> over- or under-fitting region;
* ``learning_curve``: error against the number of training examples -> would more data help?
* ``classification_report``: accuracy, NLL, per-class precision/recall/F1, confusion matrix;
* ``worst_examples``: the examples with the highest loss (input, prediction, target).

Data is given as arrays ``(x, y)`` (NumPy or Tensors) or as a Dataset of (input, target) pairs.
Every function returns a report: ``.verdict`` (one sentence of diagnosis), ``str(report)`` /
``report.to_markdown()`` (a table), ``report.as_dict()`` and a ``plot...(path)`` method.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..plotting import new_figure, save_figure
from .report import TableReport

__all__ = ["Report", "as_arrays", "predict_log_proba", "train_model", "capacity_sweep",
           "CapacitySweep", "learning_curve", "LearningCurve", "classification_report",
           "ClassificationReport", "worst_examples", "WorstExamples"]


# --- reports ------------------------------------------------------------------------------------

class Report(TableReport):
    """A table (``columns``, ``rows``) with a one-sentence ``verdict``."""

    show_title = False
    digits = 4

    def as_dict(self) -> dict:
        return {"columns": list(self.columns), "rows": [list(r) for r in self.rows],
                "verdict": self.verdict}


def _pct(e: float) -> str:
    return f"{100 * e:.2f} %"


def _save(fig, path) -> Path:
    return save_figure(fig, path, dpi=110, tight=True)


# --- data and models ----------------------------------------------------------------------------

def _np(a) -> np.ndarray:
    from .. import backend

    return np.asarray(backend.to_numpy(getattr(a, "_data", a)))


def as_arrays(data, y=None) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) NumPy arrays from arrays/Tensors ``data, y``, a pair ``(x, y)`` or a Dataset of
    (input, target) pairs (a TensorDataset or an untransformed MNIST is read without a Python
    loop)."""
    if y is not None:
        return _np(data), _np(y)
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _np(data[0]), _np(data[1])
    if hasattr(data, "tensors"):  # TensorDataset
        return _np(data.tensors[0]), _np(data.tensors[-1])
    if (hasattr(data, "to_tensor_dataset") and getattr(data, "transform", None) is None
            and getattr(data, "target_transform", None) is None):
        return as_arrays(data.to_tensor_dataset())
    if hasattr(data, "__len__") and hasattr(data, "__getitem__"):
        items = [data[i] for i in range(len(data))]
        return (np.stack([_np(a) for a, _ in items]), np.asarray([_np(b) for _, b in items]))
    raise TypeError(f"expected arrays (x, y), a pair (x, y) or a Dataset of (input, target) "
                    f"pairs, got {type(data).__name__}")


def _log_softmax(s: np.ndarray) -> np.ndarray:
    s = s.astype(np.float64)
    s = s - s.max(axis=1, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=1, keepdims=True))


def predict_log_proba(model, x, batch_size: int = 1000) -> np.ndarray:
    """(N, C) log-probabilities: a flowgrad module's logits (eval mode, no graph, by batches),
    a scikit-learn classifier's ``predict_proba``, or any callable returning logits."""
    import flowgrad as fg

    x = _np(x)
    if hasattr(model, "predict_proba") and not isinstance(model, fg.nn.Module):
        return np.log(np.clip(model.predict_proba(x.reshape(len(x), -1)), 1e-300, None))
    if isinstance(model, fg.nn.Module):
        was_training = model.training
        model.eval()
        with fg.no_grad():
            out = [_np(model(fg.from_numpy(np.ascontiguousarray(x[s:s + batch_size]))))
                   for s in range(0, len(x), batch_size)]
        model.train(was_training)
        return _log_softmax(np.concatenate(out))
    return _log_softmax(_np(model(x)))


def _error(model, x, y) -> float:
    return float((predict_log_proba(model, x).argmax(1) != y).mean())


FIT_DEFAULTS = {"epochs": 20, "lr": 1e-2, "batch_size": 100, "optimizer": "adam",
                "weight_decay": 0.0, "seed": 0}


def train_model(model, x, y, valid=None, **fit_kwargs):
    """Train ``model`` on arrays (x, y) with flowgrad.train.fit (cross-entropy, shuffled
    minibatches). ``fit_kwargs``: epochs, lr, batch_size, optimizer ("adam", "sgd" or a function
    params -> optimizer), weight_decay, seed (shuffling), and any other keyword of ``fit``
    (with ``early_stopping``, ``valid=(x, y)`` is used). Returns the History."""
    import flowgrad as fg

    from ..train import fit
    from ..utils.data import DataLoader, TensorDataset

    kw = {**FIT_DEFAULTS, **fit_kwargs}
    epochs, lr, bs = kw.pop("epochs"), kw.pop("lr"), kw.pop("batch_size")
    opt, wd, seed = kw.pop("optimizer"), kw.pop("weight_decay"), kw.pop("seed")
    params = model.parameters()
    if callable(opt):
        optimizer = opt(params)
    elif opt == "adam":
        optimizer = fg.optim.Adam(params, lr=lr, weight_decay=wd)
    elif opt == "sgd":
        optimizer = fg.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    else:
        raise ValueError(f"train_model: optimizer must be 'adam', 'sgd' or a function "
                         f"params -> optimizer, got {opt!r}")
    fg.manual_seed(seed)
    loader = DataLoader(TensorDataset(fg.from_numpy(np.ascontiguousarray(x)),
                                      fg.from_numpy(np.ascontiguousarray(y))),
                        batch_size=min(bs, len(x)), shuffle=True)
    valid_loader = None
    if valid is not None and kw.get("early_stopping") is not None:
        vx, vy = valid
        valid_loader = DataLoader(TensorDataset(fg.from_numpy(vx), fg.from_numpy(vy)),
                                  batch_size=1000)
    kw.setdefault("progress", False)
    return fit(model, loader, fg.nn.functional.cross_entropy, optimizer, epochs,
               valid_loader=valid_loader, **kw)


def _se(err: float, n: int) -> float:
    """Standard error of an error rate measured on n examples (at least that of 1 example)."""
    return math.sqrt(max(err * (1 - err), 1.0 / n) / n)


# --- capacity sweep -----------------------------------------------------------------------------

class CapacitySweep(Report):
    """Train and validation error of one model family at several capacities."""

    title = "capacity sweep"

    def __init__(self, capacities, train_errors, valid_errors, n_params, seconds, n_valid,
                 name="width"):
        super().__init__()
        self.name = name
        self.capacities = list(capacities)
        self.train_errors = [float(e) for e in train_errors]
        self.valid_errors = [float(e) for e in valid_errors]
        self.n_params, self.seconds, self.n_valid = list(n_params), list(seconds), n_valid
        self.best_index = int(np.argmin(self.valid_errors))
        self.best = self.capacities[self.best_index]
        best_v = self.valid_errors[self.best_index]
        tol = 2 * _se(best_v, n_valid)
        self.tolerance = tol
        # side of the validation-error curve: does more capacity help (below) or hurt (above)?
        self.sides = []
        for i, va in enumerate(self.valid_errors):
            if i == self.best_index:
                side = "best"
            elif va <= best_v + tol:
                side = "near best"
            else:
                side = "below best" if i < self.best_index else "above best"
            self.sides.append(side)
        # fit: can it fit the training set (underfitting), does it generalise (overfitting)?
        self.regions = []
        for tr, va in zip(self.train_errors, self.valid_errors):
            if tr >= best_v - tol:  # fits the training set worse than the best generalises
                region = "underfitting"
            elif va - tr > max(0.05, 2 * _se(va, n_valid)):
                region = "overfitting"
            else:
                region = "good fit"
            self.regions.append(region)
        self.columns = (name, "parameters", "train error", "valid error", "gap", "fit",
                        "capacity curve", "seconds")
        self.rows = [(c, p, _pct(tr), _pct(va), _pct(va - tr), r, side, f"{s:.1f}")
                     for c, p, tr, va, r, side, s in zip(
                         self.capacities, self.n_params, self.train_errors, self.valid_errors,
                         self.regions, self.sides, self.seconds)]
        self.verdict = self._verdict()

    @property
    def underfitting(self) -> list:
        """Capacities whose train error is no better than the best validation error."""
        return [c for c, r in zip(self.capacities, self.regions) if r == "underfitting"]

    @property
    def overfitting(self) -> list:
        """Capacities whose validation error is well above their train error."""
        return [c for c, r in zip(self.capacities, self.regions) if r == "overfitting"]

    def region(self, capacity) -> str:
        """'underfitting', 'overfitting' or 'good fit' for one of the capacities."""
        return self.regions[self.capacities.index(capacity)]

    def _verdict(self) -> str:
        b, n, nm = self.best_index, len(self.capacities), self.name
        va, tr = self.valid_errors[b], self.train_errors[b]
        text = f"best {nm} {self.best} (valid error {_pct(va)}, train {_pct(tr)})"
        above = [c for c, s in zip(self.capacities, self.sides) if s == "above best"]
        if b == n - 1 and n > 1:
            text += (f"; the validation error still falls at the largest {nm}: try larger "
                     f"models")
        elif above:
            text += f"; the validation error rises again at {nm} {_list(above)} (too much capacity)"
        if self.underfitting:
            text += (f"; underfitting (train error no better than the best validation error) "
                     f"at {nm} {_list(self.underfitting)}")
        if self.overfitting:
            text += (f"; overfitting (validation error well above train error) at {nm} "
                     f"{_list(self.overfitting)}")
        if self.regions[b] == "overfitting":
            text += (f"; the best model itself overfits (gap {_pct(va - tr)}): regularisation "
                     f"or more data should help")
        elif self.regions[b] == "underfitting":
            text += "; even the best model underfits: more capacity or longer training"
        return text + "."

    def as_dict(self) -> dict:
        return {**super().as_dict(), "name": self.name, "capacities": self.capacities,
                "train_errors": self.train_errors, "valid_errors": self.valid_errors,
                "n_params": self.n_params, "regions": self.regions, "sides": self.sides,
                "best": self.best}

    def plot(self, path, title: str | None = None) -> Path:
        fig, ax = new_figure(figsize=(6, 4))
        c = self.capacities
        numeric = all(isinstance(v, (int, float)) for v in c)
        xs = c if numeric else list(range(len(c)))
        ax.plot(xs, self.train_errors, "o-", label="train")
        ax.plot(xs, self.valid_errors, "s-", label="validation")
        ax.axvline(xs[self.best_index], color="gray", ls=":", label=f"best ({self.best})")
        if numeric and min(c) > 0 and max(c) / min(c) >= 8:
            ax.set_xscale("log", base=2)
        if not numeric:
            ax.set_xticks(xs, [str(v) for v in c])
        ax.set(xlabel=self.name, ylabel="error", title=title or "capacity sweep")
        ax.legend()
        return _save(fig, path)


def _list(values) -> str:
    return ", ".join(str(v) for v in values)


def _count_params(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def capacity_sweep(make_model, train, valid, widths, fit_kwargs: dict | None = None,
                   name: str = "width", progress: bool = False) -> CapacitySweep:
    """Train ``make_model(w)`` for each capacity ``w`` in ``widths`` (a width, a depth, ...) on
    ``train`` and measure train and validation error (lecture: "Vary capacity and observe error
    curves to identify if the system is rather overfitting or rather underfitting").

    ``train``/``valid`` are (x, y) or Datasets; ``fit_kwargs`` go to ``train_model`` (epochs,
    lr, batch_size, optimizer, weight_decay, seed, ...). Each model starts from seed
    ``fit_kwargs['seed']``."""
    fit_kwargs = dict(fit_kwargs or {})
    xtr, ytr = as_arrays(train)
    xva, yva = as_arrays(valid)
    seed = fit_kwargs.get("seed", FIT_DEFAULTS["seed"])
    import flowgrad as fg

    tr_err, va_err, n_params, secs = [], [], [], []
    for w in widths:
        start = time.perf_counter()
        fg.manual_seed(seed)
        model = make_model(w)
        train_model(model, xtr, ytr, valid=(xva, yva), **fit_kwargs)
        tr_err.append(_error(model, xtr, ytr))
        va_err.append(_error(model, xva, yva))
        n_params.append(_count_params(model))
        secs.append(time.perf_counter() - start)
        if progress:
            print(f"capacity sweep: {name} {w}: train error {tr_err[-1]:.4f}, valid error "
                  f"{va_err[-1]:.4f} ({secs[-1]:.1f} s)", flush=True)
    return CapacitySweep(widths, tr_err, va_err, n_params, secs, len(yva), name)


# --- learning curve -----------------------------------------------------------------------------

class LearningCurve(Report):
    """Train and validation error against the number of training examples."""

    title = "learning curve"

    def __init__(self, sizes, train_errors, valid_errors, seconds, n_valid):
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        self.train_errors = [float(e) for e in train_errors]
        self.valid_errors = [float(e) for e in valid_errors]
        self.seconds, self.n_valid = list(seconds), n_valid
        self.columns = ("training examples", "train error", "valid error", "gap", "seconds")
        self.rows = [(n, _pct(tr), _pct(va), _pct(va - tr), f"{s:.1f}") for n, tr, va, s in
                     zip(self.sizes, self.train_errors, self.valid_errors, self.seconds)]
        self._diagnose()

    def _diagnose(self) -> None:
        n, tr, va = self.sizes, self.train_errors, self.valid_errors
        last_va, last_tr = va[-1], tr[-1]
        se = _se(last_va, self.n_valid)
        self.gap = last_va - last_tr
        # power law err ~ a n^-b fitted (log-log least squares) to the last 3 sizes, to
        # extrapolate to twice the data; the drop per doubling is 2^-b - 1 of the last error
        floor = 0.5 / self.n_valid
        logn = np.log2(n[-3:])
        if len(logn) >= 2 and np.ptp(logn) > 0:
            b = -float(np.polyfit(logn, np.log2(np.maximum(va[-3:], floor)), 1)[0])
        else:
            b = 0.0
        self.power = b
        self.extrapolated = max(last_va, floor) * 2.0 ** -b if last_va > 0 else 0.0
        self.slope_per_doubling = self.extrapolated - last_va
        still_falling = -self.slope_per_doubling > max(0.005, se)
        big_gap = self.gap > max(0.05, 2 * se)
        self.more_data_helps = bool(still_falling)
        fall = (f"the validation error still falls by {_pct(-self.slope_per_doubling)} per "
                f"doubling of the training set (power law n^-{self.power:.2f}: about "
                f"{_pct(self.extrapolated)} expected at {2 * n[-1]} examples)")
        if still_falling and big_gap:
            self.verdict = (f"more data should help: {fall} and it is {_pct(self.gap)} above the "
                            f"train error (variance)")
        elif still_falling:
            self.verdict = (f"more data should help a little: {fall}, but train and validation "
                            f"errors have nearly met (gap {_pct(self.gap)}); beyond that, gains "
                            f"must come from capacity")
        elif big_gap:
            self.verdict = (f"more data is unlikely to help soon: the validation error has "
                            f"flattened at {_pct(last_va)} while the gap to the train error is "
                            f"{_pct(self.gap)}; regularise or change the model")
        else:
            self.verdict = (f"more data would not help: the validation error has flattened at "
                            f"{_pct(last_va)}, close to the train error {_pct(last_tr)}; if that "
                            f"is too high the model underfits (bias): increase the capacity")
        self.verdict += "."

    def as_dict(self) -> dict:
        return {**super().as_dict(), "sizes": self.sizes, "train_errors": self.train_errors,
                "valid_errors": self.valid_errors, "more_data_helps": self.more_data_helps,
                "slope_per_doubling": self.slope_per_doubling, "power_law_exponent": self.power,
                "extrapolated_at_double": self.extrapolated}

    def plot(self, path, title: str | None = None) -> Path:
        fig, ax = new_figure(figsize=(6, 4))
        ax.plot(self.sizes, self.train_errors, "o-", label="train")
        ax.plot(self.sizes, self.valid_errors, "s-", label="validation")
        ax.plot([self.sizes[-1], 2 * self.sizes[-1]], [self.valid_errors[-1], self.extrapolated],
                "s:", color="C1", alpha=0.6, label="validation, extrapolated")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="training examples", ylabel="error", title=title or "learning curve")
        ax.legend()
        return _save(fig, path)


def learning_curve(make_model, train, valid, sizes, fit_kwargs: dict | None = None,
                   seed: int = 0, scale_epochs: bool = True,
                   progress: bool = False) -> LearningCurve:
    """Train a fresh ``make_model()`` on the first n of a fixed random permutation of ``train``
    for each n in ``sizes``; measure train and validation error (lecture: "Measure effect of
    changing the number of training examples").

    With ``scale_epochs`` each run takes about as many optimisation steps as the largest one
    (epochs x largest size / n, capped at 20x), so small sets are not merely under-trained."""
    import flowgrad as fg

    fit_kwargs = dict(fit_kwargs or {})
    xtr, ytr = as_arrays(train)
    xva, yva = as_arrays(valid)
    sizes = sorted(int(min(s, len(xtr))) for s in sizes)
    order = np.random.default_rng(seed).permutation(len(xtr))
    epochs = fit_kwargs.pop("epochs", FIT_DEFAULTS["epochs"])
    mseed = fit_kwargs.get("seed", FIT_DEFAULTS["seed"])
    tr_err, va_err, secs = [], [], []
    for n in sizes:
        start = time.perf_counter()
        idx = order[:n]
        ep = epochs
        if scale_epochs:
            ep = int(min(epochs * 20, max(epochs, round(epochs * sizes[-1] / n))))
        fg.manual_seed(mseed)
        model = make_model()
        train_model(model, xtr[idx], ytr[idx], valid=(xva, yva), epochs=ep, **fit_kwargs)
        tr_err.append(_error(model, xtr[idx], ytr[idx]))
        va_err.append(_error(model, xva, yva))
        secs.append(time.perf_counter() - start)
        if progress:
            print(f"learning curve: {n} examples: train error {tr_err[-1]:.4f}, valid error "
                  f"{va_err[-1]:.4f} ({secs[-1]:.1f} s)", flush=True)
    return LearningCurve(sizes, tr_err, va_err, secs, len(yva))


# --- classification report ----------------------------------------------------------------------

class ClassificationReport(Report):
    """Accuracy, NLL, per-class precision/recall/F1/support and the confusion matrix."""

    title = "classification report"
    columns = ("class", "precision", "recall", "F1", "support")

    def __init__(self, y, log_proba, class_names=None):
        super().__init__()
        y = np.asarray(y).astype(np.int64).reshape(-1)
        c = max(log_proba.shape[1], int(y.max(initial=-1)) + 1)
        self.pred = log_proba.argmax(1)
        self.y, self.log_proba = y, log_proba
        self.class_names = [str(n) for n in (class_names or range(c))]
        self.confusion = np.bincount(y * c + self.pred, minlength=c * c).reshape(c, c)
        self.accuracy = float((self.pred == y).mean())
        self.error = 1.0 - self.accuracy
        self.nll = float(-log_proba[np.arange(len(y)), y].mean())
        tp = np.diag(self.confusion).astype(np.float64)
        predicted, actual = self.confusion.sum(0), self.confusion.sum(1)
        self.precision = np.divide(tp, predicted, out=np.zeros(c), where=predicted > 0)
        self.recall = np.divide(tp, actual, out=np.zeros(c), where=actual > 0)
        s = self.precision + self.recall
        self.f1 = np.divide(2 * self.precision * self.recall, s, out=np.zeros(c), where=s > 0)
        self.support = actual
        self.macro_f1 = float(self.f1.mean())
        self.rows = [(self.class_names[i], f"{self.precision[i]:.3f}", f"{self.recall[i]:.3f}",
                      f"{self.f1[i]:.3f}", int(actual[i])) for i in range(c)]
        self.rows.append(("macro avg", f"{self.precision.mean():.3f}",
                          f"{self.recall.mean():.3f}", f"{self.macro_f1:.3f}", int(len(y))))
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        t, p = np.unravel_index(off.argmax(), off.shape)
        self.most_confused = (self.class_names[t], self.class_names[p], int(off[t, p]))
        worst = int(np.argmin(self.f1))
        self.verdict = (f"accuracy {_pct(self.accuracy)} (error {_pct(self.error)}), NLL "
                        f"{self.nll:.4f} nats; weakest class {self.class_names[worst]} "
                        f"(F1 {self.f1[worst]:.3f}, recall {self.recall[worst]:.3f})")
        if off[t, p]:
            self.verdict += (f"; most frequent confusion: true {self.class_names[t]} predicted "
                             f"as {self.class_names[p]} ({off[t, p]} times)")
        self.verdict += "."

    def to_markdown(self) -> str:
        head = f"accuracy {_pct(self.accuracy)}, NLL {self.nll:.4f}, n = {len(self.y)}\n\n"
        return head + super().to_markdown()

    def as_dict(self) -> dict:
        return {**super().as_dict(), "accuracy": self.accuracy, "error": self.error,
                "nll": self.nll, "macro_f1": self.macro_f1,
                "precision": self.precision.tolist(), "recall": self.recall.tolist(),
                "f1": self.f1.tolist(), "support": self.support.tolist(),
                "confusion": self.confusion.tolist(), "class_names": self.class_names}

    def plot_confusion(self, path, normalize: bool = True, title: str | None = None) -> Path:
        """Confusion matrix (rows: true class, columns: predicted), row-normalised by default,
        with the counts written in the cells."""
        c = len(self.class_names)
        cm = self.confusion.astype(np.float64)
        shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalize else cm
        size = max(4.0, 0.45 * c + 2)
        fig, ax = new_figure(figsize=(size + 1, size))
        im = ax.imshow(shown, cmap="Blues", vmin=0)
        fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of the true class"
                     if normalize else "count")
        if c <= 30:
            for i in range(c):
                for j in range(c):
                    if cm[i, j]:
                        ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7,
                                color="white" if shown[i, j] > 0.5 * shown.max() else "black")
        ax.set_xticks(range(c), self.class_names, rotation=90 if c > 10 else 0)
        ax.set_yticks(range(c), self.class_names)
        ax.set(xlabel="predicted", ylabel="true",
               title=title or f"confusion matrix (accuracy {_pct(self.accuracy)})")
        return _save(fig, path)


def classification_report(model, x, y=None, class_names=None,
                          batch_size: int = 1000) -> ClassificationReport:
    """Accuracy, NLL (nats), per-class precision/recall/F1 and confusion matrix of ``model`` on
    (x, y) or a Dataset ``x`` (lecture: "Track several relevant metrics")."""
    x, y = as_arrays(x, y)
    return ClassificationReport(y, predict_log_proba(model, x, batch_size), class_names)


# --- worst examples -----------------------------------------------------------------------------

class WorstExamples(Report):
    """The k examples with the highest loss: index, target, prediction and probabilities."""

    title = "worst examples"
    columns = ("rank", "index", "target", "predicted", "p(predicted)", "p(target)", "loss")

    def __init__(self, indices, inputs, targets, log_proba, n_total, class_names=None):
        super().__init__()
        self.indices = np.asarray(indices)
        self.inputs = inputs
        self.targets = np.asarray(targets)
        rows = np.arange(len(self.indices))
        self.predicted = log_proba.argmax(1)
        self.prob_predicted = np.exp(log_proba[rows, self.predicted])
        self.prob_target = np.exp(log_proba[rows, self.targets])
        self.losses = -log_proba[rows, self.targets]
        self.class_names = ([str(n) for n in class_names] if class_names is not None
                            else [str(i) for i in range(log_proba.shape[1])])
        nm = self.class_names
        self.rows = [(r + 1, int(i), nm[t], nm[p], f"{pp:.3f}", f"{pt:.2e}", f"{loss:.3f}")
                     for r, (i, t, p, pp, pt, loss) in enumerate(zip(
                         self.indices, self.targets, self.predicted, self.prob_predicted,
                         self.prob_target, self.losses))]
        wrong = int((self.predicted != self.targets).sum())
        confident = int(((self.predicted != self.targets) & (self.prob_predicted > 0.9)).sum())
        self.verdict = (f"the {len(rows)} highest-loss of {n_total} examples (loss "
                        f"{self.losses.min():.2f} to {self.losses.max():.2f}); {wrong} are "
                        f"misclassified")
        if confident:
            self.verdict += (f", {confident} with over 90 % confidence: look at them for label "
                             f"noise, ambiguous inputs or a missing feature")
        if wrong:
            pairs: dict = {}
            for t, p in zip(self.targets, self.predicted):
                if t != p:
                    pairs[(t, p)] = pairs.get((t, p), 0) + 1
            (t, p), cnt = max(pairs.items(), key=lambda kv: kv[1])
            if cnt > 1:
                self.verdict += f"; most common among them: {nm[t]} taken for {nm[p]} ({cnt})"
        self.verdict += "."

    def as_dict(self) -> dict:
        return {**super().as_dict(), "indices": self.indices.tolist(),
                "targets": self.targets.tolist(), "predicted": self.predicted.tolist(),
                "prob_predicted": self.prob_predicted.tolist(),
                "prob_target": self.prob_target.tolist(), "losses": self.losses.tolist()}

    def plot_worst(self, path, image_shape=None, cols: int = 8, title: str | None = None) -> Path:
        """A grid of the worst examples: images (``image_shape`` such as (28, 28), or guessed from
        the input's shape) or, for 1-D inputs, line plots; each titled target -> prediction."""
        x = np.asarray(self.inputs)
        k = len(x)
        flat = x.reshape(k, -1)
        if image_shape is None:
            if x.ndim == 3 or (x.ndim == 4 and x.shape[1] == 1):
                image_shape = x.shape[-2:]
            elif x.ndim == 4 and x.shape[1] == 3:
                image_shape = x.shape[1:]
            elif x.ndim == 2 and flat.shape[1] >= 64 and math.isqrt(flat.shape[1]) ** 2 == \
                    flat.shape[1]:
                side = math.isqrt(flat.shape[1])
                image_shape = (side, side)
        cols = max(1, min(cols, k))
        rows = max(1, math.ceil(k / cols))
        fig, axes = new_figure(rows, cols, figsize=(1.7 * cols, 1.9 * rows), squeeze=False)
        for a in axes.ravel():
            a.axis("off")
        nm = self.class_names
        for i in range(k):
            a = axes.ravel()[i]
            if image_shape is not None:
                img = flat[i].reshape(image_shape)
                if len(image_shape) == 3:  # (C, H, W) -> (H, W, C)
                    img = np.moveaxis(img, 0, -1)
                    img = (img - img.min()) / max(float(img.max() - img.min()), 1e-12)
                a.imshow(img, cmap="gray" if len(image_shape) == 2 else None)
            else:
                a.axis("on")
                a.plot(flat[i], lw=1)
                a.set_xticks([])
                a.set_yticks([])
            colour = "red" if self.predicted[i] != self.targets[i] else "black"
            a.set_title(f"{nm[self.targets[i]]}→{nm[self.predicted[i]]} "
                        f"({self.prob_predicted[i]:.2f})", fontsize=8, color=colour)
        fig.suptitle(title or "highest-loss examples: target → predicted (p)", fontsize=10)
        return _save(fig, path)


def worst_examples(model, x, y=None, k: int = 16, class_names=None,
                   batch_size: int = 1000) -> WorstExamples:
    """The ``k`` examples of (x, y) (or a Dataset ``x``) with the highest cross-entropy loss,
    worst first, with input, predicted class and probability, and target (lecture: "Look at the
    training and validation examples which give the worse error")."""
    x, y = as_arrays(x, y)
    y = y.astype(np.int64).reshape(-1)
    logp = predict_log_proba(model, x, batch_size)
    loss = -logp[np.arange(len(y)), y]
    k = min(k, len(y))
    idx = np.argsort(-loss, kind="stable")[:k]
    return WorstExamples(idx, x[idx], y[idx], logp[idx], len(y), class_names)
