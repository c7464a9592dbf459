"""Op: one node type of the flow graph (lecture: "Automatic Differentiation" — each node
type knows how to compute its output, and the gradient wrt its inputs given the gradient wrt its
output).

An op is a subclass with two static methods over raw arrays::

    class Mul(Op):
        @staticmethod
        def forward(ctx, x, y):
            ctx.save_for_backward(x, y)
            return x * y

        @staticmethod
        def backward(ctx, grad):
            x, y = ctx.saved_tensors
            return grad * y, grad * x      # broadcast shapes are fine: the engine sums them

``Op.apply(*args)`` unwraps Tensor arguments to arrays, runs ``forward`` and, when grad
mode is on and an input requires grad, records the node. Non-tensor arguments (dims, flags) are
passed through unchanged; backward returns one gradient (or None) per forward argument.
"""

from __future__ import annotations

import weakref

import numpy as np

from .. import backend, dtypes
from ..errors import DeviceError, GraphError, ShapeError
from . import grad_mode

Tensor = None  # bound by flowgrad.tensor once it is defined (tensor imports this module)
_grad_state = grad_mode._state
_FREED = ("<freed>",)
_SCALARS = (np.generic, int, float, bool)
# Anomaly mode (flowgrad.debug.detect_anomaly, the slide "Debugging"): while on, every op's output
# goes to ``_anomaly_checker.forward`` and the engine hands every node's gradients to its
# ``backward``. Off, it costs one test of this global per op.
_anomaly_mode = False
_anomaly_checker = None
# Bumped by each in-place op recorded in the graph (Tensor._record_inplace); a node keeps the value
# current when it was recorded, so the engine can tell which identity of a tensor modified in
# place afterwards it consumed (engine._resolve_rebased).
_epoch = 0


class Context:
    """What one node keeps between forward and backward (PyTorch's ``ctx``)."""

    __slots__ = ("fn", "parents", "needs_input_grad", "saved", "_saved_src", "versions",
                 "xp", "out_ref", "epoch", "__dict__")

    def save_for_backward(self, *arrays) -> None:
        """Keep arrays (inputs or the output) for backward; they are freed after backward."""
        self.saved = arrays

    @property
    def saved_tensors(self) -> tuple:
        saved = self.saved
        if saved is _FREED:
            raise GraphError(
                f"{self.fn.__name__}: trying to backward through the graph a second time, but its "
                "saved values were freed by the first backward(); pass retain_graph=True to the "
                "first backward() if you need to backward twice")
        return saved

    def mark_non_differentiable(self, *args) -> None:
        """Accepted for PyTorch compatibility; integer outputs never require grad anyway."""


class Op:
    """Base class of every node type over raw arrays (the ops of flowgrad.ops). To write an op
    over Tensors, subclass ``fg.autograd.Function`` instead."""

    @staticmethod
    def forward(ctx: Context, *args):
        raise NotImplementedError("an Op subclass must define forward(ctx, *args)")

    @staticmethod
    def backward(ctx: Context, grad):
        raise NotImplementedError("an Op subclass must define backward(ctx, grad)")

    # Output of ops that are not differentiable at all (comparisons, argmax) never requires grad.
    differentiable = True
    # How the op treats its operands' dtypes (flowgrad.dtypes.FLOAT, FLOATING, SAME,
    # FLOATING_SAME), checked in ``apply`` by ``dtypes.apply_rule``: the one place for the rule
    # "integer input to a floating op gives the default dtype" and for PyTorch's refusals.
    dtype_rule = None

    @classmethod
    def apply(cls, *args):
        raw = []
        needs = []
        record = False
        first = None
        for a in args:
            if isinstance(a, Tensor):
                if first is None:
                    first = a
                elif first._data.__class__ is not a._data.__class__:
                    raise DeviceError(
                        f"{cls.__name__.lower()}: operands are on {first.device} and {a.device}; "
                        "move them to one device with .to()")
                raw.append(a._data)
                r = a._requires_grad
                needs.append(r)
                record = record or r
            else:
                raw.append(a)
                needs.append(False)
        if cls.dtype_rule is not None:
            raw = dtypes.apply_rule(cls, cls.dtype_rule, raw)
        ctx = Context()
        ctx.fn = cls
        ctx.saved = ()
        if first is None or first._data.__class__ is np.ndarray:
            ctx.xp = np
        else:
            ctx.xp = backend.get_array_module(first._data)
        record = record and cls.differentiable and _grad_state.enabled
        ctx.needs_input_grad = tuple(needs) if record else (False,) * len(args)
        try:
            out = cls.forward(ctx, *raw)
        except ValueError as e:
            raise _explain(cls, raw, e) from None
        if isinstance(out, _SCALARS):  # NumPy returns scalars for 0-d results
            out = ctx.xp.asarray(out)
        if _anomaly_mode:
            _anomaly_checker.forward(cls, ctx, args, out)
        if not record:
            return Tensor._wrap(out, None, False)
        ctx.parents = args
        ctx.epoch = _epoch
        saved = ctx.saved
        if saved:
            ctx.versions = tuple(a._version if isinstance(a, Tensor) and _holds(saved, a._data)
                                 else None for a in args)
        result = Tensor._wrap(out, ctx, True)
        if saved and _holds(saved, out):
            ctx.out_ref = (weakref.ref(result), result._version)
        else:
            ctx.out_ref = None
        return result


def _explain(cls, raw, error):
    """Turn an array library's ValueError into a ShapeError naming the op and the shapes."""
    from .broadcast import broadcast_shape

    if isinstance(error, ShapeError):
        return error
    op = _snake(cls.__name__)
    shapes = [tuple(a.shape) for a in raw if hasattr(a, "shape") and hasattr(a, "dtype")]
    if "broadcast" in str(error) and len(shapes) > 1:
        try:
            broadcast_shape(op, *shapes)
        except ShapeError as e:
            return e
    given = ", ".join(str(s) for s in shapes)
    return ShapeError(f"{op}: {error} (input shapes {given})")


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower()
                   for i, c in enumerate(name))


def _holds(saved: tuple, array) -> bool:
    for s in saved:
        if s is array:
            return True
    return False


def once_differentiable(fn):
    """Accepted for PyTorch compatibility: flowgrad's backward already runs on arrays."""
    return fn
