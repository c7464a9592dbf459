"""MiniGrid FourRooms with a recurrent PPO agent whose memory is an LSTM, Recurrent Independent
Mechanisms (Goyal et al. 2019, arXiv 1909.10893), a relational memory core (Santoro et al.
2018, arXiv 1806.01822) or RIMs communicating through a shared global workspace (Goyal et al.
2021, "Coordination Among Neural Modules Through a Shared Global Workspace", arXiv 2103.01197,
the FourRoom table; lecture: the System-2 slide "Modules + Global Workspace"), trained by PPO
(Schulman et al. 2017) with GAE (Schulman et al. 2016).

The published table gives only success rates (RIMs 0.72 ± 0.02, RMC 0.67 ± 0.05, LSTM 0.62 ±
0.02, RIMs + shared workspace 0.96 ± 0.02); its protocol (environment version, agent, frames,
seeds) is not in the paper's public material and is unverified. This recipe fixes one: the
agent of rl-starter-files (conv encoder, memory, actor and critic heads) with its PPO settings,
the three navigation actions, ``frames`` frames per run, 5 seeds, and the final success rate of
each trained agent on fresh episodes (seeds that training never used), actions sampled from the
policy.

Budget (measured with one BLAS thread per process, 3 to 4 single-thread jobs sharing the 2 cores
of an Intel Xeon; collection and update together, MiniGrid's own step being about 0.4 ms of each
frame): LSTM about 1,950 frames/s, RIMs 990, RIMs + workspace 770, RMC 1,360. The default,
10^6 frames per run, is then about 9 / 17 / 22 / 12 minutes per run, about 5 h for 4 memories x
5 seeds in one process; that is 10 times below rl-starter-files' default of 10^7 frames per run,
and likely far below the paper's regime. The published run used 3 x 10^5 frames per run
(``--set frames=300000``), in two processes of two memories each: 53 minutes.
Each (memory, seed) is a cell of ``fourroom_cells/`` in ``--out`` with its own checkpoint: a
rerun resumes unfinished cells and skips finished ones, and the memories can run as separate
processes into one ``--out`` (``--set memories=lstm`` ...).

``--quick``: MiniGrid-Empty-5x5-v0 (a 3x3 room, the goal in the far corner), every memory, one
seed, 5,120 frames each (16 environments x 8 steps per update, BPTT over 4), 40 evaluation
episodes; the trained agents' return is compared with a random policy's on the same episodes.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np

import flowgrad as fg

from ..plotting import new_figure, save_figure
from ..rl import ActorCritic, PolicyConfig, PPOConfig, VectorEnv, evaluate, parameter_count
from ..rl.policies import workspace_heads
from ..rl.ppo import PPO
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, read_cell, resolve_out, write_cell, write_results
from .modular_common import mean_std

NAME = "fourroom"
MEMORIES = ("lstm", "rims", "rims_workspace", "rmc")
DEFAULTS = {"memories": MEMORIES, "seeds": 5, "frames": 1_000_000,
            "env_id": "MiniGrid-FourRooms-v0", "num_envs": 16, "rollout": 128,
            "recurrence": 16, "batch_size": 512, "epochs": 4, "lr": 1e-3,
            "eval_episodes": 200, "checkpoint_every": 10, "threads": 1}
QUICK = {"env_id": "MiniGrid-Empty-5x5-v0", "seeds": 1, "frames": 5120, "num_envs": 16,
         "rollout": 8, "recurrence": 4, "batch_size": 128, "eval_episodes": 40}
LABELS = {"lstm": "LSTM", "rims": "RIMs", "rims_workspace": "RIMs + shared workspace",
          "rmc": "relational memory core (RMC)"}
COLORS = {"lstm": "tab:orange", "rims": "tab:blue", "rims_workspace": "tab:green",
          "rmc": "tab:purple"}
# Goyal et al. 2021 (arXiv 2103.01197), the FourRoom table: success rate, mean ± std
PUBLISHED = {"rims": (0.72, 0.02), "rmc": (0.67, 0.05), "lstm": (0.62, 0.02),
             "rims_workspace": (0.96, 0.02)}
SOURCE = ("Goyal et al. 2021, \"Coordination Among Neural Modules Through a Shared Global "
          "Workspace\" (arXiv 2103.01197), FourRoom table: success rate")


def build(memory: str, seed: int) -> ActorCritic:
    """The agent with ``memory``, its weights drawn from ``seed``."""
    if memory not in MEMORIES:
        raise ValueError(f"{NAME}: unknown memory {memory!r}; expected one of {MEMORIES}")
    fg.manual_seed(seed)
    return ActorCritic(PolicyConfig(memory=memory))


def _cell(memory: str, seed: int, cfg: dict, ppo_cfg: PPOConfig, cells: Path,
          progress: bool) -> dict:
    """Train one agent (resuming from its checkpoint), then evaluate it on fresh episodes."""
    policy = build(memory, seed)
    env = VectorEnv(cfg["env_id"], cfg["num_envs"], seed=seed)
    algo = PPO(policy, env, ppo_cfg, seed=seed)
    history = algo.train(cfg["frames"], progress=progress,
                         checkpoint=cells / f"{memory}-seed{seed}.safetensors",
                         checkpoint_every=cfg["checkpoint_every"],
                         desc=f"{memory} seed {seed}")
    env.close()
    with Timer() as t:
        final = evaluate(policy, cfg["env_id"], cfg["eval_episodes"], seed=seed, stream=1)
    keys = ("frames", "episodes", "return", "success", "length", "entropy", "fps")
    return {"memory": memory, "seed": seed, "params": parameter_count(policy),
            "success_rate": final["success_rate"], "return_mean": final["return_mean"],
            "length_mean": final["length_mean"], "frames": algo.frames,
            "updates": algo.updates, "train_seconds": algo.seconds,
            "frames_per_second": algo.frames / max(algo.seconds, 1e-9),
            "eval_seconds": t.seconds, "curve": [{k: h[k] for k in keys} for h in history]}


def run(memories=MEMORIES, seeds=5, frames=1_000_000, env_id="MiniGrid-FourRooms-v0",
        num_envs=16, rollout=128, recurrence=16, batch_size=512, epochs=4, lr=1e-3,
        eval_episodes=200, checkpoint_every=10, threads=1, out=None, quick=False,
        progress=True, write: bool = True) -> dict:
    """Train an agent for every memory of ``memories`` and every seed 0..seeds-1 for
    ``frames`` frames; evaluate each on ``eval_episodes`` fresh episodes; the table gives the
    final success rate, mean ± std over seeds, beside the published one."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    memories = (memories,) if isinstance(memories, str) else tuple(memories)
    for memory in memories:
        if memory not in MEMORIES:
            raise ValueError(f"{NAME}: unknown memory {memory!r}; expected one of {MEMORIES}")
    if quick:
        env_id, seeds, frames = QUICK["env_id"], QUICK["seeds"], QUICK["frames"]
        num_envs, rollout, recurrence = QUICK["num_envs"], QUICK["rollout"], QUICK["recurrence"]
        batch_size, eval_episodes = QUICK["batch_size"], QUICK["eval_episodes"]
    cfg = {"env_id": env_id, "frames": int(frames), "num_envs": num_envs, "rollout": rollout,
           "recurrence": recurrence, "batch_size": batch_size, "epochs": epochs, "lr": lr,
           "eval_episodes": eval_episodes, "checkpoint_every": checkpoint_every}
    ppo_cfg = PPOConfig(num_envs=num_envs, rollout=rollout, recurrence=recurrence,
                        batch_size=batch_size, epochs=epochs, lr=lr)
    ppo_cfg.check()  # fail before any training
    setup = {**{k: v for k, v in cfg.items() if k != "checkpoint_every"}, "ppo": asdict(ppo_cfg)}
    cells = Path(out) / f"{NAME}_cells"
    with _limit_threads(threads), Timer() as timer:
        for memory in memories:
            for seed in range(seeds):
                key = f"{memory}-seed{seed}"
                if read_cell(cells, key, setup, NAME) is None:
                    result = _cell(memory, seed, cfg, ppo_cfg, cells, progress)
                    write_cell(cells, key, {**result, "setup": setup, "command": command})
        # the random policy on seed 0's evaluation episodes: the floor of the table
        random = evaluate(None, env_id, eval_episodes, seed=0, stream=1)
    results = {}
    for memory in MEMORIES:  # every finished cell in out, this run's or another's
        runs = [c for c in (read_cell(cells, f"{memory}-seed{s}", setup, NAME)
                            for s in range(max(seeds, 1))) if c is not None]
        if runs:
            results[memory] = runs
    summary = {"title": f"{env_id}: recurrent PPO agents with an LSTM, RIMs and RIMs + shared "
                        "workspace memory", **cfg, "ppo": asdict(ppo_cfg), "seeds": seeds,
               "memories": list(results),
               "source": SOURCE, "published": {k: {"mean": m, "std": s}
                                               for k, (m, s) in PUBLISHED.items()},
               "random_success_rate": random["success_rate"],
               "random_return_mean": random["return_mean"],
               "threads": threads, "command": command, "seed": list(range(seeds)),
               "seconds": timer.seconds,
               "runs": sorted({c["command"] for r in results.values() for c in r})}
    for memory, runs in results.items():
        summary[memory] = {
            "params": runs[0]["params"], "seeds": [c["seed"] for c in runs],
            "frames": [c["frames"] for c in runs],
            "success_rate": [c["success_rate"] for c in runs],
            "return_mean": [c["return_mean"] for c in runs],
            "length_mean": [c["length_mean"] for c in runs],
            "train_seconds": [c["train_seconds"] for c in runs],
            "frames_per_second": [c["frames_per_second"] for c in runs],
            "curves": [c["curve"] for c in runs]}
        summary[f"{memory}_success_rate_mean"] = float(np.mean(summary[memory]["success_rate"]))
        summary[f"{memory}_return_mean"] = float(np.mean(summary[memory]["return_mean"]))
        summary[f"{memory}_frames_per_second"] = float(
            np.mean(summary[memory]["frames_per_second"]))
    summary.update(_comparisons(summary))
    if write:
        figures = (_plot_curves(summary, out), _plot_final(summary, out)) if results else ()
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _comparisons(s) -> dict:
    """The published ordering (workspace > RIMs > LSTM) on our means, and Welch's t-test of
    each modular memory against the LSTM (None where a memory or a second seed is missing)."""
    have = [m for m in ("lstm", "rims", "rims_workspace") if m in s["memories"]]
    v = {"ordering_held": None, "welch_p": {}}
    if len(have) == 3:
        means = [s[f"{m}_success_rate_mean"] for m in have]
        v["ordering_held"] = bool(means[0] < means[1] < means[2])
    try:
        from scipy import stats
    except ImportError:  # pragma: no cover - scipy comes with the extras
        return v
    for m in ("rims", "rims_workspace", "rmc"):
        if m in s["memories"] and "lstm" in have and min(len(s[m]["success_rate"]),
                                                         len(s["lstm"]["success_rate"])) > 1:
            a, b = s[m]["success_rate"], s["lstm"]["success_rate"]
            p = stats.ttest_ind(a, b, equal_var=False).pvalue
            v["welch_p"][m] = None if not np.isfinite(p) else float(p)
    return v


