"""User-defined differentiable ops with PyTorch's ``torch.autograd.Function`` interface.

forward and backward see Tensors (forward runs without recording); ``ctx.save_for_backward``
and ``ctx.saved_tensors``, ``ctx.needs_input_grad`` work as in PyTorch::

    class Exp(fg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    y = Exp.apply(x)
"""

from __future__ import annotations

from . import grad_mode
from .op import Op


def _wrap(a):
    from ..tensor import Tensor

    if a is None or not hasattr(a, "shape") or isinstance(a, Tensor):
        return a
    return Tensor._wrap(a, None, False)


def _unwrap(t):
    from ..tensor import Tensor

    return t._data if isinstance(t, Tensor) else t


class Function(Op):
    """Base class for user-written ops whose forward/backward take and return Tensors."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        user_forward = cls.__dict__.get("forward")
        user_backward = cls.__dict__.get("backward")
        if user_forward is not None:
            fwd = user_forward.__func__ if isinstance(user_forward, staticmethod) else user_forward

            def forward(ctx, *args, _fwd=fwd):
                with grad_mode.no_grad():
                    out = _fwd(ctx, *[_wrap(a) for a in args])
                return _unwrap(out)

            cls.forward = staticmethod(forward)
        if user_backward is not None:
            bwd = user_backward.__func__ if isinstance(user_backward, staticmethod) \
                else user_backward

            def backward(ctx, grad, _bwd=bwd):
                with grad_mode.no_grad():
                    out = _bwd(ctx, _wrap(grad))
                if isinstance(out, tuple):
                    return tuple(_unwrap(g) for g in out)
                return _unwrap(out)

            cls.backward = staticmethod(backward)
