"""Parameter: a Tensor that a Module registers as learnable (PyTorch's ``nn.Parameter``)."""

from __future__ import annotations

from ..tensor import Tensor, as_tensor

__all__ = ["Parameter"]


class Parameter(Tensor):
    """A leaf tensor that requires grad by default and that ``Module.__setattr__`` registers.

    It shares memory with ``data`` (a Tensor or an array; other data go through
    ``fg.as_tensor``), and keeps its dtype.

    Example:
        >>> w = nn.Parameter(fg.zeros(3, 4))
        >>> w.requires_grad, w.is_leaf
        (True, True)
    """

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True) -> None:
        if data is None:
            arr = as_tensor([])._data
        elif isinstance(data, Tensor):
            arr = data._data
        else:
            arr = as_tensor(data)._data
        self._data = arr
        self.grad = None
        self._ctx = None
        self._version = 0
        self._hooks = None
        self._retains_grad = False
        self._requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        return (Parameter, (Tensor._wrap(self._data, None, False), self._requires_grad))

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(self._data.copy(), self._requires_grad)
        if self.grad is not None:
            out.grad = Tensor._wrap(self.grad._data.copy(), None, False)
        memo[id(self)] = out
        return out
