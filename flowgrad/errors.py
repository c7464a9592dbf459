"""Exceptions raised by flowgrad. Every message names the operation, what was given and what was
expected (and, when there is one, the fix)."""


class ShapeError(ValueError):
    """Operands whose shapes do not fit the operation."""


class DTypeError(TypeError, RuntimeError):
    """Operands whose dtypes do not fit the operation. A TypeError, and a RuntimeError like the
    errors PyTorch raises for the same cases (mixed dtypes in matmul, integer softmax), so code
    written against either catches it."""


class DeviceError(RuntimeError):
    """Operands that live on different devices."""


class GraphError(RuntimeError):
    """Misuse of the flow graph: freed graphs, in-place changes to saved values, bad seeds."""
