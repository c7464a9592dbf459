"""The training loop: ``fit`` (a function) and ``Trainer`` (the same, configured once).

One epoch is the plain loop every PyTorch user writes (``train_epoch`` below); ``fit`` adds what
the lecture's practice asks for around it: validation each epoch, learning curves, schedules,
early stopping on the validation loss, and checkpoints that resume a run bit for bit.

Under ``mpirun`` (a process group initialised, the model wrapped in DistributedDataParallel, the
loaders sharded by DistributedSampler) the same loop trains data-parallel: every metric is the
mean over the examples of all ranks, only rank 0 shows progress and writes checkpoints, curves
and results, and every rank resumes from the one checkpoint.
"""

from __future__ import annotations

import math
import numbers
import os
import shutil
import time
from dataclasses import dataclass, field

from ..autograd import no_grad
from ..distributed.ranks import average_across_ranks, is_main_process, world_size_or_one
from ..nn.utils import clip_grad_norm_
from ..serialization import atomic_write
from .checkpoint import load_checkpoint, rng_state, save_checkpoint
from .history import History
from .metrics import RunningAverage, get_metric

__all__ = ["fit", "Trainer", "TrainState", "EarlyStopping", "TensorBoardLogger", "train_epoch",
           "evaluate"]

LAST, BEST = "last.safetensors", "best.safetensors"


# --- pieces of the loop -------------------------------------------------------------------------

def _split(batch):
    """(inputs, target) from a loader's batch (x, y) or (x1, ..., xk, y)."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return tuple(batch[:-1]), batch[-1]
    got = f"a {type(batch).__name__}" + (f" of length {len(batch)}"
                                         if isinstance(batch, (tuple, list)) else "")
    raise TypeError(f"fit: expected each batch to be (input, target), got {got}; a "
                    f"DataLoader over TensorDataset(x, y) gives that")


def _forward(model, loss_fn, inputs, target):
    """(output, loss); with loss_fn=None the model computes it: model(x, y) -> (output, loss)."""
    if loss_fn is None:
        return model(*inputs, target)
    output = model(*inputs)
    return output, loss_fn(output, target)


def _size(target) -> int:
    shape = getattr(target, "shape", None)
    return int(shape[0]) if shape else 1


def train_epoch(model, loader, loss_fn, optimizer, metrics=None, max_grad_norm=None,
                on_step=None) -> dict:
    """One pass of minibatch SGD over ``loader``; returns the mean loss and metrics (lecture:
    "Iterative training by SGD")."""
    metrics = metrics or {}
    means = {"loss": RunningAverage(), **{name: RunningAverage() for name in metrics}}
    model.train()
    for batch in loader:
        inputs, target = _split(batch)
        optimizer.zero_grad()
        output, loss = _forward(model, loss_fn, inputs, target)
        value = loss.item()
        if not math.isfinite(value):  # stop before the update spreads it to every weight
            raise FloatingPointError(f"fit: the training loss became {value}; lower the "
                                     f"learning rate, clip gradients (max_grad_norm) or check the "
                                     f"data for NaNs (lecture: \"Debugging\")")
        loss.backward()
        if max_grad_norm is not None:
            clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()

        step = {"loss": value, **{k: fn(output, target) for k, fn in metrics.items()}}
        n = _size(target)
        for k, v in step.items():
            means[k].update(v, n)
        if on_step is not None:
            on_step(step, means)
    return _across_ranks(means)


def evaluate(model, loader, loss_fn, metrics=None) -> dict:
    """Mean loss and metrics over ``loader`` in eval mode, recording no graph (lecture:
    "Validate and Analyze")."""
    metrics = metrics or {}
    means = {"loss": RunningAverage(), **{name: RunningAverage() for name in metrics}}
    was_training = getattr(model, "training", True)
    model.eval()
    with no_grad():
        for batch in loader:
            inputs, target = _split(batch)
            output, loss = _forward(model, loss_fn, inputs, target)
            n = _size(target)
            means["loss"].update(loss.item(), n)
            for k, fn in metrics.items():
                means[k].update(fn(output, target), n)
    model.train(was_training)
    return _across_ranks(means)


def _across_ranks(means: dict) -> dict:
    """Each running mean as a float; in a data-parallel run, the mean over every rank's
    examples (the same numbers on every rank, so that every rank takes the same decisions)."""
    return average_across_ranks({k: m.average for k, m in means.items()},
                                {k: m.count for k, m in means.items()})


def _set_epoch(loader, epoch: int) -> None:
    """A DistributedSampler (or any sampler with set_epoch) draws epoch ``epoch``'s order."""
    sampler = getattr(loader, "sampler", None)
    if callable(getattr(sampler, "set_epoch", None)):
        sampler.set_epoch(epoch)


