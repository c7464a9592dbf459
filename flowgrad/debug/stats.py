"""Weight, gradient, update and activation statistics over training (lecture: "Debugging":
track distribution statistics of weights and gradients during training; "Vanishing or Exploding
Gradients").

``TrainingMonitor`` records, every ``every`` optimisation steps and for each parameter, the
weights' mean, std and norm, the gradient's norm and the update/weight ratio
``||w_after - w_before|| / ||w_before||`` (the classic heuristic: about 1e-3 is healthy), and,
through forward hooks on the activation modules, the fraction of dead ReLU units (zero for every
example of the batch) and of saturated tanh/sigmoid units. ``report()`` turns the records into a
table and verdicts that name the layers: vanishing or exploding gradients, updates far from
1e-3, dead or saturated units, or "fine".

Example:
    >>> monitor = TrainingMonitor(model, every=10)
    >>> fit(model, loader, F.cross_entropy, optimizer, epochs=3, callbacks=[monitor])
    >>> print(monitor.report())          # table + warnings naming the layers
    >>> monitor.plot("grad_norms.png")   # the vanishing/exploding picture

    or by hand, in any loop:

    >>> loss.backward(); monitor.after_backward(); optimizer.step(); monitor.after_step()
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

import numpy as np

from .. import backend
from ..autograd.grad_mode import is_grad_enabled
from ..nn.layers.activation import LeakyReLU, ReLU, ReLU6, Sigmoid, Tanh
from ..plotting import new_figure, save_figure
from ..serialization import atomic_write

__all__ = ["TrainingMonitor", "StatsReport", "Finding", "layer_statistics", "THRESHOLDS"]

#: Where the verdicts draw the line; pass overrides to ``report(**thresholds)``.
THRESHOLDS = {
    "vanish_abs": 1e-7,    # a gradient norm below this vanishes, whatever the others do
    "vanish_rel": 1e-3,    # ... or one this many times below the largest (non-exploding) layer
    "explode_abs": 1e3,    # a gradient norm above this explodes (losses are means over a batch)
    "explode_rel": 10.0,   # ... or one this many times above its weights' norm (unless the
                           # gradients shrink toward the input: then they vanish)
    "update_low": 1e-5,    # update/weight ratio two orders of magnitude below 1e-3
    "update_high": 1e-1,   # ... or two orders above it
    "dead": 0.4,           # fraction of ReLU units dead on a whole batch
    "saturated": 0.4,      # fraction of tanh/sigmoid outputs within 0.03 of their bounds
}

_SATURATION = 0.97  # |tanh| > 0.97, sigmoid < 0.03 or > 0.97
_PARAM_STATS = ("weight_mean", "weight_std", "weight_norm", "grad_norm", "update_ratio")
_HIST_SAMPLE = 20000


def _activation_kind(module) -> str | None:
    """'dead' for rectifiers, 'saturated' for squashing non-linearities, None otherwise."""
    if isinstance(module, (ReLU, LeakyReLU, ReLU6)):
        return "dead"
    if isinstance(module, (Tanh, Sigmoid)):
        return "saturated"
    return None


def _norm(a) -> float:
    xp = backend.get_array_module(a)
    return float(xp.sqrt(xp.square(a, dtype=xp.float64).sum()))


def _activation_stats(kind: str, module, y) -> tuple[float, float, float]:
    """(fraction dead or saturated, mean, std) of one activation output ``y`` (B, ...)."""
    xp = backend.get_array_module(y)
    flat = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(1, -1)
    if kind == "dead":  # a unit is dead on this batch when it is <= 0 for every example
        frac = float((flat <= 0).all(axis=0).mean())
    elif isinstance(module, Tanh):
        frac = float((xp.abs(flat) > _SATURATION).mean())
    else:
        frac = float(((flat < 1 - _SATURATION) | (flat > _SATURATION)).mean())
    return frac, float(flat.mean(dtype=xp.float64)), float(flat.std(dtype=xp.float64))


def _fmt(v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:
        return f"{v:.2e}"
    return f"{v:.4g}"


def _median(values) -> float:
    a = np.asarray([v for v in values if v is not None], dtype=np.float64)
    a = a[~np.isnan(a)]
    return float(np.median(a)) if a.size else math.nan


# --- the report ----------------------------------------------------------------------------------

@dataclass
class Finding:
    """One problem the statistics show: ``kind`` is vanishing, exploding, update_small,
    update_large, no_grad, dead or saturated; ``name`` the parameter or module."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return self.message


