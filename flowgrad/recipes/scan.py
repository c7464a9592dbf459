"""Systematic generalisation on SCAN (Lake & Baroni 2018; lecture: "Systematic
Generalization"): sequence-to-sequence models that learn the commands they were shown, and fail
to recombine them — and the syntactic-attention model of Russin, Jo, O'Reilly & Bengio (2019),
which separates *where* to attend (syntax) from *what* to output (semantics).

Models (``flowgrad.models``), all trained the same way (Adam, gradient norm clipped at 5,
teacher forcing, the mean token cross-entropy, <eos> included; ``--set teacher_forcing=0.5``
feeds half of the sequences the recurrent decoder's own outputs instead, as Lake & Baroni did):

- ``rnn``: an RNN encoder-decoder without attention, Lake & Baroni's overall-best architecture
  (2-layer LSTM, 200 units, dropout 0.5);
- ``attention``: an RNNsearch-style encoder-decoder (bidirectional GRU encoder, GRU decoder with
  additive attention; Bahdanau, Cho & Bengio 2014);
- ``transformer``: a transformer encoder-decoder (Vaswani et al. 2017), 2 + 2 layers;
- ``syntactic``: syntactic attention with the sizes of the authors' code.

Protocol. SCAN has no validation split: a fraction of the training file (10% by default,
drawn once per split from the lines that occur only once, ``flowgrad.datasets.scan``) is held
out. Every ``eval_every`` updates the greedy exact-match accuracy on it is measured and the
best weights are kept; the test file is decoded once per run, at the end, with those weights.
Note that on the add-primitive and length splits the held-out examples come from the
training distribution, so they cannot reveal the failure that the test measures: the
selection is honest, not oracle (Csordás, Irie & Schmidhuber 2021 discuss this).

Every (model, split, seed) run writes ``scan_cells/<model>_<split>_seed<k>.json`` in the run
directory as soon as it ends; rerunning with the same ``--out`` skips the finished ones and
resumes an unfinished one from its last evaluation, so a grid can be completed over several
sessions. The summary averages over seeds (mean ± standard deviation) beside the published
numbers.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import flowgrad as fg

from .. import nn
from .common import Timer, command_line, resolve_out, summary_machine, write_results

SPLITS = ("simple", "length", "addprim_turn_left", "addprim_jump")
SPLIT_NAMES = {"simple": "simple (random 80/20)", "length": "length",
               "addprim_turn_left": "add-primitive: turn left",
               "addprim_jump": "add-primitive: jump"}
MODELS = ("rnn", "attention", "transformer", "syntactic")
MODEL_NAMES = {"rnn": "RNN encoder-decoder, no attention (2 x 200 LSTM)",
               "attention": "RNNsearch-style (bi-GRU 100 + additive attention)",
               "transformer": "transformer encoder-decoder (2 + 2 layers, d 128)",
               "syntactic": "syntactic attention (Russin et al. 2019)"}
DEFAULTS = {"models": ",".join(MODELS), "splits": ",".join(SPLITS), "seeds": 3,
            "steps": 3000, "batch_size": 32}
# The training protocol of each model's paper, as (updates, examples per update, learning-rate
# schedule, share of sequences teacher-forced): Lake & Baroni (2018), section 3: 100,000
# presentations of one command, Adam at 0.001, norm clipping at 5, teacher forcing on half of
# them; Russin et al.'s ``train_test.py``: 200,000 updates of one command (its decoder never
# reads its outputs, so the share stays 1). A budget that follows it heads its model's row.
PAPER_PROTOCOL = {"rnn": (100_000, 1, "constant", 0.5),
                  "attention": (100_000, 1, "constant", 0.5),
                  "syntactic": (200_000, 1, "constant", 1.0)}
# the short variant: one model on one split, a subset of it, a few hundred updates
QUICK = {"train": 2000, "valid": 100, "test": 100, "steps": 200, "eval_every": 100,
         "models": "attention", "splits": "simple"}
MAX_DECODE = 50  # SCAN's longest action sequence has 48 actions

# Published test exact-match accuracy (%); None where the source gives no number.
PUBLISHED = {
    "lake_baroni": {"simple": 99.7, "length": 13.8, "addprim_turn_left": 90.0,
                    "addprim_jump": 0.08},
    "lake_baroni_best": {"simple": 99.8, "length": 20.8, "addprim_turn_left": 90.3,
                         "addprim_jump": 1.2},
    "russin": {"simple": 100.0, "length": 15.2, "addprim_turn_left": None,
               "addprim_jump": 91.0},
    "transformer": {"simple": None, "length": 0.0, "addprim_turn_left": None,
                    "addprim_jump": 1.0},
}
SOURCES = {
    "lake_baroni": "Lake & Baroni (ICML 2018, arXiv 1711.00350v3), section 4: the overall-best "
                   "network (2-layer LSTM, 200 units, no attention, dropout 0.5), mean of 5 "
                   "runs",
    "lake_baroni_best": "the same paper's best architecture for each experiment (simple: LSTM "
                        "2 x 200 no attention; length: GRU + attention 1 x 50; turn left: GRU "
                        "+ attention 1 x 100; jump: LSTM + attention 1 x 100), mean of 5 runs",
    "russin": "Russin, Jo, O'Reilly & Bengio (2019, arXiv 1904.09708) as tabulated by Kim "
              "(2021, Neural QCFG, Table 1, row \"Syntactic Attn\"); the paper's own table "
              "(whether 91.0 on jump is a mean or a median over its runs) was not read here",
    "transformer": "a vanilla transformer as reported by Furrer et al. (2020, arXiv "
                   "2007.08970), tabulated by Kim (2021, Table 1)",
}


def build_model(kind: str, src_vocab: int, tgt_vocab: int):
    """The model ``kind`` for vocabularies of these sizes, with its learning rate and warm-up."""
    from ..models.seq2seq import AttentionSeq2Seq, RNNEncoderDecoder
    from ..models.syntactic_attention import SyntacticAttentionSeq2Seq
    from ..models.transformer_seq2seq import TransformerSeq2Seq

    if kind == "rnn":
        return RNNEncoderDecoder(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab,
                                 embed_dim=200, hidden_size=200, cell="lstm", num_layers=2,
                                 dropout=0.5), 1e-3, 0
    if kind == "attention":
        return AttentionSeq2Seq(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab,
                                embed_dim=100, hidden_size=100, cell="gru", num_layers=1,
                                dropout=0.1), 1e-3, 0
    if kind == "transformer":
        return TransformerSeq2Seq(src_vocab=src_vocab, tgt_vocab=tgt_vocab, d_model=128,
                                  nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                                  dim_feedforward=256, dropout=0.1), 5e-4, 500
    if kind == "syntactic":
        return SyntacticAttentionSeq2Seq.from_paper(src_vocab, tgt_vocab), 1e-3, 0
    raise ValueError(f"scan: unknown model {kind!r}; expected one of {', '.join(MODELS)}")


def accuracy(model, pairs_batch, targets, batch: int = 256) -> tuple[float, list]:
    """Greedy exact-match accuracy over an encoded part (ScanBatch) and the predictions."""
    from ..datasets.scan import exact_match
    from ..models.seq2seq import greedy_decode

    predictions = []
    n = len(targets)
    for s in range(0, n, batch):
        src = pairs_batch.src[s:s + batch]
        lengths = pairs_batch.src_lengths[s:s + batch]
        src = src[:, :int(lengths.max())]
        predictions += greedy_decode(model, fg.from_numpy(src), lengths, MAX_DECODE)
    return exact_match(predictions, targets), predictions


def learning_rate(base: float, step: int, steps: int, warmup: int, schedule: str) -> float:
    """The learning rate at update ``step`` (1-based): a linear warm-up over ``warmup`` updates,
    then ``base`` ("constant") or a cosine decay from ``base`` to 0 at ``steps`` ("cosine";
    Loshchilov & Hutter 2017, without restarts)."""
    if warmup and step <= warmup:
        return base * step / warmup
    if schedule == "constant":
        return base
    if schedule == "cosine":
        progress = (step - warmup) / max(1, steps - warmup)
        return base * 0.5 * (1.0 + float(np.cos(np.pi * min(1.0, progress))))
    raise ValueError(f"scan: unknown schedule {schedule!r}; expected 'constant' or 'cosine'")


def train_cell(kind: str, split: str, seed: int, steps: int, batch_size: int,
               eval_every: int, valid_fraction: float, quick: bool, progress: bool,
               out: Path | None = None, schedule: str = "constant",
               teacher_forcing: float = 1.0, name: str | None = None,
               stop_at_perfect: bool = False) -> dict:
    """One run: train ``kind`` on ``split`` with ``seed``, keep the best validation weights,
    test once. ``stop_at_perfect`` ends training at the first evaluation with 100% validation
    exact match: only a strictly better score replaces the kept weights, so the kept weights,
    and the test number, are those the whole budget would give.
    ``teacher_forcing`` < 1 (recurrent models only) feeds each training sequence,
    with probability 1 - teacher_forcing, its own previous outputs instead of the targets
    (Lake & Baroni 2018 used 0.5). Returns the cell's record; with ``out``, the kept weights
    go to the run's checkpoint directory and, for seed 0 of a model with attention, a heatmap
    of its attention on a test command to ``out``. With ``out`` and ``name``, every evaluation
    also checkpoints the whole training state (``<name>.resume.safetensors`` beside the kept
    weights), and a cell interrupted after one resumes from it, drawing the same batches."""
    import itertools

    from tqdm.auto import tqdm

    from ..datasets.scan import SCAN, batch_pairs, encode_pairs
    from ..models.seq2seq import sequence_loss
    from ..train import load_checkpoint, save_checkpoint

    data = SCAN(split, valid_fraction=valid_fraction, seed=0)
    train, valid, test = data.train, data.valid, data.test
    if quick:
        rng = np.random.default_rng(seed)
        train = [train[i] for i in rng.permutation(len(train))[:QUICK["train"]]]
        valid, test = valid[:QUICK["valid"]], test[:QUICK["test"]]
    if teacher_forcing < 1.0 and kind not in ("rnn", "attention"):
        raise ValueError(f"scan: teacher_forcing={teacher_forcing} needs a recurrent decoder "
                         f"('rnn' or 'attention'), not {kind!r}")
    fg.manual_seed(seed)
    model, lr, warmup = build_model(kind, len(data.src_vocab), len(data.tgt_vocab))
    coin = np.random.default_rng([seed, 7])  # which sequences read back their own outputs
    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    enc = {name: encode_pairs(part, data.src_vocab, data.tgt_vocab)
           for name, part in (("valid", valid), ("test", test))}
    targets = {name: [data.tgt_vocab.encode(a).tolist() for _, a in part]
               for name, part in (("valid", valid), ("test", test))}
    def batches():
        epoch = 0
        while True:
            yield from batch_pairs(train, data.src_vocab, data.tgt_vocab, batch_size,
                                   shuffle=True, seed=seed * 1000 + epoch, bucket=True)
            epoch += 1

    curve, best, running, done, spent = [], (-1.0, 0, None), [], 0, 0.0
    resume = best_path = stopped_at = None
    key = {"model": kind, "split": split, "seed": seed, "steps": steps,
           "batch_size": batch_size, "eval_every": eval_every, "valid_fraction": valid_fraction,
           "quick": quick, "schedule": schedule, "teacher_forcing": teacher_forcing}
    if out is not None and name is not None:
        resume, best_path = _resume_paths(out, name)
    if resume is not None and resume.exists():
        extra = load_checkpoint(resume, model, optimizer)["extra"]
        if extra["key"] != key:
            raise ValueError(f"{resume} was written by a run with other settings "
                             f"({extra['key']}); this run has {key}. Choose another --out")
        curve, running, done, spent = (extra["curve"], extra["running"], extra["step"],
                                       extra["seconds"])
        coin.bit_generator.state = extra["coin"]
        best = (extra["best_valid"], extra["best_step"],
                fg.load(best_path) if extra["best_step"] else None)
    start = time.perf_counter()
    bar = tqdm(total=steps, initial=done, desc=f"scan {kind} {split} seed {seed}",
               disable=not progress, leave=False)
    for step, b in enumerate(itertools.islice(batches(), done, None), done + 1):
        if step > steps:
            break
        if warmup or schedule != "constant":
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(lr, step, steps, warmup, schedule)
        model.train()
        extra_args = {}
        if teacher_forcing < 1.0:
            extra_args["feed_own"] = coin.random(len(b.src)) >= teacher_forcing
        logits = model(fg.from_numpy(b.src), b.src_lengths, fg.from_numpy(b.tgt_in),
                       **extra_args)
        loss = sequence_loss(logits, b.tgt_out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        running.append(loss.item())
        bar.update(1)
        if step % eval_every == 0 or step == steps:
            acc, _ = accuracy(model, enc["valid"], targets["valid"])
            curve.append({"step": step, "train_loss": float(np.mean(running)),
                          "valid_exact_match": acc})
            running = []
            bar.set_postfix(loss=f"{curve[-1]['train_loss']:.3f}", valid=f"{acc:.3f}")
            if acc > best[0]:
                best = (acc, step, {k: v.detach().clone() for k, v in
                                    model.state_dict().items()})
                if best_path is not None:
                    best_path.parent.mkdir(parents=True, exist_ok=True)
                    fg.save(best[2], best_path)
            if stop_at_perfect and acc >= 1.0 and step < steps:
                stopped_at = step
                break
            if resume is not None and step < steps:
                save_checkpoint(resume, model, optimizer, extra={
                    "key": key, "curve": curve, "running": running, "step": step,
                    "seconds": spent + time.perf_counter() - start,
                    "coin": coin.bit_generator.state, "best_valid": best[0],
                    "best_step": best[1]})
    bar.close()
    train_seconds = spent + time.perf_counter() - start
    model.load_state_dict(best[2])
    with Timer() as tt:
        test_acc, predictions = accuracy(model, enc["test"], targets["test"])
    extra = {}
    if out is not None:
        extra = _keep(model, kind, split, seed, test, data, out)
    if kind == "syntactic" and model.config.add_boundaries:
        extra["end_slot_share"] = end_slot_share(model, valid, data)
        if split == "addprim_jump":
            extra["primitive"] = primitive_reading(model, data)
    wrong = [i for i, (p, t) in enumerate(zip(predictions, targets["test"])) if p != t][:5]
    return {"model": kind, "split": split, "seed": seed, "test_exact_match": test_acc,
            "valid_exact_match": best[0], "best_step": best[1], "steps": steps,
            "batch_size": batch_size, "lr": lr, "warmup": warmup, "schedule": schedule,
            "teacher_forcing": teacher_forcing, "curve": curve, "stopped_at": stopped_at,
            "train_seconds": train_seconds, "test_seconds": tt.seconds,
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "sizes": {"train": len(train), "valid": len(valid), "test": len(test)},
            **extra,
            "errors": [{"command": " ".join(test[i][0]),
                        "predicted": " ".join(data.decode_actions(predictions[i])),
                        "target": " ".join(test[i][1])} for i in wrong]}


def end_slot_share(model, pairs: list, data, limit: int = 500) -> float:
    """The share of output steps, <EOS> left out, at which a syntactic-attention model puts
    more than 0.99 of its attention on the source's end slot, over the first ``limit`` of
    ``pairs`` (held-out training commands). A working model attends there only to end its
    output (share near 0); a run whose attention has collapsed onto that slot, where the
    saturated softmax passes the syntactic stream no gradient, gives 1."""
    from ..datasets.scan import encode_pairs

    part = encode_pairs(pairs[:limit], data.src_vocab, data.tgt_vocab)
    model.eval()
    with fg.no_grad():
        _, attention = model.forward_with_attention(
            fg.from_numpy(part.src), part.src_lengths, part.tgt_in.shape[1])
    attention = attention.numpy()                                   # (B, T, S + 2)
    end = part.src_lengths + 1                                      # the end slot's index
    on_end = attention[np.arange(len(end)), :, end] > 0.99          # (B, T)
    before_eos = np.arange(attention.shape[1])[None, :] < (part.tgt_lengths - 1)[:, None]
    return float(on_end[before_eos].mean())


def primitive_reading(model, data, word: str = "jump", action: str = "I_JUMP") -> dict:
    """How a trained syntactic-attention model answers the primitive alone (e.g. "jump"),
    from its weights only: the first output step's attention over the start slot, the word and
    the end slot, and what the word's semantic embedding reads as through the output layer.
    On add-jump the primitive is seen alone only, so the model can answer it from a boundary
    slot; then the action is not tied to the word and cannot carry into new commands."""
    model.eval()
    src = data.src_vocab.encode([word])[None, :]
    with fg.no_grad():
        _, attention = model.forward_with_attention(fg.from_numpy(src), np.array([1]), 1)
        word_id = int(src[0, 0])
        probs = model.out(model.semantic_embedding.weight[word_id:word_id + 1]).softmax(-1)
    probs = probs.numpy()[0]
    slots = [float(a) for a in attention.numpy()[0, 0]]
    return {"word": word, "attention": dict(zip(("start", "word", "end"), slots)),
            "semantic_reads_as": data.tgt_vocab.itos[int(probs.argmax())],
            "semantic_p_action": float(probs[data.tgt_vocab.encode([action])[0]])}


def _resume_paths(out: Path, name: str) -> tuple[Path, Path]:
    """Where an unfinished cell keeps its training state and its best weights so far."""
    from .ptb_lstm import checkpoint_dir

    folder = checkpoint_dir(out, "scan")
    return folder / f"{name}.resume.safetensors", folder / f"{name}.best.safetensors"


def _keep(model, kind: str, split: str, seed: int, test: list, data, out: Path) -> dict:
    """Save the kept weights (the run's checkpoint directory) and, for seed 0, the attention
    map of the shortest test command that holds the add-primitive word (or of the first)."""
    from ..models.seq2seq import greedy_decode, save_attention_heatmap
    from .ptb_lstm import checkpoint_dir

    ckpt = checkpoint_dir(out, "scan")
    ckpt.mkdir(parents=True, exist_ok=True)
    weights = ckpt / f"scan_{kind}_{split}_seed{seed}.safetensors"
    fg.save(model.state_dict(), weights)
    record = {"weights": str(weights)}
    if seed != 0 or kind not in ("attention", "syntactic"):
        return record
    word = {"addprim_jump": "jump", "addprim_turn_left": "left"}.get(split)
    pool = [p for p in test if word in p[0]] if word else []
    command = min(pool or test[:1], key=lambda p: (len(p[0]) < 3, len(p[0])))[0]
    src = data.src_vocab.encode(command)[None, :]
    pred, attn = greedy_decode(model, fg.from_numpy(src), np.array([len(command)]),
                               MAX_DECODE, return_attention=True)
    path = out / f"scan_attention_{kind}_{split}.png"
    save_attention_heatmap(attn[0], command, data.decode_actions(pred[0]), path,
                           title=f"{kind}, {split}")
    record["heatmap"] = path.name
    return record


def run(models=DEFAULTS["models"], splits=DEFAULTS["splits"], seeds=3, steps=3000,
        batch_size=32, eval_every=500, valid_fraction=0.1, schedule="constant",
        teacher_forcing=1.0, stop_at_perfect=False, train=True, threads=None, out=None,
        quick=False, progress=True) -> dict:
    """Train every (model, split, seed) not finished yet in ``out``, then summarise all the
    cells found there. ``models`` and ``splits`` are comma-separated names; ``seeds`` a count
    (seeds 0..n-1) or a comma-separated list. ``teacher_forcing`` < 1 (recurrent models): the
    share of training sequences fed the targets, the others reading back their own outputs.
    ``stop_at_perfect`` ends a run once its validation exact match is 100%: its kept weights
    and test number are then those of the whole budget, in less time.
    ``train=False`` only rewrites the summary of the cells already in ``out``."""
    from .ptb_lstm import _limit_threads

    if not 0.0 <= float(teacher_forcing) <= 1.0:
        raise ValueError(f"scan: teacher_forcing={teacher_forcing}; expected a share in [0, 1]")
    command = command_line("scan", run, locals())
    out = Path(resolve_out("scan", out))
    kinds = _names(models, MODELS, "model")
    parts = _names(splits, SPLITS, "split")
    seed_list = _seeds(seeds)
    if quick:
        steps, eval_every = min(steps, QUICK["steps"]), QUICK["eval_every"]
        if models == DEFAULTS["models"]:
            kinds = [QUICK["models"]]
        if splits == DEFAULTS["splits"]:
            parts = [QUICK["splits"]]
        seed_list = seed_list[:1]
    cells_dir = out / "scan_cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    learning_rate(1.0, 1, 1, 0, schedule)  # an unknown schedule fails before any training
    setup = {"steps": steps, "batch_size": batch_size, "eval_every": eval_every,
             "valid_fraction": valid_fraction, "quick": quick, "schedule": schedule}
    if float(teacher_forcing) != 1.0:  # full teacher forcing stays out of the key
        setup["teacher_forcing"] = float(teacher_forcing)
    with _limit_threads(threads), Timer() as t:
        for split in parts if train else ():
            for kind in kinds:
                for seed in seed_list:
                    path = cells_dir / f"{cell_name(kind, split, seed, setup)}.json"
                    if path.exists():
                        done = json.loads(path.read_text())
                        if {"schedule": "constant", **done.get("setup", {})} != setup:
                            raise ValueError(f"{path} was written with other settings "
                                             f"({done.get('setup')}); this run has {setup}. "
                                             "Choose another --out")
                        continue
                    cell = train_cell(kind, split, seed, steps, batch_size, eval_every,
                                      valid_fraction, quick, progress, out, schedule,
                                      float(teacher_forcing), name=path.stem,
                                      stop_at_perfect=bool(stop_at_perfect))
                    cell["setup"] = setup
                    _write_atomic(path, cell)
                    for partial in _resume_paths(out, path.stem):
                        partial.unlink(missing_ok=True)
                    if progress:
                        from tqdm.auto import tqdm

                        tqdm.write(f"scan {kind} {split} seed {seed}: test exact match "
                                   f"{100 * cell['test_exact_match']:.1f}% (valid "
                                   f"{100 * cell['valid_exact_match']:.1f}% at step "
                                   f"{cell['best_step']}; {cell['train_seconds']:.0f} s)")
    cells = [json.loads(p.read_text()) for p in sorted(cells_dir.glob("*.json"))]
    summary = _summarise(cells, command, quick)
    if not train:
        summary["machine"] = summary_machine()
    summary["seconds"] = t.seconds if train else sum(c["train_seconds"] + c["test_seconds"]
                                                     for c in cells)
    _write(summary, out)
    return summary


def _seeds(seeds) -> list:
    """A count n (seeds 0..n-1), or the seeds themselves as a list or "0,3,4"."""
    if isinstance(seeds, (list, tuple)):
        return [int(s) for s in seeds]
    if isinstance(seeds, str) and "," in seeds:
        return [int(s) for s in seeds.split(",") if s.strip()]
    if int(seeds) < 1:
        raise ValueError(f"scan: seeds={seeds!r} is a count of seeds and asks for no run; pass "
                         "a count >= 1, or the seeds themselves (--set seeds=0, for seed 0 alone)")
    return list(range(int(seeds)))


def _names(value, allowed: tuple, what: str) -> list:
    """Names from "a,b", ("a", "b") or "a"."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(v).strip() for v in items if str(v).strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise ValueError(f"scan: unknown {what} {bad or value!r}; expected some of "
                         f"{', '.join(allowed)}")
    return names


