"""History: the per-epoch and per-step records of a run, as CSV and as learning curves."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable

from ..serialization import atomic_write

__all__ = ["History"]


def _columns(rows: Iterable[dict]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for key in row:
            seen.setdefault(key, None)
    return list(seen)


def _write_csv(path, rows: list[dict]) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_columns(rows), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(path, lambda f: f.write(text.getvalue().encode()))


class History:
    """Records of train/valid loss, error and any metric, per epoch and per step (lecture:
    "Debugging", monitor the learning curves).

    Example:
        >>> h = History()
        >>> h.log_epoch(1, train_loss=0.9, valid_loss=1.0)
        >>> h["valid_loss"]
        [1.0]
    """

    def __init__(self) -> None:
        self.epochs: list[dict] = []
        self.steps: list[dict] = []

    # --- recording ------------------------------------------------------------------------------
    def log_epoch(self, epoch: int | None = None, **values) -> dict:
        """Append one epoch's record (epoch defaults to the next number)."""
        record = {"epoch": len(self.epochs) + 1 if epoch is None else int(epoch), **values}
        self.epochs.append(record)
        return record

    def log_step(self, **values) -> dict:
        """Append one optimisation step's record (step defaults to the next number)."""
        record = {"step": len(self.steps) + 1, **values}
        self.steps.append(record)
        return record

    # --- reading --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.epochs)

    def __getitem__(self, key: str) -> list:
        """Per-epoch values of one column (NaN where an epoch lacks it)."""
        return [r.get(key, math.nan) for r in self.epochs]

    def __contains__(self, key: str) -> bool:
        return any(key in r for r in self.epochs)

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def best(self, key: str = "valid_loss", mode: str = "min") -> dict:
        """The epoch record with the lowest (mode='min') or highest value of ``key``."""
        rows = [r for r in self.epochs if isinstance(r.get(key), (int, float))
                and not math.isnan(r[key])]
        if not rows:
            raise KeyError(f"History.best: no epoch has a value for {key!r}; columns are "
                           f"{_columns(self.epochs)}")
        return (min if mode == "min" else max)(rows, key=lambda r: r[key])

    def step_column(self, key: str) -> list:
        return [r.get(key, math.nan) for r in self.steps]

    # --- output ---------------------------------------------------------------------------------
    def to_csv(self, path, steps: bool = False) -> None:
        """Write the per-epoch records (or, with steps=True, the per-step ones) as CSV."""
        _write_csv(path, self.steps if steps else self.epochs)

    def plot(self, path, title: str | None = None) -> None:
        """Learning curves, train vs valid loss and error per epoch, as a PNG (Agg; lecture:
        "Debugging")."""
        from ..plotting import new_figure, save_figure

        panels = [("loss", "loss")]
        if "train_error" in self or "valid_error" in self:
            panels.append(("error", "error rate"))
        fig, _ = new_figure(figsize=(5.5 * len(panels), 4), layout="constrained", axes=False)
        epochs = self["epoch"]
        best = None
        if "valid_loss" in self:
            best = self.best("valid_loss")["epoch"]
        for i, (name, label) in enumerate(panels):
            ax = fig.add_subplot(1, len(panels), i + 1)
            step_values = self.step_column(name)
            if name == "loss" and self.steps and any(not math.isnan(v) for v in step_values):
                x = [r.get("epoch", 1) - 1 + r.get("fraction", 1.0) for r in self.steps]
                ax.plot(x, step_values, color="tab:blue", alpha=0.25, lw=0.8,
                        label="train (per step)")
            for split, color in (("train", "tab:blue"), ("valid", "tab:orange")):
                if f"{split}_{name}" in self:
                    ax.plot(epochs, self[f"{split}_{name}"], "o-", color=color, ms=3,
                            label=split)
            if best is not None:
                ax.axvline(best, color="gray", ls=":", lw=1, label=f"best valid (epoch {best})")
            ax.set_xlabel("epoch")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title or "Learning curves")
        save_figure(fig, path, dpi=100)

    # --- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"epochs": [dict(r) for r in self.epochs], "steps": [dict(r) for r in self.steps]}

    def load_state_dict(self, state: dict) -> None:
        self.epochs = [dict(r) for r in state.get("epochs", [])]
        self.steps = [dict(r) for r in state.get("steps", [])]

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in self.last.items())
        return f"History({len(self.epochs)} epochs, {len(self.steps)} steps; last: {last})"
