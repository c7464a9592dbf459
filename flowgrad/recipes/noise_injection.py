"""Injecting noise (lecture: "Injecting Noise in a Nonsmooth Net", "Continuation Methods and
Simulated Annealing"): annealed Gaussian noise added to the gradient (Neelakantan et al. 2015,
"Adding Gradient Noise Improves Learning for Very Deep Networks") lets plain SGD train a deep
narrow ReLU network that it otherwise leaves stuck on the plateau at chance.

A 20-hidden-layer MLP of width 50 (ReLU) on MNIST-1D, with the default initialisation (uniform,
variance 1/(3·fan_in): the signal shrinks at every layer, a poor init for this depth), trained by
plain SGD, by SGD with gradient noise N(0, σ²_t), σ²_t = η/(1+t)^γ (η = 0.3, γ = 0.55, the
paper's schedule), and optionally by SGD on the weight-noise-smoothed objective
(``WeightNoise``: the gradient at θ + ε, ε ~ N(0, σ²_t)). Same seeds, data order and steps."""

from __future__ import annotations

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F

from ..datasets import mnist1d as make_mnist1d
from ..debug.cost import single_blas_thread
from ..debug.significance import mcnemar, wilson_interval
from ..models import MLP
from ..optim.noise import GradientNoise, WeightNoise
from ..plotting import new_figure, save_figure
from .common import Timer, command_line, evaluate, resolve_out, write_results

DEFAULTS = {"depth": 20, "width": 50, "steps": 3000, "lr": 0.05, "batch_size": 100,
            "eta": 0.3, "gamma": 0.55, "weight_noise": 0.1, "seeds": 5, "seed": 0}
METHODS = {"sgd": "plain SGD", "gradient_noise": "SGD + annealed gradient noise",
           "weight_noise": "SGD + annealed weight noise"}


def _train(method, seed, data, depth, width, steps, lr, batch_size, eta, gamma, weight_std):
    (xtr, ytr), (xte, yte) = data
    fg.manual_seed(seed)
    model = MLP(sizes=(xtr.shape[1],) + (width,) * depth + (10,), activation="relu")
    params = list(model.parameters())
    opt = fg.optim.SGD(params, lr=lr)
    gnoise = GradientNoise(params, eta=eta, gamma=gamma) if method == "gradient_noise" else None
    wnoise = WeightNoise(params, std=weight_std, gamma=gamma) if method == "weight_noise" \
        else None
    order = np.random.default_rng(seed)  # the same minibatches for every method
    losses = []
    for _ in range(steps):
        idx = order.integers(0, len(xtr), batch_size)
        xb, yb = fg.from_numpy(xtr[idx]), fg.from_numpy(ytr[idx])
        opt.zero_grad()
        if wnoise is not None:
            with wnoise:
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
        else:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
        if gnoise is not None:
            gnoise.step()
        opt.step()
        losses.append(loss.item())
    with fg.no_grad():
        model.eval()
        pred = np.concatenate([model(fg.from_numpy(xte[s:s + 1000])).argmax(-1).numpy()
                               for s in range(0, len(xte), 1000)])
    train = evaluate(model, xtr, ytr)
    return {"losses": np.asarray(losses), "train_loss": train["loss"],
            "train_error": train["error"], "test_error": float(np.mean(pred != yte)),
            "pred": pred}