def cell_name(kind: str, split: str, seed: int, setup: dict) -> str:
    """The file name (without .json) of a cell: ``<model>_<split>_seed<k>``, with the budget
    appended (``_8000x32_cosine``) when it is not the default one, so that runs of several
    budgets can share an output directory."""
    name = f"{kind}_{split}_seed{seed}"
    budget = (setup["steps"], setup["batch_size"], setup.get("schedule", "constant"))
    if budget != (DEFAULTS["steps"], DEFAULTS["batch_size"], "constant"):
        name += "_{}x{}_{}".format(*budget)
    if setup.get("teacher_forcing", 1.0) != 1.0:
        name += f"_tf{setup['teacher_forcing']:g}"
    return name


def _budget(c: dict) -> tuple:
    s = c.get("setup", {})
    return (s.get("steps", c["steps"]), s.get("batch_size", c["batch_size"]),
            c.get("schedule", "constant"), s.get("teacher_forcing", 1.0))


def _is_paper_protocol(c: dict) -> bool:
    """Whether a cell was trained with its model's published protocol (``PAPER_PROTOCOL``)."""
    return PAPER_PROTOCOL.get(c["model"]) == _budget(c)


def _write_atomic(path: Path, record: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=float) + "\n")
    tmp.replace(path)


def _group_stats(cs: list) -> dict:
    cs = sorted(cs, key=lambda c: c["seed"])
    return {"paper_protocol": _is_paper_protocol(cs[0]),
            "mean": 100 * float(np.mean([c["test_exact_match"] for c in cs])),
            "std": 100 * float(np.std([c["test_exact_match"] for c in cs])),
            "seeds": [c["seed"] for c in cs],
            "valid_mean": 100 * float(np.mean([c["valid_exact_match"] for c in cs])),
            "minutes": float(np.mean([c["train_seconds"] for c in cs])) / 60,
            "steps": sorted({c["steps"] for c in cs}),
            "schedules": sorted({c.get("schedule", "constant") for c in cs}),
            "batch_size": cs[0]["batch_size"],
            "teacher_forcing": cs[0].get("setup", {}).get("teacher_forcing", 1.0),
            "best_steps": [c["best_step"] for c in cs],
            "per_seed": [100 * c["test_exact_match"] for c in cs]}


