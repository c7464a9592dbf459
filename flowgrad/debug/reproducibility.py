"""Reproducible experiments (lecture: "Debugging" — "Instrument the code to make experiments
reproducible").

* ``seed_everything(seed)``: seed every random stream a flowgrad program draws from — flowgrad's
  own (``fg.manual_seed``: init, rand/randn, dropout, DataLoader shuffling through the default
  generator), NumPy's legacy global generator (``np.random.*``) and Python's ``random``.
* ``check_determinism(make_model, make_loader, loss_fn, make_optimizer, steps=3, seed=0)``: run
  a few training steps twice from the same seed and compare everything bit for bit: initial
  parameters, each batch, each loss, each gradient, each updated parameter. The report says
  whether the two runs are bit-identical and, if not, the first tensor that differs, its largest
  difference and the likely cause (unseeded initialisation, unseeded shuffling, ...).

Every report of ``flowgrad.debug``'s core has ``.verdict`` (one sentence), ``.rows`` under
``.columns``, ``str(report)`` / ``to_markdown()`` (a table) and ``as_dict()``.
"""

from __future__ import annotations

import random

import numpy as np

from .. import backend
from .report import TableReport

__all__ = ["seed_everything", "check_determinism", "DeterminismReport"]




def seed_everything(seed: int) -> int:
    """Seed flowgrad's random streams (``fg.manual_seed``), NumPy's legacy global generator
    (``np.random.seed``) and Python's ``random`` with ``seed``; returns it (lecture:
    "Debugging").

    Generators you create yourself (``np.random.default_rng()``, ``fg.Generator()``) are not
    reached: create them from the seed. Python's hash seed (set order) can only be fixed by
    ``PYTHONHASHSEED`` before the interpreter starts.
    """
    seed = int(seed)
    backend.manual_seed(seed)
    np.random.seed(seed % (1 << 32))
    random.seed(seed)
    return seed


# --- check_determinism --------------------------------------------------------------------------

def _np(a) -> np.ndarray:
    """A NumPy array from a Tensor, a NumPy/CuPy array or a scalar."""
    if not hasattr(a, "dtype") or hasattr(a, "_ctx"):  # a Tensor (or a number)
        a = getattr(a, "_data", a)
    return np.asarray(backend.to_numpy(a))


def _arrays(batch) -> list:
    """The arrays of a batch (tensors, arrays, nested tuples/lists/dicts), in order."""
    out, stack = [], [batch]
    while stack:
        b = stack.pop()
        if isinstance(b, dict):
            stack.extend(reversed(list(b.values())))
        elif isinstance(b, (tuple, list)):
            stack.extend(reversed(b))
        elif hasattr(b, "shape"):
            out.append(_np(b).copy())
    return out


def _split(batch):
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return tuple(batch[:-1]), batch[-1]
    raise TypeError("check_determinism: expected each batch to be (input, target) or "
                    "(input1, ..., target)")


def _record_run(make_model, make_loader, loss_fn, make_optimizer, steps: int, seed: int) -> list:
    """[(what, step, name, array)] in the order they were made."""
    seed_everything(seed)
    model = make_model()
    loader = make_loader()
    optimizer = make_optimizer(model.parameters())
    trace = [("initial parameter", 0, n, _np(p).copy()) for n, p in model.named_parameters()]
    batches = iter(loader)
    for step in range(1, steps + 1):
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(loader)
            batch = next(batches)
        for i, a in enumerate(_arrays(batch)):
            trace.append(("batch", step, f"tensor {i} {tuple(a.shape)}", a))
        inputs, target = _split(batch)
        optimizer.zero_grad()
        if loss_fn is None:  # the model computes its loss: model(x, y) -> (output, loss)
            output, loss = model(*inputs, target)
        else:
            output = model(*inputs)
            loss = loss_fn(output, target)
        trace.append(("output", step, f"{tuple(output.shape)}", _np(output).copy()))
        trace.append(("loss", step, "loss", _np(loss).copy()))
        loss.backward()
        for n, p in model.named_parameters():
            if p.grad is not None:
                trace.append(("gradient", step, n, _np(p.grad).copy()))
        optimizer.step()
        for n, p in model.named_parameters():
            trace.append(("parameter after step", step, n, _np(p).copy()))
    return trace


_CAUSES = {
    "initial parameter": "the initialisation draws from a stream that seed_everything does not "
                         "reach (an np.random.default_rng() or fg.Generator() made without the "
                         "seed, or the OS's entropy)",
    "batch": "the data order or augmentation is not seeded (a DataLoader with shuffle=True and a "
             "generator made without the seed, or random transforms drawing from an unseeded "
             "stream)",
    "output": "the forward pass draws unseeded random numbers (dropout or noise from a private "
              "generator) or depends on state left over from another run (a cache, a global)",
    "loss": "the loss draws unseeded random numbers or depends on state outside the model",
    "gradient": "the backward pass is non-deterministic (a custom backward drawing random "
                "numbers or depending on global state)",
    "parameter after step": "the optimizer's update is non-deterministic (noise injection from "
                            "an unseeded stream, or state shared between runs)",
}


