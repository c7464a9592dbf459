"""Gradient check of a whole model (lectures: "Debugging" — "Use tools to verify gradients
(finite differences)"; "Why backprop is powerful").

``check_model_grads(model, inputs, targets, loss_fn)`` compares backprop's gradient of the loss
wrt EVERY parameter with central finite differences,

    dL/dθ_i ≈ (L(θ_i + ε) − L(θ_i − ε)) / 2ε,

on a random sample of ``n_entries`` entries of each parameter (the full check costs two forward
passes per entry, O(n²) for n parameters: the slide's reason for backprop, and the reason to
sample). It runs on a float64 deep copy of the model (``copy.deepcopy(model).double()``), so the
model itself is untouched and the finite differences are accurate to ~1e-8. Random layers
(dropout) draw the same numbers in every pass: flowgrad's streams are reseeded before each one
and restored afterwards.

The report has one row per parameter (worst relative error |a − n| / max(|a|, |n|, floor)) and
a verdict: "fine", or the names of the parameters whose gradients are wrong — the bug is in the
backward of an op on the path from those parameters to the loss (typically a custom
``fg.autograd.Function``), after the last parameter that still checks out.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import backend
from ..autograd.gradcheck import central_difference
from .report import TableReport as _TableReport

__all__ = ["check_model_grads", "ModelGradcheckReport"]


def _to_tensor64(a):
    """A Tensor from a Tensor/array/number; floating point ones become float64 (no grad)."""
    from ..tensor import Tensor

    if isinstance(a, Tensor):
        data = a._data
    elif isinstance(a, np.ndarray) or hasattr(a, "__cuda_array_interface__"):
        data = a
    else:
        return a
    if data.dtype.kind == "f":
        data = data.astype(np.float64)
    return Tensor._wrap(data, None, False)


def _as_tuple(inputs) -> tuple:
    return tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)


class ModelGradcheckReport(_TableReport):
    """Backprop vs finite differences per parameter (``check_model_grads``).

    Attributes: ``worst`` (name -> worst relative error), ``bad`` (names of the parameters
    whose gradients are wrong), ``details`` (name -> the worst entry: index, backprop,
    numerical), ``ok``.
    """

    title = "Gradient check: backprop vs central finite differences (float64)"
    columns = ("parameter", "shape", "entries checked", "max |grad|", "worst rel. error",
               "status")


def check_model_grads(model, inputs, targets, loss_fn, n_entries: int = 10, eps: float = 1e-6,
                      seed: int = 0, tol: float = 1e-4, floor: float = 1e-6
                      ) -> ModelGradcheckReport:
    """Check the gradient of ``loss_fn(model(*inputs), targets)`` wrt every parameter by central
    finite differences on ``n_entries`` random entries of each (lecture: "Debugging").

    Args:
        model: the ``nn.Module`` (not modified: a float64 deep copy is checked).
        inputs: a tensor/array or a tuple of them (floating ones are cast to float64).
        targets: the targets given to ``loss_fn``; with ``loss_fn=None`` the model is called as
            ``model(*inputs, targets)`` and must return ``(output, loss)`` (or the loss).
        n_entries: entries sampled per parameter (all of them when it has fewer).
        eps: the finite-difference step; tol: the largest acceptable relative error; floor:
            the smallest denominator of the relative error (entries whose gradient is ~0).

    Returns a ``ModelGradcheckReport`` (``ok``, ``bad``, ``verdict``, ``str()`` as a table).

    Example:
        >>> r = check_model_grads(model, x[:8], y[:8], F.cross_entropy)
        >>> print(r)            # verdict "fine", or the parameters whose gradients are wrong
    """
    from ..autograd.grad_mode import no_grad

    m = copy.deepcopy(model).double()
    inputs = tuple(_to_tensor64(a) for a in _as_tuple(inputs))
    targets = _to_tensor64(targets)

    def loss_of():
        if loss_fn is None:
            out = m(*inputs, targets)
            return out[1] if isinstance(out, (tuple, list)) else out
        return loss_fn(m(*inputs), targets)

    streams = backend.streams()
    saved = ({k: copy.deepcopy(v) for k, v in streams.items()}, backend.initial_seed())
    rng = np.random.default_rng(seed)
    report = ModelGradcheckReport()
    report.worst, report.details, report.bad = {}, {}, []
    try:
        def evaluate() -> float:
            backend.manual_seed(seed)  # dropout draws the same mask in every pass
            return float(backend.to_numpy(loss_of()._data))

        params = [(n, p) for n, p in m.named_parameters() if p.requires_grad]
        for _, p in params:
            p.grad = None
        backend.manual_seed(seed)
        loss = loss_of()
        loss.backward()
        report.loss = float(backend.to_numpy(loss._data))
        with no_grad():
            for name, p in params:
                data = p._data
                size = int(data.size)
                k = min(int(n_entries), size)
                flat_ids = np.sort(rng.choice(size, size=k, replace=False))
                grad = None if p.grad is None else backend.to_numpy(p.grad._data)
                analytic, numeric = [], []
                for f in flat_ids:
                    idx = tuple(int(i) for i in np.unravel_index(int(f), data.shape))
                    numeric.append(central_difference(evaluate, [data], eps, entry=(0, idx)))
                    analytic.append(0.0 if grad is None else float(grad[idx]))
                a, n = np.asarray(analytic), np.asarray(numeric)
                with np.errstate(invalid="ignore"):
                    rel = np.abs(a - n) / np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
                rel = np.nan_to_num(rel, nan=np.inf)
                worst = int(np.argmax(rel)) if len(rel) else 0
                w = float(rel[worst]) if len(rel) else 0.0
                report.worst[name] = w
                report.details[name] = {
                    "index": tuple(int(i) for i in np.unravel_index(int(flat_ids[worst]),
                                                                    data.shape)) if k else (),
                    "backprop": float(a[worst]) if k else 0.0,
                    "numerical": float(n[worst]) if k else 0.0,
                    "grad_is_none": grad is None}
                if grad is None and not np.any(n):
                    status = "no grad (unused)"
                elif grad is None:
                    status = "WRONG: no gradient reached it"
                elif w > tol:
                    status = "WRONG"
                else:
                    status = "ok"
                if status.startswith("WRONG"):
                    report.bad.append(name)
                gmax = 0.0 if grad is None else float(np.abs(grad).max(initial=0.0))
                report.rows.append((name, str(tuple(data.shape)), f"{k} of {size}", gmax, w,
                                    status))
    finally:
        streams.clear()
        streams.update(saved[0])
        backend.set_initial_seed(saved[1])
    report.ok = not report.bad
    report.tol = tol
    names = [r[0] for r in report.rows]
    if report.ok:
        top = max(report.worst, key=report.worst.get) if report.worst else None
        report.verdict = (f"fine: backprop matches finite differences for all {len(names)} "
                          f"parameters (worst relative error {report.worst.get(top, 0.0):.2g}"
                          + (f" in {top}" if top else "") + f", tolerance {tol:g})")
    else:
        good = [n for n in names if n not in report.bad]
        lines = []
        for b in report.bad:
            d = report.details[b]
            if d["grad_is_none"]:
                lines.append(f"{b} (backprop gives no gradient, finite differences "
                             f"{d['numerical']:.4g} at {d['index']})")
            else:
                lines.append(f"{b} (relative error {report.worst[b]:.3g}: backprop "
                             f"{d['backprop']:.6g} vs numerical {d['numerical']:.6g} at "
                             f"{d['index']})")
        where = ("" if not good else
                 f"; these pass: {', '.join(good)} — the wrong backward is in an op between the "
                 f"wrong parameters and the loss that the passing ones do not go through")
        report.verdict = (f"WRONG gradients for {len(report.bad)} of {len(names)} parameters: "
                          + "; ".join(lines) + where + ". Check the backward of custom "
                          "fg.autograd.Function ops (or any .detach()/.data) on that path.")
    return report