_VERDICT_WORDS = {"exploding": "exploding gradients", "vanishing": "vanishing gradients",
                  "update_large": "updates too large", "update_small": "updates too small",
                  "dead": "dead ReLUs", "saturated": "saturated units",
                  "no_grad": "parameters without gradient"}


@dataclass
class StatsReport:
    """The table of per-parameter and per-activation statistics, with the findings.

    ``parameters`` rows: name, shape, weight_mean, weight_std, weight_norm (last record),
    grad_norm and update_ratio (medians over the records), status. ``activations`` rows: name,
    type, kind (dead/saturated), fraction (mean of the last records), mean, std, status.
    """

    parameters: list[dict]
    activations: list[dict]
    findings: list[Finding] = field(default_factory=list)
    steps: int = 0

    @property
    def fine(self) -> bool:
        return not self.findings

    @property
    def verdict(self) -> str:
        """'fine', or the problems found, worst first (e.g. 'vanishing gradients, dead ReLUs')."""
        if not self.steps:
            return "no records yet"
        if not self.findings:
            return "fine"
        kinds = []
        for f in self.findings:
            if f.kind not in kinds:
                kinds.append(f.kind)
        return ", ".join(_VERDICT_WORDS.get(k, k) for k in kinds)

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.findings]

    def named(self, kind: str) -> list[str]:
        """The names that a finding of ``kind`` is about."""
        return [f.name for f in self.findings if f.kind == kind]

    def table(self) -> str:
        """Markdown tables: parameters, then activations."""
        lines = ["| parameter | shape | weight mean | weight std | weight norm | grad norm "
                 "| update/weight | status |", "|---|---|---|---|---|---|---|---|"]
        for r in self.parameters:
            lines.append(f"| {r['name']} | {'×'.join(map(str, r['shape']))} | "
                         f"{_fmt(r['weight_mean'])} | {_fmt(r['weight_std'])} | "
                         f"{_fmt(r['weight_norm'])} | {_fmt(r['grad_norm'])} | "
                         f"{_fmt(r['update_ratio'])} | {r['status']} |")
        if self.activations:
            lines += ["", "| activation | type | measure | fraction | mean | std | status |",
                      "|---|---|---|---|---|---|---|"]
            for r in self.activations:
                lines.append(f"| {r['name']} | {r['type']} | {r['kind']} | "
                             f"{r['fraction']:.1%} | {_fmt(r['mean'])} | {_fmt(r['std'])} | "
                             f"{r['status']} |")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"verdict": self.verdict, "steps": self.steps,
                "warnings": self.warnings,
                "findings": [{"kind": f.kind, "name": f.name, "message": f.message}
                             for f in self.findings],
                "parameters": [{**r, "shape": list(r["shape"])} for r in self.parameters],
                "activations": self.activations}

    def __str__(self) -> str:
        out = [self.table(), ""]
        out += [f"- WARNING: {m}" for m in self.warnings]
        out.append(f"Verdict: {self.verdict}")
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"StatsReport({len(self.parameters)} parameters, {len(self.activations)} "
                f"activations, {self.steps} records; verdict: {self.verdict})")


