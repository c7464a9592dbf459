"""Curriculum learning on shapes (Bengio, Louradour, Collobert & Weston 2009, section 5; lecture:
"Order & Selection of Examples Matters", curriculum learning as a continuation method).

Two stages of generated shape images (``flowgrad.datasets.shapes``): *BasicShapes* (squares,
circles, equilateral triangles, upright, nearly canonical size and position, white on black, no
noise) and *GeomShapes* (rectangles, ellipses, triangles of any proportion, size, position,
rotation and grey levels, with pixel noise), three classes. The *curriculum* net is trained on
BasicShapes for the first part of its updates, then on GeomShapes; the *no curriculum* net is
trained on GeomShapes only, for the same total number of updates. Both start from the same
initialisation and are tested on GeomShapes. Several seeds; mean ± std, per-seed table, Wilson
intervals and McNemar on the pooled predictions, a paired t-test across seeds, and validation
error vs updates (the curves are on a validation set, the test set is used once, at the end)."""

from __future__ import annotations

import numpy as np
from scipy import stats

import flowgrad as fg
import flowgrad.nn.functional as F

from ..datasets.shapes import shapes
from ..debug.cost import single_blas_thread
from ..debug.significance import mcnemar, wilson_interval
from ..models import MLP
from ..plotting import new_figure, save_figure
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"size": 16, "n_train": 10000, "n_test": 5000, "updates": 6000, "switches": (0.5,),
            "hidden": (256, 128), "lr": 1e-3, "batch_size": 32, "evals": 12, "seeds": 5,
            "seed": 0}


def standardize(x: np.ndarray) -> np.ndarray:
    """Each image to zero mean and unit variance (flattened): grey levels carry no class
    information, and both stages then live on the same input scale."""
    x = x.reshape(len(x), -1).astype(np.float32)
    x = x - x.mean(axis=1, keepdims=True)
    return x / (x.std(axis=1, keepdims=True) + 1e-6)


@fg.no_grad()
def _predict(model, x, batch=2500):
    model.eval()
    out = np.concatenate([model(fg.from_numpy(x[s:s + batch])).argmax(-1).numpy()
                          for s in range(0, len(x), batch)])
    model.train()
    return out


