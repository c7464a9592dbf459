"""What every recipe shares: the results files, the machine's description, evaluation."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import flowgrad as fg


def summary_machine() -> str:
    """The machine line of a summary written from the cells of earlier runs (train=False):
    the cells ran where their runs did, which may be other machines than this one."""
    return ("each cell on the machine of the run that wrote it (the commands listed below); "
            f"this summary written on {machine()}")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    from ..distributed.ranks import world_size_or_one

    ranks = world_size_or_one()
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"NumPy {np.__version__}, {threads()}"
            + (f", {ranks} MPI ranks (data-parallel)" if ranks > 1 else ""))


def threads() -> str:
    """The BLAS/OpenMP thread counts this process runs with (the environment's settings and
    what the BLAS library reports)."""
    parts = [f"{k}={os.environ[k]}" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "MKL_NUM_THREADS") if k in os.environ]
    try:
        from threadpoolctl import threadpool_info

        blas = [f"{i.get('internal_api')} {i.get('num_threads')} threads"
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # threadpoolctl is optional
        blas = []
    return "; ".join(dict.fromkeys(parts + blas)) or "default threads"


# --- where a run writes, and the command line that reproduces it ------------------------------

PUBLISHED = "results"  # what the README links to; written only by an explicit choice (--publish)
CLI_OPTIONS = {"epochs": "--epochs", "steps": "--steps", "lr": "--lr",
               "batch_size": "--batch-size", "seed": "--seed", "seeds": "--seeds"}
NOT_OPTIONS = ("out", "quick", "progress", "write", "ignored")


def run_dir(name: str, root: str | os.PathLike = "runs") -> Path:
    """A fresh directory for one run of recipe ``name``: runs/<name>-<YYYYmmdd-HHMMSS>[-k]."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{name}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = Path(f"{base}-{k}")
    return path


def resolve_out(name: str, out) -> str:
    """``out`` if given, else a new run directory (never results/ by default)."""
    return str(out) if out is not None else str(run_dir(name))


def _format(value) -> str:
    if isinstance(value, (list, tuple)):  # a one-element tuple keeps its comma: "0.5,"
        return ",".join(_format(v) for v in value) + ("," if len(value) == 1 else "")
    return repr(value) if isinstance(value, str) else str(value)


def command_line(name: str, run, values: dict) -> str:
    """The ``flowgrad train`` command that reproduces a call of recipe ``name``'s ``run`` with
    ``values`` (its arguments): every argument that differs from its default, as the CLI's
    option (--epochs, --lr, ...) or as --set key=value; --quick for the short variant."""
    import inspect

    parts = ["flowgrad", "train", name]
    for key, param in inspect.signature(run).parameters.items():
        if key in NOT_OPTIONS or key not in values or param.kind is param.VAR_KEYWORD:
            continue
        value = values[key]
        if param.default is not param.empty and _same(value, param.default):
            continue
        if key in CLI_OPTIONS and not isinstance(value, (list, tuple, str)):
            parts += [CLI_OPTIONS[key], _format(value)]
        else:
            parts += ["--set", f"{key}={_format(value)}"]
    if values.get("quick"):
        parts.append("--quick")
    from ..distributed.ranks import world_size_or_one

    ranks = world_size_or_one()
    return " ".join((["mpirun", "-n", str(ranks)] if ranks > 1 else []) + parts)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b if not isinstance(a, (int, float)) else a == b


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


