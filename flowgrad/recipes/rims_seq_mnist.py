"""Sequential MNIST at several resolutions (Goyal et al. 2019, "Recurrent Independent
Mechanisms", arXiv 1909.10893, Table 2; lecture: the System-2 slides): RIMs (k_T 6, k_A 4) and
an LSTM of the same parameter count read binarised MNIST digits one pixel per step, trained at
14 x 14 and tested at 16 x 16, 19 x 19 and 24 x 24 (longer sequences than any trained on).

Data as the official ``event_based/train_mnist.py`` (``mnist_prep``): pixels rounded to {0, 1},
the image nearest-resampled from 28 x 28 to the resolution, read row by row as tokens that the
model embeds (embedding size = hidden size, as the official scripts); the class is read from the
last step; Adam at 7e-4 (official), gradient norm clipped at 1.0; 20% of the training images
are held out for validation (official).

Budget (this machine cannot afford the paper's 60,000 images and hidden 600): the first 5,000
MNIST training images (4,000 trained on, the last 1,000 of them held out for validation), hidden
120 (6 modules of 20), 10 epochs of batches of 64, 2,000 test images per resolution, 3 seeds.
A RIM step on 64 sequences of 196 tokens takes about 1.9 s here on one thread, so an epoch
takes about 2 min, a seed about 25 min (1,516 s measured, the LSTM and the tests at 576 tokens
included) and the default run about 1.3 h. ``--quick`` trains at 7 x 7 and tests at 8, 10
and 12 (about the same ratios), hidden 60, 1,000 images, 80 steps at lr 3e-3 (about a minute
of CPU time).
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.modular_tasks import seq_mnist
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results
from .modular_common import (
    EpochBatches,
    SequenceNet,
    matched_lstm_hidden,
    mean_std,
    official_attention,
    parameter_count,
    predict,
    train,
)

NAME = "rims_seq_mnist"
DEFAULTS = {"seeds": 3, "epochs": 10, "batch_size": 64, "lr": 7e-4, "clip": 1.0,
            "n_train": 4000, "n_valid": 1000, "n_test": 2000, "train_resolution": 14,
            "test_resolutions": (16, 19, 24), "hidden": 120, "num_units": 6, "k_active": 4,
            "eval_every": 63, "threads": 1}
MODELS = ("rims", "lstm")
LABELS = {"rims": "RIMs (k_T 6, k_A 4)", "lstm": "LSTM (matched parameters)"}
VOCAB = 2
# Goyal et al. 2019, Table 2 (test accuracy %, mean of 3 trials, trained at 14 x 14, h 600 for
# RIMs and the LSTM of 600; 300 for the other LSTM row)
PUBLISHED = {"rims": {16: 90.0, 19: 73.4, 24: 38.1},
             "lstm": {16: 86.8, 19: 42.3, 24: 25.2}, "lstm600": {16: 84.5, 19: 52.2, 24: 21.9}}
SOURCE = ("Goyal et al. 2019 (arXiv 1909.10893), Table 2: sequential MNIST trained at 14 x 14; "
          "RIMs (6, 4, h 600) 90.0 / 73.4 / 38.1 % and LSTM (h 300) 86.8 / 42.3 / 25.2 % "
          "(h 600: 84.5 / 52.2 / 21.9 %) at 16 / 19 / 24")


def build(kind: str, hidden: int, num_units: int, k_active: int, lstm_hidden: int | None,
          seed: int) -> SequenceNet:
    fg.manual_seed(seed)
    if kind == "lstm":
        return SequenceNet("lstm", hidden, lstm_hidden, 10, vocab=VOCAB, last_only=True)
    if kind == "rims":
        return SequenceNet("rim", hidden, hidden, 10, vocab=VOCAB, last_only=True,
                           num_units=num_units, k_active=k_active,
                           **official_attention(hidden, num_units))
    raise ValueError(f"{NAME}: unknown model {kind!r}; expected one of {MODELS}")


def accuracy(model, x, y) -> float:
    return float((predict(model, x).argmax(-1) == y).mean())


def load(n_train: int, n_valid: int, n_test: int, train_resolution: int, resolutions) -> dict:
    """The training subset (the first n_train + n_valid MNIST training images; the last
    n_valid of them held out) at the training resolution, and the first n_test test images at
    the training resolution and at every test resolution."""
    x, y = seq_mnist(train=True, resolution=train_resolution, limit=n_train + n_valid)
    data = {"train": (x[:n_train], y[:n_train]), "valid": (x[n_train:], y[n_train:])}
    for r in (train_resolution, *resolutions):
        data[r] = seq_mnist(train=False, resolution=r, limit=n_test)
    return data


def _one_seed(seed, data, cfg, progress) -> dict:
    xtr, ytr = data["train"]
    batch = EpochBatches(xtr, ytr, cfg["batch_size"], seed)
    steps = batch.steps(cfg["epochs"], cfg["steps"])

    def validate(model):
        return {"score": 1.0 - accuracy(model, *data["valid"])}

    def loss(model, x, y):
        return fg.nn.functional.cross_entropy(model(x), y)

    out = {}
    for kind in MODELS:
        model = build(kind, cfg["hidden"], cfg["num_units"], cfg["k_active"],
                      cfg["lstm_hidden"], seed)
        run = train(model, batch, loss, validate, steps, cfg["lr"], cfg["clip"],
                    cfg["eval_every"], progress, desc=f"{kind} seed {seed}")
        test = {str(r): accuracy(model, *data[r])
                for r in (cfg["train_resolution"], *cfg["test_resolutions"])}
        out[kind] = {"params": parameter_count(model), "test": test,
                     "valid_accuracy": 1.0 - run["best"]["score"], "best_step": run["best_step"],
                     "curve": run["curve"], "seconds": run["seconds"], "steps": steps}
    return out


def run(seeds=3, epochs=10, batch_size=64, lr=7e-4, clip=1.0, n_train=4000, n_valid=1000,
        n_test=2000, train_resolution=14, test_resolutions=(16, 19, 24), hidden=120,
        num_units=6, k_active=4, eval_every=63, steps=None, threads=1, out=None, quick=False,
        progress=True, write: bool = True) -> dict:
    """Train RIMs and the matched LSTM for each seed on the same minibatches; keep the checkpoint
    of highest validation accuracy (training resolution); test every resolution once.
    ``steps`` (optional) replaces ``epochs`` by a number of minibatches."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, steps, batch_size, lr, n_train, n_valid, n_test = 1, 80, 32, 3e-3, 1000, 200, 200
        train_resolution, test_resolutions, hidden, eval_every = 7, (8, 10, 12), 60, 20
    resolutions = tuple(int(r) for r in test_resolutions)
    rims_params = parameter_count(build("rims", hidden, num_units, k_active, None, 0))
    lstm_hidden = matched_lstm_hidden(rims_params, hidden, 10, vocab=VOCAB)
    cfg = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "lr": lr, "clip": clip,
           "n_train": n_train, "n_valid": n_valid, "n_test": n_test,
           "train_resolution": train_resolution, "test_resolutions": resolutions,
           "hidden": hidden, "num_units": num_units, "k_active": k_active,
           "lstm_hidden": lstm_hidden, "eval_every": eval_every}
    with _limit_threads(threads), Timer() as timer:
        data = load(n_train, n_valid, n_test, train_resolution, resolutions)
        per_seed = [_one_seed(s, data, cfg, progress) for s in range(seeds)]
    res = [str(r) for r in (train_resolution, *resolutions)]
    summary = {"title": f"Sequential MNIST: RIMs vs LSTM trained at {train_resolution} x "
                        f"{train_resolution}, tested at "
                        + ", ".join(f"{r} x {r}" for r in resolutions),
               **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "steps": per_seed[0]["rims"]["steps"], "seeds": seeds,
               "params": {k: per_seed[0][k]["params"] for k in MODELS},
               "source": SOURCE, "published": {k: {str(r): v for r, v in p.items()}
                                               for k, p in PUBLISHED.items()},
               "threads": threads, "command": command, "seed": list(range(seeds)),
               "seconds": timer.seconds}
    for kind in MODELS:
        runs = [p[kind] for p in per_seed]
        summary[kind] = {"test": {r: [x["test"][r] for x in runs] for r in res},
                         "test_mean": {r: float(np.mean([x["test"][r] for x in runs]))
                                       for r in res},
                         "valid_accuracy": [x["valid_accuracy"] for x in runs],
                         "best_step": [x["best_step"] for x in runs],
                         "seconds": [x["seconds"] for x in runs],
                         "curves": [x["curve"] for x in runs]}
        summary[f"{kind}_valid_accuracy_mean"] = float(np.mean(summary[kind]["valid_accuracy"]))
        m = summary[kind]["test_mean"]
        summary[f"{kind}_drop"] = m[res[0]] - m[res[-1]]
    summary["claim_held"] = bool(summary["rims_drop"] < summary["lstm_drop"])
    # two standard errors of a difference of two accuracies on n_test images (worst case p=1/2)
    summary["noise_points"] = float(100 * 2 * np.sqrt(2 * 0.25 / n_test / seeds))
    summary["claim_beyond_noise"] = bool(
        100 * (summary["lstm_drop"] - summary["rims_drop"]) > summary["noise_points"])
    summary["rims_above_lstm"] = {r: bool(summary["rims"]["test_mean"][r]
                                          > summary["lstm"]["test_mean"][r]) for r in res[1:]}
    if write:
        figures = (_plot_resolutions(summary, out), _plot_curves(summary, out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _fmt(values) -> str:
    return mean_std(values, 1, scale=100, unit=" %")


def _published(kind: str, r: int) -> str:
    if r not in PUBLISHED[kind]:
        return "—"
    text = f"{PUBLISHED[kind][r]:.1f} %"
    return text + (f" (h 300; h 600: {PUBLISHED['lstm600'][r]:.1f} %)" if kind == "lstm" else "")


def _rows(s) -> list:
    t = s["train_resolution"]
    rows = [("parameters: RIMs / LSTM", f"{s['params']['rims']:,} / {s['params']['lstm']:,} "
             f"(LSTM hidden size {s['lstm_hidden']})", "RIMs h 600; LSTM h 300 and 600")]
    for kind in MODELS:
        rows.append((f"{LABELS[kind]}: validation accuracy ({t} x {t}, kept checkpoint)",
                     _fmt(s[kind]["valid_accuracy"]), "—"))
        for r in (t, *s["test_resolutions"]):
            note = " (training resolution)" if r == t else ""
            rows.append((f"{LABELS[kind]}: test accuracy at {r} x {r}{note}",
                         _fmt(s[kind]["test"][str(r)]), _published(kind, r)))
    last = s["test_resolutions"][-1]
    rows.append((f"accuracy lost from {t} x {t} to {last} x {last}: RIMs / LSTM "
                 "(points, mean over seeds)",
                 f"{100 * s['rims_drop']:.1f} / {100 * s['lstm_drop']:.1f}",
                 "from 16 to 24: 51.9 / 61.6 (LSTM h 300)"))
    rows.append(("claim: RIMs degrade less than the LSTM as the resolution grows",
                 ("held" if s["claim_held"] else "not held")
                 + (" (beyond" if s["claim_beyond_noise"] else " (within")
                 + f" sampling noise of ±{s['noise_points']:.1f} points)", "held"))
    rows.append(("training time: RIMs / LSTM (all seeds)",
                 f"{np.sum(s['rims']['seconds']):.0f} s / {np.sum(s['lstm']['seconds']):.0f} s",
                 "—"))
    return rows


def _notes(s) -> str:
    t, last = s["train_resolution"], s["test_resolutions"][-1]
    lines = [
        f"Data: MNIST digits rounded to {{0, 1}} and nearest-resampled from 28 x 28 (official "
        f"preprocessing); training at {t} x {t} ({t * t} tokens per image) on the first "
        f"{s['n_train']:,} training images; validation: the next {s['n_valid']:,} training "
        f"images (never trained on); test: the first {s['n_test']:,} MNIST test images at "
        f"{t} x {t} and at " + ", ".join(f"{r} x {r} ({r * r} tokens)"
                                          for r in s["test_resolutions"]) + ".",
        f"Models: a token embedding of size {s['hidden']}, the recurrent core, a linear readout "
        f"of the last state to 10 classes. RIMs: {s['num_units']} LSTM modules of "
        f"{s['hidden'] // s['num_units']} units, {s['k_active']} active per step, input "
        f"attention (d_k 64, d_v {4 * s['hidden'] // s['num_units']}) and 4-head communication "
        f"(d_k = d_v = 16). LSTM: {s['lstm_hidden']} units, the size whose parameter count is "
        "nearest the RIMs'. The paper uses hidden 600 and all 60,000 training images.",
        f"Budget (each model, each seed): {s['steps']} steps of Adam (lr {s['lr']:g}, gradient "
        f"norm clipped at {s['clip']:g}) on shuffled minibatches of {s['batch_size']} (the same "
        f"for both models), {s['seeds']} seed(s). Wall time {s['seconds']:.0f} s with "
        f"{s['threads'] or 'default'} BLAS thread(s).",
        f"Protocol: validation accuracy is measured every {s['eval_every']} steps and the "
        "checkpoint of highest validation accuracy is kept; the test sets are evaluated once, "
        "after training. The claim compares the accuracy lost from the training resolution to "
        f"{last} x {last} (mean over seeds).",
        f"Published: {SOURCE}.", "", "Outcome:"]
    m = {k: s[k]["test_mean"] for k in MODELS}
    lines.append(f"- The claim {'held' if s['claim_held'] else 'did not hold'}: RIMs lose "
                 f"{100 * s['rims_drop']:.1f} points of accuracy from {t} x {t} to {last} x "
                 f"{last}, the LSTM {100 * s['lstm_drop']:.1f}; the difference is "
                 + ("larger" if s["claim_beyond_noise"] else "not larger")
                 + f" than {s['noise_points']:.1f} points, two standard errors of a difference "
                 f"of two accuracies measured on {s['n_test']:,} test images x {s['seeds']} "
                 "seed(s) (binomial, worst case), so it is "
                 + ("beyond" if s["claim_beyond_noise"] else "within") + " sampling noise.")
    kept = {k: (m[k][str(last)] - 0.1) / max(1e-9, m[k][str(t)] - 0.1) for k in MODELS}
    start_gap = m["lstm"][str(t)] - m["rims"][str(t)]
    lines.append(f"- Above chance (10 %), the RIMs keep {100 * kept['rims']:.0f} % of their "
                 f"{t} x {t} accuracy at {last} x {last}, the LSTM {100 * kept['lstm']:.0f} %"
                 + (f"; the RIMs start {100 * start_gap:.1f} points below the LSTM at {t} x "
                    f"{t}, so part of their smaller loss in points comes from that lower start."
                    if start_gap > 0 else "."))
    for r in s["test_resolutions"]:
        a, b = m["rims"][str(r)], m["lstm"][str(r)]
        lines.append(f"- {r} x {r}: RIMs {100 * a:.1f} %, LSTM {100 * b:.1f} % "
                     f"(RIMs {'above' if a > b else 'not above'} the LSTM).")
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


COLORS = {"rims": "tab:blue", "lstm": "tab:orange"}


def _plot_resolutions(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    res = [s["train_resolution"], *s["test_resolutions"]]
    for kind in MODELS:
        axes[0].plot(res, [100 * s[kind]["test_mean"][str(r)] for r in res], "o-",
                     color=COLORS[kind], label=LABELS[kind])
        for r in res:
            v = 100 * np.asarray(s[kind]["test"][str(r)])
            axes[0].plot([r] * len(v), v, ".", color=COLORS[kind], alpha=0.5)
        pub = PUBLISHED[kind]
        axes[1].plot(list(pub), list(pub.values()), "s--", color=COLORS[kind],
                     label=LABELS[kind].replace(" (matched parameters)", " (h 300)"))
    axes[0].set(title=f"flowgrad (trained at {s['train_resolution']} x "
                      f"{s['train_resolution']})")
    axes[1].set(title="published (RIMs Table 2, trained at 14 x 14)")
    for ax in axes:
        ax.axhline(10, color="gray", ls="--", lw=1, label="chance")
        ax.set(xlabel="resolution (pixels per side)", ylabel="test accuracy (%)", ylim=(0, 100))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_resolutions.png", dpi=110)


def _plot_curves(s, out):
    fig, ax = new_figure(1, 1, figsize=(6, 4))
    for kind in MODELS:
        for i, curve in enumerate(s[kind]["curves"]):
            ax.plot([c["step"] for c in curve], [100 * (1 - c["score"]) for c in curve],
                    "-" if i == 0 else ":", color=COLORS[kind],
                    label=LABELS[kind] if i == 0 else None)
    ax.set(xlabel="training step", ylabel="validation accuracy (%)",
           title=f"validation ({s['train_resolution']} x {s['train_resolution']})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110)