def _published(s, memory: str) -> str:
    mean, std = PUBLISHED[memory]
    where = "" if s["env_id"] == "MiniGrid-FourRooms-v0" else " (on FourRooms)"
    return f"{mean:.2f} ± {std:.2f}{where}"


def _rows(s) -> list:
    n_eval = s["eval_episodes"]
    rows = []
    for memory in ("lstm", "rims", "rims_workspace", "rmc"):
        ours = "not run"
        if memory in s["memories"]:
            n = len(s[memory]["seeds"])
            ours = mean_std(s[memory]["success_rate"], 2) + f" ({n} seed{'s' * (n > 1)})"
        rows.append((f"final success rate, {LABELS[memory]} ({n_eval} fresh episodes per seed)",
                     ours, _published(s, memory)))
    rows.append(("success rate / return of a uniformly random policy (same episodes as seed 0)",
                 f"{s['random_success_rate']:.2f} / {s['random_return_mean']:.3f}", "—"))
    for memory in s["memories"]:
        r = s[memory]
        rows.append((f"{LABELS[memory]}: final return / episode length",
                     f"{mean_std(r['return_mean'], 3)} / {mean_std(r['length_mean'], 1)}", "—"))
    if s["ordering_held"] is not None:
        rows.append(("ordering LSTM < RIMs < RIMs + shared workspace (mean success)",
                     "held" if s["ordering_held"] else "not held", "held"))
    for m, p in s["welch_p"].items():
        rows.append((f"{LABELS[m]} vs LSTM, Welch's t-test on the seeds' success rates",
                     "—" if p is None else f"p = {p:.3g}", "—"))
    rows.append(("parameters: " + " / ".join(LABELS[m] for m in s["memories"]),
                 " / ".join(f"{s[m]['params']:,}" for m in s["memories"]), "not stated"))
    frames = sorted({f for m in s["memories"] for f in s[m]["frames"]})
    rows.append((f"frames per run ({s['num_envs']} environments x {s['rollout']} steps per "
                 "update)", " / ".join(f"{f:,}" for f in frames), "not stated"))
    rows.append(("training frames/s (one BLAS thread): " + " / ".join(
        LABELS[m] for m in s["memories"]), " / ".join(
        f"{s[f'{m}_frames_per_second']:.0f}" for m in s["memories"]), "—"))
    rows.append(("training time per run, mean over seeds: " + " / ".join(
        LABELS[m] for m in s["memories"]), " / ".join(
        f"{np.mean(s[m]['train_seconds']):.0f} s" for m in s["memories"]), "—"))
    return rows