@fg.no_grad()
def evaluate(model, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> dict:
    """Loss and error rate of ``model`` on arrays (x, y), in eval mode, by batches."""
    was_training = model.training
    model.eval()
    total_loss, wrong = 0.0, 0
    for s in range(0, len(x), batch_size):
        xb, yb = fg.from_numpy(x[s:s + batch_size]), fg.from_numpy(y[s:s + batch_size])
        logits = model(xb)
        total_loss += fg.nn.functional.cross_entropy(logits, yb, reduction="sum").item()
        wrong += int((logits.argmax(-1).numpy() != y[s:s + batch_size]).sum())
    model.train(was_training)
    return {"loss": total_loss / len(x), "error": wrong / len(x)}


def write_results(name: str, out: str | os.PathLike, summary: dict, table: list[tuple],
                  notes: str = "", figures: tuple = ()) -> Path:
    """results/<name>.json (machine-readable) and results/<name>.md (ours beside published)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"machine": machine(), **summary}  # a rewritten run keeps the machine it ran on
    (out / f"{name}.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    lines = [f"# {summary.get('title', name)}", "",
             "| measure | flowgrad (this run) | published |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in table]
    lines += ["", f"Command: `{summary['command']}`  ", f"Seed: {summary['seed']}  ",
              f"Wall time: {summary['seconds']:.0f} s  ", f"Machine: {summary['machine']}", ""]
    for fig in figures:
        lines.append(f"![{Path(fig).stem}]({Path(fig).name})")
    if notes:
        lines += ["", notes.strip()]
    path = out / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_cell(cells: str | os.PathLike, key: str, setup: dict, recipe: str,
              own: tuple = ()) -> dict | None:
    """A finished cell ``cells/<key>.json`` of a recipe whose grid runs as separate processes
    into one output directory, or None when it is not there; a cell written with other
    settings than ``setup`` is an error (its numbers would not be comparable), except in the
    settings named in ``own``, which each cell may have its own of (a per-model budget)."""
    path = Path(cells) / f"{key}.json"
    if not path.exists():
        return None
    cell = json.loads(path.read_text())
    theirs = {k: v for k, v in (cell.get("setup") or {}).items() if k not in own}
    ours = {k: v for k, v in json.loads(json.dumps(setup, default=float)).items() if k not in own}
    if theirs != ours:
        raise ValueError(f"{recipe}: {path} was written with other settings "
                         f"({cell.get('setup')}); this run has {setup}. Choose another --out")
    return cell


def write_cell(cells: str | os.PathLike, key: str, data: dict) -> Path:
    """Write ``cells/<key>.json`` atomically (a temporary file, then a rename)."""
    path = Path(cells) / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float) + "\n")
    tmp.replace(path)
    return path


def collect_cells(cells: str | os.PathLike, keys, setup, recipe: str, own: tuple = ()) -> dict:
    """Every finished cell among ``keys`` (in that order), this run's or another's; ``setup``
    is the settings dict every cell must have been written with (but for the settings in
    ``own``), or a function of the key giving it."""
    found = {}
    for key in keys:
        cell = read_cell(cells, key, setup(key) if callable(setup) else setup, recipe, own)
        if cell is not None:
            found[key] = cell
    return found


def runs_behind(commands, cells_name: str) -> str:
    """The paragraph naming the runs whose cells a results file summarises."""
    listed = "\n".join(f"- `{c}`" for c in sorted(set(commands)))
    return (f"The runs behind this table (each writes its cells in {cells_name}/; a run skips "
            f"the cells its output directory holds already):\n\n{listed}")


def mnist_arrays(dataset: str = "mnist", flatten: bool = False, limit: int | None = None):
    """(x_train, y_train), (x_test, y_test) as float32 in [0, 1] and int64, from the IDX files
    (found and checksum-verified by flowgrad.datasets). ``limit`` keeps the first examples."""
    from ..datasets import MNIST, FashionMNIST

    cls = {"mnist": MNIST, "fashion_mnist": FashionMNIST}[dataset]
    out = []
    for train in (True, False):
        ds = cls(train=train)
        x = ds.data.numpy().astype(np.float32) / 255.0
        y = ds.targets.numpy().astype(np.int64)
        if limit is not None:
            x, y = x[:limit], y[:limit]
        x = x.reshape(len(x), -1) if flatten else x.reshape(len(x), 1, 28, 28)
        out.append((x, y))
    return tuple(out)


def mnist_splits(dataset: str = "mnist", flatten: bool = False, n_valid: int = 10_000,
                 quick: tuple | None = None):
    """(train, valid, test) for the honest protocol: validation is the last ``n_valid`` of the
    60,000 training images, the test set is the 10,000 test images. ``quick`` = (n_train,
    n_valid, n_test) keeps the first examples of each split (the short variants)."""
    (xtr, ytr), test = mnist_arrays(dataset, flatten=flatten)
    train, valid = split_validation(xtr, ytr, n_valid)
    splits = (train, valid, test)
    if quick is not None:
        splits = tuple((x[:n], y[:n]) for (x, y), n in zip(splits, quick))
    return splits


def held_out(n: int, n_valid: int) -> str:
    """How a report names the validation split: "the last 10,000 training images", or, in a
    short variant that keeps n of them, "500 of the last 10,000 training images"."""
    return (f"the last {n_valid:,} training images" if n == n_valid
            else f"{n:,} of the last {n_valid:,} training images")


def protocol_note(refit: bool, n: tuple, n_valid: int, n_final: int, lr_chosen_for: str,
                  closing: str = "Nothing is chosen on the test set.") -> str:
    """The MNIST recipes' protocol paragraph: validation run (epoch, and for
    ``lr_chosen_for`` the learning rate, chosen on validation), refit on train + validation,
    test once. ``n`` is (train, validation, test) sizes; ``closing`` the sentence on what was
    fixed before the run."""
    ntr, nva, nte = n
    if not refit:
        return (f"Protocol (refit off): each model is trained on the first {ntr:,} MNIST "
                f"training images; validation is {held_out(nva, n_valid)} (fixed, never trained "
                f"on); the test set is the {nte:,} MNIST test images. Each model is trained for "
                "a fixed number of epochs, its validation error is measured after every epoch, "
                "the weights of the epoch with the lowest validation error are kept, and the "
                f"test set is evaluated once, with those weights. {closing} The curves show the "
                "training and validation splits only.")
    return (
        "Protocol (both models): (1) validation run: each model is trained on the first "
        f"{ntr:,} MNIST training images; validation is {held_out(nva, n_valid)} (fixed, never "
        "trained on in this run); the validation error is measured after every epoch and the "
        f"epoch with the lowest validation error is chosen (and, for {lr_chosen_for}, the "
        "learning rate). The validation-run models are never evaluated on the test set. "
        "(2) refit: each model is trained again from the same seed (the same initial weights) "
        f"on all {n_final:,} training images (the training and the validation split together) "
        "for exactly the chosen number of epochs, with the validation run's learning-rate "
        "schedule (cosine over all the epochs of the validation run, stepped once per epoch) "
        "stopped at that epoch: the learning rate of each refit epoch is the one the validation "
        f"run used in that epoch, and each refit epoch has about {n_final / ntr:.2g} times as "
        "many minibatches. Nothing is chosen during the refit (no data is held out any more). "
        f"(3) the test set, the {nte:,} MNIST test images, is evaluated once for each refit "
        "model, after all choices were made, and for no other model: the test errors in the "
        "table are those of the refit models; the validation errors are those of the "
        f"validation runs. {closing} The curves show the validation runs' training and "
        "validation splits only.")


def split_validation(x: np.ndarray, y: np.ndarray, n_valid: int = 10_000):
    """The honest protocol's split: the last ``n_valid`` training examples are the validation
    set (fixed, not shuffled), the rest is trained on. Returns (train, valid)."""
    if not 0 < n_valid < len(x):
        raise ValueError(f"split_validation: n_valid must be in 1..{len(x) - 1}, got {n_valid}")
    return (x[:-n_valid], y[:-n_valid]), (x[-n_valid:], y[-n_valid:])


class KeepBest:
    """fit() callback: after each epoch, keep a copy of the weights with the lowest validation
    error so far (ties keep the earlier epoch)."""

    def __init__(self, model) -> None:
        self.model, self.error, self.epoch, self.state = model, float("inf"), None, None

    def on_epoch_end(self, _state, logs) -> None:
        error = logs.get("valid_error")
        if error is not None and error < self.error:
            self.error, self.epoch = error, logs["epoch"]
            self.state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def restore(self) -> None:
        if self.state is not None:
            self.model.load_state_dict(self.state)


def data_parallel(model):
    """``model`` wrapped in DistributedDataParallel when the recipe runs under ``mpirun -n N``
    (a process group of N >= 2 ranks is initialised), else ``model`` itself."""
    from ..distributed.ranks import world_size_or_one

    if world_size_or_one() == 1:
        return model
    return fg.nn.parallel.DistributedDataParallel(model)


def make_loader(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool):
    """A DataLoader over arrays; under ``mpirun -n N`` each rank loads its shard
    (DistributedSampler) in batches of ``batch_size / N``, so that the global batch, and thus
    the optimisation, is the single process's. A validation set whose size N does not divide
    is not sharded (padding would count some examples twice)."""
    from ..distributed.ranks import world_size_or_one
    from ..utils.data import DataLoader, DistributedSampler, TensorDataset

    data = TensorDataset(fg.from_numpy(x), fg.from_numpy(y))
    n = world_size_or_one()
    if n == 1 or (not shuffle and len(x) % n):
        return DataLoader(data, batch_size=batch_size, shuffle=shuffle)
    if batch_size % n:
        raise ValueError(f"data-parallel training: the batch size {batch_size} must divide by "
                         f"the number of ranks {n} (mpirun -n {n})")
    return DataLoader(data, batch_size=batch_size // n,
                      sampler=DistributedSampler(data, shuffle=shuffle))


def train_classifier(model, train: tuple, valid: tuple, test: tuple, optimizer, epochs: int,
                     batch_size: int, out, name: str, scheduler=None, progress: bool = True,
                     title: str | None = None) -> dict:
    """The honest protocol: train with flowgrad.train.fit on shuffled minibatches of ``train``,
    measure ``valid`` after each epoch, put back the weights of the epoch with the lowest
    validation error, and only then evaluate ``test``, once (``test=None``: not at all, for a
    candidate that selection on the validation split may still reject). Writes the curves
    (train and validation, CSV + PNG) to ``out``. Returns {"history", "best_epoch", "valid",
    "test", "model"}."""
    from ..train import fit

    (xtr, ytr), (xva, yva) = train, valid
    xte, yte = test if test is not None else (None, None)
    trained = data_parallel(model)
    train_loader = make_loader(xtr, ytr, batch_size, shuffle=True)
    valid_loader = make_loader(xva, yva, 1000, shuffle=False)
    keep = KeepBest(trained)
    history = fit(trained, train_loader, fg.nn.functional.cross_entropy, optimizer, epochs,
                  valid_loader=valid_loader, scheduler=scheduler, progress=progress,
                  callbacks=(keep,))
    keep.restore()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / f"{name}_history.csv")
    plot_curves(history, out / f"{name}_curves.png", title or name, keep.epoch)
    return {"history": history, "best_epoch": keep.epoch, "valid": evaluate(model, xva, yva),
            "test": evaluate(model, xte, yte) if test is not None else None, "model": model}


def refit_classifier(build, train: tuple, valid: tuple, test: tuple, epochs: int,
                     batch_size: int, out, name: str, progress: bool = True) -> dict:
    """The refit step of the honest protocol, after the learning rate and the number of epochs
    were chosen on the validation split: ``build()`` makes the model, its optimizer and its
    scheduler again, from the same seed (the same initial weights, the same per-epoch
    learning-rate schedule as the validation run); the model is trained on ``train`` and
    ``valid`` together (all the training images) for exactly ``epochs`` epochs, the chosen
    epoch, the schedule being stepped once per epoch and stopped there (as in the validation
    run at that epoch; an epoch now has more minibatches), and only then is ``test`` evaluated,
    once. Nothing is measured on the validation split any more (it is trained on). Writes the
    training curve (CSV) to ``out``. Returns {"history", "epochs", "n_train", "test", "model"}.
    """
    from ..train import fit

    if epochs < 1:
        raise ValueError(f"refit_classifier: epochs must be >= 1, got {epochs}")
    x = np.concatenate([train[0], valid[0]])
    y = np.concatenate([train[1], valid[1]])
    model, optimizer, scheduler = build()
    loader = make_loader(x, y, batch_size, shuffle=True)
    history = fit(data_parallel(model), loader, fg.nn.functional.cross_entropy, optimizer,
                  epochs, scheduler=scheduler, progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / f"{name}_refit.csv")
    return {"history": history, "epochs": epochs, "n_train": len(x),
            "test": evaluate(model, *test), "model": model}


def timed_validation_run(build, splits: tuple, epochs: int, batch_size: int, out, name: str,
                         title: str, progress: bool, with_test: bool = True) -> dict:
    """``build()``'s model trained by train_classifier on ``splits`` (train, valid, test), timed;
    ``with_test=False`` leaves the test set alone (a candidate of a selection, or a validation
    run to be refit). Returns the result plus its name, time and split sizes."""
    train, valid, test = splits
    model, optimizer, scheduler = build()
    with Timer() as t:
        result = train_classifier(model, train, valid, test if with_test else None, optimizer,
                                  epochs, batch_size, out, name, scheduler=scheduler,
                                  progress=progress, title=title)
    result.update(seconds=t.seconds, name=name, n=(len(train[0]), len(valid[0]), len(test[0])))
    return result


def timed_refit(build, splits: tuple, best_epoch: int, batch_size: int, out, name: str,
                progress: bool) -> dict:
    """refit_classifier on ``splits`` for ``best_epoch`` epochs, timed, without the model."""
    with Timer() as t:
        result = refit_classifier(build, *splits, best_epoch, batch_size, out, name,
                                  progress=progress)
    result["seconds"] = t.seconds
    result.pop("model")
    return result


def plot_curves(history, path, title: str, chosen_epoch=None) -> None:
    """Loss and error per epoch on the training and the validation split (never the test set),
    with the epoch whose weights were kept marked."""
    from ..plotting import new_figure, save_figure

    fig, axes = new_figure(1, 2, figsize=(11, 4), layout="constrained")
    epochs = history["epoch"]
    for ax, (key, label) in zip(axes, (("loss", "cross-entropy"), ("error", "error rate"))):
        for split, text, color in (("train", "train", "tab:blue"),
                                   ("valid", "validation", "tab:orange")):
            if f"{split}_{key}" in history:
                ax.plot(epochs, history[f"{split}_{key}"], "o-", ms=3, color=color, label=text)
        if chosen_epoch is not None:
            ax.axvline(chosen_epoch, color="gray", ls=":", lw=1,
                       label=f"kept: epoch {chosen_epoch} (lowest validation error)")
        if key == "error":
            ax.set_yscale("log")
        ax.set(xlabel="epoch", ylabel=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{title}: train and validation splits")
    save_figure(fig, path, dpi=100)
