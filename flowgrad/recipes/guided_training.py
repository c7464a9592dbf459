"""Guided training with an intermediate concept (lecture: "Guided Training, Intermediate
Concepts": breaking the problem in two sub-problems, pre-training each module separately, then
fine-tuning, nails it; Gülçehre & Bengio 2013, "Knowledge Matters: Importance of Prior
Information for Optimization").

The task (``flowgrad.datasets.shapes.pentomino``): 24×24 binary images of 3×3 cells, three of which
hold a pentomino sprite (10 shapes, any of 4 rotations, random offset); the label says whether
all three sprites are the same shape. The net has two modules, as the paper's structured MLP:
module 1, shared by the nine cells, maps a cell's 64 pixels to a softmax over 11 outputs (empty
or one of the 10 shapes); module 2 maps the nine softmax vectors to the label.

- **End-to-end**: the whole net trained from scratch on the label only.
- **Guided**: module 1 first pre-trained to recognise each cell's content (the intermediate
  concept, given as a hint), then the whole net fine-tuned end-to-end on the label.
- **Pixel MLP** (reference): a plain MLP on the 576 pixels, trained on the label.

All get the same number of updates, batch, optimizer and seeds."""

from __future__ import annotations

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from .. import nn
from ..datasets.shapes import cells, pentomino
from ..debug.cost import single_blas_thread
from ..debug.significance import mcnemar, wilson_interval
from ..models import MLP
from ..plotting import new_figure, save_figure
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"n_train": 20000, "n_test": 5000, "updates": 4000, "pretrain": 1500,
            "hidden": 64, "lr": 1e-3, "batch_size": 64, "evals": 16, "seeds": 5,
            "pixel_mlp": True, "seed": 0}
PARTS = 11  # empty + 10 pentominoes
METHODS = {"end_to_end": "two-module net, end-to-end from scratch",
           "guided": "two-module net, module 1 pre-trained on the cells' shapes, then "
                     "fine-tuned end-to-end",
           "pixel_mlp": "plain MLP on the pixels"}


class TwoLevelNet(nn.Module):
    """Module 1 (``p1``): cell pixels -> logits over {empty, 10 shapes}, shared by all cells;
    module 2 (``p2``): the cells' softmax vectors, concatenated -> 2 logits.

    Args: x (B, cells, cell_pixels). Returns: (B, 2) logits."""

    def __init__(self, cell_pixels: int = 64, n_cells: int = 9, hidden: int = 64) -> None:
        super().__init__()
        self.p1 = nn.Sequential(nn.Linear(cell_pixels, hidden), nn.ReLU(),
                                nn.Linear(hidden, PARTS))
        self.p2 = nn.Sequential(nn.Linear(n_cells * PARTS, hidden), nn.ReLU(),
                                nn.Linear(hidden, 2))

    def part_logits(self, x):
        return self.p1(x)

    def forward(self, x):
        return self.p2(F.softmax(self.p1(x), dim=-1).flatten(1))


@fg.no_grad()
def _predict(fn, x, batch=2500):
    return np.concatenate([fn(fg.from_numpy(x[s:s + batch])).argmax(-1).numpy()
                           for s in range(0, len(x), batch)])