def _notes(s) -> str:
    pc = PolicyConfig()
    ppo = PPOConfig(**s["ppo"])
    lstm_h = PolicyConfig(memory="lstm").resolved_hidden()
    rims_h = PolicyConfig(memory="rims").resolved_hidden()
    rmc_h = PolicyConfig(memory="rmc").resolved_hidden()
    unit = rims_h // pc.num_units
    lines = [
        f"Environment: {s['env_id']} (the minigrid package, gymnasium API). Observation: the "
        "agent's 7x7 egocentric view as (object, colour, state) integers, obs[\"image\"], fed "
        "as floats as in rl-starter-files. Actions: the three navigation actions left, right, "
        "forward (the other four, pickup, drop, toggle and done, do nothing in FourRooms, "
        "whose doors are open gaps; the published protocol may have used all seven). Reward: "
        "MiniGrid's 1 - 0.9 x steps / max_steps at the goal, 0 otherwise; success is a "
        "positive final reward.",
        "Agent (rl-starter-files' ACModel): conv 2x2 (16) - ReLU - max-pool 2 - conv 2x2 (32) - "
        f"ReLU - conv 2x2 ({pc.embedding}) - ReLU, then the memory, then an actor and a critic "
        f"head (Linear {pc.head_hidden} - tanh - Linear, rows initialised to unit norm). "
        f"Memories: LSTM: LSTMCell with {lstm_h} units. RIMs: {pc.num_units} LSTM modules of "
        f"{unit} units ({rims_h} in all), {pc.k_active} active per step, input attention over "
        f"[null, input] (d_k 64, d_v {4 * unit}) and 4-head communication (d_k = d_v = 16), as "
        "the official BlocksCore. RIMs + shared workspace: the same RIMs whose pairwise "
        f"communication is replaced by a shared workspace of {pc.num_slots} slots of {unit} "
        f"units ({workspace_heads(unit)} heads; the top {pc.write_topk} "
        "active modules by attention may write into each slot; every active module reads the "
        f"broadcast). RMC: Sonnet's RelationalMemory with {pc.num_slots} slots of "
        f"{rmc_h // pc.num_slots} units ({workspace_heads(rmc_h // pc.num_slots)} heads, one "
        "attention block, a 2-layer MLP, a gate per unit), its flattened memory "
        f"({rmc_h} values) the policy's state. The state is reset where an episode ended "
        "(multiplied by 1 - done; the "
        "workspace memory goes back to its learned initial value, the RMC's to its initial "
        "identity matrix). Sizes are this recipe's "
        "choice (the paper does not state its agent's), with comparable parameter counts.",
        f"PPO (Schulman et al. 2017) with GAE (Schulman et al. 2016), rl-starter-files' "
        f"defaults: {ppo.num_envs} environments x {ppo.rollout} steps per update, discount "
        f"{ppo.gamma}, lambda {ppo.gae_lambda}, Adam lr {ppo.lr:g} (eps {ppo.adam_eps:g}), "
        f"{ppo.epochs} epochs, clip {ppo.clip_eps}, entropy {ppo.entropy_coef}, value "
        f"{ppo.value_coef} (clipped value loss), gradient norm clipped at {ppo.max_grad_norm}; "
        "this recipe's choices: "
        + ("advantages normalised per minibatch (as OpenAI baselines' and CleanRL's PPO; "
           "rl-starter-files does not), " if ppo.normalize_advantages else "")
        + f"truncated BPTT over chunks of {ppo.recurrence} steps, each "
        "recomputed from the recurrent state stored at its start during collection "
        f"(rl-starter-files' recurrence), minibatches of {ppo.batch_size} frames = "
        f"{ppo.batch_size // ppo.recurrence} chunks of one environment each. Truncated "
        "episodes (100 steps in FourRooms) are treated as ends, as rl-starter-files does.",
        f"Budget: {s['frames']:,} frames per run, {len(s['seed'])} seed(s) (0..{s['seeds'] - 1}) "
        f"per memory; wall time {s['seconds']:.0f} s for this invocation with "
        f"{s['threads'] or 'default'} BLAS thread(s) (cells finished before are not retimed). "
        "Evaluation: each trained agent plays "
        f"{s['eval_episodes']} fresh episodes (environments seeded from a stream that training "
        "never used, an equal share per environment so that short episodes are not "
        "favoured), actions sampled from the policy; the table gives the mean ± standard "
        "deviation over seeds of the per-seed success rates. The curves are the training "
        "episodes that ended in each update (sampled actions, the policy changing), mean over "
        "seeds.",
        f"Published: {SOURCE}. The table's protocol (environment version, agent, frames, "
        "seeds, evaluation) is UNVERIFIED: it is not in the paper's public material and the "
        "official repository (anirudh9119/shared_workspace) has no FourRoom code. The "
        "published numbers likely come from runs of millions of frames; rl-starter-files "
        f"trains for 10^7 frames by default, {10**7 / max(s['frames'], 1):.0f} times this "
        "budget, so the comparison is of orderings at a small budget, not of values.",
        "Outcome:"]
    for memory in s["memories"]:
        r = s[memory]
        lines.append(f"- {LABELS[memory]}: success rate {mean_std(r['success_rate'], 2)} over "
                     f"{len(r['seeds'])} seed(s) (per seed: "
                     + ", ".join(f"{v:.2f}" for v in r["success_rate"])
                     + f"); published {_published(s, memory)}.")
    lines.append(f"- A uniformly random policy: success rate {s['random_success_rate']:.2f}.")
    if s["ordering_held"] is not None:
        lines.append(f"- The published ordering LSTM < RIMs < RIMs + shared workspace "
                     f"{'held' if s['ordering_held'] else 'did not hold'} on the mean success "
                     "rates" + "".join(f"; {LABELS[m]} vs LSTM: Welch's p = {p:.3g}"
                                       for m, p in s["welch_p"].items() if p is not None)
                     + ".")
    runs = "\n".join(f"- `{c}`" for c in s["runs"])
    return ("\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])
            + "\n\nThe runs behind this table (each writes its (memory, seed) cells and "
            "checkpoints in fourroom_cells/; a rerun resumes unfinished cells from their "
            "checkpoint and skips finished ones):\n\n" + runs)


