"""Anomaly mode: find the first operation that makes a NaN or an infinity (lecture: "Debugging").

A NaN loss says that something went wrong, not where. Under ``detect_anomaly()`` every op's
forward output and every backward node's gradients are checked as they are computed; the first
non-finite value raises ``AnomalyError`` naming the op (its ``Op`` class), the pass
(forward or backward), the shapes, the innermost ``nn.Module`` that was running (qualified name
such as ``net.2`` and class) and the line of code that called the op::

    with fg.debug.detect_anomaly(model):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
    # AnomalyError: detect_anomaly: the forward of Log produced nan in 3 of 40 values
    #   op:      Log (forward), inputs (4, 10) -> output (4, 10)
    #   module:  net.2 (Linear) in MLP
    #   ...

Forward rule: an output with NaN is an anomaly; an output with +-inf is one when the op created
it (no input, array or scalar, held an infinity) or when a parameter already held one, so the
deliberate ``masked_fill(mask, -inf)`` of attention passes. Backward rule: any non-finite
gradient is an anomaly. Modules are tracked by forward pre/post hooks installed on the given
model for the duration of the block; without a model (or for modules outside it) the module
calls on the Python stack are used. It is slow (a full ``isfinite`` per op and a walk of the
Python stack): use it to find a bug, not to train.

Engine side: ``flowgrad.autograd.op`` tests one global flag per op; the engine reads it
once per backward pass.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .. import backend
from ..autograd import op as _fn

__all__ = ["detect_anomaly", "AnomalyError", "is_anomaly_enabled"]

_HINTS = {
    "Log": "log of zero or of a negative number (clamp the argument, add an epsilon, or use "
           "log_softmax / cross_entropy on logits instead of log(softmax))",
    "Log1p": "log1p of a number <= -1",
    "Div": "division by zero (add an epsilon to the denominator)",
    "Reciprocal": "reciprocal of zero",
    "Rsqrt": "rsqrt of zero or of a negative number",
    "Sqrt": "sqrt of a negative number; in backward, the gradient of sqrt at 0 is infinite "
            "(use sqrt(x + eps))",
    "Pow": "a negative base to a fractional power, or 0 to a negative power (in backward: "
           "x ** p with p < 1 at x = 0)",
    "Exp": "exp overflowed (exp(x) is inf in float32 for x > 88): use logsumexp, log_softmax or "
           "a lower learning rate",
    "Expm1": "expm1 overflowed",
    "Softplus": "overflow in softplus",
    "MatMul": "the inputs are too large: activations or weights exploded (lower the learning "
              "rate, clip gradients, check the initialisation)",
    "Linear": "the inputs are too large: activations or weights exploded (lower the learning "
              "rate, clip gradients, check the initialisation)",
    "Softmax": "a row of all -inf (everything masked) or exploded logits",
    "LogSoftmax": "a row of all -inf (everything masked) or exploded logits",
    "Norm2": "in backward, the gradient of the norm of a zero vector is 0/0",
    "Mul": "0 * inf",
    "Sub": "inf - inf",
    "Add": "inf + (-inf)",
}

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the flowgrad package
_INTERNAL = tuple(os.path.join(_HERE, p) for p in (
    "autograd", "ops", "tensor.py", "functions.py", "creation.py", os.path.join("nn", "functional"),
    os.path.join("nn", "module.py"), os.path.join("debug", "anomaly.py")))


class AnomalyError(FloatingPointError):
    """The first non-finite value seen under ``detect_anomaly``; attributes ``op``, ``pass_``
    ("forward"/"backward"), ``kind`` ("nan"/"inf"), ``shapes``, ``module`` (qualified name),
    ``module_class`` and ``where`` (file:line of the call that made the op)."""

    def __init__(self, message: str, *, op: str, pass_: str, kind: str, shapes: dict,
                 module: str | None, module_class: str | None, where: str | None) -> None:
        super().__init__(message)
        self.op, self.pass_, self.kind, self.shapes = op, pass_, kind, shapes
        self.module, self.module_class, self.where = module, module_class, where


def is_anomaly_enabled() -> bool:
    """Whether a ``detect_anomaly`` block is active."""
    return bool(_fn._anomaly_mode)


# --- where an op was called from ----------------------------------------------------------------

_CALL_CODES: tuple = ()


def _walk_stack(want_modules: bool):
    """(the innermost frame outside flowgrad's op machinery as 'file:line in fn', the modules
    being called on the Python stack, innermost first)."""
    global _CALL_CODES
    if want_modules and not _CALL_CODES:
        from ..nn.module import Module

        _CALL_CODES = (Module.__call__.__code__, Module._call_with_hooks.__code__)
    frame = sys._getframe(1)
    where = None
    modules = []
    while frame is not None:
        code = frame.f_code
        if where is None and not code.co_filename.startswith(_INTERNAL):
            where = f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
            if not want_modules:
                break
        if want_modules and code in _CALL_CODES:
            m = frame.f_locals.get("self")
            if m is not None and (not modules or modules[-1] is not m):
                modules.append(m)
        frame = frame.f_back
    return where, modules


def _qualified(module, root) -> str | None:
    """The name of ``module`` inside ``root`` ("" for the root itself), or None."""
    for name, m in root.named_modules():
        if m is module:
            return name
    return None


# --- the checker --------------------------------------------------------------------------------

def _count_bad(a) -> tuple[str, int, int] | None:
    """("nan" or "inf", how many non-finite, size) if ``a`` is a float array with any; else
    None."""
    if a is None or not hasattr(a, "dtype") or a.dtype.kind not in "fc":
        return None
    xp = backend.get_array_module(a)
    finite = xp.isfinite(a)
    if bool(finite.all()):
        return None
    nan = int(xp.isnan(a).sum())
    bad = int(a.size - int(finite.sum()))
    return ("nan" if nan else "inf"), bad, int(a.size)


def _has_inf(a) -> bool:
    if isinstance(a, (float, np.floating)):
        return bool(np.isinf(a))
    if hasattr(a, "dtype") and a.dtype.kind in "fc":
        xp = backend.get_array_module(a)
        return bool(xp.isinf(a).any())
    return False


def _shape(a) -> tuple | str | None:
    if isinstance(a, _fn.Tensor):
        a = a._data
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        return None
    return tuple(int(s) for s in a.shape) if a.shape else "scalar"


class detect_anomaly:
    """Context manager (or decorator): raise ``AnomalyError`` at the first NaN/inf produced by
    an op's forward or by a backward node (lecture: "Debugging").

    Args:
        model: an ``nn.Module`` whose submodules get forward pre/post hooks for the block, so
            the error names the innermost module by its qualified name (``net.2``). Without it,
            the module calls found on the Python stack are named relative to the outermost one.
        check_forward: check every op's output (default True).
        check_backward: check every backward node's gradients (default True).

    Example:
        >>> with detect_anomaly(model):
        ...     F.cross_entropy(model(x), y).backward()
    """

    def __init__(self, model=None, check_forward: bool = True,
                 check_backward: bool = True) -> None:
        self.model = model
        self.check_forward = check_forward
        self.check_backward = check_backward
        self._stack: list = []       # (qualified name, module) of the modules now running
        self._handles: list = []
        self._prev = None
        self._np_err = None

    # -- switching on and off --
    def __enter__(self) -> detect_anomaly:
        if self.model is not None:
            for name, m in self.model.named_modules():
                self._handles.append(m.register_forward_pre_hook(self._pre_hook(name)))
                self._handles.append(m.register_forward_hook(self._post_hook, always_call=True))
        self._prev = (_fn._anomaly_mode, _fn._anomaly_checker)
        # NumPy's overflow/invalid warnings would only repeat, less precisely, what the
        # AnomalyError raised for the same op says
        self._np_err = np.seterr(over="ignore", invalid="ignore", divide="ignore") \
            if self.check_forward and self.check_backward else None
        _fn._anomaly_checker = self
        _fn._anomaly_mode = True
        return self

    def __exit__(self, *exc) -> None:
        _fn._anomaly_mode, _fn._anomaly_checker = self._prev
        if self._np_err is not None:
            np.seterr(**self._np_err)
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._stack.clear()

    def __call__(self, fn):
        import functools

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.model, self.check_forward, self.check_backward):
                return fn(*args, **kwargs)

        return wrapper

    def _pre_hook(self, name: str):
        stack = self._stack

        def hook(module, _args):
            stack.append((name, module))

        return hook

    def _post_hook(self, module, _args, _output):
        stack = self._stack
        if stack and stack[-1][1] is module:
            stack.pop()

    # -- where --
    def _locate(self) -> tuple:
        """(qualified name or None, innermost module, root module, 'file:line in fn') for the op
        being run now; names found on the Python stack are resolved only if an error needs
        them."""
        if self._stack:  # the model's hooks know the innermost module and its name
            where, _ = _walk_stack(False)
            name, m = self._stack[-1]
            return name, m, self.model, where
        where, frames = _walk_stack(True)
        if frames:
            return None, frames[0], frames[-1], where
        return None, None, None, where

    # -- called by Op.apply and the engine --
    def forward(self, cls, ctx, args, out) -> None:
        located = self._locate()
        ctx._anomaly_where = located
        if not self.check_forward:
            return
        bad = _count_bad(out)
        if bad is None:
            return
        kind = bad[0]
        if kind == "inf" and not self._inf_is_new_or_in_parameter(args):
            return  # an infinity passed on from an input (a -inf attention mask, say)
        self._raise(cls.__name__, "forward", bad, located, args, out, None)

    @staticmethod
    def _inf_is_new_or_in_parameter(args) -> bool:
        Tensor = _fn.Tensor
        from_input = False
        for a in args:
            data = a._data if isinstance(a, Tensor) else a
            if _has_inf(data):
                if isinstance(a, Tensor) and a._ctx is None and a._requires_grad:
                    return True  # a parameter holds an infinity
                from_input = True
        return not from_input

    def backward(self, ctx, grad, pgrads) -> None:
        if not self.check_backward:
            return
        located = ctx.__dict__.get("_anomaly_where") or (None, None, None, None)
        incoming = _count_bad(grad)
        if incoming is not None:
            self._raise(ctx.fn.__name__, "backward", incoming, located, ctx.parents, None, grad,
                        incoming=True)
        for i, gp in enumerate(pgrads):
            bad = _count_bad(gp)
            if bad is not None:
                self._raise(ctx.fn.__name__, "backward", bad, located, ctx.parents, None, grad,
                            index=i, gp=gp)

    # -- the message --
    def _raise(self, op, pass_, bad, located, args, out, grad, index=None, gp=None,
               incoming=False):
        kind, n_bad, size = bad
        name, module, root, where = located
        if name is None and module is not None:
            name = _qualified(module, root)
        mclass = None if module is None else type(module).__name__
        root = None if root is None else type(root).__name__
        Tensor = _fn.Tensor
        in_shapes = [_shape(a) for a in (args or ()) if _shape(a) is not None]
        shapes = {"inputs": in_shapes}
        if pass_ == "forward":
            shapes["output"] = _shape(out)
            head = (f"detect_anomaly: the forward of {op} produced {kind} in {n_bad} of {size} "
                    f"values")
            io = (f"{', '.join(map(str, in_shapes)) or 'no tensor inputs'} -> output "
                  f"{shapes['output']}")
        elif incoming:
            shapes["grad_output"] = _shape(grad)
            head = (f"detect_anomaly: the gradient arriving at the backward of {op} holds {kind} "
                    f"in {n_bad} of {size} values (the sum of its consumers' gradients overflowed,"
                    " or a hook or the backward() seed gave it)")
            io = f"grad_output {shapes['grad_output']}"
        else:
            shapes["grad_output"] = _shape(grad)
            shapes["grad_input"] = _shape(gp)
            head = (f"detect_anomaly: the backward of {op} returned {kind} in {n_bad} of {size} "
                    f"values of its gradient wrt input {index}")
            io = (f"inputs {', '.join(map(str, in_shapes))}; grad_output {shapes['grad_output']}"
                  f" (finite) -> grad_input[{index}] {shapes['grad_input']}")
        lines = [head, f"  op:      {op} ({pass_}), {io}"]
        if mclass is not None:
            label = f"{name} ({mclass})" if name else f"the model itself ({mclass})"
            if root is not None and name:
                label += f" in {root}"
            lines.append(f"  module:  {label}")
        else:
            lines.append("  module:  none (the op ran outside any nn.Module"
                         + (", or its forward was not run under detect_anomaly)"
                            if pass_ == "backward" else ")"))
        if where:
            lines.append(f"  code:    {where}" + (" (forward call)" if pass_ == "backward" else ""))
        if pass_ == "forward":
            sources = []
            for i, a in enumerate(args):
                data = a._data if isinstance(a, Tensor) else a
                b = _count_bad(data) if hasattr(data, "dtype") else (
                    ("nan" if data != data else "inf", 1, 1)
                    if isinstance(data, float) and not np.isfinite(data) else None)
                if b is not None:
                    what = ("a parameter" if isinstance(a, Tensor) and a._ctx is None
                            and a._requires_grad else
                            "a leaf tensor (input data?)" if isinstance(a, Tensor)
                            and a._ctx is None else
                            f"the output of {a._ctx.fn.__name__}" if isinstance(a, Tensor)
                            else "a scalar argument")
                    sources.append(f"input {i} ({what}) already held {b[0]} in {b[1]} values")
            if sources:
                lines.append("  cause:   " + "; ".join(sources))
            else:
                lines.append("  cause:   the inputs were finite: this op created the value")
        if op in _HINTS:
            lines.append(f"  hint:    {_HINTS[op]}")
        raise AnomalyError("\n".join(lines), op=op, pass_=pass_, kind=kind, shapes=shapes,
                           module=name, module_class=mclass, where=where)
