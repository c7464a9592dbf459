"""Bouncing balls with an LSTM, Recurrent Independent Mechanisms and SCOFF (RIMs, Goyal et al.
2019, arXiv 1909.10893, section 4.2; SCOFF, Goyal et al. 2020, arXiv 2006.16225, Fig. 5):
next-frame prediction trained on 4 balls, then rollouts (10 observed frames, the rest predicted
from the model's own frames) on 4 balls (in distribution) and on 6 and 8 balls (out of
distribution).

Small-compute version: 16 x 16 frames (flattened to 256 pixels) instead of 64 x 64, balls of
radius 0.08 box units (``flowgrad.datasets.modular_tasks.bouncing_balls``, default physics),
sequences of 30 frames (10 observed, 20 rolled out) instead of 51 (RIMs) or 10 + 35 (SCOFF).
Every model is a linear encoder with ReLU (256 -> 64), the recurrent core, and a linear readout
to the next frame's 256 pixel logits (sigmoid, binary cross-entropy, teacher forcing), instead
of the papers' convolutional encoder and decoder. Cores: RIMs with k_T 6 LSTM modules of 20
units (hidden 120), k_A 4 active, attention sizes of the official ``BlocksCore``
(anirudh9119/RIMs ``event_based/blocks_core.py``: input d_k 64, d_v 4 x module size;
communication 4 heads, d_k = d_v = 16); SCOFF with 6 object files of 20, 2 GRU schemata,
4 active, the same attention sizes; an LSTM whose parameter count is nearest the RIMs model's.
The readout bias starts at the logits of the training mean frame (every model). Adam 1e-3,
gradient norm clipped at 1.0. Rollouts feed back the predicted probabilities.

Budget: the default (3 seeds, 3000 steps of 32 sequences of 30 frames, 3 models) is long on a CPU.
Measured here at one thread, one training step (batch 32 x 29 frames) takes about 0.13 s for
RIMs, 0.17 s for SCOFF and 0.04 s for the LSTM (the encoder and readout over 256 pixels are
much of the LSTM's cost, so the ratio is smaller than for the bare cores), so a seed takes
about 17 min and the default run about 50 min on an idle core (more on a shared machine).
``--quick`` (one seed, 15-frame sequences with 5 rolled out, 100 steps of 16 at lr 1e-2, small
test sets) takes about 20 s of CPU time.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.modular_tasks import bouncing_balls as make_balls
from ..modular.inspect import activation_map, attention_heatmap, ball_events, ball_following_score
from ..modular.rims import RIM
from ..modular.scoff import SCOFF
from ..nn.module import Module
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results
from .modular_common import (
    EpochBatches,
    matched_lstm_hidden,
    mean_std,
    official_attention,
    parameter_count,
    seed_stream,
    train,
)

NAME = "bouncing_balls"
DEFAULTS = {"seeds": 3, "steps": 3000, "batch_size": 32, "lr": 1e-3, "clip": 1.0, "frames": 30,
            "observed": 10, "size": 16, "radius": 0.08, "train_balls": 4, "test_balls": (4, 6, 8),
            "encoder": 64, "hidden": 120, "num_units": 6, "k_active": 4, "num_schemata": 2,
            "models": ("lstm", "rims", "scoff"), "n_train": 2000, "n_valid": 128,
            "n_test": 256, "eval_every": 250, "threads": 1}
MODELS = ("lstm", "rims", "scoff")
LABELS = {"lstm": "LSTM (matched parameters)", "rims": "RIMs (k_T 6, k_A 4)",
          "scoff": "SCOFF (n_f 6, n_s 2, k 4)"}
COLORS = {"lstm": "tab:orange", "rims": "tab:blue", "scoff": "tab:green"}
SOURCE = ("Goyal et al. 2020 (SCOFF, arXiv 2006.16225), Fig. 5: rollout BCE after 10 observed "
          "frames, trained on 4 balls, tested on 4 and 6-8; Goyal et al. 2019 (RIMs, arXiv "
          "1909.10893), section 4.2 and its bouncing-balls figures")
PUBLISHED = ("Direction only (figures, no table): the modular models' rollout error grows more "
             "slowly than the LSTM's, and the gap widens with the number of balls (SCOFF best)")


class FramePredictor(Module):
    """Linear encoder + ReLU -> recurrent core (batch first) -> linear readout of next-frame
    pixel logits. ``step(x, state)`` runs the core from ``state`` (None: zeros) and returns
    (logits, state), so that a rollout can feed frames one at a time."""

    def __init__(self, core: str, pixels: int, encoder: int, hidden: int, **core_kwargs):
        super().__init__()
        self.kind = core
        self.encoder = fg.nn.Linear(pixels, encoder)
        if core == "lstm":
            self.core = fg.nn.LSTM(encoder, hidden, batch_first=True)
        elif core == "rim":
            self.core = RIM(encoder, hidden, batch_first=True, **core_kwargs)
        elif core == "scoff":
            self.core = SCOFF(encoder, hidden, batch_first=True, **core_kwargs)
        else:
            raise ValueError(f"FramePredictor: core={core!r}, expected 'lstm', 'rim' or 'scoff'")
        self.readout = fg.nn.Linear(hidden, pixels)

    def step(self, x, state=None):
        h, state = self.core(fg.nn.functional.relu(self.encoder(x)), state)
        return self.readout(h), state

    def forward(self, x):
        return self.step(x)[0]

    @property
    def masks(self):
        """Active modules of the last call, (T, B, K) bool (None for the LSTM)."""
        return getattr(self.core, "masks", None)


def build(kind: str, cfg: dict, seed: int) -> FramePredictor:
    """One of the compared models (seeded)."""
    fg.manual_seed(seed)
    pixels, enc, hidden = cfg["size"] ** 2, cfg["encoder"], cfg["hidden"]
    attention = official_attention(hidden, cfg["num_units"])
    if kind == "lstm":
        return FramePredictor("lstm", pixels, enc, cfg["lstm_hidden"])
    if kind == "rims":
        return FramePredictor("rim", pixels, enc, hidden, num_units=cfg["num_units"],
                              k_active=cfg["k_active"], **attention)
    if kind == "scoff":
        return FramePredictor("scoff", pixels, enc, hidden, num_object_files=cfg["num_units"],
                              num_schemata=cfg["num_schemata"], k_active=cfg["k_active"],
                              **attention)
    raise ValueError(f"{NAME}: unknown model {kind!r}; expected one of {MODELS}")


@fg.no_grad()
def start_at_mean_frame(model, mean_frame: np.ndarray) -> None:
    """Set the readout bias to the logits of the training mean frame (clipped to [1e-3,
    1 - 1e-3]), so that training starts from the mean-frame prediction instead of spending its
    first steps learning that most pixels are off."""
    p = np.clip(mean_frame, 1e-3, 1 - 1e-3)
    model.readout.bias.copy_(fg.from_numpy(np.log(p / (1 - p)).astype(np.float32)))


def _bce(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binary cross-entropy from logits, elementwise (stable: softplus(z) - y z)."""
    return np.logaddexp(0.0, logits) - y * logits


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@fg.no_grad()
def teacher_forced(model, frames: np.ndarray, batch_size: int = 128) -> float:
    """Mean next-frame BCE (nats per pixel) with every true frame fed."""
    model.eval()
    total = 0.0
    for s in range(0, len(frames), batch_size):
        f = frames[s:s + batch_size]
        total += float(_bce(model(fg.from_numpy(f[:, :-1])).numpy(), f[:, 1:]).sum())
    return total / frames[:, 1:].size


