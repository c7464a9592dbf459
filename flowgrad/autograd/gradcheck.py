"""Gradient checking by finite differences (lecture: "Why backprop is powerful" — the O(n^2)
finite-difference alternative, used here to verify the O(n) backprop)."""

from __future__ import annotations

import numpy as np

from .. import backend


class GradcheckError(AssertionError):
    """Backprop and finite differences disagree; the message lists the worst entries."""


def _as_inputs(inputs):
    from ..tensor import Tensor

    if isinstance(inputs, Tensor):
        return (inputs,)
    return tuple(inputs)


def _scalarise(out, weights):
    """Sum of out * w (a fixed random upstream gradient), as a Python float."""
    from ..tensor import Tensor

    outs = out if isinstance(out, (tuple, list)) else (out,)
    if weights is None:  # the plain sum of every output
        weights = [1.0] * len(outs)
    total = 0.0
    for o, w in zip(outs, weights):
        if isinstance(o, Tensor) and o.dtype.kind == "f":
            total += float((backend.to_numpy(o._data).astype(np.float64) * w).sum())
    return total


def central_difference(f, arrays, eps: float, *, entry=None, direction=None,
                       on_change=None):
    """The one central-difference routine of flowgrad: ``(f(x + εd) − f(x − εd)) / 2ε``.

    ``x`` is ``arrays`` (NumPy/CuPy arrays, e.g. a tensor's ``._data``), moved IN PLACE and
    restored bit for bit afterwards (also when ``f`` raises); ``f()`` reads them and returns a
    float or an array (e.g. a flat gradient, for Hessian-vector products). The direction is
    either ``entry=(k, index)``, the unit vector of entry ``index`` (a tuple of ints, or a flat
    C-order position) of ``arrays[k]``, written where it lives, so transposed, sliced and
    other non-contiguous arrays are perturbed correctly; or ``direction``, one array per
    array of ``arrays`` (the step is cast to each array's dtype). ``on_change()`` is called
    after every in-place change (to bump version counters). Every finite difference in
    flowgrad (``numerical_grad``/``gradcheck``, ``debug.check_model_grads``,
    ``debug.gradient_cost``, ``debug.hessian_vector_product``) goes through here.
    """
    if (entry is None) == (direction is None):
        raise TypeError("central_difference: give exactly one of entry=(k, index) or "
                        "direction=[arrays]")
    notify = on_change or (lambda: None)
    values = []
    if entry is not None:
        k, index = entry
        a = arrays[k]
        if not isinstance(index, tuple):
            index = tuple(int(i) for i in np.unravel_index(int(index), a.shape))
        orig = a[index].item()
        try:
            for step in (eps, -eps):
                a[index] = orig + step
                notify()
                values.append(f())
        finally:
            a[index] = orig
            notify()
    else:
        saved = [a.copy() for a in arrays]
        try:
            for sign in (1.0, -1.0):
                for a, s, d in zip(arrays, saved, direction):
                    xp = backend.get_array_module(a)
                    xp.copyto(a, s)
                    a += xp.asarray(sign * eps * d, dtype=a.dtype)
                notify()
                values.append(f())
        finally:
            for a, s in zip(arrays, saved):
                backend.get_array_module(a).copyto(a, s)
            notify()
    return (values[0] - values[1]) / (2 * eps)


def numerical_grad(fn, inputs, eps: float = 1e-6, weights=None) -> list:
    """Central differences of ``sum(fn(*inputs) * weights)`` wrt every floating input (each
    entry perturbed where it lives, so non-contiguous inputs are fine)."""
    from ..tensor import Tensor
    from .grad_mode import no_grad

    inputs = _as_inputs(inputs)
    grads = []

    def f():
        return _scalarise(fn(*inputs), weights)

    with no_grad():
        for t in inputs:
            if not (isinstance(t, Tensor) and t.requires_grad):
                grads.append(None)
                continue
            g = np.zeros(t.shape)
            for index in np.ndindex(*t.shape):
                g[index] = central_difference(f, [t._data], eps, entry=(0, index))
            grads.append(g)
    return grads


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              raise_exception: bool = True, seed: int = 0) -> bool:
    """Compare backprop's gradients of ``fn`` with central finite differences.

    ``fn(*inputs)`` may return a tensor (or tuple of tensors) of any shape; both sides use the
    same random upstream gradient, so a backward that forgets to multiply by its incoming
    gradient is caught. Inputs should be float64 tensors with ``requires_grad=True``. On failure
    raises GradcheckError naming the input, the worst entries and both values (or returns False).
    """
    from ..tensor import Tensor

    inputs = _as_inputs(inputs)
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != np.float64:
            import warnings

            warnings.warn(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 "
                          "to be reliable", stacklevel=2)
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    weights = [rng.standard_normal(o.shape) for o in outs]
    for t in inputs:
        if isinstance(t, Tensor):
            t.grad = None
    total = None
    for o, w in zip(outs, weights):
        if isinstance(o, Tensor) and o.requires_grad:
            term = (o * Tensor._wrap(o.xp.asarray(w, dtype=o.dtype), None, False)).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()
    numeric = numerical_grad(fn, inputs, eps, weights)
    problems = []
    for i, (t, n) in enumerate(zip(inputs, numeric)):
        if n is None:
            continue
        a = (np.zeros(t.shape) if t.grad is None
             else backend.to_numpy(t.grad._data).astype(np.float64))
        err = np.abs(a - n)
        bad = err > atol + rtol * np.abs(n)
        if bad.any():
            worst = np.argsort(err.reshape(-1))[::-1][:5]
            rows = []
            for k in worst:
                idx = np.unravel_index(k, t.shape) if t.shape else ()
                where = tuple(int(j) for j in idx)
                rows.append(f"    at {where}: backprop {a.reshape(-1)[k]:.8g}, numerical "
                            f"{n.reshape(-1)[k]:.8g}, error {err.reshape(-1)[k]:.3g}")
            problems.append(f"  input {i} (shape {tuple(t.shape)}): {int(bad.sum())} of "
                            f"{bad.size} entries differ (atol={atol}, rtol={rtol}); worst:\n"
                            + "\n".join(rows))
    if problems:
        name = getattr(fn, "__name__", "fn")
        msg = (f"gradcheck of {name}: backprop and finite differences disagree\n"
               + "\n".join(problems))
        if raise_exception:
            raise GradcheckError(msg)
        return False
    return True
