"""Attention against the fixed-size bottleneck on sequences longer than those trained on
(lecture: "Gating for Attention-Based Neural Machine Translation"; Bahdanau, Cho & Bengio,
ICLR 2015, Figure 2: the RNN encoder-decoder degrades as sentences grow, RNNsearch does not).

Two encoder-decoders of the same width learn to reverse random symbol sequences
(``flowgrad.datasets.algorithmic.reversal_pairs``): ``RNNEncoderDecoder``, which must pass the
whole source through its final state, and ``AttentionSeq2Seq``, which reads the source again at
every output step through additive attention. Both train on lengths ``train_min``-``train_max``
with the same steps, batches and optimizer; each keeps the checkpoint with the best exact
match on a fixed validation set of training lengths; then both are tested once at every test
length, up to twice the longest training length: exact match (the whole output right) and
token accuracy (the fraction of target positions right, greedy decoding). Figures: accuracy
against length, and one attention map of a sequence longer than any trained on.
"""

from __future__ import annotations

import time

import numpy as np

import flowgrad as fg

from .. import nn
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"steps": 2000, "lr": 1e-3, "batch_size": 64, "hidden": 128, "seed": 0,
            "train_min": 5, "train_max": 15}
QUICK = {"steps": 120, "hidden": 32, "eval_every": 40, "valid": 100, "test": 50,
         "train_min": 3, "train_max": 6}
MODELS = ("plain", "attention")
LABELS = {"plain": "RNN encoder-decoder (no attention)",
          "attention": "RNNsearch-style (additive attention)"}
# the checks proposed for this experiment (reproduction notes, section 7.6)
PROPOSED = {"attention_train": 0.95, "attention_double": 0.80, "plain_drop": 0.20}


def build(kind: str, hidden: int, vocab: int):
    from ..models.seq2seq import AttentionSeq2Seq, RNNEncoderDecoder

    cls = AttentionSeq2Seq if kind == "attention" else RNNEncoderDecoder
    return cls(src_vocab_size=vocab, tgt_vocab_size=vocab, embed_dim=32, hidden_size=hidden,
               cell="gru", bidirectional=True)


def scores(model, batch, max_len: int) -> tuple[float, float, list]:
    """(exact match, token accuracy, predictions) of greedy decoding on a Seq2SeqBatch."""
    from ..models.seq2seq import greedy_decode

    pred = greedy_decode(model, fg.from_numpy(batch.src), batch.src_lengths, max_len)
    truth = [batch.tgt_out[i, :k].tolist() for i, k in enumerate(batch.src_lengths)]
    exact = float(np.mean([p == t for p, t in zip(pred, truth)]))
    hits = sum(sum(a == b for a, b in zip(p, t)) for p, t in zip(pred, truth))
    return exact, hits / sum(len(t) for t in truth), pred


