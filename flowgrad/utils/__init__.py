"""PyTorch's ``torch.utils`` surface: ``flowgrad.utils.data`` (Dataset, DataLoader, samplers)
and ``flowgrad.utils.tensorboard`` (SummaryWriter; import it by name, as in PyTorch: it needs
the optional ``tensorboard`` package)."""

from . import data

__all__ = ["data"]
