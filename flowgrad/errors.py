"""Exceptions raised by flowgrad. Every message names the operation, what was given and what was
expected (and, when there is one, the fix)."""


class ShapeError(ValueError):
    """Operands whose shapes do not fit the operation."""


class DTypeError(TypeError):
    """Operands whose dtypes do not fit the operation."""


class DeviceError(RuntimeError):
    """Operands that live on different devices."""


class GraphError(RuntimeError):
    """Misuse of the flow graph: freed graphs, in-place changes to saved values, bad seeds."""
