"""Word-level language modelling with a decoder-only causal transformer (lecture:
"Self-Attention & Transformers"; ``flowgrad.models.gpt``), beside the LSTM of ``ptb_lstm``
on the same corpus, vocabulary and perplexity measure.

Training reads the training stream in ``batch_size`` contiguous columns and windows of
``block`` tokens (no state carried between windows: the context is the window), AdamW with
linear warm-up and cosine decay, the gradient norm clipped. Evaluation slides a window of
``block`` tokens over the whole stream with a stride of ``block // 2``, so every token after
the first window is predicted from at least ``block // 2`` tokens of context; perplexity =
exp(mean negative log-likelihood) over every token after the first.

The epoch is chosen on the validation split (its weights are checkpointed), and the test split
is evaluated once, with those weights, at the end. Every other hyperparameter is fixed in
advance (the defaults below); none was chosen on the test split. Each epoch ends with an atomic
checkpoint; rerunning with the same ``--out`` resumes after the last finished epoch.

``--set corpus=wikitext2 --set softmax=adaptive`` trains on WikiText-2 (33,278 words) with an
adaptive softmax (Grave et al. 2017; cutoffs 2,000 and 10,000, divisor 4, as the LSTM of
``ptb_lstm`` on the same corpus) in place of the tied full softmax (a training step of the
default model took 4.3 s with the full softmax and 1.4 s with the adaptive one, side by side on
one thread of a shared machine); its distribution is exactly normalised, so the perplexity is
exact.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

import flowgrad as fg

from .. import nn
from .common import Timer, command_line, resolve_out, write_results
from .ptb_lstm import (
    CORPUS_NAMES,
    SOFTMAXES,
    _corpus,
    _limit_threads,
    _output_layer,
    _plot,
    checkpoint_dir,
    checkpoint_epoch,
    frequency_order,
    renumber,
    resume_epochs,
)

DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 16, "block": 128, "seed": 0,
            "corpus": "ptb"}
QUICK = {"train": 20000, "valid": 2000, "test": 2000, "epochs": 2, "block": 64, "warmup": 5,
         "d_model": 64, "num_layers": 2, "dim_feedforward": 128}
# the LSTM these numbers stand beside (Zaremba's small LSTM; on WikiText-2 with an adaptive softmax)
LSTM_RESULTS = {"ptb": "ptb_lstm.json", "wikitext2": "ptb_lstm_wikitext2_adaptive.json"}


def learning_rate(step: int, total: int, lr: float, warmup: int,
                  floor: float = 0.1) -> float:
    """Linear warm-up over ``warmup`` steps, then cosine decay to ``floor * lr`` at ``total``."""
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return lr * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


def windows(source: np.ndarray, block: int):
    """(inputs (B, T), targets (B, T)) for consecutive windows of a (N, B) batchified stream."""
    for i in range(0, source.shape[0] - 1, block):
        t = min(block, source.shape[0] - 1 - i)
        yield source[i:i + t].T, source[i + 1:i + 1 + t].T


@fg.no_grad()
def evaluate(model, tokens: np.ndarray, block: int, batch: int = 32) -> float:
    """Sliding-window perplexity of a token stream (see the module docstring)."""
    was = model.training
    model.eval()
    tokens = np.asarray(tokens, dtype=np.int64)
    n, stride = len(tokens), max(1, block // 2)
    first = min(block, n - 1)
    nll = -model.token_log_prob(fg.from_numpy(tokens[None, :first]),
                                fg.from_numpy(tokens[None, 1:first + 1])).sum().item()
    count = first
    # every later window ends `stride` tokens after the previous and scores its last targets
    ends = list(range(first + stride, n - 1 + stride, stride))
    for k in range(0, len(ends), batch):
        group = [min(e, n - 1) for e in ends[k:k + batch]]
        prev = [first if k + j == 0 else min(ends[k + j - 1], n - 1)
                for j in range(len(group))]
        starts = [e - block for e in group]
        x = np.stack([tokens[s:s + block] for s in starts])
        y = np.stack([tokens[s + 1:s + 1 + block] for s in starts])
        scores = model.token_log_prob(fg.from_numpy(x), fg.from_numpy(y)).numpy()
        for j, (e, p) in enumerate(zip(group, prev)):
            new = e - p
            if new <= 0:
                continue
            nll -= float(scores[j, block - new:].sum())
            count += new
    model.train(was)
    return math.exp(nll / count)


def run(epochs=8, lr=1e-3, batch_size=16, block=128, seed=0, corpus="ptb", d_model=256,
        nhead=4, num_layers=4, dim_feedforward=1024, dropout=0.2, weight_decay=0.1,
        warmup=200, clip=1.0, tie_weights=True, softmax="full", cutoffs=(2000, 10000),
        div_value=4.0, max_batches=None, threads=None, resume=True, out=None, quick=False,
        progress=True) -> dict:
    """Train, select the epoch on validation, test once (``ptb_lstm``'s protocol).
    ``softmax="adaptive"`` replaces the output layer by an adaptive softmax (Grave et al. 2017,
    with ``cutoffs`` and ``div_value``; the words renumbered by training frequency, the input
    embedding untied); ``max_batches`` stops each epoch early (a timing probe); ``threads``
    limits BLAS threads."""
    if softmax not in SOFTMAXES:
        raise ValueError(f"transformer_lm: softmax must be one of {SOFTMAXES}, got {softmax!r}")
    command = command_line("transformer_lm", run, locals())
    out = Path(resolve_out("transformer_lm", out))
    config = {"d_model": d_model, "nhead": nhead, "num_layers": num_layers,
              "dim_feedforward": dim_feedforward, "dropout": dropout, "block": block,
              "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay,
              "warmup": warmup, "clip": clip,
              "tie_weights": bool(tie_weights) and softmax == "full", "softmax": softmax,
              "max_batches": max_batches}
    if softmax == "adaptive":
        config.update(cutoffs=[int(x) for x in cutoffs], div_value=float(div_value))
    with _limit_threads(threads), Timer() as t:
        summary = _run(epochs, seed, corpus, config, resume, out, quick, progress, command)
    summary["seconds"] = t.seconds + summary.pop("resumed_seconds")
    _write(summary, out, quick)
    return summary


def _run(epochs, seed, corpus, c, resume, out, quick, progress, command) -> dict:
    from tqdm.auto import tqdm

    from ..datasets.text import batchify
    from ..models.gpt import TransformerLanguageModel
    from ..train import load_checkpoint

    data = _corpus(corpus)
    train, valid, test = data.train, data.valid, data.test
    if quick:
        train, valid, test = (train[:QUICK["train"]], valid[:QUICK["valid"]],
                              test[:QUICK["test"]])
        epochs = min(epochs, QUICK["epochs"])
        c = {**c, **{k: min(c[k], QUICK[k]) for k in ("block", "warmup", "d_model",
                                                       "num_layers", "dim_feedforward")}}
    name = ("transformer_lm" if corpus == "ptb" else f"transformer_lm_{corpus}") + \
        ("_adaptive" if c["softmax"] == "adaptive" else "")
    order = np.arange(len(data.vocab))  # model id -> vocabulary id
    output = {"softmax": c["softmax"]}
    if c["softmax"] == "adaptive":
        order = frequency_order(train, len(data.vocab))
        train, valid, test = renumber(order, train, valid, test)
        output.update(cutoffs=tuple(c["cutoffs"]), div_value=c["div_value"])
    fg.manual_seed(seed)
    model = TransformerLanguageModel(vocab_size=len(data.vocab), block_size=c["block"],
                                     d_model=c["d_model"], nhead=c["nhead"],
                                     num_layers=c["num_layers"],
                                     dim_feedforward=c["dim_feedforward"],
                                     dropout=c["dropout"], tie_weights=c["tie_weights"],
                                     **output)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = fg.optim.AdamW([{"params": decay, "weight_decay": c["weight_decay"]},
                                {"params": no_decay, "weight_decay": 0.0}],
                               lr=c["lr"], betas=(0.9, 0.95))
    source = batchify(train, c["batch_size"]).numpy()
    per_epoch = math.ceil((source.shape[0] - 1) / c["block"])
    if c["max_batches"]:
        per_epoch = min(per_epoch, c["max_batches"])
    total = per_epoch * epochs
    out.mkdir(parents=True, exist_ok=True)
    ckpt = checkpoint_dir(out, name)
    ckpt.mkdir(parents=True, exist_ok=True)
    last_path, best_path = ckpt / f"{name}_last.safetensors", ckpt / f"{name}_best.safetensors"
    setup = {"corpus": corpus, "seed": seed, "epochs": epochs, "quick": quick, **c}
    history, start, best, resumed_seconds = resume_epochs(last_path, model, optimizer, setup,
                                                          name, resume)
    clock = time.perf_counter()
    if not history:
        history.append({"epoch": 0, "valid_ppl": evaluate(model, valid, c["block"])})
    for epoch in range(start, epochs + 1):
        model.train()
        nll, count, t0 = 0.0, 0, time.perf_counter()
        bar = tqdm(windows(source, c["block"]), total=per_epoch, disable=not progress,
                   leave=False, desc=f"{name} epoch {epoch}/{epochs}")
        for k, (x, y) in enumerate(bar):
            if k == per_epoch:
                break
            step = (epoch - 1) * per_epoch + k
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, total, c["lr"], c["warmup"])
            loss = model.next_token_loss(fg.from_numpy(np.ascontiguousarray(x)),
                                         fg.from_numpy(np.ascontiguousarray(y)))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), c["clip"])
            optimizer.step()
            nll += loss.item() * y.size
            count += y.size
            if progress and k % 20 == 0:
                bar.set_postfix(ppl=f"{math.exp(nll / count):.1f}")
        bar.close()
        train_seconds = time.perf_counter() - t0
        with Timer() as tv:
            valid_ppl = evaluate(model, valid, c["block"])
        history.append({"epoch": epoch, "train_ppl": math.exp(nll / count),
                        "valid_ppl": valid_ppl, "train_seconds": train_seconds,
                        "valid_seconds": tv.seconds, "batches": min(per_epoch, k + 1)})
        if progress:
            tqdm.write(f"{name} epoch {epoch}: train ppl {math.exp(nll / count):.1f}, valid "
                       f"ppl {valid_ppl:.1f} ({train_seconds:.0f} s + {tv.seconds:.0f} s)")
        best = checkpoint_epoch(epoch, valid_ppl, best, model, optimizer, best_path, last_path,
                                history, setup, resumed_seconds + time.perf_counter() - clock)
    if best[1] > 0:
        load_checkpoint(best_path, model, restore_rng=False)
    with Timer() as tt:
        test_ppl = evaluate(model, test, c["block"])
    sample = model.generate(fg.from_numpy(np.asarray(test[:8], dtype=np.int64)), 24,
                            strategy="sample", top_k=40, seed=seed)
    trained = [r for r in history if r["epoch"] > 0]
    return {
        "title": f"{'PTB' if corpus == 'ptb' else 'WikiText-2'}: a causal transformer language "
                 "model beside the LSTM",
        "corpus": corpus, "name": name, "test_ppl": test_ppl, "valid_ppl": best[0],
        "best_epoch": best[1], "epochs": epochs, "initial_valid_ppl": history[0]["valid_ppl"],
        "history": history, "vocab_size": len(data.vocab), "config": c,
        "tokens": {"train": len(train), "valid": len(valid), "test": len(test)},
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "seconds_per_epoch": float(np.mean([r["train_seconds"] + r["valid_seconds"]
                                            for r in trained])) if trained else math.nan,
        "test_seconds": tt.seconds, "checkpoints": str(ckpt),
        "sample": " ".join(data.vocab.decode(order[sample.numpy()].tolist())),
        "prompt": " ".join(data.vocab.decode(order[np.asarray(test[:8])].tolist())),
        "lstm": _lstm_numbers(corpus),
        "command": command, "seed": seed, "resumed_seconds": resumed_seconds}


def _lstm_numbers(corpus: str) -> dict | None:
    """The published LSTM run on the same corpus (results/), if there is one."""
    import json

    from .common import PUBLISHED as PUBLISHED_DIR

    path = Path(PUBLISHED_DIR) / LSTM_RESULTS[corpus]
    if not path.exists():
        return None
    s = json.loads(path.read_text())
    return {"test_ppl": s["test_ppl"], "valid_ppl": s["valid_ppl"], "epoch": s["best_epoch"],
            "epochs": s["epochs"], "parameters": s["num_parameters"],
            "seconds": s["seconds"], "file": f"{LSTM_RESULTS[corpus][:-5]}.md"}


def _write(s: dict, out: Path, quick: bool) -> None:
    name, corpus, c = s["name"], s["corpus"], s["config"]
    label = "PTB" if corpus == "ptb" else "WikiText-2"
    fig = _plot(s["history"], s["best_epoch"], out / f"{name}_curves.png",
                f"{label}: causal transformer LM, perplexity per epoch")
    lstm = s["lstm"]
    table = [
        (f"**test perplexity** (the weights of epoch {s['best_epoch']}, chosen on validation; "
         "evaluated once)", f"{s['test_ppl']:.1f}",
         f"LSTM ({lstm['file']}): {lstm['test_ppl']:.1f}" if lstm else
         "no LSTM result published for this corpus yet"),
        (f"validation perplexity, kept epoch {s['best_epoch']} of {s['epochs']}",
         f"{s['valid_ppl']:.1f}", f"LSTM: {lstm['valid_ppl']:.1f}" if lstm else "—"),
        ("parameters", f"{s['num_parameters']:,}",
         f"LSTM: {lstm['parameters']:,}" if lstm else "—"),
        ("wall time (s)", f"{s['seconds']:.0f}", f"LSTM: {lstm['seconds']:.0f}" if lstm else "—"),
    ]
    for r in s["history"]:
        if r["epoch"] == 0:
            table.append(("validation perplexity of the initial weights",
                          f"{r['valid_ppl']:.0f}", "—"))
        else:
            table.append((f"epoch {r['epoch']}: train / validation perplexity",
                          f"{r['train_ppl']:.1f} / {r['valid_ppl']:.1f}", "—"))
    n = s["tokens"]
    notes = [
        f"Corpus: {CORPUS_NAMES[corpus]}, {s['vocab_size']:,} words; {n['train']:,} / "
        f"{n['valid']:,} / {n['test']:,} tokens (train / validation / test)"
        + (" (the short variant: the first tokens of each split)" if quick else "") + ".",
        "",
        f"Model: GPT-style decoder-only transformer, {c['num_layers']} pre-LayerNorm layers "
        f"(d_model {c['d_model']}, {c['nhead']} heads, feed-forward {c['dim_feedforward']}, "
        f"GELU), learned positions over {c['block']} tokens, dropout {c['dropout']:g}, "
        + ("untied input embedding and "
           f"{_output_layer({**c, 'nhid': c['d_model']}, s['vocab_size'])}; "
           if c.get("softmax") == "adaptive" else
           f"{'tied' if c['tie_weights'] else 'untied'} input and output embeddings; ")
        + f"{s['num_parameters']:,} parameters.",
        "",
        f"Training: AdamW (betas 0.9, 0.95; weight decay {c['weight_decay']:g} on matrices), "
        f"peak learning rate {c['lr']:g} after {c['warmup']} warm-up steps, cosine decay to a "
        f"tenth; batch {c['batch_size']} windows of {c['block']} tokens; gradient norm clipped "
        f"at {c['clip']:g}; {s['epochs']} epochs."
        + (f" Each epoch stopped after {c['max_batches']} batches (a timing probe, not the "
           "protocol)." if c["max_batches"] else ""),
        "",
        f"Protocol: the validation perplexity is measured after every epoch; the epoch with "
        f"the lowest is kept (checkpoints in {s['checkpoints']}/) and the test split is "
        "evaluated once, at the end, with those weights. Evaluation slides a window of "
        f"{c['block']} tokens with stride {c['block'] // 2}. The hyperparameters were fixed "
        "in advance, not tuned; the LSTM column is the published run of this project's "
        "ptb_lstm recipe (a different model, training scheme and evaluation context: the "
        "LSTM carries its state through the whole stream).",
        "",
        f"A sample (top-40, after the first 8 test tokens \"{s['prompt']}\"): {s['sample']}",
        "",
        f"Time: {s['seconds_per_epoch']:.0f} s per epoch (training and validation), test "
        f"{s['test_seconds']:.0f} s; the machine's cores may have been shared with other jobs.",
    ]
    write_results(name, out, s, table, notes="\n".join(notes), figures=(fig,))
