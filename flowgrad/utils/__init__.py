"""PyTorch's ``torch.utils`` surface: ``flowgrad.utils.data`` (Dataset, DataLoader, samplers)."""

from . import data

__all__ = ["data"]