def _train(method, seed, train, valid, test, updates, pretrain, hidden, lr, batch_size,
           eval_at):
    """Curves (error at ``eval_at``) on ``valid``; the test set once, at the end."""
    (c, xpix, y, parts), (ct, xpix_t, _, _) = train, test
    cv, xpix_v, yv, parts_v = valid
    fg.manual_seed(seed)
    if method == "pixel_mlp":
        model = MLP(sizes=(xpix.shape[1], 4 * hidden, hidden, 2))
        inputs, inputs_t, inputs_v = xpix, xpix_t, xpix_v
    else:
        model = TwoLevelNet(c.shape[2], c.shape[1], hidden)
        inputs, inputs_t, inputs_v = c, ct, cv
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)  # the same minibatches for every method
    curve, marks, part_acc = [], set(eval_at), {}
    for step in range(1, updates + 1):
        idx = rng.integers(0, len(y), batch_size)
        xb = fg.from_numpy(inputs[idx])
        if method == "guided" and step <= pretrain:  # the hint: each cell's content
            logits = model.part_logits(xb).reshape(-1, PARTS)
            loss = F.cross_entropy(logits, fg.from_numpy(parts[idx].reshape(-1)))
        else:
            loss = F.cross_entropy(model(xb), fg.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if method == "guided" and step == pretrain:
            part_acc["after_pretraining"] = float(np.mean(
                _predict(model.part_logits, cv).reshape(-1) == parts_v.reshape(-1)))
        if step in marks:
            curve.append(float(np.mean(_predict(model, inputs_v) != yv)))
    if method == "guided":  # end-to-end's module-1 units have no assigned meaning
        part_acc["final"] = float(np.mean(
            _predict(model.part_logits, cv).reshape(-1) == parts_v.reshape(-1)))
    return curve, _predict(model, inputs_t), part_acc


def run(n_train=20000, n_test=5000, updates=4000, pretrain=1500, hidden=64, lr=1e-3,
        batch_size=64, evals=16, seeds=5, pixel_mlp=True, seed=0, out=None, quick=False,
        progress=True, write: bool | None = None) -> dict:
    """End-to-end vs guided (module 1 pre-trained on the intermediate concept) on the
    Pentomino-like task, ``seeds`` seeds each."""
    command = command_line("guided_training", run, locals())
    out = resolve_out("guided_training", out)
    if quick:
        n_train, n_test, updates, pretrain, evals, seeds, pixel_mlp = 6000, 1000, 2000, 800, \
            4, 1, False
    write = True if write is None else write  # quick runs write to their own directory too
    x, y, parts = pentomino(n_train, seed=seed)
    xt, yt, parts_t = pentomino(n_test, seed=seed + 10_000)
    xv, yv, parts_v = pentomino(n_test, seed=seed + 20_000)  # validation: the curves
    train = (cells(x), x.reshape(len(x), -1), y, parts)
    test = (cells(xt), xt.reshape(len(xt), -1), yt, parts_t)
    valid = (cells(xv), xv.reshape(len(xv), -1), yv, parts_v)
    eval_at = sorted({int(round(v)) for v in np.linspace(updates / evals, updates, evals)})
    methods = ["end_to_end", "guided"] + (["pixel_mlp"] if pixel_mlp else [])
    res = {m: {"curves": [], "preds": [], "errors": [], "parts": []} for m in methods}
    with Timer() as t, single_blas_thread():
        for k in range(seeds):
            for m in methods:
                curve, pred, pacc = _train(m, seed + k, train, valid, test, updates, pretrain,
                                           hidden, lr, batch_size, eval_at)
                res[m]["curves"].append(curve)
                res[m]["preds"].append(pred)
                res[m]["errors"].append(float(np.mean(pred != yt)))
                res[m]["parts"].append(pacc)
                if progress:
                    extra = f", cell accuracy {pacc['final']:.1%}" if pacc else ""
                    print(f"seed {seed + k} {m:11s} test error {res[m]['errors'][-1]:.1%}"
                          f"{extra}", flush=True)
    y_pooled = np.tile(yt, seeds)
    summary = {"title": "Guided training with an intermediate concept (Pentomino-like task)",
               "n_train": n_train, "n_test": n_test, "updates": updates, "pretrain": pretrain,
               "seeds": seeds, "eval_at": eval_at,
               "published": {"claim": "end-to-end learners (structured MLP without hints, "
                                      "MLP, CNN, SVM, trees) stay near chance (50 % error) on "
                                      "Pentomino; the same structured net whose first level is "
                                      "pre-trained on the sprite classes (the hint) solves it "
                                      "(Gülçehre & Bengio 2013)"},
               "command": command,
               "seed": seed}
    for m in methods:
        e = np.array(res[m]["errors"])
        pooled = np.concatenate(res[m]["preds"])
        summary[f"{m}_test_error_mean"] = float(e.mean())
        summary[f"{m}_test_error_std"] = float(e.std())
        summary[f"{m}_test_error"] = e.tolist()
        summary[f"{m}_pooled_wilson"] = wilson_interval(int(np.sum(pooled != y_pooled)),
                                                        pooled.size)
        summary[f"{m}_curve_mean"] = np.mean(res[m]["curves"], axis=0).tolist()
        if res[m]["parts"][0]:
            summary[f"{m}_cell_accuracy"] = [p["final"] for p in res[m]["parts"]]
    summary["guided_cell_accuracy_after_pretraining"] = [
        p["after_pretraining"] for p in res["guided"]["parts"]]
    test = mcnemar(np.concatenate(res["guided"]["preds"]),
                   np.concatenate(res["end_to_end"]["preds"]), y_pooled,
                   names=("guided", "end-to-end"))
    summary["mcnemar_pooled"] = test.as_dict()
    summary["mcnemar_per_seed_pvalues"] = [
        mcnemar(res["guided"]["preds"][k], res["end_to_end"]["preds"][k], yt).pvalue
        for k in range(seeds)]
    summary["seconds"] = t.seconds
    if write:
        fig = _plot(res, methods, eval_at, pretrain, out)
        rows = []
        for m in methods:
            lo, hi = summary[f"{m}_pooled_wilson"]
            pub = {"end_to_end": "≈ 50 % (chance)", "guided": "low", "pixel_mlp": "≈ 50 %"}[m]
            rows.append((f"{METHODS[m]}: test error, mean ± std over {seeds} seeds (pooled "
                         "Wilson 95 %)",
                         f"{summary[m + '_test_error_mean']:.1%} ± "
                         f"{summary[m + '_test_error_std']:.1%} ({lo:.1%}–{hi:.1%})", pub))
        rows.append(("guided: cell-content accuracy (empty or which shape, validation "
                     "cells) after pre-training / after fine-tuning, mean (always 'empty': "
                     "66.7 %)",
                     f"{np.mean(summary['guided_cell_accuracy_after_pretraining']):.1%} / "
                     f"{np.mean(summary['guided_cell_accuracy']):.1%}", "—"))
        rows.append(("McNemar, guided vs end-to-end (pooled predictions)", test.verdict,
                     "guided better"))
        for k in range(seeds):
            rows.append((f"seed {seed + k}: test error",
                         " / ".join(f"{m}: {res[m]['errors'][k]:.1%}" for m in methods), "—"))
        write_results("guided_training", out, summary, rows, figures=(fig,), notes=(
            f"{n_train} training, {n_test} validation and {n_test} test images "
            f"(flowgrad.datasets.shapes.pentomino, seeds {seed}, {seed + 20_000} and "
            f"{seed + 10_000}), half of each positive. The curves are on the validation "
            "images; the test images are used once, by the final nets (nothing is chosen on "
            "either: every method runs its fixed number of updates). Two-module net: module "
            f"1 = 64-{hidden}-11 MLP on each 8×8 cell (shared weights) with a softmax, module "
            f"2 = 99-{hidden}-2 MLP; pixel MLP 576-{4 * hidden}-{hidden}-2. Adam lr {lr}, "
            f"batch {batch_size}, {updates} updates for every method; the guided net spends "
            f"the first {pretrain} of them training module 1 alone on the cell contents "
            "(cross-entropy over empty + 10 shapes, on all nine cells), then trains the whole "
            "net on the label. For a seed every method draws the same minibatches. The "
            "paper's version is harder (64×64 images, sprites also scaled, 80,000 examples) "
            "and its end-to-end learners used many more updates; the qualitative outcome is "
            "the one compared here."))
    return summary


def _plot(res, methods, eval_at, pretrain, out):
    fig, ax = new_figure(figsize=(6.5, 4.2))
    for i, m in enumerate(methods):
        curves = np.array(res[m]["curves"])
        mean, std = curves.mean(0), curves.std(0)
        ax.plot(eval_at, mean, "-o", ms=3, color=f"C{i}", label=m.replace("_", " "))
        ax.fill_between(eval_at, mean - std, mean + std, color=f"C{i}", alpha=0.2)
    ax.axvline(pretrain, color="C1", ls=":", lw=1, label="guided: end of pre-training")
    ax.axhline(0.5, color="k", ls=":", lw=1, label="chance")
    ax.set(xlabel="updates", ylabel="validation error (all shapes alike?)",
           title="Guided training vs end-to-end (mean ± std over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = f"{out}/guided_training.png"
    save_figure(fig, path, dpi=120)
    return path