def _summarise(cells: list, command: str, quick: bool) -> dict:
    """Mean and spread over seeds for every (model, split, budget). The headline of a
    (model, split) is the budget of its paper's protocol where one was run, else its largest
    budget (most examples, then most updates), and among schedules of that size the one with
    the best validation exact match; the other budgets are listed under ``others``."""
    table = {}
    for c in cells:
        table.setdefault(c["model"], {}).setdefault(c["split"], {}).setdefault(
            _budget(c), []).append(c)
    stats = {}
    for m, splits in table.items():
        for s, budgets in splits.items():
            order = sorted(budgets, key=lambda b: (
                _is_paper_protocol(budgets[b][0]), b[0] * b[1], b[0], np.mean(
                [c["valid_exact_match"] for c in budgets[b]])), reverse=True)
            head = _group_stats(budgets[order[0]])
            head["others"] = [_group_stats(budgets[b]) for b in order[1:]]
            stats.setdefault(m, {})[s] = head
    return {"title": "SCAN: systematic generalisation of sequence-to-sequence models",
            "batch_size": cells[0]["batch_size"] if cells else None,
            "cell_commands": _cell_commands(cells, quick),
            "compute_minutes": sum(c["train_seconds"] + c["test_seconds"] for c in cells) / 60,
            "stats": stats, "cells": len(cells), "quick": quick, "command": command,
            "seed": "see each cell", "published": PUBLISHED, "sources": SOURCES,
            "heatmaps": sorted({c["heatmap"] for c in cells if c.get("heatmap")}),
            "collapsed": [f"{c['model']}, {SPLIT_NAMES[c['split']]}, "
                          f"{c['steps']:,}x{c['batch_size']}, seed {c['seed']} (share "
                          f"{c['end_slot_share']:.2f}; validation exact match "
                          f"{100 * c['valid_exact_match']:.1f}%, last training loss "
                          f"{c['curve'][-1]['train_loss']:.2f})"
                          for c in cells if c.get("end_slot_share", 0.0) > 0.5],
            "stopped": [f"{c['model']}, {SPLIT_NAMES[c['split']]}, seed {c['seed']}: "
                        f"update {c['stopped_at']:,}" for c in cells if c.get("stopped_at")],
            "examples": {f"{c['model']}/{c['split']}/{c['seed']}": c["errors"][:2]
                         for c in cells if c["seed"] == 0},
            "primitive": [{"seed": c["seed"], "budget": _budget(c),
                           "test_exact_match": c["test_exact_match"], **c["primitive"]}
                          for c in cells if c.get("primitive")]}