def _barrier() -> None:
    """Wait for every rank (a no-op in a single process): rank 0's files are complete."""
    if world_size_or_one() > 1:
        from ..distributed import barrier

        barrier()


def _with_error(prefix: str, values: dict) -> dict:
    out = {f"{prefix}_{k}": v for k, v in values.items()}
    if "accuracy" in values:
        out[f"{prefix}_error"] = 1.0 - values["accuracy"]
    return out


def _lr(optimizer):
    groups = getattr(optimizer, "param_groups", None)
    return groups[0]["lr"] if groups else None


def _is_plateau(scheduler) -> bool:
    return any(c.__name__ == "ReduceLROnPlateau" for c in type(scheduler).__mro__)


def _copy_state(state: dict) -> dict:
    return {k: v.detach().clone() if hasattr(v, "detach") else
            v.copy() if hasattr(v, "copy") else v for k, v in state.items()}


# --- early stopping, run state, callbacks -------------------------------------------------------

class EarlyStopping:
    """Stop when the validation loss has not improved by min_delta for ``patience`` epochs, and
    keep the best parameters (early stopping as regularisation; Bengio 2012, "Practical
    recommendations")."""

    def __init__(self, patience: int = 5, min_delta: float = 0.0, restore_best: bool = True):
        self.patience, self.min_delta, self.restore_best = patience, min_delta, restore_best
        self.best, self.best_epoch, self.bad_epochs = math.inf, None, 0

    def update(self, value: float, epoch: int) -> bool:
        """Record one epoch's validation loss; True when it is a new best."""
        if value < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]
        self.bad_epochs = state["bad_epochs"]


@dataclass
class TrainState:
    """What callbacks see: the objects being trained, the history, and a ``stop`` flag to set."""

    model: object
    optimizer: object
    scheduler: object = None
    history: History = field(default_factory=History)
    epoch: int = 0
    stop: bool = False
    best_loss: float = math.inf
    best_epoch: int | None = None
    logs: dict = field(default_factory=dict)


def _call(callbacks, hook: str, *args) -> None:
    """Run ``hook`` on each callback object; a plain function is an on_epoch_end(state, logs)."""
    for cb in callbacks:
        fn = getattr(cb, hook, None)
        if fn is None and hook == "on_epoch_end" and callable(cb) and not isinstance(cb, type):
            fn = cb
        if fn is not None:
            fn(*args)


class TensorBoardLogger:
    """A callback writing each epoch's logs to TensorBoard at step = epoch: ``train/<name>`` and
    ``valid/<name>`` (loss, metrics, error), ``lr``. ``writer`` is a
    ``flowgrad.utils.tensorboard.SummaryWriter`` (flushed, left open) or a log directory (a
    writer made here, closed when training ends). ``fit(..., tensorboard=...)`` adds one."""

    def __init__(self, writer) -> None:
        self.owned = isinstance(writer, (str, os.PathLike))
        if self.owned:
            from ..utils.tensorboard import SummaryWriter

            writer = SummaryWriter(os.fspath(writer))
        self.writer = writer

    def on_epoch_end(self, state: TrainState, logs: dict) -> None:
        for key, value in logs.items():
            if key in ("epoch", "seconds") or isinstance(value, bool) or not isinstance(
                    value, numbers.Real):  # lr is None without param_groups
                continue
            split, _, name = key.partition("_")
            tag = f"{split}/{name}" if split in ("train", "valid") and name else key
            self.writer.add_scalar(tag, value, state.epoch)
        self.writer.flush()

    def on_train_end(self, state: TrainState) -> None:  # noqa: ARG002 - the callback interface
        if self.owned:
            self.writer.close()
        else:
            self.writer.flush()


def _progress_bar(loader, epoch: int, epochs: int, enabled: bool):
    if not enabled or not is_main_process():
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(total=total, desc=f"epoch {epoch}/{epochs}", unit="batch", dynamic_ncols=True,
                leave=True)


class _StepLogger:
    """Per-step bookkeeping for fit: the History record, the bar's live readout, callbacks."""

    def __init__(self, state: TrainState, loader, bar, callbacks) -> None:
        self.state, self.bar, self.callbacks, self.index = state, bar, callbacks, 0
        self.n_batches = len(loader) if hasattr(loader, "__len__") else None

    def __call__(self, step: dict, means: dict) -> None:
        self.index += 1
        where = {"epoch": self.state.epoch}
        if self.n_batches:
            where["fraction"] = self.index / self.n_batches
        record = self.state.history.log_step(**where, **step)
        if self.bar is not None:
            self.bar.set_postfix(_postfix({k: m.average for k, m in means.items()}),
                                 refresh=False)
            self.bar.update()
        _call(self.callbacks, "on_step_end", self.state, record)


