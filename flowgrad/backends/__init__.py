"""``fg.backends``: PyTorch's backend flags (``fg.backends.cudnn.benchmark = True`` ...), accepted
so that training scripts run unchanged; flowgrad's kernels are NumPy's and CuPy's, so the flags
are recorded and have no effect. ``fg.backends.cpu`` reports the CPU's vector capability and sets
how freed array memory is reused (see its docstring)."""

from . import cpu, cuda, cudnn, mps

__all__ = ["cpu", "cuda", "cudnn", "mps"]