def _cell_commands(cells: list, quick: bool) -> list[str]:
    """One command per (model, split, settings) group of cells that trains exactly those
    cells (a run skips the cells its output directory already holds)."""
    groups = {}
    for c in cells:
        s = c.get("setup", {})
        key = (c["model"], c["split"], s.get("steps", c["steps"]),
               s.get("batch_size", c["batch_size"]), s.get("eval_every"),
               s.get("valid_fraction"), s.get("schedule", "constant"),
               s.get("teacher_forcing", 1.0))
        groups.setdefault(key, []).append(c["seed"])
    commands = []
    for (model, split, steps, batch, every, fraction, schedule, forcing), seeds in sorted(
            groups.items()):
        values = {"models": model, "splits": split, "seeds": tuple(sorted(seeds)),
                  "steps": steps, "batch_size": batch, "schedule": schedule,
                  "teacher_forcing": forcing, "quick": quick}
        if every is not None:
            values["eval_every"] = every
        if fraction is not None:
            values["valid_fraction"] = fraction
        commands.append(command_line("scan", run, values))
    return commands


def _primitive_words(readings: list) -> str:
    """The syntactic-attention runs' reading of "jump" alone (``primitive_reading``), in words."""
    runs = []
    for r in sorted(readings, key=lambda r: (tuple(map(str, r["budget"])), r["seed"])):
        a = r["attention"]
        steps, batch = r["budget"][:2]
        runs.append(f"seed {r['seed']} ({steps} updates of {batch}; test "
                    f"{100 * r['test_exact_match']:.1f}%): attention {a['start']:.2f} / "
                    f"{a['word']:.2f} / {a['end']:.2f}, the word's embedding reads as "
                    f"{r['semantic_reads_as']} (p(I_JUMP) = {r['semantic_p_action']:.2f})")
    return ("How the syntactic-attention runs on add-jump answer \"jump\" alone, read from "
            "their kept weights (no test data): the first output's attention on the start "
            "slot / the word / the end slot, and the action the word's semantic embedding "
            "gives through the output layer. \"jump\" is seen alone only, so a run can answer "
            "it from a boundary slot; then I_JUMP is not tied to the word and does not carry "
            "into new commands. " + "; ".join(runs) + ".")


