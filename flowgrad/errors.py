"""Exceptions raised by flowgrad. Every message names the operation, what was given and what was
expected (and, when there is one, the fix)."""


class ShapeError(ValueError, RuntimeError):
    """Operands whose shapes do not fit the operation. A ValueError, and a RuntimeError like the
    errors PyTorch raises for bad sizes and shape mismatches (PyTorch raises ValueError for a few,
    such as a loss's target of the wrong size), so code written against either catches it."""


class DTypeError(TypeError, NotImplementedError):
    """Operands whose dtypes do not fit the operation. A TypeError, and a RuntimeError like the
    errors PyTorch raises for the same cases (mixed dtypes in matmul), so code written against
    either catches it; a NotImplementedError (a RuntimeError) too, which PyTorch raises when a
    kernel has no version for a dtype (integer softmax: "not implemented for 'Long'")."""


class ValueRangeError(ValueError, RuntimeError):
    """Values outside what the operation accepts (binary_cross_entropy's probabilities outside
    [0, 1]): a ValueError, and the RuntimeError PyTorch raises."""


class IndexOutOfRangeError(IndexError, RuntimeError):
    """An index (a gather/index_select index, a target class) outside its dimension: PyTorch
    raises IndexError for some ops and RuntimeError for others; this is both."""


class DeviceError(RuntimeError):
    """Operands that live on different devices."""


class GraphError(RuntimeError):
    """Misuse of the flow graph: freed graphs, in-place changes to saved values, bad seeds."""