def _diagnose(params: list[dict], acts: list[dict], th: dict) -> list[Finding]:
    """The findings of a table (rows are updated with their status)."""
    findings: list[Finding] = []
    status: dict[str, list[str]] = {r["name"]: [] for r in params + acts}

    def add(kind, name, message, word):
        findings.append(Finding(kind, name, message))
        status[name].append(word)

    with_grad = [r for r in params if r["requires_grad"]]
    for r in with_grad:
        if r["grad_seen"] == 0:
            add("no_grad", r["name"], f"{r['name']} never received a gradient: it is not used "
                "by the loss (or its path is cut by detach/no_grad)", "no gradient")
    # the comparisons run over weight matrices/kernels (biases live on another scale)
    layers = [r for r in with_grad if r["grad_seen"] and len(r["shape"]) >= 2] or \
        [r for r in with_grad if r["grad_seen"]]
    g = {r["name"]: r["grad_norm"] for r in layers}
    g_max = {r["name"]: r["grad_max"] for r in layers}
    w_norm = {r["name"]: r.get("weight_norm", math.nan) for r in layers}
    # The trend across depth (layers in model order, input side first): vanishing gradients
    # shrink toward the input, so the first layer's gradient is far below the last one's.
    # Comparing a layer with the median layer instead calls every healthy layer near the
    # output of a deep sigmoid net "exploding", since the median layer has itself vanished.
    ends = [r["name"] for r in layers if math.isfinite(g[r["name"]])]
    first, last = (g[ends[0]], g[ends[-1]]) if len(ends) >= 2 else (math.nan, math.nan)
    shrinking = last > 0 and first < th["vanish_rel"] * last
    squashing = any(r.get("type") in ("Sigmoid", "Tanh") for r in acts)
    cure = ("use ReLU instead of sigmoid/tanh, " if squashing else "") + \
        "a scaled initialisation (Kaiming for ReLU, Glorot for tanh), normalisation or " \
        "skip connections"
    exploding = set()
    for r in layers:
        n, v, top, w = r["name"], g[r["name"]], g_max[r["name"]], w_norm[r["name"]]
        if not math.isfinite(top) or not math.isfinite(v):
            add("exploding", n, f"{n}: the gradient became inf/NaN (exploding gradients; clip "
                "gradients, lower the learning rate or fix the initialisation)", "exploding")
        elif v > th["explode_abs"]:
            add("exploding", n, f"{n}: gradient norm {v:.3g} > {th['explode_abs']:g}: "
                "exploding gradients; the initialisation is too large or the learning rate too "
                "high (clip with max_grad_norm)", "exploding")
        elif not shrinking and w > 0 and v > th["explode_rel"] * w:
            add("exploding", n, f"{n}: gradient norm {v:.3g} is {v / w:.3g} times the norm of "
                f"its weights ({w:.3g}): exploding gradients (a step of lr 0.01 would change "
                f"the weights by {0.01 * v / w:.0%}); the initialisation is too large (scale it "
                "down: Kaiming/Glorot, or a spectral radius below 1 for recurrent weights) or "
                "clip with max_grad_norm", "exploding")
        else:
            continue
        exploding.add(n)
    calm = [g[n] for n in g if n not in exploding and math.isfinite(g[n])]
    top = max(calm) if calm else math.nan
    top_name = next((n for n in g if g[n] == top), "")
    for r in layers:
        n, v = r["name"], g[r["name"]]
        if n in exploding:
            continue
        trend = (f", shrinking toward the input ({ends[0]} gets {first / last:.1e} of "
                 f"{ends[-1]}'s)" if shrinking else "")
        if v < th["vanish_abs"]:
            add("vanishing", n, f"{n}: gradient norm {v:.3g} < {th['vanish_abs']:g}: the "
                f"gradient vanishes before reaching this layer{trend} (saturated or dead "
                "units, too small weights, or a cut graph)" + (f"; {cure}" if shrinking else ""),
                "vanishing")
        elif top > 0 and v < th["vanish_rel"] * top:
            add("vanishing", n, f"{n}: gradient norm {v:.3g} is {top / v:.1e} times below "
                f"{top_name} ({top:.3g}): vanishing gradients{trend}; {cure}", "vanishing")
    for r in layers:
        n, u = r["name"], r["update_ratio"]
        if n in exploding or not math.isfinite(u):
            continue
        if u > th["update_high"]:
            add("update_large", n, f"{n}: update/weight ratio {u:.2g} (healthy is about 1e-3): "
                "the steps are too large; lower the learning rate", "update too large")
        elif u < th["update_low"] and "vanishing" not in status[n]:
            add("update_small", n, f"{n}: update/weight ratio {u:.2g} (healthy is about "
                "1e-3): the layer barely learns; raise the learning rate", "update too small")
    for r in acts:
        n, f = r["name"], r["fraction"]
        if not math.isfinite(f):
            continue
        if r["kind"] == "dead" and f > th["dead"]:
            add("dead", n, f"{n} ({r['type']}): {f:.0%} of the units are dead (zero for every "
                "example of a batch); lower the learning rate, use Kaiming init, LeakyReLU, or "
                "check for a large negative bias", "dead units")
        elif r["kind"] == "saturated" and f > th["saturated"]:
            add("saturated", n, f"{n} ({r['type']}): {f:.0%} of the outputs are saturated, "
                "where the derivative is nearly 0; scale the initialisation (Glorot) or the "
                "inputs down, or use ReLU", "saturated")
    for r in params + acts:
        r["status"] = ", ".join(status[r["name"]]) or "fine"
    order = {"exploding": 0, "vanishing": 1, "no_grad": 2, "update_large": 3,
             "update_small": 4, "dead": 5, "saturated": 6}
    if shrinking:  # gradients shrink toward the input: vanishing is the diagnosis to act on
        order["vanishing"] = -1
    findings.sort(key=lambda f: order.get(f.kind, 9))
    return findings