def _show(bar, progress: bool, epoch: int, epochs: int, logs: dict) -> None:
    if bar is not None:
        bar.set_postfix(_postfix(logs))
        bar.close()
    elif progress and is_main_process():
        print(f"epoch {epoch}/{epochs}: " + ", ".join(f"{k} {v}" for k, v in
                                                    _postfix(logs).items()), flush=True)


def _postfix(logs: dict) -> dict:
    short = {"train_loss": "loss", "train_accuracy": "acc", "valid_loss": "val_loss",
             "valid_accuracy": "val_acc", "loss": "loss", "accuracy": "acc"}
    return {short[k]: f"{v:.4f}" for k, v in logs.items() if k in short}


# --- checkpoints of a run -----------------------------------------------------------------------

def _save_run(directory, state: TrainState, stopper, loaders, improved: bool) -> None:
    if not is_main_process():  # one checkpoint for every rank, written by rank 0
        return
    os.makedirs(directory, exist_ok=True)
    last = os.path.join(directory, LAST)
    trainer = {"best_loss": state.best_loss, "best_epoch": state.best_epoch, "stopped": state.stop,
               "early_stopping": stopper.state_dict() if stopper else None}
    save_checkpoint(last, state.model, state.optimizer, state.scheduler, state.epoch,
                    state.history, rng_state(*loaders), {"trainer": trainer})
    if improved:
        with open(last, "rb") as src:
            atomic_write(os.path.join(directory, BEST), lambda dst: shutil.copyfileobj(src, dst))


def _resume(resume, directory, state: TrainState, stopper, loaders) -> None:
    if isinstance(resume, (str, os.PathLike)):
        path = os.fspath(resume)
    elif directory is not None:
        path = os.path.join(directory, LAST)
        if not os.path.exists(path):
            return  # nothing saved yet: a fresh run
    else:
        raise ValueError("fit(resume=True) needs checkpoint_dir (or resume='path/to/ckpt')")
    ckpt = load_checkpoint(path, state.model, state.optimizer, state.scheduler, state.history,
                           loaders=loaders)
    trainer = ckpt.get("extra", {}).get("trainer", {})
    state.epoch = int(ckpt["epoch"] or 0)
    state.best_loss = trainer.get("best_loss", math.inf)
    state.best_epoch = trainer.get("best_epoch")
    state.stop = bool(trainer.get("stopped", False))
    if stopper is not None and trainer.get("early_stopping"):
        stopper.load_state_dict(trainer["early_stopping"])


def _finish(state: TrainState, stopper, best_params, directory) -> None:
    """Put the best parameters back (early stopping) and write the curves next to the run."""
    if stopper is not None and stopper.restore_best and stopper.best_epoch not in (None,
                                                                                   state.epoch):
        if best_params is not None:
            state.model.load_state_dict(best_params)
        elif directory is not None:
            _barrier()  # rank 0 has finished writing the best checkpoint
            if os.path.exists(os.path.join(directory, BEST)):
                load_checkpoint(os.path.join(directory, BEST), state.model, restore_rng=False)
    if directory is not None and state.history.epochs and is_main_process():
        os.makedirs(directory, exist_ok=True)
        state.history.to_csv(os.path.join(directory, "history.csv"))
        state.history.to_csv(os.path.join(directory, "history_steps.csv"), steps=True)
        state.history.plot(os.path.join(directory, "curves.png"))


# --- fit ----------------------------------------------------------------------------------------