@fg.no_grad()
def rollout(model, frames: np.ndarray, observed: int, batch_size: int = 128):
    """Feed ``observed`` true frames, then the model's own predicted probabilities.

    Returns (logits (n, T - observed, pixels) of frames observed..T-1, masks (T - 1, n, K) of
    the modules active at each fed frame, or None for the LSTM)."""
    model.eval()
    logits, masks = [], []
    for s in range(0, len(frames), batch_size):
        f = fg.from_numpy(frames[s:s + batch_size, :observed])
        z, state = model.step(f)
        out, m = [z[:, -1:]], [model.masks]
        for _ in range(frames.shape[1] - observed - 1):
            z, state = model.step(fg.sigmoid(out[-1]), state)
            out.append(z)
            m.append(model.masks)
        logits.append(np.concatenate([o.numpy() for o in out], axis=1))
        if m[0] is not None:
            masks.append(np.concatenate(m, axis=0))
    return np.concatenate(logits), (np.concatenate(masks, axis=1) if masks else None)


def rollout_errors(logits: np.ndarray, target: np.ndarray) -> dict:
    """Per-step BCE and MSE (pixel means) of rollout logits against the true frames."""
    return {"bce": _bce(logits, target).mean(axis=(0, 2)).tolist(),
            "mse": ((_sigmoid(logits) - target) ** 2).mean(axis=(0, 2)).tolist()}