def run(steps=2000, lr=1e-3, batch_size=64, hidden=128, seed=0, train_min=5, train_max=15,
        eval_every=250, n_symbols=10, n_valid=500, n_test=300, threads=None, out=None,
        quick=False, progress=True) -> dict:
    """Train both models, keep each one's best validation checkpoint, test once per length."""
    from tqdm.auto import tqdm

    from ..datasets.algorithmic import reversal_pairs
    from ..models.seq2seq import save_attention_heatmap, sequence_loss
    from .ptb_lstm import _limit_threads

    command = command_line("seq2seq_length", run, locals())
    out = resolve_out("seq2seq_length", out)
    if quick:
        steps, hidden, eval_every = QUICK["steps"], QUICK["hidden"], QUICK["eval_every"]
        n_valid, n_test = QUICK["valid"], QUICK["test"]
        train_min, train_max = QUICK["train_min"], QUICK["train_max"]
    vocab = 3 + n_symbols
    lengths = sorted({train_min, (train_min + train_max) // 2, train_max,
                      *range(train_max + 5, 2 * train_max + 1, 5), 2 * train_max})
    valid = reversal_pairs(n_valid, train_min, train_max, n_symbols, seed=10_000 + seed)
    tests = {L: reversal_pairs(n_test, L, L, n_symbols, seed=20_000 + L) for L in lengths}
    results, models = {}, {}
    with _limit_threads(threads), Timer() as total:
        for kind in MODELS:
            fg.manual_seed(seed)
            model = build(kind, hidden, vocab)
            opt = fg.optim.Adam(model.parameters(), lr=lr)
            best, curve = (-1.0, 0, None), []
            start = time.perf_counter()
            bar = tqdm(range(1, steps + 1), desc=f"seq2seq_length {kind}", leave=False,
                       disable=not progress)
            for step in bar:
                b = reversal_pairs(batch_size, train_min, train_max, n_symbols,
                                   seed=seed * 1_000_000 + step)  # the same batches for both
                loss = sequence_loss(model(fg.from_numpy(b.src), b.src_lengths,
                                           fg.from_numpy(b.tgt_in)), b.tgt_out)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
                if step % eval_every == 0 or step == steps:
                    exact, token, _ = scores(model, valid, train_max + 2)
                    curve.append({"step": step, "loss": loss.item(), "valid_exact": exact,
                                  "valid_token": token})
                    bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{exact:.3f}")
                    if exact > best[0]:
                        best = (exact, step, {k: v.detach().clone()
                                              for k, v in model.state_dict().items()})
            train_seconds = time.perf_counter() - start
            model.load_state_dict(best[2])
            by_length = {}
            for L, batch in tests.items():  # the test sets, once, with the kept weights
                exact, token, pred = scores(model, batch, L + 5)
                by_length[str(L)] = {"exact": exact, "token": token,
                                     "mean_output_length": float(np.mean([len(p)
                                                                          for p in pred]))}
            results[kind] = {"valid_exact": best[0], "best_step": best[1], "curve": curve,
                             "test": by_length, "train_seconds": train_seconds,
                             "parameters": sum(p.numel() for p in model.parameters())}
            models[kind] = model
    long = reversal_pairs(1, 2 * train_max - 5, 2 * train_max - 5, n_symbols, seed=99)
    from ..models.seq2seq import greedy_decode

    pred, attn = greedy_decode(models["attention"], fg.from_numpy(long.src), long.src_lengths,
                               2 * train_max, return_attention=True)
    heatmap = save_attention_heatmap(
        attn[0], [str(t) for t in long.src[0, :long.src_lengths[0]]],
        [str(t) for t in pred[0]], f"{out}/seq2seq_length_attention.png",
        title=f"attention on a length-{int(long.src_lengths[0])} reversal (trained on "
              f"{train_min}-{train_max})")
    summary = {"title": "Reversal beyond the training lengths: attention against the RNN "
                        "encoder-decoder", "results": results, "lengths": lengths,
               "train_range": [train_min, train_max], "steps": steps, "lr": lr,
               "batch_size": batch_size, "hidden": hidden, "n_symbols": n_symbols,
               "n_valid": n_valid, "n_test": n_test, "quick": quick, "command": command,
               "seed": seed, "seconds": total.seconds, "published": PROPOSED}
    _write(summary, out, heatmap)
    return summary


def _plot(s: dict, path: str):
    from ..plotting import new_figure, save_figure

    fig, ax = new_figure(figsize=(6.5, 4.2), layout="constrained")
    lo, hi = s["train_range"]
    ax.axvspan(lo, hi, color="0.9", label="training lengths")
    for kind, style in zip(MODELS, ("s--", "o-")):
        r = s["results"][kind]["test"]
        xs = [int(L) for L in r]
        ax.plot(xs, [100 * r[L]["token"] for L in r], style, label=f"{LABELS[kind]}: tokens")
        ax.plot(xs, [100 * r[L]["exact"] for L in r], style, alpha=0.45,
                label=f"{LABELS[kind]}: whole sequences")
    ax.set(xlabel="sequence length", ylabel="test accuracy (%)", ylim=(0, 102),
           title="Reversal: accuracy against length")
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=100)


