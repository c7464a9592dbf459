"""Training: the fit loop and Trainer, History and learning curves, metrics, checkpoints that
resume bit for bit (lecture: "Iterative training by SGD", "Debugging", "Validate and Analyze")."""

from . import metrics
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .history import History
from .trainer import (
    EarlyStopping,
    TensorBoardLogger,
    Trainer,
    TrainState,
    evaluate,
    fit,
    train_epoch,
)

__all__ = ["fit", "Trainer", "TrainState", "EarlyStopping", "History", "save_checkpoint",
           "load_checkpoint", "rng_state", "set_rng_state", "metrics", "train_epoch", "evaluate",
           "TensorBoardLogger"]
