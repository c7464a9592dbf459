"""The adding task of SCOFF (Goyal et al. 2020, "Object Files and Schemata", arXiv 2006.16225,
Table 1; lecture: the System-2 slide "Schemas and Slots"): an LSTM, RIMs and SCOFF trained on
length-50 sequences to add k in {2, 4} marked values, tested on length-200 sequences with k in
{2, 3, 4, 5, 8, 9, 10} marked values.

Small-compute version of the reproduction notes (section 4.3): one value channel U(0, 1) and one
marker channel with k marks (``flowgrad.datasets.modular_tasks.adding_k``; the paper's marker
encoding is not published), target the sum of the marked values, MSE. Models (hidden 128 each):
LSTM; RIMs with k_T 4 LSTM modules, k_A 2 active; SCOFF with 4 object files, 2 GRU schemata,
2 active. Attention sizes as the official RIMs ``BlocksCore`` (input d_k 64, d_v 4 x module
size; communication 4 heads, d_k = d_v = 16). Adam 1e-3, gradient norm clipped at 1.0 (the
official RIMs adding script, ``experiment_adding.sh``, clips at 0.1).

Budget: the default (2000 steps of 64 sequences, 3 seeds) is long on a CPU: one seed took
2,121 s at one thread (LSTM 170 s, RIMs 749 s, SCOFF 1,138 s, while the 2-core machine was
shared with other jobs), so the default run takes about 1.8 h. ``--quick`` (one seed, length 10,
tested at 40 with k in {2, 5, 10}, 60 steps at lr 3e-3) takes under a minute of CPU time.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.modular_tasks import adding_k
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results
from .modular_common import (
    SequenceNet,
    mean_std,
    official_attention,
    parameter_count,
    predict,
    seed_stream,
    train,
)

NAME = "scoff_adding"
DEFAULTS = {"seeds": 3, "steps": 2000, "batch_size": 64, "lr": 1e-3, "clip": 1.0,
            "train_length": 50, "train_ks": (2, 4), "test_length": 200,
            "test_ks": (2, 3, 4, 5, 8, 9, 10), "hidden": 128, "models": ("lstm", "rims", "scoff"),
            "eval_every": 200, "n_valid": 640, "n_test": 500, "threads": 1}
MODELS = ("lstm", "rims", "scoff")
LABELS = {"lstm": "LSTM", "rims": "RIMs (k_T 4, k_A 2)", "scoff": "SCOFF (n_f 4, n_s 2, k 2)"}
# Goyal et al. 2020 (SCOFF), Table 1: mean test error on length-200 sequences after training
# on length 50 with 2 and 4 values
PUBLISHED = {2: (0.8731, 0.0007, 0.0005), 3: (1.3017, 0.0009, 0.0007),
             4: (1.6789, 0.0014, 0.0013), 5: (2.0334, 0.0045, 0.0030),
             8: (4.8872, 0.0555, 0.0191), 9: (7.3730, 0.1958, 0.0379),
             10: (11.3595, 0.8904, 0.0539)}
SOURCE = ("Goyal et al. 2020 (SCOFF, arXiv 2006.16225), Table 1: test error on length-200 "
          "sequences, trained on length 50 with 2 and 4 values")


def build(kind: str, hidden: int, seed: int) -> SequenceNet:
    """One of the table's models (seeded): two input features, a scalar read from the last step."""
    fg.manual_seed(seed)
    if kind == "lstm":
        return SequenceNet("lstm", 2, hidden, 1, last_only=True)
    if kind == "rims":
        return SequenceNet("rim", 2, hidden, 1, last_only=True, num_units=4, k_active=2,
                           **official_attention(hidden, 4))
    if kind == "scoff":
        return SequenceNet("scoff", 2, hidden, 1, last_only=True, num_object_files=4,
                           num_schemata=2, k_active=2, **official_attention(hidden, 4))
    raise ValueError(f"{NAME}: unknown model {kind!r}; expected one of {MODELS}")


def mse(model, x, y):
    return fg.nn.functional.mse_loss(model(x).reshape(-1), y)


