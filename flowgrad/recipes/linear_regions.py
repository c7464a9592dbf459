"""The exponential advantage of depth, measured (lecture slide "Exponential advantage of depth";
Montúfar, Pascanu, Cho & Bengio, "On the Number of Linear Regions of Deep Neural Networks",
NIPS 2014).

Part 1, regions against depth at a fixed number of units: ReLU networks of depth L and width
N/L (N fixed) on one input and on two inputs. For each depth: the exact number of linear regions
of randomly initialised networks (the library's default initialisation, several seeds) on the
interval [−1, 1] (and on the whole line) or the square [−1, 1]²; the paper's lower bound on the
maximal number, (Π_{i<L} ⌊n_i/n0⌋^{n0}) Σ_{j≤n0} C(n_L, j); and, on one input, the count of a
network with those widths built to reach that bound (every layer folds [0, 1] onto itself).

Part 2, a picture: the regions of a shallow and of a deep random network on the square, one
colour per activation pattern.

Part 3, the composed tent map f_L (2^{L−1} teeth): the fewest units with which a trained network
with one hidden layer, and a trained deep network of L hidden layers of equal width, reach a
given test error (full-batch Adam from several initialisations, the best on a validation split
carved from the training points), beside the exact constructions (2^L − 1 units in one hidden
layer, 2L units in L layers of 2).
"""

from __future__ import annotations

import math

import numpy as np

import flowgrad as fg

from ..nn import Linear, ReLU, Sequential
from ..plotting import new_figure, save_figure
from ..representations.regions import (
    count_linear_regions,
    linear_regions_2d,
    montufar_lower_bound,
    pattern_image,
    shallow_max_regions,
)
from ..representations.tent_map import fit_units_to_error, folding_network, tent_map, tent_network
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "linear_regions"
DEFAULTS = {"total_units": 48, "depths": (1, 2, 3, 4, 6, 8), "seeds": 5, "units_2d": 24,
            "depths_2d": (1, 2, 3, 4, 6), "tent_depths": (2, 3, 4, 5),
            "shallow_widths": (2, 4, 8, 16, 32, 64, 128), "deep_widths": (2, 4, 8, 16),
            "fit_seeds": 3, "steps": 2000, "lr": 0.03, "target_mse": 0.005,
            "max_constructed": 50_000, "picture_resolution": 400, "seed": 0, "threads": 1}
WHOLE_LINE = 1e6
PUBLISHED = {
    "bound": "deep ReLU networks can compute functions with a number of linear regions that "
             "grows exponentially with depth (as (n/n0)^{(L−1) n0} n^{n0}), where one hidden "
             "layer with the same number of units reaches only Σ_{j≤n0} C(Ln, j), polynomial "
             "(Montúfar et al. 2014, Theorem 4 and Corollary 5)",
    "random": "at initialisation the number of regions met by a line grows with the total number "
              "of units, not exponentially with depth (Hanin & Rolnick, \"Complexity of Linear "
              "Regions in Deep Networks\", ICML 2019)",
    "tent": "the tent map composed L times is computed exactly by 2L units in L layers, while "
            "a network with one hidden layer needs 2^L − 1 units (n units give at most n + 1 "
            "pieces on a line); a shallow net much smaller than 2^L units cannot approximate "
            "it (the folding construction: Montúfar et al. 2014, section 3; the approximation "
            "lower bound: Telgarsky, \"Benefits of depth in neural networks\", COLT 2016)",
}


def random_net(widths, n0: int, seed: int) -> Sequential:
    """A ReLU MLP with n0 inputs, hidden ``widths`` and one output, default initialisation."""
    fg.manual_seed(seed)
    layers, fan_in = [], n0
    for w in widths:
        layers += [Linear(fan_in, int(w), dtype=fg.float64), ReLU()]
        fan_in = int(w)
    return Sequential(*layers, Linear(fan_in, 1, dtype=fg.float64))


