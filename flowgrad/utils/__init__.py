"""PyTorch's ``torch.utils`` surface: ``flowgrad.utils.data`` (Dataset, DataLoader, samplers)."""

from . import data  # noqa: F401

__all__ = ["data"]