def _smooth(curve: list, key: str, width: int) -> np.ndarray:
    """The mean of ``key`` over the training episodes that ended in the last ``width`` updates
    (each update's mean weighted by its number of episodes; NaN where none ended)."""
    n = np.array([p["episodes"] for p in curve], dtype=np.float64)
    v = np.array([0.0 if p[key] is None else p[key] for p in curve], dtype=np.float64)
    total = np.convolve(n * v, np.ones(width))[:len(n)]
    count = np.convolve(n, np.ones(width))[:len(n)]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _plot_curves(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for memory in s["memories"]:
        curves = s[memory]["curves"]
        n = min(len(c) for c in curves)
        frames = np.array([p["frames"] for p in curves[0][:n]])
        width = max(3, n // 25)
        seeds = f"{len(curves)} seed{'s' * (len(curves) > 1)}"
        for ax, key in zip(axes, ("success", "return")):
            ys = np.array([_smooth(c[:n], key, width) for c in curves])
            with warnings.catch_warnings():  # updates where no seed ended an episode: NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean, low, high = np.nanmean(ys, 0), np.nanmin(ys, 0), np.nanmax(ys, 0)
            ax.plot(frames, mean, color=COLORS[memory], label=f"{LABELS[memory]} ({seeds})")
            if len(curves) > 1:
                ax.fill_between(frames, low, high, color=COLORS[memory], alpha=0.15)
    for ax, key, label in zip(axes, ("success", "return"), ("success rate", "return")):
        ax.axhline(s[f"random_{'success_rate' if key == 'success' else 'return_mean'}"],
                   color="gray", ls=":", lw=1, label="random policy")
        ax.set(xlabel="frames", ylabel=f"training episodes: {label}",
               title=f"{s['env_id']}: {label}\n(last {width} updates' episodes"
                     + ("; band: min-max over seeds)" if len(s["seed"]) > 1 else ")"))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110)


def _plot_final(s, out):
    fig, ax = new_figure(1, 1, figsize=(7, 4))
    order = ("lstm", "rmc", "rims", "rims_workspace")  # the published success rates' order
    x = np.arange(len(order))
    for i, memory in enumerate(order):
        pub = PUBLISHED[memory]
        ax.bar(i + 0.2, pub[0], 0.4, yerr=pub[1], color=COLORS[memory], alpha=0.35,
               hatch="//", label="published (FourRoom table)" if i == 0 else None)
        if memory in s["memories"]:
            vals = s[memory]["success_rate"]
            ax.bar(i - 0.2, np.mean(vals), 0.4, yerr=np.std(vals), color=COLORS[memory],
                   label="flowgrad (this run)" if i == 0 else None)
            ax.plot([i - 0.2] * len(vals), vals, "k.", ms=4)
    ax.axhline(s["random_success_rate"], color="gray", ls=":", lw=1, label="random policy")
    ax.set_xticks(x, [LABELS[m] for m in order])
    ax.set(ylabel="final success rate", ylim=(0, 1.05),
           title=f"{s['env_id']}: ours ({s['frames']:,} frames) vs published")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_final.png", dpi=110)
