"""Model selection on a validation split, shared by the representation trainers: after each
epoch the validation score (higher is better) is logged, and the weights of the best epoch are
kept in memory and put back at the end (lecture: "Validate and Analyze")."""

from __future__ import annotations

import numpy as np


class BestEpoch:
    """Tracks ``history["valid"]`` and ``history["best_epoch"]`` for a trainer."""

    def __init__(self, model, history: dict) -> None:
        self.model, self.history = model, history
        self.score, self.state = -np.inf, None

    def update(self, epoch: int, on_epoch) -> None:
        """Score epoch ``epoch`` with ``on_epoch(epoch)`` (nothing when it is None)."""
        if on_epoch is None:
            return
        score = float(on_epoch(epoch))
        self.history["valid"].append(score)
        if score > self.score:
            self.score = score
            self.state = {k: v.detach().numpy().copy()
                          for k, v in self.model.state_dict().items()}
            self.history["best_epoch"] = epoch

    def restore(self) -> dict:
        """Put the best epoch's weights back; returns the history."""
        if self.state is not None:
            self.model.load_state_dict(self.state)
        return self.history
