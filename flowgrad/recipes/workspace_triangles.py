"""Detecting equilateral triangles with a transformer, with and without a shared global workspace
(Goyal et al. 2021, "Coordination Among Neural Modules Through a Shared Global Workspace",
arXiv 2103.01197, the triangle experiment; lecture: the System-2 slide "Modules + Global
Workspace").

The images come from ``flowgrad.datasets.modular_tasks.triangles`` (after the official
``Triangle/dataset.py`` of anirudh9119/shared_workspace): three clusters of dots on a 64 x 64
canvas, label 1 when they form an equilateral triangle. The model cuts the image into patches
(a linear patch embedding plus a learned position embedding), runs transformer encoder layers,
averages the positions and classifies. Three variants differ in one line:

- TR: the plain transformer;
- TR+HSW: after every layer, the positions write into a ``SharedWorkspace`` of 8 memory slots
  by a top-k competition (k = 20 positions per slot, the official ``Triangle/run.sh``) and read
  the broadcast back; the memory is carried from one layer to the next;
- TR+SSW: the same with a soft workspace (every position writes).

Small-compute version of the reproduction notes (section 3.4): 2 layers of width 64 (4 heads,
feed-forward 128) instead of the official 4 layers of 256 (feed-forward 512); patches of 8 x 8
(64 positions) instead of 4 x 4; Adam at 5e-4 instead of 1e-4 for 100 epochs.

Budget: the default (8,000 training images, 2,000 of the generator's training stream held out
for validation, 2,000 test images, 15 epochs of batches of 64, 3 seeds) takes 0.19-0.29 s per
step here on one thread, 1,412 s for one seed of the three models (measured), about 70 min in
all.
``--quick`` (one seed, 128 training images, patches of 16 x 16, top-5 writes, 80 steps at lr
2e-3) takes about a minute of CPU time; it is far too short to detect triangles and shows only
that the three models fit their training images.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..datasets.modular_tasks import triangles
from ..modular.workspace import SharedWorkspace
from ..nn.module import Module
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results
from .modular_common import (
    EpochBatches,
    mean_std,
    parameter_count,
    predict,
    seed_stream,
    train,
)

NAME = "workspace_triangles"
DEFAULTS = {"seeds": 3, "epochs": 15, "batch_size": 64, "lr": 5e-4, "clip": 1.0,
            "n_train": 8000, "n_valid": 2000, "n_test": 2000, "image_size": 64, "patch": 8,
            "layers": 2, "width": 64, "heads": 4, "ffn": 128, "slots": 8, "topk": 20,
            "eval_every": 125, "threads": 1}
MODELS = ("tr", "tr_hsw", "tr_ssw")
LABELS = {"tr": "TR (transformer)", "tr_hsw": "TR+HSW (top-k workspace)",
          "tr_ssw": "TR+SSW (soft workspace)"}
SOURCE = ("Goyal et al. 2021 (arXiv 2103.01197), the equilateral-triangle task: the "
          "transformers with the shared workspace (TR+HSW, TR+SSW) reach a higher test accuracy "
          "than the plain transformer (TR) (direction only: the paper's triangle numbers were not "
          "transcribed for this recipe)")


class PatchTransformer(Module):
    """Patches -> linear embedding + learned positions -> encoder layers (each optionally
    followed by a shared workspace whose memory passes from layer to layer) -> mean over the
    positions -> linear classifier."""

    def __init__(self, image_size: int = 64, patch: int = 8, width: int = 64, layers: int = 2,
                 heads: int = 4, ffn: int = 128, classes: int = 2,
                 workspace: SharedWorkspace | None = None) -> None:
        super().__init__()
        if image_size % patch:
            raise ValueError(f"PatchTransformer: image_size={image_size} is not divisible by "
                             f"patch={patch}")
        self.patch, self.positions = patch, (image_size // patch) ** 2
        self.embed = fg.nn.Linear(patch * patch, width)
        self.position = fg.nn.Parameter(fg.randn(1, self.positions, width) * 0.02)
        self.layers = fg.nn.ModuleList([
            fg.nn.TransformerEncoderLayer(width, heads, ffn, dropout=0.0, batch_first=True)
            for _ in range(layers)])
        self.workspace = workspace
        self.head = fg.nn.Linear(width, classes)

    def patches(self, images):
        """(B, 1, H, W) -> (B, positions, patch * patch), row-major patch order."""
        b, _, h, w = images.shape
        p = self.patch
        x = images.reshape(b, h // p, p, w // p, p).permute(0, 1, 3, 2, 4)
        return x.reshape(b, self.positions, p * p)

    def forward(self, images):
        h = self.embed(self.patches(images)) + self.position
        memory = None
        for layer in self.layers:
            h = layer(h)
            if self.workspace is not None:
                h, memory = self.workspace(h, memory)
        return self.head(h.mean(1))


def build(kind: str, cfg: dict, seed: int) -> PatchTransformer:
    fg.manual_seed(seed)
    if kind not in MODELS:
        raise ValueError(f"{NAME}: unknown model {kind!r}; expected one of {MODELS}")
    workspace = None
    if kind != "tr":
        workspace = SharedWorkspace(cfg["width"], num_slots=cfg["slots"],
                                    num_heads=cfg["heads"],
                                    topk=cfg["topk"] if kind == "tr_hsw" else None)
    return PatchTransformer(cfg["image_size"], cfg["patch"], cfg["width"], cfg["layers"],
                            cfg["heads"], cfg["ffn"], workspace=workspace)


def accuracy(model, x, y) -> float:
    return float((predict(model, x, batch_size=250).argmax(-1) == y).mean())


def _one_seed(seed, cfg, progress) -> dict:
    data_seeds = seed_stream(seed, 2)
    pool = triangles(cfg["n_train"] + cfg["n_valid"], size=cfg["image_size"],
                     seed=int(data_seeds[0]))
    xtr, ytr = pool.images[:cfg["n_train"]], pool.labels[:cfg["n_train"]]
    valid = (pool.images[cfg["n_train"]:], pool.labels[cfg["n_train"]:])
    test = triangles(cfg["n_test"], size=cfg["image_size"], seed=int(data_seeds[1]))
    batch = EpochBatches(xtr, ytr, cfg["batch_size"], seed)
    steps = batch.steps(cfg["epochs"], cfg["steps"])

    def validate(model):
        return {"score": 1.0 - accuracy(model, *valid)}

    def loss(model, x, y):
        return fg.nn.functional.cross_entropy(model(x), y)

    out = {}
    for kind in cfg["models"]:
        model = build(kind, cfg, seed)
        run = train(model, batch, loss, validate, steps, cfg["lr"], cfg["clip"],
                    cfg["eval_every"], progress, desc=f"{kind} seed {seed}")
        out[kind] = {"params": parameter_count(model),
                     "test_accuracy": accuracy(model, test.images, test.labels),
                     "valid_accuracy": 1.0 - run["best"]["score"], "best_step": run["best_step"],
                     "curve": run["curve"], "seconds": run["seconds"], "steps": steps,
                     "final_train_loss": float(np.mean(run["train_loss"][-20:]))}
    out["test_positive"] = float(test.labels.mean())
    return out


def run(seeds=3, epochs=15, batch_size=64, lr=5e-4, clip=1.0, n_train=8000, n_valid=2000,
        n_test=2000, image_size=64, patch=8, layers=2, width=64, heads=4, ffn=128, slots=8,
        topk=20, models=("tr", "tr_hsw", "tr_ssw"), eval_every=125, steps=None, threads=1,
        out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Train the three transformers for each seed on the same minibatches; keep the checkpoint of
    highest validation accuracy; evaluate the test images once. ``steps`` (optional) replaces
    ``epochs`` by a number of minibatches."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, steps, batch_size, lr, n_train, n_valid, n_test = 1, 80, 32, 2e-3, 128, 300, 300
        patch, topk, eval_every = 16, 5, 20
    if topk is not None and topk > (image_size // patch) ** 2:
        raise ValueError(f"{NAME}: topk={topk} is larger than the number of positions "
                         f"{(image_size // patch) ** 2} ({image_size} / {patch} patches per side)")
    cfg = {"epochs": epochs, "steps": steps, "batch_size": batch_size, "lr": lr, "clip": clip,
           "n_train": n_train, "n_valid": n_valid, "n_test": n_test, "image_size": image_size,
           "patch": patch, "layers": layers, "width": width, "heads": heads, "ffn": ffn,
           "slots": slots, "topk": topk, "models": tuple(models), "eval_every": eval_every}
    with _limit_threads(threads), Timer() as timer:
        per_seed = [_one_seed(s, cfg, progress) for s in range(seeds)]
    summary = {"title": "Equilateral triangles: a transformer with and without a shared "
                        "workspace",
               **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()},
               "steps": per_seed[0][models[0]]["steps"], "seeds": seeds,
               "positions": (image_size // patch) ** 2,
               "params": {k: per_seed[0][k]["params"] for k in models},
               "test_positive_fraction": per_seed[0]["test_positive"], "source": SOURCE,
               "threads": threads, "command": command, "seed": list(range(seeds)),
               "seconds": timer.seconds}
    for kind in models:
        runs = [p[kind] for p in per_seed]
        summary[kind] = {key: [r[key] for r in runs] for key in
                         ("test_accuracy", "valid_accuracy", "best_step", "seconds",
                          "final_train_loss", "curve")}
        summary[f"{kind}_test_accuracy_mean"] = float(np.mean(summary[kind]["test_accuracy"]))
        summary[f"{kind}_valid_accuracy_mean"] = float(np.mean(summary[kind]["valid_accuracy"]))
    if "tr" in models:
        summary["workspace_helps"] = {k: bool(summary[f"{k}_test_accuracy_mean"]
                                              > summary["tr_test_accuracy_mean"])
                                      for k in models if k != "tr"}
        summary["claim_held"] = bool(summary["workspace_helps"]) and all(
            summary["workspace_helps"].values())
        # two standard errors of a difference of two accuracies (worst case p = 1/2)
        summary["noise_points"] = float(100 * 2 * np.sqrt(2 * 0.25 / n_test / seeds))
        summary["gain_points"] = {k: 100 * (summary[f"{k}_test_accuracy_mean"]
                                            - summary["tr_test_accuracy_mean"])
                                  for k in models if k != "tr"}
    if write:
        figures = (_plot(summary, out),)
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _fmt(values) -> str:
    return mean_std(values, 1, scale=100, unit=" %")


def _rows(s) -> list:
    models = s["models"]
    rows = [("parameters: " + " / ".join(LABELS[k] for k in models),
             " / ".join(f"{s['params'][k]:,}" for k in models), "—")]
    for kind in models:
        rows.append((f"{LABELS[kind]}: test accuracy (validation accuracy of the kept "
                     "checkpoint)",
                     f"{_fmt(s[kind]['test_accuracy'])} ({_fmt(s[kind]['valid_accuracy'])})",
                     "higher with the workspace" if kind != "tr" else "the baseline"))
    if "workspace_helps" in s:
        clear = all(g > s["noise_points"] for g in s["gain_points"].values())
        rows.append(("claim: both workspace variants above the plain transformer (mean test "
                     "accuracy)", ("held" if s["claim_held"] else "not held")
                     + (" (gains beyond" if clear else " (gains within")
                     + f" sampling noise of ±{s['noise_points']:.1f} points)", "held"))
    rows.append(("training time per model (all seeds): " + " / ".join(models),
                 " / ".join(f"{np.sum(s[k]['seconds']):.0f} s" for k in models), "—"))
    return rows


def _notes(s) -> str:
    lines = [
        f"Data: {s['image_size']} x {s['image_size']} images of three dot clusters (label 1: "
        f"equilateral, probability 1/2; {s['test_positive_fraction']:.1%} of the test images); "
        f"{s['n_train']:,} training images, {s['n_valid']:,} more from the same generator "
        f"stream held out for validation, {s['n_test']:,} test images (own seed).",
        f"Models: {s['positions']} patches of {s['patch']} x {s['patch']}, width {s['width']}, "
        f"{s['layers']} post-norm encoder layers ({s['heads']} heads, feed-forward {s['ffn']}, "
        "no dropout), mean over the positions, a linear classifier. The workspace has "
        f"{s['slots']} slots of size {s['width']} ({s['heads']} heads); in TR+HSW only the top "
        f"{s['topk']} positions (by write attention) may write into each slot; in TR+SSW all "
        "write. The workspace follows every layer and its memory passes from layer to layer.",
        f"Budget (every model, every seed): {s['steps']} steps of Adam (lr {s['lr']:g}, "
        f"gradient norm clipped at {s['clip']:g}) on shuffled minibatches of "
        f"{s['batch_size']} (the same for every model), {s['seeds']} seed(s). Wall time "
        f"{s['seconds']:.0f} s with {s['threads'] or 'default'} BLAS thread(s). The official "
        "runs use 4 layers of width 256 and 100 epochs.",
        f"Protocol: validation accuracy every {s['eval_every']} steps, the checkpoint of highest "
        "validation accuracy kept, the test images evaluated once after training.",
        f"Published: {SOURCE}.", "", "Outcome:"]
    for kind in s["models"]:
        lines.append(f"- {LABELS[kind]}: mean test accuracy "
                     f"{100 * s[f'{kind}_test_accuracy_mean']:.1f} % (chance 50 %).")
    if "workspace_helps" in s:
        gains = ", ".join(f"{LABELS[k]} {g:+.1f} points" for k, g in s["gain_points"].items())
        clear = all(g > s["noise_points"] for g in s["gain_points"].values())
        lines.append(f"- The claim (both workspace variants above the plain transformer) "
                     f"{'held' if s['claim_held'] else 'did not hold'}: {gains} against TR; "
                     f"two standard errors of such a difference on {s['n_test']:,} test images "
                     f"x {s['seeds']} seed(s) are {s['noise_points']:.1f} points, so the gains "
                     f"are {'all beyond' if clear else 'not all beyond'} sampling noise.")
    return "\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:])


COLORS = {"tr": "tab:gray", "tr_hsw": "tab:blue", "tr_ssw": "tab:green"}


def _plot(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    for kind in s["models"]:
        for i, curve in enumerate(s[kind]["curve"]):
            axes[0].plot([c["step"] for c in curve], [100 * (1 - c["score"]) for c in curve],
                         "-" if i == 0 else ":", color=COLORS[kind],
                         label=LABELS[kind] if i == 0 else None)
    xs = np.arange(len(s["models"]))
    axes[1].bar(xs, [100 * np.mean(s[k]["test_accuracy"]) for k in s["models"]],
                color=[COLORS[k] for k in s["models"]], alpha=0.7)
    for x, k in zip(xs, s["models"]):
        v = 100 * np.asarray(s[k]["test_accuracy"])
        axes[1].plot([x] * len(v), v, "k.", ms=5)
    axes[1].set_xticks(xs)
    axes[1].set_xticklabels([LABELS[k] for k in s["models"]], fontsize=7)
    axes[0].set(xlabel="training step", ylabel="validation accuracy (%)", title="validation")
    axes[1].set(ylabel="test accuracy (%)", title="test (once, kept checkpoints)")
    for ax in axes:
        ax.axhline(50, color="gray", ls="--", lw=1)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_accuracy.png", dpi=110)
