"""Teacher forcing and its compounding error, with scheduled sampling as the fix (lecture:
"Maximum Likelihood = Teacher Forcing": "during training, past y in input is from training
data; at generation time, past y in input is generated; mismatch can cause compounding
error"; Bengio, Vinyals, Jaitly & Shazeer, "Scheduled Sampling for Sequence Prediction with
Recurrent Neural Networks", NeurIPS 2015).

A character-level LSTM language model on Penn Treebank text (Mikolov's files, words joined by
spaces, one line per sentence) is trained twice from the same initial weights and minibatches:
by teacher forcing, and by scheduled sampling with the paper's inverse-sigmoid decay. On held-out
windows, each model's per-step negative log-likelihood and argmax error of the true next
character are measured after a true prefix, under teacher forcing and when the model is fed its
own greedy (and sampled) characters, as a function of the step index.
"""

from __future__ import annotations

import math

import numpy as np

import flowgrad as fg

from ..models.sequence import (
    RNNLanguageModel,
    SamplingSchedule,
    compounding_error,
    scheduled_sampling_loss,
    teacher_forcing_loss,
)
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"steps": 1200, "lr": 3e-3, "batch_size": 32, "seed": 0, "hidden": 128,
            "bptt": 48, "train_chars": 400_000, "prefix": 16, "horizon": 32,
            "eval_sequences": 500, "eval_every": 100, "half_points": (0.5, 1.0)}
METHODS = ("teacher_forcing", "scheduled_sampling")
LABELS = {"teacher_forcing": "trained by teacher forcing",
          "scheduled_sampling": "trained by scheduled sampling"}


def ptb_characters(train_chars: int):
    """(alphabet, train, valid, test): character-id streams of PTB text, each sentence ended by
    a newline; ``train`` is the first ``train_chars`` characters of the training split."""
    from ..datasets import PennTreebank

    ptb = PennTreebank()

    def text(split):
        return " ".join(ptb.tokens(split)).replace(" <eos> ", "\n").replace(" <eos>", "\n")

    train = text("train")[:train_chars]
    valid, test = text("valid"), text("test")
    alphabet = sorted(set(train) | set(valid) | set(test))
    index = {ch: i for i, ch in enumerate(alphabet)}

    def encode(s):
        return np.fromiter((index[ch] for ch in s), dtype=np.int64, count=len(s))

    return alphabet, encode(train), encode(valid), encode(test)


def windows(stream: np.ndarray, count: int, length: int) -> np.ndarray:
    """``count`` windows of ``length`` ids at evenly spaced starts over the stream (fixed)."""
    starts = np.linspace(0, len(stream) - length, count).astype(np.int64)
    return stream[starts[:, None] + np.arange(length)]


@fg.no_grad()
def teacher_forced_nll(model, seqs: np.ndarray, batch_size: int = 250) -> float:
    """Mean NLL (nats per character) of every character after the first, teacher forced."""
    model.eval()
    total = 0.0
    for s in range(0, len(seqs), batch_size):
        x = fg.from_numpy(seqs[s:s + batch_size])
        loss, _ = teacher_forcing_loss(model, x)
        total += loss.item() * x.shape[0]
    model.train()
    return total / len(seqs)


def inverse_sigmoid_k(steps: int, half_point: float = 0.5) -> float:
    """k of eps_i = k / (k + exp(i / k)) with eps = 1/2 after the fraction ``half_point`` of
    the training steps (k ln k = half_point * steps)."""
    k, target = 2.0, max(half_point * steps, 1.0)
    for _ in range(100):  # Newton on k ln k - target
        k = max(1.0, k - (k * math.log(k) - target) / (math.log(k) + 1))
    return k