class DeterminismReport(TableReport):
    """Two runs from the same seed compared tensor by tensor (``check_determinism``).

    Attributes: ``identical`` (bool), ``first_difference`` (None, or a dict with ``what``,
    ``step``, ``name``, ``max_abs_diff``), ``compared`` (how many tensors).
    """

    title = "Determinism: two runs from the same seed"
    columns = ("step", "what", "tensors", "identical", "first differing", "max |difference|")

    def __init__(self, trace_a: list, trace_b: list, steps: int, seed: int) -> None:
        super().__init__()
        self.steps, self.seed = steps, seed
        self.compared = 0
        self.first_difference = None
        groups: dict = {}
        if len(trace_a) != len(trace_b) or any(
                (a[0], a[1], a[2]) != (b[0], b[1], b[2]) for a, b in zip(trace_a, trace_b)):
            self.first_difference = _structure_difference(trace_a, trace_b)
        for (what, step, name, a), (_, _, _, b) in zip(trace_a, trace_b):
            self.compared += 1
            key = (step, what)
            g = groups.setdefault(key, {"n": 0, "same": True, "first": "", "diff": 0.0})
            g["n"] += 1
            same = a.shape == b.shape and a.dtype == b.dtype and (
                a.tobytes() == b.tobytes())
            if not same:
                diff = _max_diff(a, b)
                if g["same"]:
                    g["same"], g["first"], g["diff"] = False, name, diff
                if self.first_difference is None:
                    self.first_difference = {"what": what, "step": step, "name": name,
                                             "max_abs_diff": diff}
        self.rows = [(step, what, g["n"], "yes" if g["same"] else "NO", g["first"] or "-",
                      g["diff"] if not g["same"] else 0.0)
                     for (step, what), g in groups.items()]
        self.identical = self.first_difference is None
        self.ok = self.identical
        if self.identical:
            self.verdict = (f"fine: bit-identical — {self.compared} tensors (initial parameters, "
                            f"batches, outputs, losses, gradients, updated parameters over "
                            f"{steps} steps) are equal byte for byte in two runs from seed {seed}")
        else:
            d = self.first_difference
            at = "before training" if d["step"] == 0 else f"at step {d['step']}"
            self.verdict = (f"NOT deterministic: the first difference is {at}, in the {d['what']} "
                            f"{d['name']} (max |difference| {d['max_abs_diff']:.3g}); likely "
                            f"cause: {_CAUSES.get(d['what'], 'unseeded randomness')}")

    def as_dict(self) -> dict:
        return {**super().as_dict(), "identical": self.identical,
                "first_difference": self.first_difference, "compared": self.compared,
                "steps": self.steps, "seed": self.seed}


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    if a.dtype.kind in "biu" and b.dtype.kind in "biu":
        return float(np.abs(a.astype(np.int64) - b.astype(np.int64)).max(initial=0))
    with np.errstate(invalid="ignore", over="ignore"):
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    both_nan = np.isnan(a.astype(np.float64)) & np.isnan(b.astype(np.float64))
    d = np.where(both_nan, 0.0, d)
    return float(np.nan_to_num(d, nan=np.inf).max(initial=0.0))


def _structure_difference(trace_a, trace_b) -> dict:
    for a, b in zip(trace_a, trace_b):
        if (a[0], a[1], a[2]) != (b[0], b[1], b[2]):
            return {"what": a[0], "step": a[1], "name": f"{a[2]} vs {b[2]} (the runs made "
                    "different tensors)", "max_abs_diff": float("inf")}
    return {"what": "trace", "step": 0, "name": f"length {len(trace_a)} vs {len(trace_b)}",
            "max_abs_diff": float("inf")}


def check_determinism(make_model, make_loader, loss_fn, make_optimizer, steps: int = 3,
                      seed: int = 0) -> DeterminismReport:
    """Run ``steps`` training steps twice from ``seed`` and compare the runs bit for bit
    (lecture: "Debugging" — make experiments reproducible).

    Args:
        make_model: ``() -> Module`` (called after seeding, so its initialisation is seeded).
        make_loader: ``() -> iterable of (input, target) batches`` (a DataLoader).
        loss_fn: ``(output, target) -> loss``; None when the model returns ``(output, loss)``.
        make_optimizer: ``(parameters) -> Optimizer``, e.g. ``lambda p: fg.optim.SGD(p, 0.1)``.

    Returns a ``DeterminismReport``: ``identical``, ``first_difference``, ``verdict``, and
    ``str(report)`` as a table per step. Both runs start with ``seed_everything(seed)``; the
    random streams are left as the second run leaves them.

    Example:
        >>> r = check_determinism(lambda: MLP(), lambda: DataLoader(ds, 32, shuffle=True),
        ...                       F.cross_entropy, lambda p: fg.optim.Adam(p, 1e-3))
        >>> r.identical, r.verdict
    """
    a = _record_run(make_model, make_loader, loss_fn, make_optimizer, steps, seed)
    b = _record_run(make_model, make_loader, loss_fn, make_optimizer, steps, seed)
    return DeterminismReport(a, b, steps, seed)
