"""PyTorch's ``torch.utils.tensorboard``: ``SummaryWriter`` writes TensorBoard event files
(scalars, histograms, images, matplotlib figures, text, hyperparameters) from flowgrad Tensors,
NumPy arrays and Python numbers.

It needs only the ``tensorboard`` package (``pip install "flowgrad[tensorboard]"``), never
TensorFlow or PyTorch; this module imports without it, and creating a writer says what to install.

    >>> from flowgrad.utils.tensorboard import SummaryWriter
    >>> with SummaryWriter("runs/exp1") as w:
    ...     w.add_scalar("loss/train", 0.25, global_step=1)
"""

from .writer import FileWriter, SummaryWriter

__all__ = ["SummaryWriter", "FileWriter"]