def _train(method, train, valid_seqs, config, seed, progress, half_point=0.5):
    """One model; the checkpoint with the lowest validation NLL (teacher forced, measured every
    ``eval_every`` steps) is kept. Returns (model, record)."""
    from tqdm.auto import tqdm

    c = config
    fg.manual_seed(seed)
    model = RNNLanguageModel(vocab_size=c["vocab"], embedding_dim=32, hidden_size=c["hidden"],
                             num_layers=1, cell="lstm")
    optimizer = fg.optim.Adam(model.parameters(), lr=c["lr"])
    schedule = SamplingSchedule("inverse_sigmoid", k=inverse_sigmoid_k(c["steps"], half_point))
    generator = fg.Generator().manual_seed(seed + 1)
    rng = np.random.default_rng(seed)  # the same minibatches for both methods
    offsets = np.arange(c["bptt"] + 1)
    best = (float("inf"), 0, None)
    curve, losses = [], []
    for i in tqdm(range(1, c["steps"] + 1), desc=method, disable=not progress):
        starts = rng.integers(0, len(train) - c["bptt"] - 1, c["batch_size"])
        x = fg.from_numpy(train[starts[:, None] + offsets])
        if method == "teacher_forcing":
            loss, _ = teacher_forcing_loss(model, x)
        else:
            loss, _ = scheduled_sampling_loss(model, x, schedule(i - 1), generator=generator)
        optimizer.zero_grad()
        loss.backward()
        fg.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if i % c["eval_every"] == 0 or i == c["steps"]:
            nll = teacher_forced_nll(model, valid_seqs)
            curve.append((i, nll, schedule(i - 1)))
            if nll < best[0]:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (nll, i, state)
    model.load_state_dict(best[2])
    return model, {"valid_nll": best[0], "best_step": best[1], "valid_curve": curve,
                   "train_loss": losses, "k": schedule.k if method != "teacher_forcing"
                   else None, "half_point": half_point, "final_eps": schedule(c["steps"] - 1)}


def _curve(result) -> dict:
    return {k: [float(v) for v in result[k]] for k in ("teacher_nll", "free_nll",
                                                       "teacher_error", "free_error")}


