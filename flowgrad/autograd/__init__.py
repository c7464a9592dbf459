"""Automatic differentiation (lecture: "Automatic Differentiation"): the Function node type,
the backward engine, grad-mode switches, and gradient checking."""

from __future__ import annotations

from . import grad_mode
from .function import Function
from .grad_mode import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, gradcheck, numerical_grad
from .op import Context

__all__ = ["Function", "Context", "backward", "grad", "gradcheck", "numerical_grad",
           "GradcheckError", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "grad_mode"]


def backward(tensors, grad_tensors=None, retain_graph: bool | None = None) -> None:
    """Back-propagate from several outputs at once, accumulating into the leaves' ``.grad``."""
    from ..tensor import Tensor, _seed
    from .engine import run_backward

    tensors = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    if grad_tensors is None:
        grad_tensors = [None] * len(tensors)
    elif isinstance(grad_tensors, Tensor):
        grad_tensors = [grad_tensors]
    seeds = [_seed(t, g, "backward") for t, g in zip(tensors, grad_tensors)]
    run_backward(tensors, seeds, bool(retain_graph))


def grad(outputs, inputs, grad_outputs=None, retain_graph: bool | None = None,
         create_graph: bool = False, allow_unused: bool = False, materialize_grads: bool = False):
    """Gradients of ``outputs`` wrt ``inputs``, returned as a tuple; ``.grad`` is not touched.

    Example:
        >>> (gx,) = fg.autograd.grad((x ** 2).sum(), x)
    """
    from ..errors import GraphError
    from ..tensor import Tensor, _seed
    from .engine import run_backward

    if create_graph:
        raise GraphError("grad: create_graph=True (higher-order gradients) is not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise GraphError(f"grad: input {i} does not require grad")
    roots = [o for o in outputs if o.requires_grad]
    if not roots:
        raise GraphError("grad: none of the outputs requires grad (no graph was recorded)")
    seeds = [_seed(o, g, "grad") for o, g in zip(outputs, grad_outputs) if o.requires_grad]
    capture = {id(t): None for t in inputs}
    run_backward(roots, seeds, bool(retain_graph), capture)
    result = []
    for i, t in enumerate(inputs):
        g = capture[id(t)]
        if g is None:
            if materialize_grads:
                g = t.xp.zeros_like(t._data)
            elif not allow_unused:
                raise GraphError(f"grad: input {i} (shape {tuple(t.shape)}) was not used to "
                                 "compute the outputs; pass allow_unused=True to get None for it")
        result.append(None if g is None else Tensor._wrap(g, None, False))
    return tuple(result)


def __getattr__(name: str):
    """``fg.autograd.detect_anomaly`` is flowgrad.debug's, imported on first use."""
    if name in ("detect_anomaly", "AnomalyError"):
        from ..debug import anomaly

        return getattr(anomaly, name)
    raise AttributeError(f"module 'flowgrad.autograd' has no attribute {name!r}")
