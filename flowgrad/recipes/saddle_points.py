"""Saddle points, not bad local minima (lecture: "Not so terrible local minima": in high
dimension saddle points dominate; Dauphin et al. 2014 found that the index of a critical point,
the fraction of negative eigenvalues of the Hessian, grows with its training error, and that
plateaus of training are saddles).

A small tanh MLP on MNIST-1D is started near the origin (initial weights scaled down, the
classic plateau: the origin is a saddle of every such net) and trained by full-batch gradient
descent with momentum on a fixed set of training signals. At checkpoints spaced logarithmically
along training the whole Hessian of that training loss is computed (``flowgrad.debug.hessian``,
finite differences of gradients, float64), giving its extreme eigenvalues, the gradient norm and
the index. The points visited are not exact critical points (the gradient is small on the
plateau and near the end, not zero), so the index describes the landscape where descent is slow,
as in the slide."""

from __future__ import annotations

import numpy as np
from scipy import stats

import flowgrad as fg
import flowgrad.nn.functional as F

from ..datasets import mnist1d as make_mnist1d
from ..debug.cost import single_blas_thread
from ..debug.hessian import critical_point_report
from ..models import MLP
from ..plotting import new_figure, save_figure
from .common import Timer, command_line, evaluate, resolve_out, write_results

DEFAULTS = {"hidden": 16, "steps": 4000, "lr": 0.1, "momentum": 0.9, "init_scale": 0.1,
            "train_size": 1000, "checkpoints": 12, "seeds": 2, "seed": 0}


def _checkpoints(steps: int, count: int) -> list[int]:
    """0 then ``count - 1`` steps spaced logarithmically up to ``steps``."""
    pts = np.unique(np.round(np.geomspace(10, steps, max(count - 1, 1))).astype(int))
    return [0, *[int(p) for p in pts]]


def _train_probe(seed, x, y, hidden, steps, lr, momentum, init_scale, checkpoints, progress):
    fg.manual_seed(seed)
    model = MLP(sizes=(x.shape[1], hidden, hidden, 10), activation="tanh")
    with fg.no_grad():
        for p in model.parameters():
            p.mul_(init_scale)
    opt = fg.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    xt, yt = fg.from_numpy(x), fg.from_numpy(y)
    reports, losses, marks = [], [], set(checkpoints)
    for step in range(steps + 1):
        if step in marks:
            r = critical_point_report(model, F.cross_entropy, (x, y), k=3)
            reports.append({"step": step, **r.as_dict()})
            if progress:
                print(f"seed {seed} step {step:5d}: loss {r.loss:.4f} |grad| {r.grad_norm:.2e} "
                      f"index {r.index:.3f} λmin {r.bottom[0]:+.2e} λmax {r.top[0]:.2e}",
                      flush=True)
        if step == steps:
            break
        loss = F.cross_entropy(model(xt), yt)  # full batch: the loss whose Hessian is probed
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model, reports, losses


