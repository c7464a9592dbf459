"""``fg.backends``: PyTorch's backend flags (``fg.backends.cudnn.benchmark = True`` ...), accepted
so that training scripts run unchanged; flowgrad's kernels are NumPy's and CuPy's, so the flags
are recorded and have no effect."""

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]