def run(steps=1200, lr=3e-3, batch_size=32, seed=0, hidden=128, bptt=48, train_chars=400_000,
        prefix=16, horizon=32, eval_sequences=500, eval_every=100, half_points=(0.5, 1.0),
        out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Train by teacher forcing and by scheduled sampling (one run per schedule of
    ``half_points``, the fractions of training at which eps reaches 1/2); keep each run's
    checkpoint of lowest validation NLL, and the schedule whose kept model has the lowest
    validation free-running NLL; measure the compounding error on test once, at the end."""
    command = command_line("teacher_forcing", run, locals())
    out = resolve_out("teacher_forcing", out)
    if quick:
        steps, hidden, bptt, train_chars, eval_sequences, eval_every = 60, 64, 32, 40_000, 100, 30
        half_points, lr = (1.0,), 1e-2
    alphabet, train, valid, test = ptb_characters(train_chars)
    length = prefix + horizon
    valid_seqs = windows(valid, eval_sequences, length)
    config = {"vocab": len(alphabet), "hidden": hidden, "lr": lr, "steps": steps,
              "batch_size": batch_size, "bptt": bptt, "eval_every": eval_every}
    results = {}
    with limit_threads(1, "blas"), Timer() as t:
        candidates = [("teacher_forcing", 0.5)] + [("scheduled_sampling", h)
                                                    for h in half_points]
        grid = []
        for method, half in candidates:
            with Timer() as tm:
                model, record = _train(method, train, valid_seqs, config, seed, progress, half)
            record["seconds"] = tm.seconds
            record["valid_curve_greedy"] = _curve(compounding_error(model, valid_seqs, prefix))
            record["valid_free_nll"] = float(np.mean(record["valid_curve_greedy"]["free_nll"][1:]))
            if method == "scheduled_sampling":
                grid.append({"half_point": half, "k": record["k"],
                             "valid_nll": record["valid_nll"], "best_step": record["best_step"],
                             "valid_free_nll": record["valid_free_nll"]})
            if method not in results or record["valid_free_nll"] < \
                    results[method][1]["valid_free_nll"]:
                results[method] = (model, record)
        test_seqs = windows(test, eval_sequences, length)  # the test split, evaluated once
        for model, record in results.values():
            record["test_nll"] = teacher_forced_nll(model, test_seqs)
            record["test_curve"] = _curve(compounding_error(model, test_seqs, prefix))
            record["test_curve_sampled"] = _curve(compounding_error(model, test_seqs, prefix,
                                                                    feed="sample", seed=seed))
    summary = {"title": "Teacher forcing vs free running: the compounding error, and scheduled "
                        "sampling, on Penn Treebank characters",
               "uniform_nll": math.log(len(alphabet)), "vocab_size": len(alphabet),
               "train_chars": int(len(train)), "valid_chars": int(len(valid)),
               "test_chars": int(len(test)), "prefix": prefix, "horizon": horizon,
               "eval_sequences": eval_sequences, "steps": steps, "hidden": hidden,
               "bptt": bptt, "lr": lr, "batch_size": batch_size, "eval_every": eval_every,
               "published": {"claim": "free running suffers a compounding error that teacher "
                                      "forcing hides; scheduled sampling reduces the mismatch "
                                      "(Bengio, Vinyals, Jaitly & Shazeer 2015)"},
               "schedule_grid": grid, "command": command, "seed": seed, "seconds": t.seconds}
    for method, (_, record) in results.items():
        summary[method] = {k: v for k, v in record.items() if k != "train_loss"}
        summary[method]["final_train_loss"] = float(np.mean(record["train_loss"][-20:]))
        summary[method].update(_gaps(record["test_curve"]))
    if write:
        fig = _plot(results, prefix, out)
        write_results("teacher_forcing", out, summary, _rows(summary), figures=(fig,),
                      notes=_notes(summary) + _verdict(summary))
    return summary


def _gaps(curve) -> dict:
    """Mean per-step NLL / error over steps 2..horizon, free running minus teacher forcing,
    and the slope of the free-running NLL against the step index."""
    tf, free = np.asarray(curve["teacher_nll"]), np.asarray(curve["free_nll"])
    err_tf, err_free = np.asarray(curve["teacher_error"]), np.asarray(curve["free_error"])
    steps = np.arange(1, len(tf) + 1)
    return {"test_teacher_nll_mean": float(tf[1:].mean()),
            "test_free_nll_mean": float(free[1:].mean()),
            "test_nll_gap": float((free - tf)[1:].mean()),
            "test_teacher_error_mean": float(err_tf[1:].mean()),
            "test_free_error_mean": float(err_free[1:].mean()),
            "test_error_gap": float((err_free - err_tf)[1:].mean()),
            "test_free_nll_slope": float(np.polyfit(steps, free, 1)[0]),
            "test_teacher_nll_slope": float(np.polyfit(steps, tf, 1)[0])}


def _bits(nats: float) -> str:
    return f"{nats:.3f} nats ({nats / math.log(2):.3f} bits) per character"


def _rows(s) -> list:
    rows = [("characters (alphabet size)", f"{s['vocab_size']}", "—"),
            ("uniform model NLL", _bits(s["uniform_nll"]), "—")]
    for method in METHODS:
        r, label = s[method], LABELS[method]
        rows += [
            (f"{label}: validation NLL, teacher forced (kept step {r['best_step']})",
             _bits(r["valid_nll"]), "—"),
            (f"{label}: test NLL, teacher forced", _bits(r["test_nll"]), "—"),
            (f"{label}: test per-step NLL after the prefix, steps 2-{s['horizon']}: teacher "
             "forced / free running (greedy)",
             f"{r['test_teacher_nll_mean']:.3f} / {r['test_free_nll_mean']:.3f} nats "
             f"(gap {r['test_nll_gap']:+.3f})", "free running higher"),
            (f"{label}: test per-step error, steps 2-{s['horizon']}: teacher forced / free "
             "running (greedy)",
             f"{r['test_teacher_error_mean']:.1%} / {r['test_free_error_mean']:.1%} "
             f"(gap {r['test_error_gap']:+.1%})", "free running higher"),
            (f"{label}: slope of the free-running NLL against the step index",
             f"{r['test_free_nll_slope']:+.4f} nats per step", "—"),
            (f"{label}: test per-step NLL, steps 2-{s['horizon']}, free running fed sampled "
             "characters", f"{np.mean(r['test_curve_sampled']['free_nll'][1:]):.3f} nats",
             "—"),
            (f"{label}: training time", f"{r['seconds']:.0f} s", "—"),
        ]
    rows += [(f"schedule grid: eps = 1/2 after {g['half_point']:.0%} of training (k = "
              f"{g['k']:.1f})", f"validation NLL {g['valid_nll']:.3f} (step {g['best_step']}), "
              f"validation free-running NLL {g['valid_free_nll']:.3f} nats", "—")
             for g in s["schedule_grid"]]
    return rows


def _notes(s) -> str:
    ss = s["scheduled_sampling"]
    return (
        f"Data: the first {s['train_chars']:,} characters of the Penn Treebank training text "
        "(Mikolov's files; words joined by spaces, each sentence ended by a newline) are trained "
        f"on; the validation text ({s['valid_chars']:,} characters) is used for every choice; "
        f"the test text ({s['test_chars']:,} characters) is evaluated once, after all choices. "
        f"Held-out sequences: {s['eval_sequences']} windows of {s['prefix'] + s['horizon']} "
        "characters at evenly spaced positions of each held-out text. "
        f"Model: character embedding 32 -> one LSTM layer of {s['hidden']} -> linear "
        f"({s['vocab_size']} characters). Both models start from the same weights and see the "
        f"same {s['steps']} minibatches of {s['batch_size']} random windows of "
        f"{s['bptt'] + 1} characters (Adam, learning rate {s['lr']}, gradient norm clipped at "
        "1). Teacher forcing feeds every true character; scheduled sampling feeds the true "
        "character with probability eps_i and otherwise a character sampled from the model's "
        f"own prediction (a coin per sequence and step), eps_i = k / (k + exp(i / k)) (the "
        "paper's inverse sigmoid decay), with k set so that eps reaches 1/2 after the fraction "
        f"{', '.join(str(g['half_point']) for g in s['schedule_grid'])} of the training steps "
        "(one run each). Choices, all on the validation split: the checkpoint of each run (the "
        "one of lowest validation NLL under teacher forcing, measured every "
        f"{s['eval_every']} steps and at the last), then the schedule whose kept model has the "
        "lowest validation free-running NLL (greedy, steps 2 onwards); the kept schedule has "
        f"k = {ss['k']:.1f} (eps = 1/2 after {ss['half_point']:.0%} of training, "
        f"{ss['final_eps']:.3f} at the end). "
        f"Compounding error: after a true prefix of {s['prefix']} characters, the NLL of the "
        "true next character and whether the argmax misses it, at each of the next "
        f"{s['horizon']} steps, conditioned on the true past (teacher forced) or on the "
        "model's own greedy characters since the prefix (free running); step 1 is the same in "
        "both. The figure shows the test curves; the sampled-feeding curves are in the JSON. "
        "Training and evaluation run with one BLAS thread.")


def _verdict(s) -> str:
    lines = ["", "", "Outcome:"]
    for method in METHODS:
        r = s[method]
        grows = "grows" if r["test_free_nll_slope"] > 0 else "does not grow"
        higher = "higher" if r["test_nll_gap"] > 0 else "not higher"
        lines.append(f"- {LABELS[method]}: free running is {higher} in NLL than teacher "
                     f"forcing by {r['test_nll_gap']:+.3f} nats per step on average, and its "
                     f"per-step NLL {grows} with the step index "
                     f"({r['test_free_nll_slope']:+.4f} nats per step).")
    tf, ss = s["teacher_forcing"], s["scheduled_sampling"]
    smaller = "smaller" if ss["test_nll_gap"] < tf["test_nll_gap"] else "not smaller"
    lines.append(f"- Scheduled sampling's free-running/teacher-forcing gap is {smaller} "
                 f"({ss['test_nll_gap']:+.3f} against {tf['test_nll_gap']:+.3f} nats); its "
                 f"free-running NLL is {ss['test_free_nll_mean']:.3f} against "
                 f"{tf['test_free_nll_mean']:.3f} nats, and its teacher-forced test NLL "
                 f"{ss['test_nll']:.3f} against {tf['test_nll']:.3f} nats; its free-running "
                 f"error is {ss['test_free_error_mean']:.1%} against "
                 f"{tf['test_free_error_mean']:.1%}. One seed: no significance is claimed.")
    if ss["best_step"] != tf["best_step"]:
        lines.append(f"- The kept checkpoints differ (step {ss['best_step']} against "
                     f"{tf['best_step']}). A model with a higher teacher-forced NLL is less "
                     "confident, which by itself lowers the NLL of the true character once "
                     "free running has drifted from it; the error rate, which confidence does "
                     "not change, is the fairer comparison of the two free-running curves.")
    return "\n".join(lines)


def _plot(results, prefix, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    styles = {"teacher_forcing": "tab:blue", "scheduled_sampling": "tab:orange"}
    for method, (_, record) in results.items():
        curve = record["test_curve"]
        steps = np.arange(1, len(curve["teacher_nll"]) + 1)
        for ax, key in zip(axes, ("nll", "error")):
            ax.plot(steps, curve[f"teacher_{key}"], "--", color=styles[method],
                    label=f"{LABELS[method]}: teacher forced")
            ax.plot(steps, curve[f"free_{key}"], "-", color=styles[method],
                    label=f"{LABELS[method]}: free running (greedy)")
    axes[0].set(xlabel=f"step after a true prefix of {prefix} characters",
                ylabel="NLL of the true character (nats)", title="per-step NLL (test)")
    axes[1].set(xlabel=f"step after a true prefix of {prefix} characters",
                ylabel="argmax error rate", title="per-step error (test)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = f"{out}/teacher_forcing.png"
    save_figure(fig, path, dpi=110)
    return path