def _train(switch, seed, basic, geom, valid, test, hidden, updates, lr, batch_size, eval_at):
    """``switch`` updates on BasicShapes, then GeomShapes up to ``updates``; validation errors
    at ``eval_at``; returns (curve, final predictions on the test set)."""
    fg.manual_seed(seed)
    model = MLP(sizes=(geom[0].shape[1], *hidden, 3), activation="relu")
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)  # the same draws for every condition
    xva, yva = valid
    curve, marks = [], set(eval_at)
    for step in range(1, updates + 1):
        x, y = basic if step <= switch else geom
        idx = rng.integers(0, len(x), batch_size)
        loss = F.cross_entropy(model(fg.from_numpy(x[idx])), fg.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step in marks:
            curve.append(float(np.mean(_predict(model, xva) != yva)))
    return curve, _predict(model, test[0])


def run(size=16, n_train=10000, n_test=5000, updates=6000, switches=(0.5,), hidden=(256, 128),
        lr=1e-3, batch_size=32, evals=12, seeds=5, seed=0, out=None, quick=False,
        progress=True, write: bool | None = None) -> dict:
    """No curriculum vs curriculum(s) switching from BasicShapes to GeomShapes after the
    fractions ``switches`` of ``updates``, ``seeds`` seeds each."""
    command = command_line("curriculum", run, locals())
    out = resolve_out("curriculum", out)
    if quick:
        n_train, n_test, updates, evals, seeds = 3000, 1000, 800, 4, 1
    write = True if write is None else write  # quick runs write to their own directory too
    geom_split = shapes(n_train, n_test, "geom", size=size, seed=seed)
    basic_split = shapes(n_train, 1, "basic", size=size, seed=seed + 1)
    geom = (standardize(geom_split.x_train), geom_split.y_train)
    basic = (standardize(basic_split.x_train), basic_split.y_train)
    test = (standardize(geom_split.x_test), geom_split.y_test)
    valid_split = shapes(n_test, 1, "geom", size=size, seed=seed + 2)  # for the curves
    valid = (standardize(valid_split.x_train), valid_split.y_train)
    yte = test[1]
    eval_at = sorted({int(round(v)) for v in np.linspace(updates / evals, updates, evals)})
    conds = {"no_curriculum": 0, **{f"curriculum_{f:g}": int(round(f * updates))
                                    for f in switches}}
    res = {c: {"curves": [], "preds": [], "errors": []} for c in conds}
    with Timer() as t, single_blas_thread():
        for k in range(seeds):
            for c, sw in conds.items():
                curve, pred = _train(sw, seed + k, basic, geom, valid, test, tuple(hidden),
                                     updates, lr, batch_size, eval_at)
                res[c]["curves"].append(curve)
                res[c]["preds"].append(pred)
                res[c]["errors"].append(float(np.mean(pred != yte)))
                if progress:
                    print(f"seed {seed + k} {c:18s} test error {res[c]['errors'][-1]:.2%}",
                          flush=True)
    y_pooled = np.tile(yte, seeds)
    base = "no_curriculum"
    summary = {"title": "Curriculum learning on shapes: BasicShapes then GeomShapes vs "
                        "GeomShapes only",
               "size": size, "n_train": n_train, "n_test": n_test, "updates": updates,
               "seeds": seeds, "switch_updates": conds, "eval_at": eval_at,
               "published": {"claim": "switching from BasicShapes to GeomShapes half-way "
                                      "through training lowers the GeomShapes test error "
                                      "compared with GeomShapes only (Bengio et al. 2009, "
                                      "Fig. 3, 3-hidden-layer nets, 20 seeds)"},
               "command": command,
               "seed": seed}
    for c in conds:
        e = np.array(res[c]["errors"])
        pooled = np.concatenate(res[c]["preds"])
        wrong = int(np.sum(pooled != y_pooled))
        summary[f"{c}_test_error_mean"] = float(e.mean())
        summary[f"{c}_test_error_std"] = float(e.std())
        summary[f"{c}_test_error"] = e.tolist()
        summary[f"{c}_pooled_wilson"] = wilson_interval(wrong, pooled.size)
        summary[f"{c}_curve_mean"] = np.mean(res[c]["curves"], axis=0).tolist()
    tests = {}
    for c in conds:
        if c == base:
            continue
        m = mcnemar(np.concatenate(res[c]["preds"]), np.concatenate(res[base]["preds"]),
                    y_pooled, names=(c.replace("_", " "), "no curriculum"))
        diff = np.array(res[c]["errors"]) - np.array(res[base]["errors"])
        tt = stats.ttest_rel(res[c]["errors"], res[base]["errors"]) if seeds > 1 else None
        tests[c] = {"mcnemar_pooled": m.as_dict(),
                    "per_seed_mcnemar_pvalues": [
                        mcnemar(res[c]["preds"][k], res[base]["preds"][k], yte).pvalue
                        for k in range(seeds)],
                    "mean_difference": float(diff.mean()),
                    "seeds_better": int(np.sum(diff < 0)),
                    "paired_t_pvalue": None if tt is None else float(tt.pvalue)}
    summary["tests"] = tests
    summary["seconds"] = t.seconds
    if write:
        fig = _plot(res, conds, eval_at, out)
        rows = []
        for c, sw in conds.items():
            lo, hi = summary[f"{c}_pooled_wilson"]
            label = "no curriculum (GeomShapes only)" if c == base else \
                f"curriculum: BasicShapes for {sw} updates, then GeomShapes"
            rows.append((f"{label}: test error, mean ± std over {seeds} seeds "
                         "(Wilson 95 % of pooled)",
                         f"{summary[c + '_test_error_mean']:.2%} ± "
                         f"{summary[c + '_test_error_std']:.2%} ({lo:.2%}–{hi:.2%})",
                         "curriculum lower" if c != base else "—"))
        nc = np.array(res[base]["curves"]).mean(0)
        at = min(range(len(eval_at)), key=lambda i: abs(eval_at[i] - max(conds.values())))
        rows.append(("control: no curriculum, lowest mean validation error along its curve / "
                     "after "
                     f"{eval_at[at]} updates",
                     f"{nc.min():.2%} (at {eval_at[int(nc.argmin())]} updates) / {nc[at]:.2%}",
                     "—"))
        summary["no_curriculum_best_valid_along_curve"] = float(nc.min())
        for k in range(seeds):
            rows.append((f"seed {seed + k}: test error per condition",
                         " / ".join(f"{c}: {res[c]['errors'][k]:.2%}" for c in conds), "—"))
        for c, tinfo in tests.items():
            m = tinfo["mcnemar_pooled"]
            rows.append((f"{c} vs no curriculum: McNemar on pooled predictions",
                         m["verdict"], "significant"))
            pt = tinfo["paired_t_pvalue"]
            rows.append((f"{c} vs no curriculum: across seeds",
                         f"mean difference {tinfo['mean_difference']:+.2%}, better on "
                         f"{tinfo['seeds_better']} of {seeds} seeds, paired t-test p = "
                         + ("—" if pt is None else f"{pt:.2g}"), "—"))
        verdicts = []
        for c, tinfo in tests.items():
            sig = tinfo["paired_t_pvalue"] is not None and tinfo["paired_t_pvalue"] < 0.05
            verdicts.append(
                f"{c}: the mean difference across seeds is {tinfo['mean_difference']:+.2%} "
                f"({'significant' if sig else 'not significant'} by the paired t-test over "
                f"seeds, the test that counts the seed-to-seed variation; McNemar on the pooled "
                f"predictions {'is' if tinfo['mcnemar_pooled']['significant'] else 'is not'} "
                "significant, but it treats the seeds' predictions on the same test images as "
                "independent).")
        write_results("curriculum", out, summary, rows, figures=(fig,), notes=(
            f"Images {size}×{size}, {n_train} BasicShapes and {n_train} GeomShapes training "
            f"images, {n_test} GeomShapes validation and {n_test} GeomShapes test images "
            f"(flowgrad.datasets.shapes, seeds {seed}, {seed + 1} and {seed + 2}): the curves "
            "and the control row are on the validation images, and the test images are used "
            "once, by the final nets (every condition runs its fixed number of updates: "
            "nothing is chosen on either); each image standardised to zero mean and unit "
            "variance. MLP "
            f"{size * size}-{'-'.join(map(str, hidden))}-3 (ReLU), Adam lr {lr}, batch "
            f"{batch_size}, {updates} updates in all for every condition; for a given seed "
            "every condition starts from the same weights and draws the same minibatch "
            "indices. " + " ".join(verdicts) + " With a fixed budget of updates the curriculum "
            "net spends part of it on the easy stage and sees GeomShapes for fewer updates, "
            "so part of any gain can be less overfitting rather than a better basin: the "
            "control row gives the no-curriculum net's best point along its own curve. "
            "Before the switch the curriculum net is at chance on GeomShapes (what it learns "
            "on upright white shapes does not transfer by itself). The paper trained far "
            "longer, on 32×32 images, with 20 seeds."))
    return summary


def _plot(res, conds, eval_at, out):
    fig, ax = new_figure(figsize=(6.5, 4.2))
    for i, (c, sw) in enumerate(conds.items()):
        curves = np.array(res[c]["curves"])
        mean, std = curves.mean(0), curves.std(0)
        label = "no curriculum" if sw == 0 else f"curriculum (switch at {sw})"
        ax.plot(eval_at, mean, "-o", color=f"C{i}", label=label, ms=3)
        ax.fill_between(eval_at, mean - std, mean + std, color=f"C{i}", alpha=0.2)
        if sw:
            ax.axvline(sw, color=f"C{i}", ls=":", lw=1)
    ax.axhline(2 / 3, color="k", ls=":", lw=1, label="chance")
    ax.set(xlabel="updates", ylabel="GeomShapes validation error",
           title="Curriculum learning (mean ± std over seeds)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = f"{out}/curriculum.png"
    save_figure(fig, path, dpi=120)
    return path