def _one_seed(seed, cfg, progress) -> dict:
    steps, bs = cfg["steps"], cfg["batch_size"]
    seeds = seed_stream(seed, steps + 1 + len(cfg["test_ks"]))
    valid = adding_k(cfg["n_valid"], cfg["train_length"], cfg["train_ks"],
                     seed=int(seeds[steps]))
    tests = {k: adding_k(cfg["n_test"], cfg["test_length"], (k,), seed=int(s))
             for k, s in zip(cfg["test_ks"], seeds[steps + 1:])}

    def batch(step):
        x, y, _ = adding_k(bs, cfg["train_length"], cfg["train_ks"], seed=int(seeds[step - 1]))
        return x, y

    def validate(model):
        return {"score": float(np.mean((predict(model, valid[0])[:, 0] - valid[1]) ** 2))}

    out = {}
    for kind in cfg["models"]:
        model = build(kind, cfg["hidden"], seed)
        run = train(model, batch, mse, validate, steps, cfg["lr"], cfg["clip"],
                    cfg["eval_every"], progress, desc=f"{kind} seed {seed}")
        test = {k: float(np.mean((predict(model, x)[:, 0] - y) ** 2))
                for k, (x, y, _) in tests.items()}
        out[kind] = {"params": parameter_count(model), "test": test, "best_step": run["best_step"],
                     "valid": run["best"]["score"], "curve": run["curve"],
                     "seconds": run["seconds"]}
    out["baseline"] = float(np.var(valid[1]))
    return out