def run(hidden=16, steps=4000, lr=0.1, momentum=0.9, init_scale=0.1, train_size=1000,
        checkpoints=12, seeds=2, seed=0, out=None, quick=False, progress=True,
        write: bool | None = None) -> dict:
    """Train ``seeds`` small tanh MLPs on MNIST-1D and probe the Hessian along the way."""
    command = command_line("saddle_points", run, locals())
    out = resolve_out("saddle_points", out)
    if quick:
        hidden, steps, train_size, checkpoints, seeds = 6, 800, 300, 4, 1
    write = True if write is None else write  # quick runs write to their own directory too
    data = make_mnist1d(seed=42)
    x, y = np.asarray(data.x_train[:train_size], np.float32), data.y_train[:train_size]
    xte, yte = np.asarray(data.x_test, np.float32), data.y_test
    marks = _checkpoints(steps, checkpoints)
    runs = []
    with Timer() as t, single_blas_thread():
        for k in range(seeds):
            model, reports, losses = _train_probe(seed + k, x, y, hidden, steps, lr, momentum,
                                                  init_scale, marks, progress)
            runs.append({"seed": seed + k, "reports": reports, "losses": losses,
                         "test_error": evaluate(model, xte, yte)["error"]})
    pts = [r for run_ in runs for r in run_["reports"]]
    index = np.array([r["index"] for r in pts])
    loss = np.array([r["loss"] for r in pts])
    rho, pval = stats.spearmanr(loss, index) if len(pts) > 2 else (float("nan"),) * 2
    first = [run_["reports"][0] for run_ in runs]
    last = [run_["reports"][-1] for run_ in runs]
    n_params = pts[0]["n_params"]
    summary = {"title": "Saddle points along training: Hessian index vs loss (tanh MLP, "
                        "MNIST-1D)",
               "n_params": n_params, "spearman_index_loss": float(rho),
               "spearman_pvalue": float(pval),
               "initial_index_mean": float(np.mean([r["index"] for r in first])),
               "final_index_mean": float(np.mean([r["index"] for r in last])),
               "initial_loss_mean": float(np.mean([r["loss"] for r in first])),
               "final_loss_mean": float(np.mean([r["loss"] for r in last])),
               "final_test_error_mean": float(np.mean([r_["test_error"] for r_ in runs])),
               "runs": [{"seed": r_["seed"], "test_error": r_["test_error"],
                         "checkpoints": r_["reports"]} for r_ in runs],
               "published": {"claim": "the index of critical points grows with their training "
                                      "error; plateaus are saddle points (Dauphin et al. 2014, "
                                      "Fig. 1)"},
               "hidden": hidden, "steps": steps, "lr": lr, "momentum": momentum,
               "init_scale": init_scale, "train_size": train_size,
               "command": command,
               "seed": seed, "seconds": t.seconds}
    if write:
        fig = _plot(runs, out)
        rows = [("parameters (whole Hessian computed at each checkpoint)", f"{n_params:,}", "—"),
                ("Spearman correlation of index with training loss (all checkpoints)",
                 f"ρ = {rho:.2f} (p = {pval:.2g}, {len(pts)} points)", "positive"),
                ("index at initialisation (plateau) → end of training, mean over seeds",
                 f"{summary['initial_index_mean']:.3f} → {summary['final_index_mean']:.3f}",
                 "saddles early, index falls with the loss"),
                ("loss at initialisation → end of training",
                 f"{summary['initial_loss_mean']:.3f} → {summary['final_loss_mean']:.3f}", "—"),
                ("final test error, mean over seeds",
                 f"{summary['final_test_error_mean']:.1%}", "—")]
        for r_ in runs:
            for c in r_["reports"]:
                rows.append((f"seed {r_['seed']}, step {c['step']}",
                             f"loss {c['loss']:.3f}, ‖∇L‖ {c['grad_norm']:.1e}, index "
                             f"{c['index']:.3f} ({int(c['n_negative'])} negative), λmin "
                             f"{c['lambda_min']:+.2e}, λmax {c['lambda_max']:.2e}", "—"))
        write_results("saddle_points", out, summary, rows, figures=(fig,), notes=(
            f"MLP 40-{hidden}-{hidden}-10 (tanh), default initialisation multiplied by "
            f"{init_scale} (near the saddle at the origin), full-batch gradient descent (lr {lr}, "
            f"momentum {momentum}) for {steps} steps on the first {train_size} MNIST-1D "
            f"training signals. At each checkpoint the full {n_params}×{n_params} Hessian of "
            "that mean cross-entropy is built from Hessian-vector products (central "
            "differences of backprop gradients, float64) and diagonalised. The index is the "
            "fraction of eigenvalues below −10⁻⁴·max|λ| (smaller ones are numerically zero). "
            "Dauphin et al. located exact critical points with Newton-type methods; here the "
            "points are those gradient descent visits, whose gradient is small on the plateau "
            "and at the end but not zero. Test error: the 1,000 MNIST-1D test signals (the "
            "net overfits its small training set; generalisation is not the point here)."))
    return summary


def _plot(runs, out):
    fig, (a, b, c) = new_figure(1, 3, figsize=(15, 4.2))
    for i, r in enumerate(runs):
        color = f"C{i}"
        losses = np.asarray(r["losses"])
        a.plot(np.arange(1, len(losses) + 1), losses, color=color, alpha=0.7,
               label=f"seed {r['seed']}")
        steps = [c_["step"] for c_ in r["reports"]]
        a.plot(np.maximum(steps, 1), [c_["loss"] for c_ in r["reports"]], "o", color=color)
        lo = [c_["loss"] for c_ in r["reports"]]
        ix = [c_["index"] for c_ in r["reports"]]
        b.plot(lo, ix, "-o", color=color, alpha=0.8, label=f"seed {r['seed']}")
        for s_, l_, i_ in zip(steps, lo, ix):
            b.annotate(str(s_), (l_, i_), fontsize=7, alpha=0.7)
        c.plot(np.maximum(steps, 1), [-c_["lambda_min"] for c_ in r["reports"]], "-v",
               color=color, label=f"−λmin, seed {r['seed']}")
        c.plot(np.maximum(steps, 1), [c_["lambda_max"] for c_ in r["reports"]], "--^",
               color=color, alpha=0.6, label=f"λmax, seed {r['seed']}")
    a.set(xscale="log", xlabel="gradient-descent step", ylabel="training loss",
          title="training loss (dots: Hessian checkpoints)")
    b.set(xlabel="training loss (the probed objective)", ylabel="index (fraction of λ < 0)",
          title="index vs loss (labels: step)")
    c.set(xscale="log", yscale="log", xlabel="gradient-descent step", ylabel="eigenvalue magnitude",
          title="extreme Hessian eigenvalues")
    for ax in (a, b, c):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = f"{out}/saddle_points.png"
    save_figure(fig, path, dpi=120)
    return path
