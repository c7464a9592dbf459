"""``fg.backends.cuda``: whether the CUDA path (CuPy) is present, and the TF32 flag (recorded)."""

from types import SimpleNamespace

from .. import backend

matmul = SimpleNamespace(allow_tf32=False, allow_fp16_reduced_precision_reduction=True)


def is_built() -> bool:
    return backend.cupy is not None