def run(seeds=3, steps=2000, batch_size=64, lr=1e-3, clip=1.0, train_length=50,
        train_ks=(2, 4), test_length=200, test_ks=(2, 3, 4, 5, 8, 9, 10), hidden=128,
        models=("lstm", "rims", "scoff"), eval_every=200, n_valid=640, n_test=500, threads=1,
        out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Train each model for each of ``seeds`` seeds on the same minibatches; keep the checkpoint
    of lowest validation MSE (training length and counts); test every count once."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, steps, batch_size, lr, train_length, test_length = 1, 60, 32, 3e-3, 10, 40
        test_ks, eval_every, n_valid, n_test = (2, 5, 10), 20, 128, 64
    cfg = {"steps": steps, "batch_size": batch_size, "lr": lr, "clip": clip,
           "train_length": train_length, "train_ks": tuple(train_ks),
           "test_length": test_length, "test_ks": tuple(int(k) for k in test_ks),
           "hidden": hidden, "models": tuple(models), "eval_every": eval_every,
           "n_valid": n_valid, "n_test": n_test}
    with _limit_threads(threads), Timer() as timer:
        per_seed = [_one_seed(s, cfg, progress) for s in range(seeds)]
    summary = {"title": f"Adding k values: LSTM, RIMs and SCOFF trained at length {train_length}"
                        f", tested at {test_length}",
               **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "seeds": seeds, "params": {k: per_seed[0][k]["params"] for k in models},
               "valid_baseline_mse": float(np.mean([p["baseline"] for p in per_seed])),
               "source": SOURCE, "published": {str(k): dict(zip(MODELS, v))
                                               for k, v in PUBLISHED.items()},
               "threads": threads, "command": command, "seed": list(range(seeds)),
               "seconds": timer.seconds}
    for kind in models:
        runs = [p[kind] for p in per_seed]
        summary[kind] = {"test": {str(k): [r["test"][k] for r in runs] for k in cfg["test_ks"]},
                         "test_mean": {str(k): float(np.mean([r["test"][k] for r in runs]))
                                       for k in cfg["test_ks"]},
                         "valid": [r["valid"] for r in runs],
                         "best_step": [r["best_step"] for r in runs],
                         "seconds": [r["seconds"] for r in runs],
                         "curves": [r["curve"] for r in runs]}
        summary[f"{kind}_valid_mse_mean"] = float(np.mean(summary[kind]["valid"]))
    summary.update(_verdicts(summary))
    if write:
        figures = (_plot_counts(summary, out), _plot_curves(summary, out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _verdicts(s) -> dict:
    """The three claims tested here, from the mean test MSE over seeds (None where a model or a
    count they need is missing)."""
    ks = s["test_ks"]
    have = set(s["models"])
    v = {"lstm_grows": None, "lstm_ratio_10_2": None, "lstm_claim": None,
         "modular_beat_lstm": None, "scoff_le_rims_count": None, "scoff_claim": None}
    if "lstm" in have:
        m = [s["lstm"]["test_mean"][str(k)] for k in ks]
        v["lstm_grows"] = bool(all(b > a for a, b in zip(m, m[1:])))
        if 2 in ks and 10 in ks:
            v["lstm_ratio_10_2"] = m[ks.index(10)] / max(m[ks.index(2)], 1e-12)
            v["lstm_claim"] = bool(v["lstm_grows"] and v["lstm_ratio_10_2"] >= 10)
    big = [k for k in ks if k >= 5]
    if {"lstm", "rims", "scoff"} <= have and big:
        v["modular_beat_lstm"] = bool(all(
            s[kind]["test_mean"][str(k)] < s["lstm"]["test_mean"][str(k)]
            for kind in ("rims", "scoff") for k in big))
    top = [k for k in (8, 9, 10) if k in ks]
    if {"rims", "scoff"} <= have and len(top) == 3:
        count = sum(s["scoff"]["test_mean"][str(k)] <= s["rims"]["test_mean"][str(k)]
                    for k in top)
        v["scoff_le_rims_count"], v["scoff_claim"] = int(count), bool(count >= 2)
    return v


def _fmt(values) -> str:
    return mean_std(values, 4)


def _rows(s) -> list:
    models = s["models"]
    rows = [("parameters: " + " / ".join(LABELS[k] for k in models),
             " / ".join(f"{s['params'][k]:,}" for k in models), "—"),
            (f"validation MSE (length {s['train_length']}, k in {s['train_ks']}), "
             + " / ".join(models) + f"; predicting the mean: {s['valid_baseline_mse']:.3f}",
             " / ".join(_fmt(s[k]["valid"]) for k in models), "—")]
    for k in s["test_ks"]:
        pub = PUBLISHED.get(k)
        rows.append((f"test MSE, {k} values, length {s['test_length']}: " + " / ".join(models),
                     " / ".join(_fmt(s[m]["test"][str(k)]) for m in models),
                     " / ".join(f"{pub[MODELS.index(m)]:.4f}" for m in models) if pub else "—"))
    if s["lstm_claim"] is not None:
        rows.append(("claim 1: LSTM error grows with k and is ≥ 10x larger at 10 than at 2",
                     f"{'held' if s['lstm_claim'] else 'not held'} (grows: {s['lstm_grows']}; "
                     f"ratio {s['lstm_ratio_10_2']:.1f})", "11.36 / 0.87 = 13.0"))
    if s["modular_beat_lstm"] is not None:
        rows.append(("claim 2: RIMs and SCOFF below the LSTM at every k ≥ 5",
                     "held" if s["modular_beat_lstm"] else "not held", "held"))
    if s["scoff_claim"] is not None:
        rows.append(("claim 3: SCOFF ≤ RIMs at k = 8, 9, 10 in at least 2 of 3",
                     f"{'held' if s['scoff_claim'] else 'not held'} "
                     f"({s['scoff_le_rims_count']} of 3)", "held (3 of 3)"))
    rows.append(("training time per model (all seeds): " + " / ".join(models),
                 " / ".join(f"{np.sum(s[k]['seconds']):.0f} s" for k in models), "—"))
    return rows


def _notes(s) -> str:
    lines = [
        f"Data: sequences of {s['train_length']} steps with two features, a value U(0, 1) and a "
        f"marker channel equal to 1 at k distinct positions; k is drawn from {s['train_ks']} "
        f"for training; the target is the sum of the k marked values. Test: {s['n_test']} "
        f"sequences of {s['test_length']} steps for each k of {s['test_ks']}. The paper does "
        "not publish its marker encoding; this one-channel version is the reproduction notes' "
        "choice.",
        f"Models (hidden {s['hidden']}, a linear readout of the last state): an LSTM; RIMs with "
        "4 LSTM modules of 32 units, 2 active per step, input attention (d_k 64, d_v 128) and "
        "4-head communication (d_k = d_v = 16); SCOFF with 4 object files of 32 units, 2 active, "
        "sharing 2 GRU schemata chosen per step by a straight-through Gumbel selection (noise "
        "off in evaluation), the same input attention and communication. SCOFF has no official "
        "code: flowgrad.modular.scoff lists its unverified choices.",
        f"Budget (every model, every seed): {s['steps']} steps of Adam (lr {s['lr']:g}, "
        f"gradient norm clipped at {s['clip']:g}) on minibatches of {s['batch_size']} generated "
        f"sequences, the same for every model of a seed; {s['seeds']} seed(s). Wall time "
        f"{s['seconds']:.0f} s with {s['threads'] or 'default'} BLAS thread(s). The paper's "
        "budget is not stated in the table; it is much larger.",
        f"Protocol: a validation set of {s['n_valid']} sequences from the training distribution "
        f"(its own seed) is measured every {s['eval_every']} steps and the checkpoint of lowest "
        "validation MSE is kept; the test sets (own seeds) are evaluated once, after training. "
        "The table gives mean ± standard deviation over seeds; the claims use the means.",
        f"Published: {SOURCE} (LSTM / RIMs / SCOFF, in the table's third column).",
        "", "Outcome:"]
    if s["lstm_claim"] is not None:
        m = [s["lstm"]["test_mean"][str(k)] for k in s["test_ks"]]
        lines.append(f"- Claim 1 {'held' if s['lstm_claim'] else 'did not hold'}: the LSTM's "
                     f"mean test MSE over k = {s['test_ks']} is "
                     + ", ".join(f"{v:.3f}" for v in m)
                     + f" ({'increasing' if s['lstm_grows'] else 'not increasing'}), "
                     f"{s['lstm_ratio_10_2']:.1f} times larger at 10 than at 2 (needed ≥ 10).")
    if s["modular_beat_lstm"] is not None:
        ks = [k for k in s["test_ks"] if k >= 5]
        parts = ", ".join(f"k={k}: " + " / ".join(f"{s[m]['test_mean'][str(k)]:.3f}"
                                                  for m in ("lstm", "rims", "scoff"))
                          for k in ks)
        lines.append(f"- Claim 2 {'held' if s['modular_beat_lstm'] else 'did not hold'}: mean "
                     f"test MSE LSTM / RIMs / SCOFF at {parts}.")
    if s["scoff_claim"] is not None:
        lines.append(f"- Claim 3 {'held' if s['scoff_claim'] else 'did not hold'}: SCOFF's mean "
                     f"test MSE is at most the RIMs' at {s['scoff_le_rims_count']} of k = 8, 9, "
                     "10.")
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


COLORS = {"lstm": "tab:orange", "rims": "tab:blue", "scoff": "tab:green"}


def _plot_counts(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    ks = s["test_ks"]
    for kind in s["models"]:
        axes[0].plot(ks, [s[kind]["test_mean"][str(k)] for k in ks], "o-", color=COLORS[kind],
                     label=f"{LABELS[kind]} (flowgrad)")
        for k in ks:
            vals = s[kind]["test"][str(k)]
            axes[0].plot([k] * len(vals), vals, ".", color=COLORS[kind], alpha=0.5)
        pk = [k for k in ks if k in PUBLISHED]
        axes[1].plot(pk, [PUBLISHED[k][MODELS.index(kind)] for k in pk], "s--",
                     color=COLORS[kind], label=f"{LABELS[kind]} (published)")
    axes[0].set(title=f"flowgrad: test MSE at length {s['test_length']}")
    axes[1].set(title="published (SCOFF Table 1, length 200)")
    for ax in axes:
        ax.axvspan(min(s["train_ks"]), max(s["train_ks"]), color="gray", alpha=0.15,
                   label="trained counts")
        ax.set(xlabel="number of marked values k", ylabel="test MSE", yscale="log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_counts.png", dpi=110)


def _plot_curves(s, out):
    fig, ax = new_figure(1, 1, figsize=(6, 4))
    for kind in s["models"]:
        for i, curve in enumerate(s[kind]["curves"]):
            ax.plot([c["step"] for c in curve], [c["score"] for c in curve],
                    "-" if i == 0 else ":", color=COLORS[kind],
                    label=LABELS[kind] if i == 0 else None)
    ax.axhline(s["valid_baseline_mse"], color="gray", ls="--", lw=1, label="predicting the mean")
    ax.set(xlabel="training step", ylabel="validation MSE", yscale="log",
           title=f"validation (length {s['train_length']}, k in {s['train_ks']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110)