def run(depth=20, width=50, steps=3000, lr=0.05, batch_size=100, eta=0.3, gamma=0.55,
        weight_noise=0.1, seeds=5, seed=0, out=None, quick=False, progress=True,
        write: bool | None = None) -> dict:
    """Plain SGD vs SGD with annealed gradient noise (and weight noise unless
    ``weight_noise=None``) on a deep narrow MLP, ``seeds`` seeds each."""
    command = command_line("noise_injection", run, locals())
    out = resolve_out("noise_injection", out)
    if quick:
        depth, steps, seeds = 8, 400, 1
    write = True if write is None else write  # quick runs write to their own directory too
    d = make_mnist1d(seed=42)
    data = ((np.asarray(d.x_train, np.float32), d.y_train),
            (np.asarray(d.x_test, np.float32), d.y_test))
    yte = d.y_test
    methods = ["sgd", "gradient_noise"] + (["weight_noise"] if weight_noise else [])
    results = {m: [] for m in methods}
    with Timer() as t, single_blas_thread():
        for k in range(seeds):
            for m in methods:
                r = _train(m, seed + k, data, depth, width, steps, lr, batch_size, eta, gamma,
                           weight_noise)
                results[m].append(r)
                if progress:
                    print(f"seed {seed + k} {m:15s} train loss {r['train_loss']:.4f} "
                          f"test error {r['test_error']:.1%}", flush=True)
    agg = {}
    for m in methods:
        tl = np.array([r["train_loss"] for r in results[m]])
        te = np.array([r["test_error"] for r in results[m]])
        pooled = np.concatenate([r["pred"] for r in results[m]])
        wrong = int(np.sum(pooled != np.tile(yte, seeds)))
        agg[m] = {"train_loss_mean": float(tl.mean()), "train_loss_std": float(tl.std()),
                  "test_error_mean": float(te.mean()), "test_error_std": float(te.std()),
                  "train_loss": tl.tolist(), "test_error": te.tolist(),
                  "pooled_wilson": wilson_interval(wrong, pooled.size), "pooled": pooled}
    y_pooled = np.tile(yte, seeds)
    test = mcnemar(agg["gradient_noise"]["pooled"], agg["sgd"]["pooled"], y_pooled,
                   names=("gradient noise", "plain SGD"))
    per_seed = [mcnemar(results["gradient_noise"][k]["pred"], results["sgd"][k]["pred"], yte,
                        names=("gradient noise", "plain SGD")) for k in range(seeds)]
    summary = {"title": f"Annealed gradient noise on a {depth}-layer ReLU MLP (width {width}), "
                        "MNIST-1D",
               **{f"{m}_{key}": agg[m][key] for m in methods
                  for key in ("train_loss_mean", "train_loss_std", "test_error_mean",
                              "test_error_std", "train_loss", "test_error", "pooled_wilson")},
               "mcnemar_pooled": test.as_dict(),
               "mcnemar_per_seed_pvalues": [p.pvalue for p in per_seed],
               "published": {"claim": "annealed gradient noise (eta in {0.01, 0.3, 1}, gamma "
                                      "0.55) improves the training of a 20-layer, 50-unit ReLU "
                                      "MLP on MNIST, most under a poor initialisation "
                                      "(Neelakantan et al. 2015, section 4.1)"},
               "depth": depth, "width": width, "steps": steps, "lr": lr, "eta": eta,
               "gamma": gamma, "weight_noise_std": weight_noise, "seeds": seeds,
               "command": command,
               "seed": seed, "seconds": t.seconds}
    if write:
        fig = _plot(results, methods, out, eta, gamma, weight_noise, steps)
        rows = []
        for m in methods:
            a = agg[m]
            lo, hi = a["pooled_wilson"]
            rows.append((f"{METHODS[m]}: final train loss, mean ± std over {seeds} seeds",
                         f"{a['train_loss_mean']:.3f} ± {a['train_loss_std']:.3f}",
                         "log 10 = 2.303 at chance"))
            rows.append((f"{METHODS[m]}: test error, mean ± std (pooled Wilson 95 %)",
                         f"{a['test_error_mean']:.1%} ± {a['test_error_std']:.1%} "
                         f"({lo:.1%}–{hi:.1%})", "—"))
        rows.append(("McNemar, gradient noise vs plain SGD (pooled test predictions)",
                     test.verdict, "noise better"))
        rows.append(("McNemar p-value per seed", ", ".join(f"{p.pvalue:.2g}" for p in per_seed),
                     "—"))
        for m in methods:
            rows.append((f"{METHODS[m]}, per seed: train loss / test error",
                         ", ".join(f"{r['train_loss']:.3f} / {r['test_error']:.1%}"
                                   for r in results[m]), "—"))
        write_results("noise_injection", out, summary, rows, figures=(fig,), notes=(
            f"MLP 40-{'-'.join([str(width)] * 3)}-…-10 with {depth} hidden ReLU layers, the "
            "library's default initialisation (PyTorch's: weights and biases uniform with "
            "variance 1/(3·fan_in); through a ReLU layer the input-driven part of the "
            "pre-activation variance is divided by about 6, so after 20 layers the output is "
            "dominated by the biases and nearly independent of the input), plain SGD lr "
            f"{lr}, batch {batch_size}, {steps} steps on the 4,000 MNIST-1D training signals; "
            "every method sees the same minibatches for a given seed. Gradient noise: "
            f"N(0, σ²_t) added to every gradient entry, σ²_t = {eta}/(1+t)^{gamma}. Weight "
            f"noise: the gradient is taken at θ + ε, ε ~ N(0, σ²_t), σ²_t = {weight_noise}²/"
            f"(1+t)^{gamma}, then θ is restored and updated. Test errors on the 1,000 test "
            "signals; McNemar on the predictions of all seeds pooled (each test signal counted "
            "once per seed, so the pooled pairs are not independent: the per-seed p-values "
            "are the conservative reading)."))
    for m in methods:
        agg[m].pop("pooled")
    return summary


def _plot(results, methods, out, eta, gamma, weight_std, steps):
    fig, (a, b) = new_figure(1, 2, figsize=(11, 4))
    w = 50
    for i, m in enumerate(methods):
        for j, r in enumerate(results[m]):
            smooth = np.convolve(r["losses"], np.ones(w) / w, mode="valid")
            a.plot(np.arange(len(smooth)) + w, smooth, color=f"C{i}", alpha=0.6, lw=1,
                   label=METHODS[m] if j == 0 else None)
    a.axhline(np.log(10), color="k", ls=":", lw=1, label="chance (log 10)")
    a.set(xlabel="SGD step", ylabel="training loss (50-step mean)",
          title="deep narrow MLP on MNIST-1D, every seed\n(curves left at chance overlap)")
    a.legend(fontsize=8)
    t = np.arange(steps)
    b.plot(t, np.sqrt(eta / (1 + t) ** gamma), color="C1", label=f"gradient noise σ_t (η={eta})")
    if weight_std:
        b.plot(t, weight_std / (1 + t) ** (gamma / 2), color="C2",
               label=f"weight noise σ_t (σ₀={weight_std})")
    b.set(xlabel="SGD step", ylabel="noise standard deviation", yscale="log",
          title=f"annealing: σ²_t ∝ 1/(1+t)^{gamma}")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = f"{out}/noise_injection.png"
    save_figure(fig, path, dpi=120)
    return path
