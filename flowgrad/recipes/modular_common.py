"""What the modular-mechanism recipes share (rims_copying, scoff_adding, rims_seq_mnist): one
sequence model whose recurrent core is an LSTM, Recurrent Independent Mechanisms (Goyal et al.
2019, arXiv 1909.10893) or SCOFF (Goyal et al. 2020, arXiv 2006.16225), so that the models of a
table differ only in the core; the parameter-matched LSTM size; and one training loop (Adam,
gradient-norm clipping, a validation set measured every few steps, the best state kept).

The model follows the official RIMs ``RNNModel`` of anirudh9119/RIMs (``event_based/``):
an optional token embedding, the recurrent core, a linear readout of the core's state.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..modular.rims import RIM
from ..modular.scoff import SCOFF
from ..nn.module import Module
from .common import Timer
from .memory_recall import matched_lstm_hidden as _matched_hidden

CORES = ("lstm", "rim", "scoff")


def official_attention(hidden_size: int, num_units: int) -> dict:
    """The official ``BlocksCore`` attention sizes: input attention d_k 64 and d_v = 4 x the
    module size (one head); communication 4 heads with d_k = d_v = 16."""
    return {"input_key_size": 64, "input_value_size": 4 * (hidden_size // num_units),
            "input_heads": 1, "comm_key_size": 16, "comm_value_size": 16, "comm_heads": 4}


class SequenceNet(Module):
    """Optional embedding -> recurrent core (batch first) -> linear readout.

    Args:
        core: "lstm" (nn.LSTM), "rim" (flowgrad.modular.RIM) or "scoff" (SCOFF).
        input_size: features per step, or the embedding size when ``vocab`` is given.
        hidden_size: the core's total state size.
        output_size: readout size (classes, or 1 for a regression).
        vocab: number of input tokens; None feeds float features (B, T, input_size).
        last_only: read out the last step only: (B, output_size) instead of (B, T, output_size).
        core_kwargs: for "rim": num_units, k_active and RIMCell's options; for "scoff":
            num_object_files, num_schemata, k_active and SCOFFCell's options.
    """

    def __init__(self, core: str, input_size: int, hidden_size: int, output_size: int,
                 vocab: int | None = None, last_only: bool = False, **core_kwargs) -> None:
        super().__init__()
        if core not in CORES:
            raise ValueError(f"SequenceNet: core={core!r}, expected one of {CORES}")
        self.kind, self.last_only = core, bool(last_only)
        self.embedding = None if vocab is None else fg.nn.Embedding(vocab, input_size)
        if core == "lstm":
            if core_kwargs:
                raise ValueError(f"SequenceNet: the LSTM core takes no options, got "
                                 f"{sorted(core_kwargs)}")
            self.core = fg.nn.LSTM(input_size, hidden_size, batch_first=True)
        elif core == "rim":
            self.core = RIM(input_size, hidden_size, batch_first=True, **core_kwargs)
        else:
            self.core = SCOFF(input_size, hidden_size, batch_first=True, **core_kwargs)
        self.readout = fg.nn.Linear(hidden_size, output_size)

    def forward(self, x):
        if self.embedding is not None:
            x = self.embedding(x)
        h, _ = self.core(x)
        if self.last_only:
            h = h[:, -1]
        return self.readout(h)

    @property
    def masks(self):
        """The active modules of the last forward, (T, B, K) bool (None for the LSTM)."""
        return getattr(self.core, "masks", None)


def parameter_count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def matched_lstm_hidden(target: int, input_size: int, output_size: int,
                        vocab: int | None = None) -> int:
    """The LSTM hidden size whose SequenceNet (embedding of ``vocab`` x ``input_size`` if given,
    LSTM, linear readout) has the parameter count nearest ``target``."""
    embedding = 0 if vocab is None else vocab * input_size
    return _matched_hidden(target - embedding, input_size, output_size)


def snapshot(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@fg.no_grad()
def predict(model, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's outputs on ``x`` in eval mode, by batches, as one NumPy array."""
    was_training = model.training
    model.eval()
    out = [model(fg.from_numpy(x[s:s + batch_size])).numpy()
           for s in range(0, len(x), batch_size)]
    model.train(was_training)
    return np.concatenate(out)


def train(model, batch, loss_fn, validate, steps: int, lr: float = 1e-3, clip: float = 1.0,
          eval_every: int = 100, progress: bool = True, desc: str = "train") -> dict:
    """Adam at ``lr`` with the gradient norm clipped at ``clip``, for ``steps`` steps.

    ``batch(step)`` returns the step's (x, y) arrays; ``loss_fn(model, x, y)`` the loss Tensor;
    ``validate(model)`` a dict of validation measures whose "score" (lower is better) chooses
    the checkpoint. Validation runs before training, every ``eval_every`` steps and after the
    last; the state of lowest score is put back into ``model`` at the end (ties keep the
    earlier step).

    Returns {"best_step", "best" (the kept validation measures), "curve" (a list of
    {"step", **measures}), "train_loss" (per step), "seconds"}.
    """
    from tqdm.auto import tqdm

    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    curve, losses = [], []
    best = {"score": float("inf"), "step": None, "state": None, "measures": None}

    def check(step):
        measures = validate(model)
        curve.append({"step": step, **measures})
        if measures["score"] < best["score"]:
            best.update(score=measures["score"], step=step, state=snapshot(model),
                        measures=measures)

    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False)
    with Timer() as t:
        model.train()
        check(0)
        for step in range(1, steps + 1):
            x, y = batch(step)
            loss = loss_fn(model, fg.from_numpy(x), fg.from_numpy(y))
            optimizer.zero_grad()
            loss.backward()
            fg.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                check(step)
                bar.set_postfix(loss=f"{np.mean(losses[-eval_every:]):.4f}",
                                valid=f"{curve[-1]['score']:.4f}")
    bar.close()
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()
    return {"best_step": best["step"], "best": best["measures"], "curve": curve,
            "train_loss": losses, "seconds": t.seconds}


class EpochBatches:
    """``batch(step)`` for ``train``: minibatches of a fixed training set, a new permutation each
    epoch drawn from (seed, epoch), so that every model of a seed sees the same batches."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> None:
        self.x, self.y, self.batch_size, self.seed = x, y, int(batch_size), seed
        self.per_epoch = -(-len(x) // self.batch_size)
        self._orders: dict = {}

    def steps(self, epochs: int, steps: int | None = None) -> int:
        """``steps`` if given, else ``epochs`` epochs' worth."""
        return steps or epochs * self.per_epoch

    def __call__(self, step: int):
        epoch, i = divmod(step - 1, self.per_epoch)
        if epoch not in self._orders:
            self._orders[epoch] = np.random.default_rng((self.seed, epoch)).permutation(
                len(self.x))
        idx = self._orders[epoch][i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[idx], self.y[idx]


def seed_stream(seed: int, n: int) -> np.ndarray:
    """``n`` data seeds drawn from ``seed`` (one per minibatch, validation and test set)."""
    return np.random.default_rng(seed).integers(0, 2**31 - 1, size=n)


def mean_std(values, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """``values``' mean ± standard deviation over seeds (the mean alone for one seed), times
    ``scale``, with ``digits`` decimals and an optional unit (" %")."""
    a = scale * np.asarray(values, dtype=np.float64)
    mean = f"{a.mean():.{digits}f}"
    return (f"{mean} ± {a.std():.{digits}f}" if len(a) > 1 else mean) + unit