def baselines(mean_frame: np.ndarray, test: np.ndarray, observed: int) -> dict:
    """Per-step errors of predicting the training mean frame, and MSE of copying the last
    observed frame (its BCE is unbounded: a binary frame)."""
    target = test[:, observed:]
    p = np.clip(mean_frame, 1e-4, 1 - 1e-4)
    bce = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    return {"mean_frame_bce": bce.mean(axis=(0, 2)).tolist(),
            "mean_frame_mse": ((p - target) ** 2).mean(axis=(0, 2)).tolist(),
            "copy_last_mse": ((test[:, observed - 1:observed] - target) ** 2)
            .mean(axis=(0, 2)).tolist()}


def following(masks: np.ndarray, positions: np.ndarray) -> dict:
    """Ball-following scores (normalised MI) of each module's activity against each ball's
    collision events, on the steps fed (the frame fed at step t; events of frames 0..T-2), and
    the same with the events of another sequence (a chance control)."""
    events = ball_events(positions[:, :masks.shape[0]], "collision")
    score = ball_following_score(masks, events, "nmi")
    control = ball_following_score(masks, np.roll(events, 1, axis=1), "nmi")
    return {"matrix": score["matrix"].tolist(), "ball": score["ball"].tolist(),
            "score": score["score"].tolist(), "mean_score": float(score["score"].mean()),
            "control_mean_score": float(control["score"].mean())}


def _data(cfg, seeds):
    n_all = cfg["n_train"] + cfg["n_valid"]
    kw = {"steps": cfg["frames"], "size": cfg["size"], "radius": cfg["radius"]}
    pixels = cfg["size"] ** 2
    base = make_balls(n_all, n_balls=cfg["train_balls"], seed=int(seeds[0]), **kw)
    frames = base.frames.reshape(n_all, cfg["frames"], pixels)
    train_frames, valid = frames[:cfg["n_train"]], frames[cfg["n_train"]:]
    tests = {}
    for n_balls, s in zip(cfg["test_balls"], seeds[1:]):
        d = make_balls(cfg["n_test"], n_balls=n_balls, seed=int(s), **kw)
        tests[n_balls] = (d.frames.reshape(cfg["n_test"], cfg["frames"], pixels), d.positions)
    return train_frames, valid, tests


