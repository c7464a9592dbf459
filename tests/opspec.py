"""The op table's entry type and the two checks every entry gets: against PyTorch and against
finite differences.

An entry's ``fn(m, *inputs)`` is called with ``m = flowgrad`` and with ``m = torch``: the APIs
match, so one lambda serves both (write ``m.nn.functional.relu(x)``, ``x.sum(dim=1)``, ...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

import flowgrad as fg


@dataclass(frozen=True)
class OpSpec:
    name: str
    fn: Callable                          # fn(m, *float_inputs, *const_inputs)
    shapes: tuple = ((3, 4),)             # shapes of the floating inputs (they require grad)
    low: float = -2.0                     # floating inputs drawn uniform in [low, high]
    high: float = 2.0
    avoid_kinks: float = 0.0              # keep |x| >= this (relu, abs, max ties)
    consts: Callable | None = None        # consts(rng) -> tuple of arrays passed after inputs
    make: Callable | None = None          # make(rng) -> list of float64 arrays (custom domain)
    grad: bool = True                     # False: compare forward only
    fd: bool = True                       # run the finite-difference check
    tol32: tuple = (1e-5, 1e-4)           # (atol, rtol) in float32
    tol64: tuple = (1e-10, 1e-7)
    covers: tuple = ()                    # the flowgrad Op classes it exercises
    dtypes: tuple = ("float32", "float64")
    grad_inputs: tuple | None = None      # indices of inputs that require grad (default: all)
    extra: dict = field(default_factory=dict)

    def inputs(self, seed: int = 0) -> tuple[list, tuple]:
        rng = np.random.default_rng(seed)
        if self.make is not None:
            xs = [np.asarray(a, dtype=np.float64) for a in self.make(rng)]
        else:
            xs = []
            for s in self.shapes:
                a = rng.uniform(self.low, self.high, size=s)
                if self.avoid_kinks:
                    a = np.where(np.abs(a) < self.avoid_kinks,
                                 np.sign(a + 1e-12) * (self.avoid_kinks + np.abs(a)), a)
                xs.append(a)
        consts = tuple(self.consts(rng)) if self.consts is not None else ()
        return xs, consts


def _outputs(out):
    if isinstance(out, (tuple, list)):
        return list(out)
    return [out]


def _to_lib(m, a, dtype, requires_grad, device=None):
    if isinstance(a, np.ndarray):
        if a.dtype.kind == "f":
            a = a.astype(dtype)
        if m is fg:
            return fg.tensor(a, requires_grad=requires_grad, device=device)
        return m.tensor(a, requires_grad=requires_grad)
    return a


def run(m, spec: OpSpec, dtype: str, seed: int = 0, device=None):
    """Run the spec in library ``m`` (flowgrad on ``device``, default cpu); returns the outputs
    as arrays, their dtypes, and the inputs' gradients."""
    xs, consts = spec.inputs(seed)
    which = range(len(xs)) if spec.grad_inputs is None else spec.grad_inputs
    ts = [_to_lib(m, a, dtype, spec.grad and i in which, device) for i, a in enumerate(xs)]
    cs = [_to_lib(m, c, dtype, False, device) for c in consts]
    outs = _outputs(spec.fn(m, *ts, *cs))
    arrays = [np.array(o.detach().cpu().numpy()) if hasattr(o, "shape") else np.asarray(o)
              for o in outs]
    grads = None
    if spec.grad:
        rng = np.random.default_rng(seed + 1)
        total = None
        for o in outs:
            if hasattr(o, "requires_grad") and o.requires_grad:
                w = rng.standard_normal(tuple(o.shape))
                term = (o * _to_lib(m, w, dtype, False, device)).sum()
                total = term if total is None else total + term
        if total is not None:
            total.backward()
        grads = [None if t.grad is None else np.array(t.grad.detach().cpu().numpy())
                 for t in ts]
    return arrays, [str(o.dtype).replace("torch.", "") for o in outs if hasattr(o, "dtype")], grads


@contextlib.contextmanager
def assert_covers(spec: OpSpec):
    """Fail if running the spec did not call the forward of every Op it claims to cover."""
    called = set()
    originals = {}
    for cls in spec.covers:
        fwd = cls.__dict__["forward"]
        originals[cls] = fwd

        def spy(*args, _cls=cls, _fwd=fwd.__func__, **kwargs):
            called.add(_cls)
            return _fwd(*args, **kwargs)

        cls.forward = staticmethod(spy)
    try:
        yield
    finally:
        for cls, fwd in originals.items():
            cls.forward = fwd
    missed = [c.__name__ for c in spec.covers if c not in called]
    assert not missed, f"{spec.name}: claims to cover {missed} but never calls them"


def check_against_torch(spec: OpSpec, dtype: str, torch) -> None:
    with assert_covers(spec):
        fg_out, fg_dt, fg_grads = run(fg, spec, dtype)
    th_out, th_dt, th_grads = run(torch, spec, dtype)
    atol, rtol = spec.tol32 if dtype == "float32" else spec.tol64
    assert len(fg_out) == len(th_out), f"{spec.name}: {len(fg_out)} outputs vs torch {len(th_out)}"
    assert fg_dt == th_dt, f"{spec.name}: output dtypes {fg_dt} vs torch {th_dt}"
    for k, (a, b) in enumerate(zip(fg_out, th_out)):
        assert a.shape == b.shape, f"{spec.name}: output {k} shape {a.shape} vs torch {b.shape}"
        np.testing.assert_allclose(a, b, atol=atol, rtol=rtol,
                                   err_msg=f"{spec.name}: output {k} ({dtype})")
    if spec.grad:
        for k, (a, b) in enumerate(zip(fg_grads, th_grads)):
            assert (a is None) == (b is None), \
                f"{spec.name}: input {k} grad is {'None' if a is None else 'set'} in flowgrad " \
                f"but {'None' if b is None else 'set'} in torch"
            if a is not None:
                assert a.shape == b.shape, f"{spec.name}: grad {k} shape {a.shape} vs {b.shape}"
                np.testing.assert_allclose(a, b, atol=atol * 10, rtol=rtol * 10,
                                           err_msg=f"{spec.name}: grad of input {k} ({dtype})")


def check_finite_differences(spec: OpSpec) -> None:
    xs, consts = spec.inputs(0)
    which = range(len(xs)) if spec.grad_inputs is None else spec.grad_inputs
    ts = [fg.tensor(a, dtype=fg.float64, requires_grad=i in which) for i, a in enumerate(xs)]
    cs = [fg.tensor(c) if isinstance(c, np.ndarray) else c for c in consts]

    def f(*inputs):
        out = spec.fn(fg, *inputs, *cs)
        return tuple(o for o in _outputs(out) if isinstance(o, fg.Tensor))

    f.__name__ = spec.name
    fg.autograd.gradcheck(f, ts, eps=1e-6, atol=1e-5, rtol=1e-3)