def _protocol_words() -> str:
    """``PAPER_PROTOCOL`` in words, for the results file."""
    return "; ".join(
        f"{MODEL_NAMES[m]}: {steps:,} updates of {batch} command ({schedule} learning rate"
        + _forcing_words(share) + ")"
        for m, (steps, batch, schedule, share) in PAPER_PROTOCOL.items())


def _forcing_words(share: float) -> str:
    """How a budget's decoder inputs were fed, for its table row ("" for full teacher
    forcing)."""
    if share == 1.0:
        return ""
    return (f"; teacher forcing on {100 * share:g}% of the sequences, the decoder's own "
            "outputs fed back on the rest")


def _plot(stats: dict, path: Path) -> Path:
    from ..plotting import new_figure, save_figure

    fig, ax = new_figure(figsize=(8, 4.2), layout="constrained")
    kinds = [m for m in MODELS if m in stats]
    width = 0.8 / max(1, len(kinds))
    for k, m in enumerate(kinds):
        xs = [i + (k - (len(kinds) - 1) / 2) * width for i, s in enumerate(SPLITS)
              if s in stats[m]]
        ys = [stats[m][s]["mean"] for s in SPLITS if s in stats[m]]
        es = [stats[m][s]["std"] for s in SPLITS if s in stats[m]]
        ax.bar(xs, ys, width, yerr=es, capsize=3, label=MODEL_NAMES[m])
    for i, s in enumerate(SPLITS):
        ref = PUBLISHED["lake_baroni"][s]
        ax.plot([i - 0.45, i + 0.45], [ref, ref], "k--", lw=1,
                label="Lake & Baroni, overall-best seq2seq" if i == 0 else None)
    ax.set_xticks(range(len(SPLITS)), [SPLIT_NAMES[s] for s in SPLITS], fontsize=8)
    ax.set(ylabel="test exact match (%)", ylim=(0, 105),
           title="SCAN: mean over seeds (bars: standard deviation)")
    ax.legend(fontsize=7, loc="upper right")
    return save_figure(fig, path, dpi=100)