def _one_seed(seed, cfg, progress) -> dict:
    seeds = seed_stream(seed, 1 + len(cfg["test_balls"]))
    train_frames, valid, tests = _data(cfg, seeds)
    mean_frame = train_frames.mean(axis=(0, 1))
    batches = EpochBatches(train_frames[:, :-1], train_frames[:, 1:], cfg["batch_size"], seed)
    obs = cfg["observed"]

    def loss_fn(model, x, y):
        return fg.nn.functional.binary_cross_entropy_with_logits(model(x), y)

    def validate(model):
        roll, _ = rollout(model, valid, obs)
        tf = teacher_forced(model, valid)
        return {"teacher_forced_bce": tf, "rollout_bce": float(_bce(roll, valid[:, obs:]).mean()),
                "score": tf}

    out = {"baseline": {n: baselines(mean_frame, f, obs) for n, (f, _) in tests.items()},
           "valid_mean_frame_bce": float(np.mean(baselines(mean_frame, valid, 1)
                                                 ["mean_frame_bce"]))}
    for kind in cfg["models"]:
        model = build(kind, cfg, seed)
        start_at_mean_frame(model, mean_frame)
        run = train(model, batches, loss_fn, validate, cfg["steps"], cfg["lr"], cfg["clip"],
                    cfg["eval_every"], progress, desc=f"{kind} seed {seed}")
        test, follow, example = {}, None, {}
        for n_balls, (frames, positions) in tests.items():
            logits, masks = rollout(model, frames, obs)
            test[n_balls] = {**rollout_errors(logits, frames[:, obs:]),
                             "teacher_forced_bce": teacher_forced(model, frames)}
            example[n_balls] = _sigmoid(logits[0])
            if masks is not None and n_balls == cfg["train_balls"]:
                follow = following(masks, positions)
                example["masks"] = masks[:, 0]
        out[kind] = {"params": parameter_count(model), "test": test, "following": follow,
                     "best_step": run["best_step"], "valid": run["best"], "curve": run["curve"],
                     "seconds": run["seconds"], "example": example,
                     "final_train_loss": float(np.mean(run["train_loss"][-20:]))}
    out["truth"] = {n: f[0] for n, (f, _) in tests.items()}
    out["positions"] = tests[cfg["train_balls"]][1][0] if cfg["train_balls"] in tests else None
    return out