def _seed(*parts) -> int:
    return int(np.random.default_rng(list(parts)).integers(2**31 - 1))


def _stats(values) -> dict:
    v = np.asarray(values, dtype=float)
    return {"values": v.tolist(), "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0}


def counts_1d(total: int, depths, seeds: int, max_constructed: int, seed: int) -> list:
    rows = []
    for depth in depths:
        widths = [total // depth] * depth
        nets = [random_net(widths, 1, _seed(seed, 1, depth, s)) for s in range(seeds)]
        bound = montufar_lower_bound(1, widths)
        row = {"depth": depth, "widths": widths, "units": sum(widths), "bound": bound,
               "random": _stats([count_linear_regions(n, segment=(-1, 1)) for n in nets]),
               "random_whole_line": _stats([count_linear_regions(
                   n, segment=(-WHOLE_LINE, WHOLE_LINE)) for n in nets]),
               "constructed": None}
        if bound <= max_constructed:
            row["constructed"] = count_linear_regions(folding_network(widths, fg.float64),
                                                      segment=(0, 1))
        rows.append(row)
    return rows


def counts_2d(total: int, depths, seeds: int, seed: int) -> list:
    rows = []
    for depth in depths:
        widths = [total // depth] * depth
        nets = [random_net(widths, 2, _seed(seed, 2, depth, s)) for s in range(seeds)]
        rows.append({"depth": depth, "widths": widths, "units": sum(widths),
                     "bound": montufar_lower_bound(2, widths) if min(widths) >= 2 else None,
                     "random": _stats([count_linear_regions(n, domain=((-1, 1), (-1, 1)))
                                       for n in nets])})
    return rows


def grid_check(total: int, depth: int, seed: int, resolution: int) -> dict:
    """The exact 2-D count of one random network beside the grid-and-lines enumeration."""
    net = random_net([total // depth] * depth, 2, _seed(seed, 2, depth, 0))
    box = ((-1, 1), (-1, 1))
    return {"depth": depth, "exact": count_linear_regions(net, domain=box),
            "grid": count_linear_regions(net, domain=box, method="grid",
                                         resolution=resolution),
            "resolution": resolution}


def tent_experiment(depths, shallow_widths, deep_widths, fit_seeds, steps, lr, target_mse,
                    seed, progress) -> list:
    rows = []
    for depth in depths:
        exact = tent_network(depth, fg.float64)
        x = np.linspace(0, 1, 4097)
        with fg.no_grad():
            exact_err = float(np.max(np.abs(exact(fg.tensor(x[:, None])).numpy()[:, 0]
                                            - tent_map(x, depth))))
        shallow = fit_units_to_error(depth, [[w] for w in shallow_widths], target_mse,
                                     fit_seeds, steps=steps, lr=lr, seed=seed)
        deep = fit_units_to_error(depth, [[w] * depth for w in deep_widths], target_mse,
                                  fit_seeds, steps=steps, lr=lr, seed=seed)
        rows.append({"depth": depth, "pieces": 2 ** depth, "exact_deep_units": 2 * depth,
                     "exact_shallow_units": 2 ** depth - 1, "exact_max_error": exact_err,
                     "exact_regions": count_linear_regions(exact, segment=(0, 1)),
                     "shallow": shallow, "deep": deep})
        if progress:
            print(f"tent depth {depth}: shallow {shallow['units']} units, deep "
                  f"{deep['units']} units")
    return rows


def run(total_units=48, depths=(1, 2, 3, 4, 6, 8), seeds=5, units_2d=24,
        depths_2d=(1, 2, 3, 4, 6), tent_depths=(2, 3, 4, 5),
        shallow_widths=(2, 4, 8, 16, 32, 64, 128), deep_widths=(2, 4, 8, 16), fit_seeds=3,
        steps=2000, lr=0.03, target_mse=0.005, max_constructed=50_000, picture_resolution=400,
        seed=0, threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Region counts against depth at a fixed number of units (1-D and 2-D, random and
    constructed, beside the lower bound), the picture of the regions, and the tent-map
    units-to-error measurement."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        total_units, depths, seeds, units_2d, depths_2d = 12, (1, 2, 3), 2, 8, (1, 2)
        tent_depths, shallow_widths, deep_widths = (2, 3), (4, 8, 16, 32), (2, 4)
        fit_seeds, steps, picture_resolution = 2, 600, 150
    depths, depths_2d, tent_depths = (tuple(int(d) for d in v)
                                      for v in (depths, depths_2d, tent_depths))
    with _limit_threads(threads), Timer() as t:
        with Timer() as t1:
            rows_1d = counts_1d(total_units, depths, seeds, max_constructed, seed)
            rows_2d = counts_2d(units_2d, depths_2d, seeds, seed)
            check = grid_check(units_2d, depths_2d[min(1, len(depths_2d) - 1)], seed,
                               max(50, picture_resolution // 2))
        with Timer() as t2:
            tent = tent_experiment(tent_depths, shallow_widths, deep_widths, fit_seeds, steps,
                                   lr, target_mse, seed, progress)
    summary = {"title": "Linear regions against depth (Montúfar et al. 2014) and the composed "
                        "tent map",
               "total_units": total_units, "depths": list(depths), "seeds": seeds,
               "units_2d": units_2d, "depths_2d": list(depths_2d), "counts_1d": rows_1d,
               "counts_2d": rows_2d, "grid_check": check, "tent": tent,
               "max_constructed": max_constructed, "picture_resolution": picture_resolution,
               "target_mse": target_mse,
               "fit_seeds": fit_seeds, "steps": steps, "lr": lr,
               "shallow_max_1d": shallow_max_regions(1, total_units),
               "shallow_max_2d": shallow_max_regions(2, units_2d),
               "published": PUBLISHED, "threads": threads, "command": command, "seed": seed,
               "seconds_counts": t1.seconds, "seconds_tent": t2.seconds, "seconds": t.seconds}
    summary.update(_verdicts(summary))
    if write:
        with _limit_threads(threads):
            figures = (_plot_counts(summary, out),
                       _plot_regions(units_2d, depths_2d, seed, picture_resolution, out),
                       _plot_tent(summary, out))
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


# --- verdicts computed from the numbers ----------------------------------------------------------

def _slope(xs, ys) -> float | None:
    pts = [(x, math.log2(y)) for x, y in zip(xs, ys) if y]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def _verdicts(s) -> dict:
    from scipy import stats

    r1, r2 = s["counts_1d"], s["counts_2d"]
    built = [r for r in r1 if r["constructed"] is not None]
    matches = all(r["constructed"] == r["bound"] for r in built)
    grows = all(a["constructed"] < b["constructed"] for a, b in zip(built, built[1:]))
    ratio = built[-1]["constructed"] / built[0]["constructed"] if built else None
    shallow_r, deep_r = r1[0]["random"]["values"], r1[-1]["random"]["values"]
    p_more = float(stats.mannwhitneyu(deep_r, shallow_r, alternative="greater").pvalue)
    p_fewer = float(stats.mannwhitneyu(deep_r, shallow_r, alternative="less").pvalue)
    p_more_2d = float(stats.mannwhitneyu(r2[-1]["random"]["values"], r2[0]["random"]["values"],
                                         alternative="greater").pvalue)
    tent = s["tent"]
    shallow_units = [r["shallow"]["units"] for r in tent]
    deep_units = [r["deep"]["units"] for r in tent]
    depths = [r["depth"] for r in tent]
    fewer = [d is not None and (sh is None or d < sh) for sh, d in zip(shallow_units, deep_units)]
    return {"constructed_matches_bound": bool(matches), "constructed_grows_with_depth":
            bool(grows), "constructed_ratio_deepest_to_shallow": ratio,
            "constructed_depth_range": [built[0]["depth"], built[-1]["depth"]] if built else [],
            "random_1d_shallow_mean": float(np.mean(shallow_r)),
            "random_1d_deepest_mean": float(np.mean(deep_r)),
            "random_1d_p_deeper_has_more": p_more, "random_1d_p_deeper_has_fewer": p_fewer,
            "random_2d_shallow_mean": r2[0]["random"]["mean"],
            "random_2d_deepest_mean": r2[-1]["random"]["mean"],
            "random_2d_p_deeper_has_more": p_more_2d,
            "tent_shallow_units": shallow_units, "tent_deep_units": deep_units,
            "tent_shallow_log2_slope": _slope(depths, shallow_units),
            "tent_shallow_best_test_mse": [min(row["test_mse"] for row in r["shallow"]["rows"])
                                           for r in tent],
            "tent_deep_best_test_mse": [min(row["test_mse"] for row in r["deep"]["rows"])
                                        for r in tent],
            "tent_deep_fewer_units": fewer,
            "tent_exact_max_error": max(r["exact_max_error"] for r in tent),
            "tent_exact_regions_ok": all(r["exact_regions"] == r["pieces"] for r in tent)}


def _units(v) -> str:
    return "not reached" if v is None else str(v)


def _rows(s) -> list:
    rows = []
    for r in s["counts_1d"]:
        rows.append((f"1 input, depth {r['depth']} × width {r['widths'][0]} "
                     f"({r['units']} units): regions of random nets on [−1, 1] / on the whole "
                     f"line (mean ± sd over {s['seeds']} seeds); built to the bound",
                     f"{r['random']['mean']:.1f} ± {r['random']['sd']:.1f} / "
                     f"{r['random_whole_line']['mean']:.1f} ± {r['random_whole_line']['sd']:.1f}"
                     f"; {r['constructed'] if r['constructed'] is not None else '—'}",
                     f"lower bound on the maximum: {r['bound']:,}"))
    for r in s["counts_2d"]:
        rows.append((f"2 inputs, depth {r['depth']} × width {r['widths'][0]} ({r['units']} "
                     f"units): regions of random nets on [−1, 1]² (mean ± sd)",
                     f"{r['random']['mean']:.1f} ± {r['random']['sd']:.1f}",
                     f"lower bound on the maximum: {r['bound']:,}" if r["bound"] else "—"))
    for r in s["tent"]:
        rows.append((f"tent map f_{r['depth']} ({r['pieces']} pieces): fewest units reaching "
                     f"test MSE ≤ {s['target_mse']:g}, one hidden layer / {r['depth']} hidden "
                     "layers (trained)",
                     f"{_units(r['shallow']['units'])} / {_units(r['deep']['units'])}",
                     f"exact: {r['exact_shallow_units']} / {r['exact_deep_units']} units"))
    return rows


def _tent_rows_text(s) -> str:
    parts = []
    for r in s["tent"]:
        def best(res):
            return ", ".join(f"{row['units']} units: {row['test_mse']:.2g}" for row in
                             res["rows"])
        parts.append(f"f_{r['depth']}: one hidden layer — {best(r['shallow'])}; "
                     f"{r['depth']} layers — {best(r['deep'])}")
    return "; ".join(parts)


def _notes(s) -> str:
    r1 = s["counts_1d"]
    built = [r for r in r1 if r["constructed"] is not None]
    lo, hi = s["constructed_depth_range"] or [None, None]
    constructed_claim = (
        f"With weights built for it, it held: at {s['total_units']} units the count is exactly "
        f"the lower bound at every depth built ({', '.join(str(r['constructed']) for r in built)}"
        f" regions for depths {', '.join(str(r['depth']) for r in built)}), "
        + ("growing at every step of depth" if s["constructed_grows_with_depth"] else
           "not growing at every step of depth")
        + f", {s['constructed_ratio_deepest_to_shallow']:.0f}× more regions at depth {hi} than "
        f"with one hidden layer (whose maximum is {s['shallow_max_1d']}).") if built else (
        "No network was built to the bound (max_constructed too small).")
    random_claim = (
        f"At random initialisation it did not hold: on [−1, 1] the deepest nets (depth "
        f"{r1[-1]['depth']}) have {s['random_1d_deepest_mean']:.1f} regions on average against "
        f"{s['random_1d_shallow_mean']:.1f} for one hidden layer (one-sided Mann-Whitney p = "
        f"{s['random_1d_p_deeper_has_more']:.3g} for 'deeper has more', p = "
        f"{s['random_1d_p_deeper_has_fewer']:.3g} for 'deeper has fewer'); on the whole line "
        f"every depth has about as many regions as units ("
        + ", ".join(f"{r['random_whole_line']['mean']:.0f}" for r in r1)
        + f" for depths {', '.join(str(r['depth']) for r in r1)}); in the plane "
        f"{s['random_2d_deepest_mean']:.1f} at depth {s['counts_2d'][-1]['depth']} against "
        f"{s['random_2d_shallow_mean']:.1f} with one hidden layer (p = "
        f"{s['random_2d_p_deeper_has_more']:.3g} for 'deeper has more').")
    if s["random_1d_p_deeper_has_more"] < 0.05 and s["random_2d_p_deeper_has_more"] < 0.05:
        random_claim = random_claim.replace("it did not hold", "it held as well")
    else:
        random_claim += (" This is the direction Hanin & Rolnick (2019) report: the "
                         "exponential count is what depth can reach, not what a random network "
                         "has.")
    tent = s["tent"]
    fewer = s["tent_deep_fewer_units"]
    slope = s["tent_shallow_log2_slope"]
    both_missed = sum(r["shallow"]["units"] is None and r["deep"]["units"] is None
                      for r in tent)
    trained_held = sum(fewer) > len(fewer) / 2
    tent_claim = (
        "Tent map: the exact constructions compute f_L to within "
        f"{s['tent_exact_max_error']:.1e} (max error on 4097 points) with "
        + ("2^L regions each" if s["tent_exact_regions_ok"] else "a wrong region count")
        + " using 2L units in L layers, against the 2^L − 1 units one hidden layer needs ("
        + ", ".join(f"{r['exact_deep_units']} against {r['exact_shallow_units']}" for r in tent)
        + f" for L = {', '.join(str(r['depth']) for r in tent)}): with the weights built, the "
        "claim held. Trained by gradient descent, the one-hidden-layer net needed "
        + ", ".join(f"{_units(r['shallow']['units'])}" for r in tent)
        + " units and the deep net " + ", ".join(f"{_units(r['deep']['units'])}" for r in tent)
        + f" units (target test MSE {s['target_mse']:g}; f_L has variance 1/12 ≈ 0.083). "
        f"The deep net needed fewer units at {sum(fewer)} of {len(fewer)} depths"
        + (f" and neither reached the target at {both_missed}" if both_missed else "")
        + (f"; over the depths where it reached the target, the shallow net's units grew as "
           f"2^({slope:.2f} L)" if slope is not None else "")
        + ". Measured on trained networks the claim therefore "
        + ("held" if trained_held else "did not hold")
        + (": gradient descent from a random start did not find the deep solutions that the "
           "construction shows to exist" if not trained_held else "")
        + ". Per configuration, the test MSE of the seed chosen on validation: "
        + _tent_rows_text(s) + ".")
    lines = [
        "Claim tested: \"depth gives exponentially more linear regions per unit\" (lecture "
        "slide \"Exponential advantage of depth\"; Montúfar et al. 2014).",
        "Counting: a ReLU network is affine on each set of inputs sharing one activation "
        "pattern, a convex set; the counts are the distinct patterns met by the interval or the "
        "square, found exactly (flowgrad.representations.regions: the crossings of every unit "
        "solved layer by layer along the line, and convex polygons clipped by every unit's "
        "line in the plane). Check of the 2-D count against the grid-and-lines enumeration "
        f"({s['grid_check']['resolution']}² points plus exact walks along its rows and "
        f"columns) on one random net of depth {s['grid_check']['depth']}: "
        f"{s['grid_check']['exact']} exact, {s['grid_check']['grid']} by the grid.",
        f"Networks: {s['total_units']} hidden units (1 input) and {s['units_2d']} (2 inputs) "
        "split into L layers of equal width, one linear output; random weights from the "
        "default initialisation (U(±1/√fan_in) for weights and biases, as in PyTorch), "
        f"{s['seeds']} seeds per depth; the whole line is [−10⁶, 10⁶]. The networks built to "
        "the bound fold [0, 1] onto itself n_i times in each layer but the last (a zigzag of "
        "n_i units) and cut each fold into n_L + 1 pieces in the last (folding_network); they "
        f"are counted on [0, 1] when the bound is at most {s['max_constructed']:,} regions.",
        constructed_claim,
        random_claim,
        tent_claim,
        f"Fitting protocol: 512 training points uniform on [0, 1] (128 more, carved from the "
        f"same draw, for validation), inputs fed as 2x − 1; full-batch Adam (lr {s['lr']:g}, "
        f"cosine decay) for {s['steps']} steps from {s['fit_seeds']} initialisations, the "
        "checkpoint and initialisation of lowest validation MSE kept; test MSE on a grid of "
        "4097 points, once per configuration; widths are tried in increasing order and the "
        "search stops at the first that reaches the target.",
        f"Wall time: region counts {s['seconds_counts']:.0f} s, tent map "
        f"{s['seconds_tent']:.0f} s (BLAS threads: {s['threads'] or 'default'}).",
    ]
    return "\n\n".join(lines)


# --- figures -----------------------------------------------------------------------------------

def _plot_counts(s, out):
    fig, axes = new_figure(1, 2, figsize=(12, 4.4))
    for ax, rows, key, title in ((axes[0], s["counts_1d"], "1d", f"1 input, "
                                  f"{s['total_units']} units"),
                                 (axes[1], s["counts_2d"], "2d", f"2 inputs, "
                                  f"{s['units_2d']} units")):
        d = [r["depth"] for r in rows]
        m = np.array([r["random"]["mean"] for r in rows])
        sd = np.array([r["random"]["sd"] for r in rows])
        ax.errorbar(d, m, yerr=sd, marker="o", capsize=3, label="random init, [−1, 1]"
                    + ("" if key == "1d" else "²"))
        if key == "1d":
            ax.errorbar(d, [r["random_whole_line"]["mean"] for r in rows],
                        yerr=[r["random_whole_line"]["sd"] for r in rows], marker="s",
                        capsize=3, label="random init, whole line")
            built = [r for r in rows if r["constructed"] is not None]
            ax.plot([r["depth"] for r in built], [r["constructed"] for r in built], "k^",
                    ms=9, label="built to the bound (folding net)")
        bd = [(r["depth"], r["bound"]) for r in rows if r["bound"]]
        ax.plot(*zip(*bd), "r--", label="lower bound on the maximum (Montúfar et al.)")
        ax.set(yscale="log", xlabel="depth L (width = units / L)", ylabel="linear regions",
               title=title)
        ax.legend(fontsize=8)
    return save_figure(fig, f"{out}/{NAME}_counts.png", dpi=110, tight=True)


def _plot_regions(units, depths, seed, resolution, out):
    depth = depths[min(len(depths) - 1, 3)]
    fig, axes = new_figure(1, 2, figsize=(11, 5.4))
    for ax, d in zip(axes, (1, depth)):
        net = random_net([units // d] * d, 2, _seed(seed, 2, d, 0))
        image = pattern_image(net, ((-1, 1), (-1, 1)), resolution=resolution)
        k = int(image.max()) + 1
        colours = np.random.default_rng(0).uniform(0.25, 0.95, (k, 3))  # one per pattern
        ax.imshow(colours[image], origin="lower", extent=(-1, 1, -1, 1),
                  interpolation="nearest")
        exact = linear_regions_2d(net, ((-1, 1), (-1, 1)))
        for poly in exact.polygons:
            closed = np.vstack([poly, poly[:1]])
            ax.plot(closed[:, 0], closed[:, 1], "k-", lw=0.4)
        ax.set(title=f"depth {d} × width {units // d}: {exact.count} regions (exact), {k} "
                     "patterns on the grid", xlabel="x1", ylabel="x2", xlim=(-1, 1),
               ylim=(-1, 1))
    return save_figure(fig, f"{out}/{NAME}_regions.png", dpi=110, tight=True)


def _plot_tent(s, out):
    fig, axes = new_figure(1, 3, figsize=(17, 4.6))
    tent = s["tent"]
    d = [r["depth"] for r in tent]
    ax = axes[0]
    for key, label, marker in (("shallow", "one hidden layer, trained", "o"),
                               ("deep", "L hidden layers, trained", "s")):
        reached = [(r["depth"], r[key]["units"]) for r in tent if r[key]["units"]]
        if reached:
            ax.plot(*zip(*reached), marker=marker, label=label)
        missed = [(r["depth"], r[key]["tried_up_to"]) for r in tent if not r[key]["units"]]
        if missed:
            ax.plot(*zip(*missed), marker="x" if key == "shallow" else "+", ms=9, ls="none",
                    color="grey", label=f"{key}: not reached with up to")
    ax.plot(d, [r["exact_shallow_units"] for r in tent], "k--", label="exact, one layer: 2^L − 1")
    ax.plot(d, [r["exact_deep_units"] for r in tent], "k:", label="exact, L layers of 2: 2L")
    ax.set(yscale="log", xlabel="L (f_L has 2^L pieces)", ylabel="units",
           title=f"units to reach test MSE ≤ {s['target_mse']:g}")
    ax.legend(fontsize=8)
    ax = axes[1]
    colours = [f"C{i}" for i in range(len(tent))]
    for r, c in zip(tent, colours):
        for key, style in (("shallow", "o-"), ("deep", "s--")):
            rows = r[key]["rows"]
            ax.plot([row["units"] for row in rows], [row["test_mse"] for row in rows], style,
                    color=c, ms=4, label=f"f_{r['depth']}, {key}")
    ax.axhline(s["target_mse"], color="k", lw=0.8)
    ax.axhline(1 / 12, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", yscale="log", xlabel="units", ylabel="test MSE (seed chosen on "
           "validation)", title="trained nets: error against units (dotted: variance 1/12)")
    ax.legend(fontsize=7, ncol=2)
    x = np.linspace(0, 1, 2001)
    top = tent[-1]["depth"]
    axes[2].plot(x, tent_map(x, top), "k", lw=1)
    axes[2].set(title=f"f_{top} = tent∘…∘tent ({2 ** (top - 1)} teeth)", xlabel="x")
    return save_figure(fig, f"{out}/{NAME}_tent.png", dpi=110, tight=True)


def render(out) -> None:
    """Rewrite the .md and the figures of a finished run from its .json."""
    import json
    from pathlib import Path

    summary = json.loads((Path(out) / f"{NAME}.json").read_text())
    with _limit_threads(summary["threads"]):
        figures = (_plot_counts(summary, out),
                   _plot_regions(summary["units_2d"], summary["depths_2d"], summary["seed"],
                                 summary.get("picture_resolution", 400), out),
                   _plot_tent(summary, out))
        write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                      figures=figures)