def _write(s: dict, out: Path) -> None:
    stats = s["stats"]
    fig = _plot(stats, out / "scan_accuracy.png")
    rows = []
    for split in SPLITS:
        for m in MODELS:
            if split not in stats.get(m, {}):
                continue
            st = stats[m][split]
            pub = []
            if m == "rnn":
                pub.append(f"{PUBLISHED['lake_baroni'][split]}% (Lake & Baroni, overall-best)")
            if m in ("rnn", "attention"):
                pub.append(f"best seq2seq for this split: "
                           f"{PUBLISHED['lake_baroni_best'][split]}%")
            if m == "syntactic" and PUBLISHED["russin"][split] is not None:
                pub.append(f"{PUBLISHED['russin'][split]}% (Russin et al.)")
            if m == "transformer" and PUBLISHED["transformer"][split] is not None:
                pub.append(f"{PUBLISHED['transformer'][split]}% (Furrer et al.)")
            for k, g in enumerate([st, *st.get("others", [])]):
                rows.append((f"{SPLIT_NAMES[split]}: {MODEL_NAMES[m]}"
                             + ("" if k == 0 else " (another budget)"),
                             f"**{g['mean']:.1f}** ± {g['std']:.1f} over {len(g['seeds'])} "
                             f"seed(s) ({', '.join(f'{v:.1f}' for v in g['per_seed'])}); "
                             f"validation {g['valid_mean']:.1f}; "
                             f"{'/'.join(str(v) for v in g['steps'])} updates of "
                             f"{g.get('batch_size', s['batch_size'])} "
                             f"({'/'.join(g.get('schedules', ['constant']))} learning rate"
                             + _forcing_words(g.get("teacher_forcing", 1.0)) + "), "
                             + ("the paper's protocol, " if g.get("paper_protocol") else "")
                             + f"{g['minutes']:.0f} min each",
                             "; ".join(pub) or "—"))
    short = [f"{SPLIT_NAMES[split]}, {m}, {'/'.join(str(v) for v in g['steps'])} updates "
             f"({g['valid_mean']:.1f}%)"
             for split in SPLITS for m in MODELS if split in stats.get(m, {})
             for g in [stats[m][split], *stats[m][split].get("others", [])]
             if g["valid_mean"] < 99]
    notes = [
        "The runs behind this table (each writes its cells in scan_cells/; a run skips the "
        "cells its output directory holds already):",
        "",
        *[f"- `{c}`" for c in s["cell_commands"]],
        "",
        f"{s['cells']} runs, {s['compute_minutes']:.0f} minutes of training and testing in "
        "all (one BLAS thread each; runs shared the machine's cores, so their times vary).",
        "",
        "Test exact match: the fraction of test commands whose greedy output equals the "
        "whole target action sequence. Each run keeps the weights with the best exact match "
        "on the held-out part of its training file and decodes the test file once. Each row "
        "gives the mean over its seeds ± their standard deviation (over the seeds run, "
        "dividing by their number), then each seed's value.",
        "",
        *([("Runs that reached 100% validation exact match stopped there (`--set "
            "stop_at_perfect=True`): only a strictly better validation score replaces the kept "
            "weights, so their kept weights and test numbers are those of the whole budget, and "
            "the commands above without that option give the same numbers in more time. "
            "Stopped: " + "; ".join(s["stopped"]) + "."), ""] if s.get("stopped") else []),
        "Where a model was run on a split with several budgets, the first row is the one "
        "trained with its paper's protocol where there is one, else the largest budget, and "
        "among learning-rate schedules of that size the one with the better validation exact "
        "match; rows marked \"another budget\" are shown for comparison and were not used to "
        "choose anything by their test numbers.",
        "",
        "Sources of the published numbers: " + "; ".join(SOURCES.values()) + ".",
        "",
        *([f"Rows whose kept validation exact match (mean over seeds) is below 99%: "
           f"{'; '.join(short)}. At those budgets the models do not yet fit their own "
           "training distribution (Lake & Baroni report more than 99.5% training accuracy), "
           "so their test numbers are those of under-trained models.", ""] if short else []),
        "The papers' protocols: " + _protocol_words() + ". Rows not marked \"the paper's "
        "protocol\" differ from it: mini-batches instead of one example per update, fewer "
        "updates, and full teacher forcing unless the row says otherwise; see the recipe's "
        "docstring for the protocol.",
    ]
    if s.get("primitive"):
        notes += ["", _primitive_words(s["primitive"])]
    if s.get("collapsed"):
        notes += ["", "Syntactic-attention runs whose attention collapsed onto the source's end "
                  "slot: at more than half of the output steps of 500 held-out commands, "
                  "<EOS> left out, the kept weights put more than 0.99 of the attention on "
                  "that slot, so every output reads the same semantic vector and the saturated "
                  "softmax passes the syntactic stream no gradient (a working run: share "
                  "near 0): " + "; ".join(s["collapsed"]) + "."]
    if s["quick"]:
        notes += ["", "This is the short variant (a subset of each split, a few hundred "
                  "updates): a smoke run, not a result."]
    maps = tuple(out / name for name in s.get("heatmaps", []) if (out / name).exists())
    write_results("scan", out, s, rows, notes="\n".join(notes), figures=(fig,) + maps)