def run(seeds=3, steps=3000, batch_size=32, lr=1e-3, clip=1.0, frames=30, observed=10, size=16,
        radius=0.08, train_balls=4, test_balls=(4, 6, 8), encoder=64, hidden=120, num_units=6,
        k_active=4, num_schemata=2, models=("lstm", "rims", "scoff"), n_train=2000,
        n_valid=128, n_test=256, eval_every=250, threads=1, out=None, quick=False,
        progress=True, write: bool = True) -> dict:
    """Train each model for each of ``seeds`` seeds on the same minibatches of 4-ball
    sequences (teacher forcing); keep the checkpoint of lowest validation teacher-forced BCE
    (held-out training sequences); roll out on every test ball count once."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, steps, batch_size, lr, frames, n_train = 1, 100, 16, 1e-2, 15, 256
        n_valid, n_test, eval_every = 32, 32, 50
    models = tuple(models)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ValueError(f"{NAME}: models must be a non-empty subset of {MODELS}, got {models}")
    if not 1 <= observed < frames - 1:
        raise ValueError(f"{NAME}: observed must be in [1, frames - 1), got observed={observed}, "
                         f"frames={frames}")
    cfg = {"steps": steps, "batch_size": batch_size, "lr": lr, "clip": clip, "frames": frames,
           "observed": observed, "size": size, "radius": radius, "train_balls": train_balls,
           "test_balls": tuple(int(n) for n in test_balls), "encoder": encoder,
           "hidden": hidden, "num_units": num_units, "k_active": k_active,
           "num_schemata": num_schemata, "models": models, "n_train": n_train,
           "n_valid": n_valid, "n_test": n_test, "eval_every": eval_every}
    rims_params = parameter_count(build("rims", {**cfg, "lstm_hidden": None}, 0))
    cfg["lstm_hidden"] = matched_lstm_hidden(rims_params - (size ** 2 + 1) * encoder, encoder,
                                             size ** 2)
    with _limit_threads(threads), Timer() as timer:
        per_seed = [_one_seed(s, cfg, progress) for s in range(seeds)]
    summary = _summarise(per_seed, cfg, seeds, threads, command, timer.seconds)
    if write:
        figures = [_plot_rollout(summary, out), _plot_strip(per_seed[0], summary, out)]
        if "rims" in models and per_seed[0]["rims"]["following"] is not None:
            figures.append(_plot_modules(per_seed[0], summary, out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=tuple(figures))
    return summary


def _summarise(per_seed, cfg, seeds, threads, command, seconds) -> dict:
    models, counts = cfg["models"], cfg["test_balls"]
    s = {"title": f"Bouncing balls: rollout error of {', '.join(LABELS[k] for k in models)}, "
                  f"trained on {cfg['train_balls']} balls, tested on "
                  f"{', '.join(str(n) for n in counts)}",
         **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
         "seeds": seeds, "params": {k: per_seed[0][k]["params"] for k in models},
         "source": SOURCE, "published": PUBLISHED, "threads": threads, "command": command,
         "seed": list(range(seeds)), "seconds": seconds,
         "valid_mean_frame_bce": float(np.mean([p["valid_mean_frame_bce"] for p in per_seed])),
         "baseline": {str(n): {key: np.mean([p["baseline"][n][key] for p in per_seed], 0)
                               .tolist() for key in per_seed[0]["baseline"][n]}
                      for n in counts}}
    for kind in models:
        runs = [p[kind] for p in per_seed]
        entry = {"test": {}, "valid_rollout_bce": [r["valid"]["rollout_bce"] for r in runs],
                 "valid_teacher_forced_bce": [r["valid"]["teacher_forced_bce"] for r in runs],
                 "best_step": [r["best_step"] for r in runs],
                 "final_train_loss": [r["final_train_loss"] for r in runs],
                 "seconds": [r["seconds"] for r in runs], "curves": [r["curve"] for r in runs]}
        for n in counts:
            t = [r["test"][n] for r in runs]
            entry["test"][str(n)] = {
                "bce_per_step": np.mean([x["bce"] for x in t], 0).tolist(),
                "mse_per_step": np.mean([x["mse"] for x in t], 0).tolist(),
                "rollout_bce": [float(np.mean(x["bce"])) for x in t],
                "rollout_mse": [float(np.mean(x["mse"])) for x in t],
                "teacher_forced_bce": [x["teacher_forced_bce"] for x in t]}
        if runs[0]["following"] is not None:
            entry["following"] = [r["following"] for r in runs]
        s[kind] = entry
        s[f"{kind}_valid_teacher_forced_bce_mean"] = float(np.mean(
            entry["valid_teacher_forced_bce"]))
        for n in counts:
            s[f"{kind}_rollout_bce_{n}_mean"] = float(np.mean(entry["test"][str(n)]
                                                              ["rollout_bce"]))
    s["worst_valid_tf_bce"] = max(s[f"{k}_valid_teacher_forced_bce_mean"] for k in models)
    s.update(_verdict(s))
    return s


def _verdict(s) -> dict:
    """The published direction per modular model: its mean rollout BCE below the LSTM's at
    every ball count, and its advantage (LSTM minus it) larger at the most balls than at the
    training count."""
    counts, train_n = s["test_balls"], s["train_balls"]
    if "lstm" not in s["models"] or train_n not in counts or len(counts) < 2:
        return {"claim_held": None}
    top = max(counts)
    out, held = {}, []
    for kind in (k for k in s["models"] if k != "lstm"):
        gaps = {n: s[f"lstm_rollout_bce_{n}_mean"] - s[f"{kind}_rollout_bce_{n}_mean"]
                for n in counts}
        below = all(g > 0 for g in gaps.values())
        widens = gaps[top] > gaps[train_n]
        out[f"{kind}_gap"] = {str(n): g for n, g in gaps.items()}
        out[f"{kind}_below_lstm_everywhere"] = bool(below)
        out[f"{kind}_gap_widens"] = bool(widens)
        held.append(below and widens)
    out["claim_held"] = bool(held) and all(held)
    return out


def _rows(s) -> list:
    models, counts, train_n = s["models"], s["test_balls"], s["train_balls"]
    rows = [("parameters: " + " / ".join(LABELS[k] for k in models),
             " / ".join(f"{s['params'][k]:,}" for k in models)
             + (f" (LSTM hidden size {s['lstm_hidden']})" if "lstm" in models else ""), "—")]
    label = " / ".join(f"{n}" for n in counts)
    rollout_steps = s["frames"] - s["observed"]
    for kind in models:
        t = s[kind]["test"]
        rows.append((f"{LABELS[kind]}: mean rollout BCE over {rollout_steps} steps (nats per "
                     f"pixel), {label} balls (mean ± std over {s['seeds']} seed(s))",
                     " / ".join(mean_std(t[str(n)]["rollout_bce"]) for n in counts),
                     "curves only (Fig. 5)"))
        rows.append((f"{LABELS[kind]}: rollout BCE at the last step, {label} balls",
                     " / ".join(f"{t[str(n)]['bce_per_step'][-1]:.3f}" for n in counts), "—"))
        rows.append((f"{LABELS[kind]}: mean rollout MSE, {label} balls",
                     " / ".join(mean_std(t[str(n)]["rollout_mse"]) for n in counts), "—"))
        rows.append((f"{LABELS[kind]}: teacher-forced test BCE (one step ahead), {label} balls",
                     " / ".join(mean_std(t[str(n)]["teacher_forced_bce"]) for n in counts),
                     "—"))
        kept = ", ".join(str(b) for b in s[kind]["best_step"])
        rows.append((f"{LABELS[kind]}: validation rollout / teacher-forced BCE ({train_n} balls, "
                     f"kept step(s) {kept} of {s['steps']}); training time",
                     f"{mean_std(s[kind]['valid_rollout_bce'])} / "
                     f"{mean_std(s[kind]['valid_teacher_forced_bce'])}; "
                     f"{np.sum(s[kind]['seconds']):.0f} s", "—"))
        if "following" in s[kind]:
            f = s[kind]["following"]
            rows.append((f"{LABELS[kind]}: ball-following score (NMI of module activity and "
                         f"ball collisions, {train_n} balls, mean over modules) / control "
                         "(events of another sequence)",
                         f"{mean_std([x['mean_score'] for x in f])} / "
                         f"{mean_std([x['control_mean_score'] for x in f])}", "—"))
    b = s["baseline"]
    rows.append((f"reference: training mean frame, mean rollout BCE / MSE, {label} balls",
                 " / ".join(f"{np.mean(b[str(n)]['mean_frame_bce']):.3f}" for n in counts)
                 + "; " + " / ".join(f"{np.mean(b[str(n)]['mean_frame_mse']):.3f}"
                                     for n in counts), "—"))
    rows.append((f"reference: copy the last observed frame, mean rollout MSE, {label} balls",
                 " / ".join(f"{np.mean(b[str(n)]['copy_last_mse']):.3f}" for n in counts), "—"))
    rows.append((f"reference: training mean frame, validation BCE ({train_n} balls)",
                 f"{s['valid_mean_frame_bce']:.3f}", "—"))
    if s["claim_held"] is not None:
        for kind in (k for k in models if k != "lstm"):
            gaps = s[f"{kind}_gap"]
            rows.append((f"direction: {LABELS[kind]} rollout BCE below the LSTM's at every "
                         f"count, advantage larger at {max(counts)} than at {train_n} balls "
                         "(LSTM minus model, " + " / ".join(f"{n}" for n in counts) + ")",
                         " / ".join(f"{gaps[str(n)]:+.4f}" for n in counts) + " ("
                         + ("held" if s[f"{kind}_below_lstm_everywhere"]
                            and s[f"{kind}_gap_widens"] else "not held") + ")",
                         PUBLISHED))
    return rows


def _notes(s) -> str:
    models, counts, obs = s["models"], s["test_balls"], s["observed"]
    lines = [
        f"Data (flowgrad.datasets.modular_tasks.bouncing_balls): elastic balls of radius "
        f"{s['radius']:g} in the unit box, rendered to {s['size']} x {s['size']} binary frames "
        f"(flattened), {s['frames']} frames per sequence. Training: {s['n_train']} sequences of "
        f"{s['train_balls']} balls; validation: {s['n_valid']} further sequences from the same "
        f"draw (held out of training); tests: {s['n_test']} sequences for each of "
        f"{', '.join(str(n) for n in counts)} balls, each from its own seed.",
        f"Models: a linear encoder (pixels -> {s['encoder']}, ReLU), the recurrent core, a "
        f"linear readout to the next frame's pixel logits. RIMs: {s['num_units']} LSTM modules "
        f"of {s['hidden'] // s['num_units']} (hidden {s['hidden']}), {s['k_active']} active per "
        "step; SCOFF: the same number of object files and size, "
        f"{s['num_schemata']} GRU schemata, {s['k_active']} active; attention sizes of the "
        "official BlocksCore. The LSTM has " + str(s["lstm_hidden"]) + " units, the size whose "
        "parameter count (encoder and readout included) is nearest the RIMs model's.",
        f"Training: teacher forcing on every frame, binary cross-entropy per pixel, "
        f"{s['steps']} steps of Adam (lr {s['lr']:g}, gradient norm clipped at {s['clip']:g}) "
        f"on minibatches of {s['batch_size']} (the same batches for every model of a seed), "
        f"{s['seeds']} seed(s). Every {s['eval_every']} steps the validation BCE is measured, "
        f"teacher-forced (the training objective; it chooses the checkpoint kept) and in "
        f"rollouts ({obs} observed frames, the rest predicted; reported only: early in "
        f"training it favours the untrained model, whose output is the mean frame). "
        f"The tests are run once on the kept models: {obs} true frames are fed, "
        f"then the model's own predicted probabilities for the remaining "
        f"{s['frames'] - obs} steps. Wall time {s['seconds']:.0f} s with "
        f"{s['threads'] or 'default'} BLAS thread(s).",
        "Ball following: on the in-distribution test set, each module's activity at the frames "
        "fed (teacher-forced observation and the rollout) against each ball's collision events "
        "(flowgrad.modular.inspect.ball_events); the score is the normalised mutual information "
        "of the best-matching ball per module, beside a control that pairs each sequence's "
        "activity with another sequence's events. Ball identities are arbitrary across "
        "sequences, so a score above the control says a module's activity tracks collisions, "
        "not that it tracks one named ball.",
        f"Published: {SOURCE}. {PUBLISHED}.", "Outcome:"]
    if s["claim_held"] is not None:
        for kind in (k for k in models if k != "lstm"):
            gaps = s[f"{kind}_gap"]
            below = s[f"{kind}_below_lstm_everywhere"]
            widens = s[f"{kind}_gap_widens"]
            lines.append(
                f"- {LABELS[kind]}: mean rollout BCE "
                + ("below" if below else "not below") + " the LSTM's at every ball count "
                f"(LSTM minus {kind}: "
                + ", ".join(f"{gaps[str(n)]:+.4f} at {n}" for n in counts) + "); the advantage "
                + ("widens" if widens else "does not widen")
                + f" from {s['train_balls']} to {max(counts)} balls.")
        word = "agrees" if s["claim_held"] else "does not agree"
        lines.append(f"- This run {word} with the published direction (both parts, every "
                     "modular model).")
    for kind in models:
        tf = np.mean(s[kind]["valid_teacher_forced_bce"])
        word = "below" if tf < s["valid_mean_frame_bce"] else "not below"
        ref = {n: float(np.mean(s["baseline"][str(n)]["mean_frame_bce"])) for n in counts}
        beats = [n for n in counts if s[f"{kind}_rollout_bce_{n}_mean"] < ref[n]]
        lines.append(f"- {LABELS[kind]}: validation teacher-forced BCE {tf:.3f}, {word} the "
                     f"mean-frame reference {s['valid_mean_frame_bce']:.3f}; its mean rollout "
                     "BCE is below the mean-frame reference at "
                     + (", ".join(f"{n}" for n in beats) + " balls" if beats else "no ball count")
                     + " (" + ", ".join(f"{s[f'{kind}_rollout_bce_{n}_mean']:.3f} against "
                                        f"{ref[n]:.3f} at {n}" for n in counts) + ").")
        if "following" in s[kind]:
            f = s[kind]["following"]
            a = np.mean([x["mean_score"] for x in f])
            c = np.mean([x["control_mean_score"] for x in f])
            word = "above" if a > c else "not above"
            lines.append(f"- {LABELS[kind]}: ball-following score {a:.3f}, {word} the control "
                         f"{c:.3f} (normalised MI; 1 would be a module active exactly at one "
                         "ball's collisions).")
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


def _plot_rollout(s, out):
    counts, obs = s["test_balls"], s["observed"]
    fig, axes = new_figure(2, len(counts), figsize=(4 * len(counts), 6.5), squeeze=False)
    steps = np.arange(obs, s["frames"])
    for j, n in enumerate(counts):
        b = s["baseline"][str(n)]
        for i, key in enumerate(("bce", "mse")):
            ax = axes[i][j]
            for kind in s["models"]:
                ax.plot(steps, s[kind]["test"][str(n)][f"{key}_per_step"], color=COLORS[kind],
                        label=LABELS[kind])
            ax.plot(steps, b[f"mean_frame_{key}"], color="gray", ls="--", lw=1,
                    label="training mean frame")
            if key == "mse":
                ax.plot(steps, b["copy_last_mse"], color="gray", ls=":", lw=1,
                        label="copy last observed frame")
            where = "in distribution" if n == s["train_balls"] else "out of distribution"
            ax.set(title=f"{n} balls ({where})", xlabel="frame (rollout)",
                   ylabel=f"rollout {key.upper()} per pixel")
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    axes[1][0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_rollout.png", dpi=110)


def _plot_strip(first, s, out):
    """Seed 0: true and predicted frames of the first test sequence at the training count and
    at the largest count (rollout part)."""
    counts = [n for n in dict.fromkeys((s["train_balls"], max(s["test_balls"])))
              if n in s["test_balls"]]
    obs, size = s["observed"], s["size"]
    shown = np.unique(np.linspace(0, s["frames"] - obs - 1, min(8, s["frames"] - obs))
                      .astype(int))
    rows = [(n, "truth") for n in counts] + [(n, k) for n in counts for k in s["models"]]
    rows = sorted(rows, key=lambda r: (counts.index(r[0]), r[1] != "truth"))
    fig, axes = new_figure(len(rows), len(shown), figsize=(1.1 * len(shown) + 1.5,
                                                           1.1 * len(rows)), squeeze=False)
    for i, (n, who) in enumerate(rows):
        images = (first["truth"][n][obs:] if who == "truth" else first[who]["example"][n])
        for j, t in enumerate(shown):
            ax = axes[i][j]
            ax.imshow(images[t].reshape(size, size), cmap="Greys", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"frame {obs + t}", fontsize=7)
            if j == 0:
                ax.set_ylabel(f"{n} balls\n{'truth' if who == 'truth' else who}", fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_frames.png", dpi=110)


def _plot_modules(first, s, out):
    """Seed 0's RIMs: active modules on one in-distribution test sequence (observed frames,
    then the rollout), the balls' collision events, and the ball-following matrix."""
    masks = first["rims"]["example"]["masks"]  # (T - 1, K)
    events = ball_events(first["positions"][:masks.shape[0]], "collision")  # (T - 1, n_balls)
    fig, axes = new_figure(1, 3, figsize=(15, 3.6), squeeze=False)
    activation_map(masks, ax=axes[0][0],
                   title=f"RIMs: active modules (first {s['observed']} frames observed)")
    axes[0][0].axvline(s["observed"] - 0.5, color="tab:red", lw=1)
    axes[0][1].imshow(events.T.astype(float), aspect="auto", cmap="Greys", vmin=0, vmax=1,
                      origin="lower", interpolation="nearest")
    axes[0][1].set(title="ball collision events (same sequence)", xlabel="step", ylabel="ball")
    axes[0][1].axvline(s["observed"] - 0.5, color="tab:red", lw=1)
    follow = first["rims"]["following"]
    attention_heatmap(np.asarray(follow["matrix"]), ax=axes[0][2], xlabel="ball",
                      ylabel="module",
                      title=f"NMI module activity vs collisions ({s['train_balls']} balls)")
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_modules.png", dpi=110)
