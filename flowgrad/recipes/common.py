"""What every recipe shares: the results files, the machine's description, evaluation."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import flowgrad as fg


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
    return (f"{cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
            f"NumPy {np.__version__}")


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
    summary = {**summary, "machine": machine()}
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


def train_classifier(model, train: tuple, test: tuple, optimizer, epochs: int, batch_size: int,
                     seed: int, out, name: str, scheduler=None, progress: bool = True):
    """Train with flowgrad.train.fit on shuffled minibatches, validating on ``test`` each epoch;
    write the curves (CSV + PNG) to ``out``; return (history, final test metrics)."""
    from ..train import fit
    from ..utils.data import DataLoader, TensorDataset

    xtr, ytr = train
    xte, yte = test
    train_loader = DataLoader(TensorDataset(fg.from_numpy(xtr), fg.from_numpy(ytr)),
                              batch_size=batch_size, shuffle=True)
    valid_loader = DataLoader(TensorDataset(fg.from_numpy(xte), fg.from_numpy(yte)),
                              batch_size=1000)
    history = fit(model, train_loader, fg.nn.functional.cross_entropy, optimizer, epochs,
                  valid_loader=valid_loader, scheduler=scheduler, progress=progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    history.to_csv(out / f"{name}_history.csv")
    history.plot(out / f"{name}_curves.png")
    return history, evaluate(model, xte, yte)
