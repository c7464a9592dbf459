"""Noise-contrastive estimation (Gutmann & Hyvärinen, AISTATS 2010; JMLR 13:307-361, 2012;
lecture slide "Classifiers for modeling distributions").

Part 1, consistency: an unnormalised Gaussian ln p_m(x) = −½ (x − μ)ᵀ Λ (x − μ) + c with μ, Λ
(full) and c learned by NCE from T_d samples of a Gaussian with known parameters, the noise a
Gaussian fitted to the data with its standard deviations doubled, for each ν of ``nus`` and each
of ``seeds`` seeds (the same data for every ν within a seed), by full-batch L-BFGS on one fixed
noise sample; the errors of c (against −ln Z), of μ and of Λ (relative norms), beside the
closed-form maximum-likelihood estimate of the normalised Gaussian on the same data.

Part 2, a 2-D mixture of Gaussians learned by NCE with a small MLP unnormalised log-density
(noise: a Gaussian fitted to the data): Adam on minibatches with fresh noise each step, the
checkpoint of lowest NCE loss on a validation split carved from the training samples (with its
own fixed noise sample) kept; the test log-likelihood measured once; the learned normaliser
checked by integrating exp(ln p_m + c) numerically on a grid.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from ..generative.nce import (
    GaussianNoise,
    MLPLogDensity,
    NCEDensity,
    UnnormalizedGaussian,
    fit_nce_lbfgs,
    gaussian_log_normalizer,
    gaussian_mle,
    nce_loss_from_log_probs,
)
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "nce"
DEFAULTS = {"dim": 5, "n_data": 20_000, "nus": (1, 5, 10, 25), "seeds": 5, "noise_scale": 2.0,
            "mixture_train": 8000, "mixture_valid": 2000, "mixture_test": 10_000,
            "mixture_nu": 10, "hidden": (64, 64), "steps": 3000, "batch_size": 256, "lr": 3e-3,
            "eval_every": 250, "grid": 241, "seed": 0, "threads": 1}
THRESHOLDS = {"c": 0.05, "mean": 0.05, "precision": 0.05}  # the acceptance bounds, at ν = 10
TRUTH_SEED = 12345
PUBLISHED = {
    "consistency": "NCE \"leads to a consistent (convergent) estimator of the parameters\", the "
                   "normalisation constant \"estimated just like any other parameter\" "
                   "(AISTATS 2010, abstract; proof in its section 2 and in JMLR 2012, section 2)",
    "nu": "\"For large noise sample sizes, the new estimator is furthermore shown to behave like "
          "the maximum likelihood estimator\" (JMLR 2012, abstract): the error falls as ν grows "
          "and approaches the MLE's (the asymptotic analysis of JMLR 2012, section 2, and its "
          "simulations with artificial data, section 4; figure and corollary numbers not "
          "checked against the PDF here)",
}


# --- part 1: consistency on a Gaussian ---------------------------------------------------------

def true_gaussian(dim: int) -> dict:
    """The fixed Gaussian of part 1 (its own seed): a mean with entries in ±[0.5, 1.5], a
    covariance A Aᵀ / d + ½ I."""
    rng = np.random.default_rng(TRUTH_SEED)
    mean = rng.choice([-1.0, 1.0], dim) * rng.uniform(0.5, 1.5, dim)
    a = rng.standard_normal((dim, dim))
    cov = a @ a.T / dim + 0.5 * np.eye(dim)
    lam = np.linalg.inv(cov)
    return {"mean": mean, "covariance": cov, "precision": lam,
            "c": gaussian_log_normalizer(lam)}


def estimate_errors(mean, precision, c, truth) -> dict:
    tri = np.tril_indices(len(mean))
    sq = (((mean - truth["mean"]) ** 2).sum() + ((precision - truth["precision"])[tri] ** 2)
          .sum() + (c - truth["c"]) ** 2)
    return {"c": float(abs(c - truth["c"])), "c_signed": float(c - truth["c"]),
            "mean": float(np.linalg.norm(mean - truth["mean"]) / np.linalg.norm(truth["mean"])),
            "precision": float(np.linalg.norm(precision - truth["precision"])
                               / np.linalg.norm(truth["precision"])),
            "squared": float(sq)}


def consistency(dim: int, n_data: int, nus, seeds: int, noise_scale: float) -> dict:
    truth = true_gaussian(dim)
    rows = {str(nu): [] for nu in nus}
    rows["mle"] = []
    for seed in range(seeds):
        data_rng = np.random.default_rng([seed, 1])
        x = data_rng.multivariate_normal(truth["mean"], truth["covariance"], size=n_data)
        noise = GaussianNoise.fit(x, scale=noise_scale)
        mle = gaussian_mle(x)
        rows["mle"].append({**estimate_errors(mle["mean"], mle["precision"], mle["c"], truth),
                            "to_mle": 0.0})
        for nu in nus:
            density = NCEDensity(UnnormalizedGaussian(dim))
            with Timer() as t:
                info = fit_nce_lbfgs(density, noise, x, nu, np.random.default_rng([seed, 2, nu]))
            mean, prec, c = (density.log_model.mean.detach().numpy(),
                             density.log_model.precision(), density.c.item())
            e = estimate_errors(mean, prec, c, truth)
            e["to_mle"] = estimate_errors(mean, prec, c, mle)["squared"]
            rows[str(nu)].append({**e, "iterations": info["iterations"], "seconds": t.seconds})
    table = {}
    for key, runs in rows.items():
        table[key] = {m: {"mean": float(np.mean([r[m] for r in runs])),
                          "sd": float(np.std([r[m] for r in runs], ddof=1)) if len(runs) > 1
                          else 0.0,
                          "median": float(np.median([r[m] for r in runs]))}
                      for m in ("c", "c_signed", "mean", "precision", "squared", "to_mle")}
        table[key]["within"] = sum(all(r[m] < THRESHOLDS[m] for m in THRESHOLDS) for r in runs)
        if key != "mle":
            table[key]["seconds"] = float(sum(r["seconds"] for r in runs))
            table[key]["iterations"] = [r["iterations"] for r in runs]
    return {"truth": {k: np.asarray(v).tolist() for k, v in truth.items()}, "runs": rows,
            "table": table}


# --- part 2: a 2-D mixture with an MLP log-density ------------------------------------------

MIXTURE = {"weights": np.array([0.3, 0.25, 0.2, 0.15, 0.1]),
           "means": np.array([[-2.0, -1.0], [1.5, 1.5], [2.0, -2.0], [-1.5, 2.0], [0.0, 0.0]]),
           "stds": np.array([[0.5, 0.3], [0.4, 0.6], [0.3, 0.3], [0.6, 0.3], [0.3, 0.7]]),
           "rho": np.array([0.6, -0.5, 0.0, 0.3, 0.0])}


def _mixture_covariances():
    s, r = MIXTURE["stds"], MIXTURE["rho"]
    return np.stack([np.array([[a * a, q * a * b], [q * a * b, b * b]])
                     for (a, b), q in zip(s, r)])


def mixture_sample(n: int, rng) -> np.ndarray:
    covs = _mixture_covariances()
    k = rng.choice(len(MIXTURE["weights"]), size=n, p=MIXTURE["weights"])
    z = rng.standard_normal((n, 2))
    chol = np.linalg.cholesky(covs)
    return MIXTURE["means"][k] + np.einsum("nij,nj->ni", chol[k], z)


def mixture_log_prob(x: np.ndarray) -> np.ndarray:
    covs = _mixture_covariances()
    inv = np.linalg.inv(covs)
    d = x[:, None, :] - MIXTURE["means"][None]
    quad = np.einsum("nki,kij,nkj->nk", d, inv, d)
    log_det = np.linalg.slogdet(covs)[1]
    comp = np.log(MIXTURE["weights"]) - 0.5 * (quad + log_det + 2 * np.log(2 * np.pi))
    top = comp.max(1, keepdims=True)
    return (top + np.log(np.exp(comp - top).sum(1, keepdims=True)))[:, 0]


def _log_prob_numpy(density, x, batch: int = 20_000) -> np.ndarray:
    with fg.no_grad():
        return np.concatenate([density.log_prob(x[s:s + batch].astype(np.float32)).numpy()
                               for s in range(0, len(x), batch)]).astype(np.float64)


def fit_mixture(config: dict, progress: bool) -> dict:
    rng = np.random.default_rng([config["seed"], 3])
    train = mixture_sample(config["mixture_train"] + config["mixture_valid"], rng)
    valid, train = train[:config["mixture_valid"]], train[config["mixture_valid"]:]
    test = mixture_sample(config["mixture_test"], np.random.default_rng([config["seed"], 4]))
    noise = GaussianNoise.fit(train)
    nu, batch = config["mixture_nu"], config["batch_size"]
    fg.manual_seed(config["seed"])
    density = NCEDensity(MLPLogDensity(2, hidden=config["hidden"], dtype=fg.float32))
    opt = fg.optim.Adam(density.parameters(), lr=config["lr"])
    valid_noise = noise.sample(nu * len(valid), rng)
    v_pn_x, v_pn_y = noise.log_prob(valid), noise.log_prob(valid_noise)
    v_x, v_y = fg.tensor(valid, dtype=fg.float32), fg.tensor(valid_noise, dtype=fg.float32)

    def valid_loss():
        with fg.no_grad():
            return nce_loss_from_log_probs(density.log_prob(v_x), v_pn_x, density.log_prob(v_y),
                                           v_pn_y).item()

    curve, best = [(0, valid_loss())], (float("inf"), 0, None)
    steps = range(1, config["steps"] + 1)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc="nce mixture", leave=False)
    train_losses = []
    for step in steps:
        xb = train[rng.integers(0, len(train), batch)]
        yb = noise.sample(nu * batch, rng)
        loss = nce_loss_from_log_probs(density.log_prob(fg.tensor(xb, dtype=fg.float32)),
                                       noise.log_prob(xb),
                                       density.log_prob(fg.tensor(yb, dtype=fg.float32)),
                                       noise.log_prob(yb))
        opt.zero_grad()
        loss.backward()
        opt.step()
        train_losses.append(loss.item())
        if step % config["eval_every"] == 0 or step == config["steps"]:
            v = valid_loss()
            curve.append((step, v))
            if v < best[0]:
                best = (v, step, {k: t.detach().numpy().copy()
                                  for k, t in density.state_dict().items()})
    density.load_state_dict(best[2])
    # the normaliser, checked by integrating exp(ln p_m + c) over a grid that holds the data
    lo, hi = train.min(0) - 3.0, train.max(0) + 3.0
    gx, gy = np.linspace(lo[0], hi[0], config["grid"]), np.linspace(lo[1], hi[1], config["grid"])
    xx, yy = np.meshgrid(gx, gy)
    points = np.stack([xx.ravel(), yy.ravel()], 1)
    cell = (gx[1] - gx[0]) * (gy[1] - gy[0])
    learned = _log_prob_numpy(density, points)
    true = mixture_log_prob(points)
    integral = float(np.exp(learned).sum() * cell)
    test_learned = _log_prob_numpy(density, test)
    return {"density": density, "grid": (xx, yy), "learned": learned.reshape(xx.shape),
            "true": true.reshape(xx.shape),
            "noise_grid": noise.log_prob(points).reshape(xx.shape), "train": train,
            "integral": integral, "true_integral": float(np.exp(true).sum() * cell),
            "c": density.c.item(), "best_step": best[1], "valid_loss": best[0], "curve": curve,
            "final_train_loss": float(np.mean(train_losses[-100:])),
            "test_loglik": float(test_learned.mean()),
            "test_loglik_renormalised": float(test_learned.mean() - np.log(integral)),
            "test_loglik_true": float(mixture_log_prob(test).mean()),
            "test_loglik_noise": float(noise.log_prob(test).mean()),
            "test_loglik_stderr": float(test_learned.std(ddof=1) / np.sqrt(len(test))),
            "grid_box": [lo.tolist(), hi.tolist()]}


def run(dim=5, n_data=20_000, nus=(1, 5, 10, 25), seeds=5, noise_scale=2.0,
        mixture_train=8000, mixture_valid=2000, mixture_test=10_000, mixture_nu=10,
        hidden=(64, 64), steps=3000, batch_size=256, lr=3e-3, eval_every=250, grid=241, seed=0,
        threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Part 1: the consistency table over ``nus`` × ``seeds`` seeds with the MLE beside it;
    part 2: the 2-D mixture learned by NCE with an MLP, its figure and normaliser check."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        dim, n_data, nus, seeds = 2, 3000, (1, 10), 2
        mixture_train, mixture_valid, mixture_test, steps, eval_every = 3000, 500, 2000, 600, 100
        hidden, grid = (32, 32), 121
    nus = tuple(int(v) for v in (nus if isinstance(nus, (list, tuple)) else (nus,)))
    config = {"seed": seed, "mixture_train": mixture_train, "mixture_valid": mixture_valid,
              "mixture_test": mixture_test, "mixture_nu": int(mixture_nu),
              "hidden": tuple(hidden), "steps": steps, "batch_size": batch_size, "lr": lr,
              "eval_every": eval_every, "grid": grid}
    with _limit_threads(threads), Timer() as t:
        with Timer() as t1:
            part1 = consistency(dim, n_data, nus, seeds, noise_scale)
        with Timer() as t2:
            part2 = fit_mixture(config, progress)
    table = part1["table"]
    reference = "10" if "10" in table else str(nus[-1])
    summary = {"title": "Noise-contrastive estimation: consistency on a Gaussian, and a 2-D "
                        "mixture learned with an MLP",
               "dim": dim, "n_data": n_data, "nus": list(nus), "seeds": seeds,
               "noise_scale": noise_scale, "thresholds": THRESHOLDS, "truth": part1["truth"],
               "table": table, "runs": part1["runs"], "reference_nu": int(reference),
               "within_at_reference_nu": table[reference]["within"],
               f"nu{reference}_c_error_mean": table[reference]["c"]["mean"],
               f"nu{reference}_mean_error_mean": table[reference]["mean"]["mean"],
               f"nu{reference}_precision_error_mean": table[reference]["precision"]["mean"],
               "median_squared_error": {k: v["squared"]["median"] for k, v in table.items()},
               "mixture": {k: v for k, v in part2.items()
                           if k not in ("density", "grid", "learned", "true", "noise_grid",
                                        "train")},
               "mixture_integral": part2["integral"], "mixture_c": part2["c"],
               "mixture_test_loglik": part2["test_loglik"],
               "mixture_test_loglik_true": part2["test_loglik_true"],
               "mixture_test_loglik_noise": part2["test_loglik_noise"],
               "mixture_config": {k: v for k, v in config.items() if k != "seed"},
               "published": PUBLISHED, "threads": threads, "command": command, "seed": seed,
               "seconds_consistency": t1.seconds, "seconds_mixture": t2.seconds,
               "seconds": t.seconds}
    if write:
        figures = (_plot_mixture(part2, out), _plot_errors(summary, out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _pm(v, digits=4) -> str:
    return f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}"


def _rows(s) -> list:
    rows = []
    for key, v in s["table"].items():
        label = "maximum likelihood (normalised Gaussian, closed form)" if key == "mle" \
            else f"NCE, ν = {key}"
        rows.append((f"{label}: error of c / of μ (relative) / of Λ (relative), mean ± sd over "
                     f"{s['seeds']} seeds; within the thresholds",
                     f"{_pm(v['c'])} / {_pm(v['mean'])} / {_pm(v['precision'])}; "
                     f"{v['within']} of {s['seeds']}",
                     PUBLISHED["consistency"] if key == str(s["reference_nu"]) else
                     ("reference: NCE approaches it as ν grows" if key == "mle" else "—")))
    mse = s["median_squared_error"]
    rows.append(("median squared error of (μ, Λ, c) over seeds, by ν (MLE last)",
                 ", ".join(f"ν={k}: {v:.2e}" if k != "mle" else f"MLE: {v:.2e}"
                           for k, v in mse.items()),
                 "falls as ν grows, towards the MLE's (JMLR 2012, abstract and section 4)"))
    rows.append(("median squared distance of NCE's (μ, Λ, c) to the MLE on the same data, by ν",
                 ", ".join(f"ν={k}: {v['to_mle']['median']:.2e}" for k, v in s["table"].items()
                           if k != "mle"),
                 "falls towards 0: NCE behaves like the MLE for large ν (JMLR 2012, abstract)"))
    m = s["mixture"]
    rows += [("2-D mixture: ∫ exp(ln p_m + c) dx on the grid (should be 1)",
              f"{m['integral']:.4f} (the true density: {m['true_integral']:.4f})",
              "c is learned as a normaliser (JMLR 2012, section 2.1)"),
             ("2-D mixture: test log-likelihood per point, NCE model / true density / noise",
              f"{m['test_loglik']:.4f} ± {m['test_loglik_stderr']:.4f} / "
              f"{m['test_loglik_true']:.4f} / {m['test_loglik_noise']:.4f}", "—")]
    return rows


def _notes(s) -> str:
    m, cfg = s["mixture"], s["mixture_config"]
    t = s["table"]
    ref = str(s["reference_nu"])
    nus = [str(v) for v in s["nus"]]
    falls = all(t[a]["squared"]["median"] > t[b]["squared"]["median"]
                for a, b in zip(nus, nus[1:]))
    first, last = t[nus[0]]["squared"]["median"], t[nus[-1]]["squared"]["median"]
    closer = all(t[a]["to_mle"]["median"] > t[b]["to_mle"]["median"]
                 for a, b in zip(nus, nus[1:]))
    lines = [
        "Objective (JMLR 2012, section 2.1): J_T(θ) = (1/T_d){Σ ln h(x_t) + Σ ln[1 − h(y_t)]}, "
        "h = r_ν(G), r_ν(u) = 1/(1 + ν exp(−u)), G(u) = ln p_m(u; θ) − ln p_n(u), ν = T_n/T_d; "
        "the loss is −J_T, computed as binary cross-entropy on the log-odds G − ln ν.",
        f"Part 1: a {s['dim']}-dimensional Gaussian with fixed mean and covariance (its own "
        f"seed), T_d = {s['n_data']} samples per seed, {s['seeds']} seeds (the same data for "
        "every ν within a seed); model ln p_m(x) = −½ (x − μ)ᵀ Λ (x − μ) + c with Λ = L Lᵀ, L "
        "lower triangular, starting from μ = 0, Λ = I, c = 0; noise: a Gaussian with the "
        f"data's mean and covariance, standard deviations × {s['noise_scale']:g}; one fixed "
        "noise sample of ν T_d points per fit; full-batch L-BFGS with a strong-Wolfe line "
        "search to convergence. Errors: |c − (−ln Z)|, ‖μ̂ − μ‖/‖μ‖ and ‖Λ̂ − Λ‖_F/‖Λ‖_F; the "
        f"thresholds are {THRESHOLDS['c']} for c and 5% for μ and Λ. The reference row is the "
        "maximum-likelihood estimate of the normalised Gaussian (sample mean, inverse biased "
        "sample covariance, c = ½ ln det Λ̂ − (d/2) ln 2π) on the same data.",
        f"Outcome, part 1: at ν = {ref}, {t[ref]['within']} of {s['seeds']} seeds are within "
        f"all three thresholds (c error {_pm(t[ref]['c'])}, μ {_pm(t[ref]['mean'])}, Λ "
        f"{_pm(t[ref]['precision'])}). The median squared error "
        + ("falls at every step of ν" if falls else "does not fall at every step of ν")
        + f" ({first:.2e} at ν = {nus[0]} to {last:.2e} at ν = {nus[-1]}; the MLE's is "
        f"{t['mle']['squared']['median']:.2e}; with {s['seeds']} seeds this error is "
        "dominated by the sampling error of the data, which the MLE shares). The part due to "
        "the noise sample, the squared distance of the NCE estimate to the MLE on the same "
        "data, " + ("falls at every step of ν" if closer else "does not fall at every step of ν")
        + f" ({t[nus[0]]['to_mle']['median']:.2e} at ν = {nus[0]} to "
        f"{t[nus[-1]]['to_mle']['median']:.2e} at ν = {nus[-1]}, medians). Published "
        "(qualitative): "
        f"{PUBLISHED['consistency']}; {PUBLISHED['nu']}. The papers' own simulations use "
        "other models, sample sizes and noise, so only the direction is compared.",
        "Part 2: a mixture of five 2-D Gaussians (weights, means and covariances in "
        "flowgrad/recipes/nce.py); model ln p_m(x) = f(x) − ½ e^a ‖x‖² + c, f a tanh MLP of "
        f"hidden sizes {list(cfg['hidden'])} (float32), a and c learned; noise: a Gaussian "
        f"with the training data's mean and covariance; ν = {cfg['mixture_nu']}; "
        f"{cfg['mixture_train']} training samples, {cfg['mixture_valid']} validation samples "
        f"carved from the same draw, {cfg['mixture_test']} test samples (own seed); "
        f"{cfg['steps']} Adam steps (lr {cfg['lr']:g}) on minibatches of {cfg['batch_size']} "
        f"data points and {cfg['mixture_nu']}× as many fresh noise points; the checkpoint of "
        "lowest validation NCE loss (one fixed validation noise sample), measured every "
        f"{cfg['eval_every']} steps, is kept (step {m['best_step']}); the test set is "
        "measured once.",
        f"Outcome, part 2: exp(ln p_m + c) integrates to {m['integral']:.4f} on a "
        f"{cfg['grid']} × {cfg['grid']} grid over the box {np.round(m['grid_box'], 2).tolist()} "
        f"(the data's range ± 3; the true density integrates to {m['true_integral']:.4f} "
        f"there), so the learned c = {m['c']:.4f} normalises the model to within "
        f"{abs(m['integral'] - 1):.1%}. Test log-likelihood per point: "
        f"{m['test_loglik']:.4f} (NCE model, its own c), {m['test_loglik_renormalised']:.4f} "
        f"(the same model normalised by the grid integral), {m['test_loglik_true']:.4f} (the "
        f"true density), {m['test_loglik_noise']:.4f} (the noise Gaussian). The first figure "
        "shows the true density, the learned one and the noise on the same colour scale.",
        f"Wall time: part 1 {s['seconds_consistency']:.0f} s, part 2 "
        f"{s['seconds_mixture']:.0f} s (BLAS threads: {s['threads'] or 'default'}).",
    ]
    return "\n\n".join(lines)


def _plot_mixture(part2, out):
    xx, yy = part2["grid"]
    fig, axes = new_figure(1, 3, figsize=(14, 4.2), layout="constrained")
    dens = [np.exp(part2["true"]), np.exp(part2["learned"]), np.exp(part2["noise_grid"])]
    top = max(dens[0].max(), dens[1].max())
    titles = ["true mixture density", f"NCE: exp(ln p_m + c), c = {part2['c']:.3f}",
              "noise: Gaussian fitted to the data"]
    for ax, z, title in zip(axes, dens, titles):
        im = ax.pcolormesh(xx, yy, z, shading="auto", cmap="viridis", vmin=0, vmax=top)
        ax.set(title=title, xlabel="x1", ylabel="x2", aspect="equal")
    axes[0].scatter(part2["train"][:300, 0], part2["train"][:300, 1], s=2, c="w", alpha=0.5)
    fig.colorbar(im, ax=list(axes), shrink=0.8)
    return save_figure(fig, f"{out}/{NAME}_mixture.png", dpi=110)


def _plot_errors(s, out):
    fig, axes = new_figure(1, 5, figsize=(18, 3.6))
    nus = [str(v) for v in s["nus"]]
    xs = np.array(s["nus"], dtype=float)
    for ax, key, label in zip(axes, ("c", "mean", "precision", "squared", "to_mle"),
                              ("|c − (−ln Z)|", "‖μ̂ − μ‖/‖μ‖", "‖Λ̂ − Λ‖/‖Λ‖",
                               "squared error of (μ, Λ, c)",
                               "squared distance to the MLE")):
        runs = np.array([[r[key] for r in s["runs"][k]] for k in nus])
        for j in range(runs.shape[1]):
            ax.plot(xs, runs[:, j], ".-", color="tab:blue", alpha=0.3)
        ax.plot(xs, np.median(runs, 1), "o-", color="tab:blue", label="NCE (median)")
        if key != "to_mle":
            ax.axhline(s["table"]["mle"][key]["median"], color="tab:orange", ls="--",
                       label="MLE (median)")
        if key in THRESHOLDS:
            ax.axhline(THRESHOLDS[key], color="gray", ls=":", label="threshold")
        ax.set(xscale="log", yscale="log", xlabel="ν", title=label)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}_errors.png", dpi=110)
