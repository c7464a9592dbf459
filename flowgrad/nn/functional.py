from ..tensor import Tensor  # noqa: F401