def fit(model, train_loader, loss_fn, optimizer, epochs: int, valid_loader=None, scheduler=None,
        metrics=("accuracy",), callbacks=(), checkpoint_dir=None, resume=False,
        early_stopping=None, progress: bool = True, max_grad_norm=None,
        history: History | None = None, tensorboard=None) -> History:
    """Train for ``epochs`` epochs (in total, counting resumed ones), validating each epoch;
    returns the History (lecture: "Iterative training by SGD", "Debugging"). ``tensorboard``
    (a log directory or a SummaryWriter) logs each epoch there (``TensorBoardLogger``)."""
    if tensorboard is not None:
        callbacks = (*callbacks, TensorBoardLogger(tensorboard))
    metric_fns = dict(get_metric(m) for m in metrics)
    stopper = (EarlyStopping(early_stopping) if isinstance(early_stopping, int)
               else early_stopping)
    if stopper is not None and valid_loader is None:
        raise ValueError("fit: early_stopping watches the validation loss; pass valid_loader "
                         "(a held-out set, never the training data)")
    state = TrainState(model, optimizer, scheduler, history if history is not None else History())
    state.epoch = state.history.last.get("epoch", 0)
    loaders = (train_loader, valid_loader)
    if resume:
        _resume(resume, checkpoint_dir, state, stopper, loaders)
    best_params = None  # in memory, for EarlyStopping.restore_best

    _call(callbacks, "on_train_begin", state)
    while state.epoch < epochs and not state.stop:
        state.epoch += 1
        start = time.perf_counter()
        _call(callbacks, "on_epoch_begin", state)
        _set_epoch(train_loader, state.epoch - 1)
        bar = _progress_bar(train_loader, state.epoch, epochs, progress)
        logs = {"lr": _lr(optimizer)}
        logs.update(_with_error("train", train_epoch(
            model, train_loader, loss_fn, optimizer, metric_fns, max_grad_norm,
            _StepLogger(state, train_loader, bar, callbacks))))
        if valid_loader is not None:
            logs.update(_with_error("valid", evaluate(model, valid_loader, loss_fn, metric_fns)))
        logs["seconds"] = time.perf_counter() - start
        state.logs = state.history.log_epoch(state.epoch, **logs)
        _show(bar, progress, state.epoch, epochs, logs)

        monitored = logs.get("valid_loss", logs["train_loss"])
        if scheduler is not None and _is_plateau(scheduler):
            scheduler.step(monitored)  # ReduceLROnPlateau watches the validation loss
        elif scheduler is not None:
            scheduler.step()
        improved = monitored < state.best_loss
        if improved:
            state.best_loss, state.best_epoch = monitored, state.epoch
        if stopper is not None:
            if stopper.update(monitored, state.epoch) and stopper.restore_best:
                best_params = _copy_state(model.state_dict())
            state.stop = stopper.should_stop
        if checkpoint_dir is not None:
            _save_run(checkpoint_dir, state, stopper, loaders, improved)
        _call(callbacks, "on_epoch_end", state, state.logs)

    _finish(state, stopper, best_params, checkpoint_dir)
    _call(callbacks, "on_train_end", state)
    return state.history


class Trainer:
    """fit() configured once: ``Trainer(model, loss_fn, optimizer).fit(loader, epochs=10)``;
    successive fit calls continue the same history."""

    def __init__(self, model, loss_fn, optimizer, scheduler=None, metrics=("accuracy",),
                 callbacks=(), checkpoint_dir=None, early_stopping=None, progress: bool = True,
                 max_grad_norm=None, tensorboard=None) -> None:
        self.model, self.loss_fn, self.optimizer, self.scheduler = (model, loss_fn, optimizer,
                                                                    scheduler)
        self.metrics, self.callbacks = tuple(metrics), tuple(callbacks)
        self.checkpoint_dir, self.progress, self.max_grad_norm = (checkpoint_dir, progress,
                                                                  max_grad_norm)
        self.early_stopping = (EarlyStopping(early_stopping) if isinstance(early_stopping, int)
                               else early_stopping)
        self.history = History()
        self.tensorboard = tensorboard

    def fit(self, train_loader, epochs: int, valid_loader=None, resume=False) -> History:
        """Train ``epochs`` more epochs (with resume, up to ``epochs`` in total)."""
        total = epochs if resume else len(self.history) + epochs
        return fit(self.model, train_loader, self.loss_fn, self.optimizer, total, valid_loader,
                   self.scheduler, self.metrics, self.callbacks, self.checkpoint_dir, resume,
                   self.early_stopping, self.progress, self.max_grad_norm, self.history,
                   tensorboard=self.tensorboard)

    def evaluate(self, loader) -> dict:
        """Mean loss and metrics over ``loader`` (eval mode, no graph)."""
        return evaluate(self.model, loader, self.loss_fn,
                        dict(get_metric(m) for m in self.metrics))

    def save_checkpoint(self, path, loaders=(), extra=None) -> None:
        save_checkpoint(path, self.model, self.optimizer, self.scheduler,
                        self.history.last.get("epoch", 0), self.history, rng_state(*loaders),
                        extra)

    def load_checkpoint(self, path, loaders=(), map_location=None) -> dict:
        return load_checkpoint(path, self.model, self.optimizer, self.scheduler, self.history,
                               loaders=loaders, map_location=map_location)