# --- the monitor ---------------------------------------------------------------------------------

class TrainingMonitor:
    """Statistics of weights, gradients, updates and activations over training.

    Args:
        model: the Module to watch (every parameter, every ReLU/LeakyReLU/ReLU6/Tanh/Sigmoid
            module; activations called as functions, ``x.relu()``, are not seen).
        every: record one optimisation step in ``every`` (the first is always recorded).
        histograms: keep a sample of each parameter's weights and gradient at the first and
            the latest record, for ``histograms(path)`` (off: it draws the current ones).

    As a ``fit`` callback it records at ``on_step_end`` (the gradients are still there after
    ``optimizer.step()``; the weights before the step are a copy taken after the previous
    step). By hand, call ``after_backward()`` between ``loss.backward()`` and
    ``optimizer.step()`` and ``after_step()`` after it. ``remove()`` takes the hooks off.

    Records: ``steps`` (1-based step numbers), ``epochs``, ``losses`` and ``series(name,
    stat)``. For the update ratio one copy of the weights is held before each recorded step.
    """

    def __init__(self, model, every: int = 1, histograms: bool = False) -> None:
        if int(every) < 1:
            raise ValueError(f"TrainingMonitor: every must be a positive number of steps, got "
                             f"{every}")
        self.model, self.every, self.keep_histograms = model, int(every), bool(histograms)
        self.step = 0  # optimisation steps completed
        self.steps: list[int] = []
        self.epochs: list = []
        self.losses: list[float] = []
        self.params = {name: {k: [] for k in _PARAM_STATS}
                       for name, _ in model.named_parameters()}
        self.shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
        self.acts: dict[str, dict] = {}
        self._act_modules: dict[str, tuple] = {}
        self._handles = []
        for name, module in model.named_modules():
            kind = _activation_kind(module)
            if kind is None:
                continue
            name = name or type(module).__name__
            self._act_modules[name] = (kind, type(module).__name__)
            self.acts[name] = {"fraction": [], "mean": [], "std": []}
            self._handles.append(module.register_forward_hook(self._make_hook(name, kind)))
        self._pending_acts: dict[str, list] = {}
        self._pending_grads: dict | None = None
        self._before: dict | None = None
        self._force = False  # layer_statistics records whatever the mode
        self._samples: dict[str, dict] = {}
        self._sample_index: dict[str, np.ndarray] = {}

    # --- recording --------------------------------------------------------------------------
    def _due(self, step: int | None = None) -> bool:
        """Is the step after ``step`` completed ones to be recorded?"""
        return (self.step if step is None else step) % self.every == 0

    def _make_hook(self, name: str, kind: str):
        def hook(module, _args, output):
            if not self._force and not (module.training and is_grad_enabled() and self._due()):
                return None
            y = getattr(output, "_data", output)
            if getattr(y, "ndim", 0) == 0:
                return None
            self._pending_acts.setdefault(name, []).append(_activation_stats(kind, module, y))
            return None
        return hook

    def _named(self):
        return self.model.named_parameters()

    def _snapshot(self) -> dict:
        return {name: p._data.copy() for name, p in self._named()}

    def _grad_stats(self) -> dict:
        out = {}
        for name, p in self._named():
            grad = p.grad
            out[name] = None if grad is None else _norm(grad._data)
            if self.keep_histograms and grad is not None:
                self._sample(name, "grad", grad._data)
        return out

    def _sample(self, name: str, what: str, a) -> None:
        flat = backend.to_numpy(a).ravel()
        if name not in self._sample_index:
            n = flat.size
            idx = np.arange(n) if n <= _HIST_SAMPLE else \
                np.sort(np.random.default_rng(0).choice(n, _HIST_SAMPLE, replace=False))
            self._sample_index[name] = idx
        values = flat[self._sample_index[name]].astype(np.float32)
        slot = self._samples.setdefault(name, {})
        slot.setdefault(f"first_{what}", values)
        slot[f"last_{what}"] = values

    def after_backward(self) -> None:
        """Record the gradients of this step (call between ``backward()`` and ``step()``)."""
        if not self._due():
            return
        self._pending_grads = self._grad_stats()
        if self._before is None:
            self._before = self._snapshot()

    def after_step(self, loss: float | None = None, epoch=None) -> None:
        """Record the weights and the update of this step (call after ``optimizer.step()``)."""
        if self._due():
            grads = self._pending_grads if self._pending_grads is not None else \
                self._grad_stats()
            self._record(grads, self._before, loss, epoch)
        self._pending_grads, self._before, self._pending_acts = None, None, {}
        self.step += 1
        if self._due():  # the weights before the next recorded step, for its update ratio
            self._before = self._snapshot()

    def _record(self, grads: dict, before: dict | None, loss, epoch) -> None:
        self.steps.append(self.step + 1)
        self.epochs.append(epoch)
        self.losses.append(math.nan if loss is None else float(loss))
        for name, p in self._named():
            if name not in self.params:  # a parameter added after the monitor was made
                self.params[name] = {k: [None] * (len(self.steps) - 1) for k in _PARAM_STATS}
                self.shapes[name] = tuple(p.shape)
            w = p._data
            xp = backend.get_array_module(w)
            col = self.params[name]
            col["weight_mean"].append(float(w.mean(dtype=xp.float64)) if w.size else math.nan)
            col["weight_std"].append(float(w.std(dtype=xp.float64)) if w.size else math.nan)
            wn = _norm(w)
            col["weight_norm"].append(wn)
            col["grad_norm"].append(grads.get(name))
            ratio = math.nan
            if before is not None and name in before and before[name].shape == w.shape:
                old = _norm(before[name])
                if old > 0:
                    ratio = _norm(w - before[name]) / old
            col["update_ratio"].append(ratio)
            if self.keep_histograms:
                self._sample(name, "weight", w)
        for name, col in self.acts.items():
            got = self._pending_acts.get(name)
            if got:
                a = np.asarray(got, dtype=np.float64).mean(axis=0)
                col["fraction"].append(float(a[0]))
                col["mean"].append(float(a[1]))
                col["std"].append(float(a[2]))
            else:
                for k in col:
                    col[k].append(math.nan)

    # --- fit() callback ---------------------------------------------------------------------
    def on_train_begin(self, _state=None) -> None:
        self._pending_grads, self._pending_acts = None, {}
        self._before = self._snapshot() if self._due() else None

    def on_step_end(self, state=None, record=None) -> None:
        record = record or {}
        epoch = record.get("epoch", getattr(state, "epoch", None))
        self.after_step(loss=record.get("loss"), epoch=epoch)

    # --- reading ----------------------------------------------------------------------------
    def series(self, name: str, stat: str) -> np.ndarray:
        """The recorded values of one statistic (a parameter's weight_mean, weight_std,
        weight_norm, grad_norm, update_ratio; an activation's fraction, mean, std)."""
        if name in self.params and stat in self.params[name]:
            return np.asarray(self.params[name][stat], dtype=np.float64)
        if name in self.acts and stat in self.acts[name]:
            return np.asarray(self.acts[name][stat], dtype=np.float64)
        raise KeyError(f"TrainingMonitor.series: no statistic {stat!r} for {name!r}; "
                       f"parameters: {list(self.params)} ({', '.join(_PARAM_STATS)}); "
                       f"activations: {list(self.acts)} (fraction, mean, std)")

    def _rows(self, window: int | None = None) -> tuple[list[dict], list[dict]]:
        lo = 0 if window is None else max(0, len(self.steps) - window)
        trainable = {name: p.requires_grad for name, p in self._named()}
        params = []
        for name, col in self.params.items():
            seen = [v for v in col["grad_norm"][lo:] if v is not None]  # None: no gradient
            params.append({
                "name": name, "shape": self.shapes[name],
                "weight_mean": col["weight_mean"][-1] if col["weight_mean"] else math.nan,
                "weight_std": col["weight_std"][-1] if col["weight_std"] else math.nan,
                "weight_norm": col["weight_norm"][-1] if col["weight_norm"] else math.nan,
                "grad_norm": _median(seen) if seen else math.nan,
                "grad_max": (max(seen, key=lambda v: v if math.isfinite(v) else math.inf)
                             if seen else math.nan),
                "update_ratio": _median(col["update_ratio"][lo:]),
                "requires_grad": trainable.get(name, False), "grad_seen": len(seen)})
        acts = []
        for name, col in self.acts.items():
            kind, typ = self._act_modules[name]
            recent = [i for i in range(len(col["fraction"])) if not math.isnan(col["fraction"][i])]
            recent = recent[-max(1, min(10, len(recent) // 4 or 1)):]
            means = {k: float(np.mean([col[k][i] for i in recent])) if recent else math.nan
                     for k in ("fraction", "mean", "std")}
            acts.append({"name": name, "type": typ, "kind": kind, **means})
        return params, acts

    def report(self, window: int | None = None, **thresholds) -> StatsReport:
        """The table and the verdicts. Gradient norms and update ratios are medians over the
        records (the last ``window`` ones if given); weights are the latest; activation
        fractions the mean of the latest records. ``thresholds`` override ``THRESHOLDS``."""
        unknown = set(thresholds) - set(THRESHOLDS)
        if unknown:
            raise TypeError(f"report: unknown thresholds {sorted(unknown)}; known: "
                            f"{list(THRESHOLDS)}")
        params, acts = self._rows(window)
        findings = _diagnose(params, acts, {**THRESHOLDS, **thresholds}) if self.steps else []
        for r in params:
            del r["grad_max"], r["requires_grad"], r["grad_seen"]
        return StatsReport(params, acts, findings, len(self.steps))

    # --- output -----------------------------------------------------------------------------
    def to_csv(self, path) -> None:
        """One row per record and parameter or activation module: step, epoch, loss, name,
        type and its statistics."""
        rows = []
        for i, step in enumerate(self.steps):
            base = {"step": step, "epoch": self.epochs[i], "loss": self.losses[i]}
            for name, col in self.params.items():
                rows.append({**base, "name": name, "type": "parameter",
                             **{k: col[k][i] for k in _PARAM_STATS}})
            for name, col in self.acts.items():
                kind, typ = self._act_modules[name]
                rows.append({**base, "name": name, "type": typ,
                             f"{kind}_fraction": col["fraction"][i],
                             "activation_mean": col["mean"][i], "activation_std": col["std"][i]})
        fields = ["step", "epoch", "loss", "name", "type", *_PARAM_STATS, "dead_fraction",
                  "saturated_fraction", "activation_mean", "activation_std"]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(path, lambda f: f.write(text.getvalue().encode()))

    def layer_names(self) -> list[str]:
        """Weight matrices/kernels in model order (all parameters when there are none)."""
        names = [n for n in self.params if len(self.shapes[n]) >= 2]
        return names or list(self.params)

    def plot(self, path, title: str | None = None) -> None:
        """PNG: gradient norm per layer over the steps on a log scale (the vanishing/exploding
        picture, input layers dark, output layers light), the update/weight ratios against
        1e-3, and the dead/saturated fractions of the activations."""
        fig, axes = _figure(3 if self.acts else 2, (5.2, 4))
        layers = self.layer_names()
        colors = _colors(len(layers))
        for name, color in zip(layers, colors):
            axes[0].plot(self.steps, _positive(self.series(name, "grad_norm")), color=color,
                         lw=1.2, label=name)
            axes[1].plot(self.steps, _positive(self.series(name, "update_ratio")), color=color,
                         lw=1.2, label=name)
        axes[0].set(yscale="log", xlabel="step", ylabel="gradient norm",
                    title="gradient norm per layer")
        axes[1].axhline(1e-3, color="black", ls="--", lw=1, label="1e-3")
        axes[1].set(yscale="log", xlabel="step", ylabel="||Δw|| / ||w||",
                    title="update / weight ratio")
        if self.acts:
            for name, color in zip(self.acts, _colors(len(self.acts))):
                kind = self._act_modules[name][0]
                axes[2].plot(self.steps, self.series(name, "fraction"), color=color, lw=1.2,
                             label=f"{name} ({kind})")
            axes[2].set(ylim=(-0.02, 1.02), xlabel="step", ylabel="fraction of units",
                        title="dead (ReLU) / saturated (tanh, sigmoid)")
        for ax in axes:
            ax.grid(alpha=0.3)
            _legend(ax)
        fig.suptitle(title or f"Training statistics — {self.report().verdict}")
        _save(fig, path)

    def histograms(self, path, bins: int = 60, max_layers: int = 12) -> None:
        """PNG: histograms of each layer's weights (left) and gradients (right); with
        ``histograms=True`` the first and the latest records overlaid, else the current
        weights and gradients."""
        layers = self.layer_names()[:max_layers]
        fig = _figure_grid(len(layers), 2, (4.2, 2.2))
        params = dict(self._named())
        for i, name in enumerate(layers):
            for j, what in enumerate(("weight", "grad")):
                ax = fig.axes[2 * i + j]
                shown = []
                slot = self._samples.get(name, {})
                if f"first_{what}" in slot:
                    shown = [("first record", slot[f"first_{what}"], "tab:blue"),
                             (f"step {self.steps[-1]}", slot[f"last_{what}"], "tab:orange")]
                else:
                    p = params.get(name)
                    t = None if p is None else (p if what == "weight" else p.grad)
                    if t is not None:
                        shown = [("now", backend.to_numpy(t._data).ravel(), "tab:blue")]
                shown = [(label, v[np.isfinite(v)], c) for label, v, c in shown]
                shown = [s for s in shown if s[1].size]
                if shown:  # the same bins for both records, so the shapes compare
                    edges = np.histogram_bin_edges(np.concatenate([s[1] for s in shown]), bins)
                for label, values, color in shown:
                    ax.hist(values, bins=edges, alpha=0.5, color=color, histtype="stepfilled",
                            label=f"{label} (std {values.std():.2g})")
                ax.set_title(f"{name} {'weights' if what == 'weight' else 'gradients'}",
                             fontsize=8)
                ax.tick_params(labelsize=7)
                if shown:
                    ax.legend(fontsize=6)
                else:
                    ax.text(0.5, 0.5, "no gradient", ha="center", va="center",
                            transform=ax.transAxes)
        fig.suptitle("Weight and gradient distributions per layer")
        _save(fig, path)

    # --- hooks ------------------------------------------------------------------------------
    def remove(self) -> None:
        """Take the forward hooks off the model."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> TrainingMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def __repr__(self) -> str:
        return (f"TrainingMonitor({len(self.params)} parameters, {len(self.acts)} activation "
                f"modules, every={self.every}, {len(self.steps)} records)")


def layer_statistics(model, batch, loss_fn=None, **thresholds) -> StatsReport:
    """The statistics table of one forward/backward pass on ``batch`` = (inputs..., target):
    weights, gradient norms, dead/saturated units, with the verdicts (no update ratios: nothing
    is stepped). ``loss_fn(output, target)``; None when ``model(*inputs, target)`` returns
    ``(output, loss)``. The parameters' ``.grad`` are left as they were."""
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise TypeError("layer_statistics: batch must be (input, target) or (input1, ..., "
                        f"target), got {type(batch).__name__}")
    inputs, target = tuple(batch[:-1]), batch[-1]
    saved = [(p, p.grad) for p in model.parameters()]
    monitor = TrainingMonitor(model)
    monitor._force = True
    try:
        for p, _ in saved:
            p.grad = None
        if loss_fn is None:
            _, loss = model(*inputs, target)
        else:
            loss = loss_fn(model(*inputs), target)
        loss.backward()
        monitor._record(monitor._grad_stats(), None, loss.item(), None)
    finally:
        monitor.remove()
        for p, g in saved:
            p.grad = g
    return monitor.report(**thresholds)


# --- drawing -------------------------------------------------------------------------------------

def _figure(n: int, size: tuple):
    fig, axes = new_figure(1, n, figsize=(size[0] * n, size[1]), layout="constrained",
                           squeeze=False)
    return fig, list(axes[0])


def _figure_grid(rows: int, cols: int, size: tuple):
    rows = max(rows, 1)
    # constrained layout takes seconds on a tall grid: fixed margins instead
    fig, _ = new_figure(rows, cols, figsize=(size[0] * cols, size[1] * rows), squeeze=False)
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.3 / rows, top=1 - 0.4 / rows,
                        hspace=0.55, wspace=0.2)
    return fig


def _colors(n: int) -> list:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.9 * i / max(n - 1, 1)) for i in range(n)]


def _positive(values: np.ndarray) -> np.ndarray:
    """Zeros and negatives to NaN (gaps on a log axis rather than a warning)."""
    out = values.astype(np.float64).copy()
    out[~(out > 0)] = np.nan
    return out


def _legend(ax) -> None:
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, ncol=1 if len(handles) <= 8 else 2)


def _save(fig, path) -> None:
    save_figure(fig, path, dpi=100)