def _write(s: dict, out, heatmap) -> None:
    fig = _plot(s, f"{out}/seq2seq_length_accuracy.png")
    lo, hi = s["train_range"]
    rows = []
    for L in s["lengths"]:
        a, p = s["results"]["attention"]["test"][str(L)], s["results"]["plain"]["test"][str(L)]
        where = "training range" if L <= hi else f"{L / hi:.1f} x the longest trained"
        rows.append((f"length {L} ({where}): token accuracy / exact match, attention vs plain",
                     f"{100 * a['token']:.1f}% / {100 * a['exact']:.1f}% vs "
                     f"{100 * p['token']:.1f}% / {100 * p['exact']:.1f}%",
                     "RNNsearch holds, RNNencdec degrades (Bahdanau et al. 2015, Fig. 2)"))
    for kind in MODELS:
        r = s["results"][kind]
        rows.append((f"{LABELS[kind]}: validation exact match (kept step {r['best_step']} of "
                     f"{s['steps']}), parameters, training time",
                     f"{100 * r['valid_exact']:.1f}%, {r['parameters']:,}, "
                     f"{r['train_seconds']:.0f} s", "—"))
    notes = [
        f"Task: reverse a sequence of symbols drawn uniformly from {s['n_symbols']}; training "
        f"lengths uniform in {lo}-{hi}, a fresh batch of {s['batch_size']} at every step (the "
        "same batches for both models); validation: a fixed set of "
        f"{s['n_valid']} sequences of training lengths (own seed); test: {s['n_test']} "
        "sequences at each length (own seeds), decoded greedily once with the kept weights.",
        "",
        f"Models: embedding 32, bidirectional GRU encoder and GRU decoder of {s['hidden']} "
        "units; the plain model starts its decoder from the encoder's final states and never "
        "sees the source again; the attention model also reads a context vector at every "
        f"step. Adam, learning rate {s['lr']:g}, gradient norm clipped at 5, {s['steps']} "
        "steps.",
        "",
        "Checks proposed for this experiment: with attention, token accuracy >= "
        f"{100 * PROPOSED['attention_train']:.0f}% at training lengths and >= "
        f"{100 * PROPOSED['attention_double']:.0f}% at twice the longest; without attention, "
        f"a fall of >= {100 * PROPOSED['plain_drop']:.0f} points at twice the longest.",
    ]
    at = s["results"]["attention"]["test"]
    pl = s["results"]["plain"]["test"]
    train_ok = min(at[str(L)]["token"] for L in s["lengths"] if L <= hi)
    outcome = [f"with attention, the lowest token accuracy at a training length is "
               f"{100 * train_ok:.1f}% (check: >= {100 * PROPOSED['attention_train']:.0f}%, "
               f"{'met' if train_ok >= PROPOSED['attention_train'] else 'not met'})"]
    if str(2 * hi) in at:
        drop = pl[str(lo)]["token"] - pl[str(2 * hi)]["token"]
        double = at[str(2 * hi)]["token"]
        outcome += [f"with attention at length {2 * hi}: {100 * double:.1f}% "
                    f"(check: >= {100 * PROPOSED['attention_double']:.0f}%, "
                    f"{'met' if double >= PROPOSED['attention_double'] else 'not met'})",
                    f"without attention, from length {lo} to {2 * hi} the token accuracy falls "
                    f"by {100 * drop:.1f} points (check: >= {100 * PROPOSED['plain_drop']:.0f}, "
                    f"{'met' if drop >= PROPOSED['plain_drop'] else 'not met'})"]
    if "mean_output_length" in at[str(hi)]:
        outcome += [f"mean output length with attention at length {L}: "
                    f"{at[str(L)]['mean_output_length']:.1f}" for L in s["lengths"] if L > hi]
    notes += ["", "Outcome:"] + [f"- {line}." for line in outcome]
    if s["quick"]:
        notes += ["", "This is the short variant: a smoke run, not a result."]
    write_results("seq2seq_length", out, s, rows, notes="\n".join(notes),
                  figures=(fig, heatmap))
