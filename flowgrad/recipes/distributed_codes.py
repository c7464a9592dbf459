"""Distributed against local codes (lecture: "Distributed Representations: The Power of
Compositionality", parts 1 and 2): inputs described by m independent binary attributes
(``flowgrad.representations.attributes``), a network with a factored output (one softmax per
attribute) against the same network with a local output (one softmax over the 2^m
combinations).

Part 1, unseen combinations: with some combinations held out of training entirely, the
all-attributes-right accuracy of both networks on the held-out combinations and, for the same
number of training examples per seen combination, on fresh examples of the seen ones.

Part 2, sample efficiency: for m in ``attributes`` and a range of training budgets (examples
drawn uniformly over all 2^m combinations), the test accuracy of both networks (the learning
curves) and the number of examples each needs to reach ``target``, against m.

Every training run carves its validation split (a quarter of the budget) out of the training
examples and keeps the checkpoint of best validation accuracy; each test set is measured once.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

import flowgrad as fg

from ..debug.significance import mcnemar
from ..plotting import new_figure, save_figure
from ..representations.attributes import (
    AttributeGenerator,
    FactoredClassifier,
    LocalClassifier,
    all_correct,
    combination_index,
    examples_to_reach,
    fit_attribute_classifier,
    split_combinations,
)
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "distributed_codes"
DEFAULTS = {"attributes": (2, 4, 6, 8), "budgets": (8, 16, 32, 64, 128, 256, 512, 1024, 2048,
                                                    4096),
            "seeds": 5, "target": 0.9, "heldout_attributes": 5, "heldout_combinations": 8,
            "heldout_per_combination": (2, 8, 32), "dim": 32, "signal": 5.0, "noise": 1.0,
            "layout": "mixed", "hidden": (64,), "steps": 400, "lr": 3e-3, "batch_size": 64,
            "valid_fraction": 0.25, "test_size": 2000, "seed": 0, "threads": 1}
CODES = {"factored": FactoredClassifier, "local": LocalClassifier}
PUBLISHED = ("\"Each feature can be discovered without the need for seeing the exponentially "
             "large number of configurations of the other features\"; \"If each of n feature "
             "requires O(k) parameters, need O(nk) examples\", while non-distributed methods "
             "need a number exponential in the dimension (lecture slide \"Distributed "
             "Representations: The Power of Compositionality - Part 1\"; Bengio, Courville & "
             "Vincent 2013, section 3.3). A direction, no number")


def _train_and_test(code, gen, train, test, config, seed):
    """Fit one network on ``train`` = (x, attrs) with a validation split carved from it;
    return the per-example all-right flags on ``test`` and the chosen step."""
    x, a = train
    n_valid = max(1, int(round(config["valid_fraction"] * len(x))))
    fg.manual_seed(seed)
    model = CODES[code](gen.dim, gen.n_attributes, gen.n_values, hidden=config["hidden"])
    history = fit_attribute_classifier(
        model, x[n_valid:], a[n_valid:], np.random.default_rng([seed, 5]),
        steps=config["steps"], lr=config["lr"], batch_size=config["batch_size"],
        valid=(x[:n_valid], a[:n_valid]))
    return model.predict(test[0]), history["best_step"]


def heldout_experiment(config, seeds, progress=None) -> dict:
    """Part 1: accuracy on held-out and seen combinations, per budget per seen combination."""
    m, n_out = config["heldout_attributes"], config["heldout_combinations"]
    rows = {str(n): {code: {"unseen": [], "seen": [], "unseen_correct": [],
                            "unseen_class": []} for code in CODES}
            for n in config["heldout_per_combination"]}
    for seed in range(seeds):
        gen = AttributeGenerator(m, 2, config["dim"], config["signal"], config["noise"],
                                 config["layout"], seed=seed)
        rng = np.random.default_rng([seed, 1])
        seen, unseen = split_combinations(m, 2, n_out, rng)
        n_test = max(1, config["test_size"] // (2 ** m))
        test_unseen = gen.draw(unseen, n_test, rng, per_combination=True)
        test_seen = gen.draw(seen, n_test, rng, per_combination=True)
        for n in config["heldout_per_combination"]:
            train = gen.draw(seen, n, np.random.default_rng([seed, 2, n]), per_combination=True)
            for code in CODES:
                both = (np.concatenate([test_unseen[0], test_seen[0]]),)
                pred, _ = _train_and_test(code, gen, train, both, config, seed)
                pu, ps = pred[:len(test_unseen[0])], pred[len(test_unseen[0]):]
                r = rows[str(n)][code]
                ok = all_correct(pu, test_unseen[1])
                r["unseen"].append(float(ok.mean()))
                r["seen"].append(float(all_correct(ps, test_seen[1]).mean()))
                r["unseen_correct"].append(ok)
                r["unseen_class"].append(combination_index(pu, 2))
                if progress:
                    progress.update()
            rows[str(n)]["unseen_truth"] = rows[str(n)].get("unseen_truth", []) + [
                combination_index(test_unseen[1], 2)]
    out = {}
    for n, r in rows.items():
        truth = np.concatenate(r["unseen_truth"])
        test = mcnemar(np.concatenate(r["factored"]["unseen_class"]),
                       np.concatenate(r["local"]["unseen_class"]), truth,
                       names=("factored", "local"))
        seen_t = stats.ttest_rel(r["factored"]["seen"], r["local"]["seen"]) if seeds > 1 \
            else None
        out[n] = {code: {k: r[code][k] for k in ("unseen", "seen")} | {
                      "unseen_mean": float(np.mean(r[code]["unseen"])),
                      "unseen_sd": float(np.std(r[code]["unseen"], ddof=1)) if seeds > 1 else 0.0,
                      "seen_mean": float(np.mean(r[code]["seen"])),
                      "seen_sd": float(np.std(r[code]["seen"], ddof=1)) if seeds > 1 else 0.0}
                  for code in CODES}
        out[n]["mcnemar_unseen"] = test.as_dict()
        out[n]["seen_paired_t_pvalue"] = (float(seen_t.pvalue) if seen_t is not None
                                          and np.isfinite(seen_t.pvalue) else None)
        out[n]["unseen_test_examples"] = int(len(truth))
    return out


def sample_efficiency(config, seeds, progress=None) -> dict:
    """Part 2: learning curves over ``budgets`` for each m, and examples to ``target``."""
    out = {}
    for m in config["attributes"]:
        acc = {code: np.zeros((seeds, len(config["budgets"]))) for code in CODES}
        correct = {code: {} for code in CODES}
        for seed in range(seeds):
            gen = AttributeGenerator(m, 2, config["dim"], config["signal"], config["noise"],
                                     config["layout"], seed=seed)
            combos = gen.combinations()
            test = gen.draw(combos, config["test_size"], np.random.default_rng([seed, 3, m]))
            for j, n in enumerate(config["budgets"]):
                train = gen.draw(combos, n, np.random.default_rng([seed, 4, m, n]))
                for code in CODES:
                    pred, _ = _train_and_test(code, gen, train, test, config, seed)
                    ok = all_correct(pred, test[1])
                    acc[code][seed, j] = ok.mean()
                    correct[code].setdefault(n, []).append(ok)
                    if progress:
                        progress.update()
        mean = {code: acc[code].mean(0) for code in CODES}
        reach = {code: examples_to_reach(config["budgets"], mean[code], config["target"])
                 for code in CODES}
        per_seed = {code: [examples_to_reach(config["budgets"], acc[code][s], config["target"])
                           for s in range(seeds)] for code in CODES}
        # significance at the smallest budget where the factored code reaches the target
        j = next((j for j, v in enumerate(mean["factored"]) if v >= config["target"]),
                 len(config["budgets"]) - 1)
        n = config["budgets"][j]
        fa, lo = np.concatenate(correct["factored"][n]), np.concatenate(correct["local"][n])
        truth = np.zeros(len(fa), dtype=np.int64)
        test = mcnemar(np.where(fa, 0, 1), np.where(lo, 0, 1), truth,
                       names=("factored", "local"))
        tt = stats.ttest_rel(acc["factored"][:, j], acc["local"][:, j]) if seeds > 1 else None
        out[str(m)] = {"accuracy": {c: acc[c].tolist() for c in CODES},
                       "mean": {c: mean[c].tolist() for c in CODES},
                       "examples_to_target": reach, "examples_to_target_per_seed": per_seed,
                       "compared_at_budget": int(n), "mcnemar": test.as_dict(),
                       "paired_t_pvalue": (float(tt.pvalue) if tt is not None
                                           and np.isfinite(tt.pvalue) else None)}
    return out


def as_tuple(v) -> tuple:
    return tuple(int(x) for x in (v if isinstance(v, (list, tuple)) else (v,)))


def _log2_slope(ms, values) -> float | None:
    pts = [(m, np.log2(v)) for m, v in zip(ms, values) if v is not None]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def run(attributes=(2, 4, 6, 8), budgets=(8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096),
        seeds=5, target=0.9, heldout_attributes=5, heldout_combinations=8,
        heldout_per_combination=(2, 8, 32), dim=32, signal=5.0, noise=1.0, layout="mixed",
        hidden=(64,), steps=400, lr=3e-3, batch_size=64, valid_fraction=0.25, test_size=2000,
        seed=0, threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Part 1 (unseen combinations) and part 2 (sample efficiency against m), both codes,
    ``seeds`` seeds each; writes the .md, .json and two figures."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        attributes, budgets, seeds, steps = (2, 6), (16, 64, 256, 1024), 2, 250
        heldout_attributes, heldout_combinations, heldout_per_combination = 4, 4, (16,)
        test_size = 1000
    attributes, budgets = as_tuple(attributes), as_tuple(budgets)
    heldout_per_combination, hidden = as_tuple(heldout_per_combination), as_tuple(hidden)
    config = {"attributes": attributes, "budgets": budgets, "target": target,
              "heldout_attributes": heldout_attributes,
              "heldout_combinations": heldout_combinations,
              "heldout_per_combination": heldout_per_combination, "dim": dim, "signal": signal,
              "noise": noise, "layout": layout, "hidden": hidden, "steps": steps, "lr": lr,
              "batch_size": batch_size, "valid_fraction": valid_fraction,
              "test_size": test_size}
    bar = None
    if progress:
        from tqdm import tqdm

        total = 2 * seeds * (len(heldout_per_combination) + len(attributes) * len(budgets))
        bar = tqdm(total=total, desc=NAME, leave=False)
    with _limit_threads(threads), Timer() as t:
        with Timer() as t1:
            part1 = heldout_experiment(config, seeds, bar)
        with Timer() as t2:
            part2 = sample_efficiency(config, seeds, bar)
    if bar is not None:
        bar.close()
    top = str(heldout_per_combination[-1])
    reach = {m: part2[m]["examples_to_target"] for m in part2}
    slopes = {c: _log2_slope(attributes, [reach[str(m)][c] for m in attributes])
              for c in CODES}
    summary = {"title": "Distributed against local output codes: unseen attribute "
                        "combinations and sample efficiency as the number of attributes grows",
               "config": {k: list(v) if isinstance(v, tuple) else v
                          for k, v in config.items()},
               "seeds": seeds, "heldout": part1, "curves": part2,
               "factored_unseen_accuracy": part1[top]["factored"]["unseen_mean"],
               "local_unseen_accuracy": part1[top]["local"]["unseen_mean"],
               "factored_seen_accuracy": part1[top]["factored"]["seen_mean"],
               "local_seen_accuracy": part1[top]["local"]["seen_mean"],
               "unseen_mcnemar_pvalue": part1[top]["mcnemar_unseen"]["pvalue"],
               "chance_all_right": 2.0 ** -heldout_attributes,
               "examples_to_target": reach, "log2_slope": slopes,
               "published": PUBLISHED, "threads": threads, "command": command, "seed": seed,
               "seconds_heldout": t1.seconds, "seconds_curves": t2.seconds,
               "seconds": t.seconds}
    summary["claim_held"] = _claim(summary)
    if write:
        figures = (_plot_curves(summary, out), _plot_summary(summary, out))
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _claim(s) -> dict:
    top = str(s["config"]["heldout_per_combination"][-1])
    unseen = (s["factored_unseen_accuracy"] > s["local_unseen_accuracy"]
              and s["heldout"][top]["mcnemar_unseen"]["pvalue"] < 0.05)
    sl, sf = s["log2_slope"]["local"], s["log2_slope"]["factored"]
    ms = [str(m) for m in s["config"]["attributes"]]
    local_reach = [s["examples_to_target"][m]["local"] for m in ms]
    unreached = any(v is None for v in local_reach)
    if sl is not None and sf is not None:
        exponential = sl >= 0.5 and sl > 2 * max(sf, 0.0)
    else:
        exponential = bool(unreached and sf is not None and sf < 0.5)
    return {"unseen": bool(unseen), "exponential_gap": bool(exponential),
            "both": bool(unseen and exponential)}


def _p(p: float) -> str:
    """'= 0.012', or '< 1e-300' where the p-value underflows to 0."""
    return "< 1e-300" if p < 1e-300 else f"= {p:.2g}"


def _fmt_reach(v) -> str:
    return "not reached" if v is None else f"{v:.0f}"


def _rows(s) -> list:
    rows = []
    m = s["config"]["heldout_attributes"]
    for n, r in s["heldout"].items():
        f, lo = r["factored"], r["local"]
        rows.append((f"m = {m}: all-right accuracy on the {s['config']['heldout_combinations']} "
                     f"held-out combinations, {n} training examples per seen combination "
                     f"(factored / local, mean ± sd over {s['seeds']} seeds)",
                     f"{f['unseen_mean']:.3f} ± {f['unseen_sd']:.3f} / "
                     f"{lo['unseen_mean']:.3f} ± {lo['unseen_sd']:.3f}; McNemar p "
                     f"{_p(r['mcnemar_unseen']['pvalue'])}",
                     "factored generalises to unseen combinations; a local code cannot name "
                     "them"))
        rows.append((f"m = {m}: all-right accuracy on new examples of the seen combinations, {n} "
                     "per seen combination (factored / local)",
                     f"{f['seen_mean']:.3f} ± {f['seen_sd']:.3f} / "
                     f"{lo['seen_mean']:.3f} ± {lo['seen_sd']:.3f}"
                     + (f"; paired t p {_p(r['seen_paired_t_pvalue'])}"
                        if r["seen_paired_t_pvalue"] is not None else ""), "—"))
    for mm, c in s["curves"].items():
        e = c["examples_to_target"]
        j = list(s["config"]["budgets"]).index(c["compared_at_budget"])
        rows.append((f"m = {mm}: training examples to reach {s['config']['target']:.0%} "
                     "all-right test accuracy (factored / local, seed-mean curve)",
                     f"{_fmt_reach(e['factored'])} / {_fmt_reach(e['local'])}; at "
                     f"{c['compared_at_budget']} examples: {c['mean']['factored'][j]:.3f} / "
                     f"{c['mean']['local'][j]:.3f}, McNemar p {_p(c['mcnemar']['pvalue'])}",
                     "O(m k) examples for the distributed code, O(2^m) for the local one"))
    sl = s["log2_slope"]
    rows.append(("slope of log2(examples to target) against m (factored / local)",
                 f"{sl['factored'] if sl['factored'] is None else round(sl['factored'], 3)} / "
                 f"{sl['local'] if sl['local'] is None else round(sl['local'], 3)}",
                 "about 0 against about 1 (exponential in m for the local code)"))
    return rows


def _notes(s) -> str:
    c, claim = s["config"], s["claim_held"]
    top = str(c["heldout_per_combination"][-1])
    h = s["heldout"][top]
    sl = s["log2_slope"]
    ms = [str(m) for m in c["attributes"]]
    reach = s["examples_to_target"]
    ratios = [f"m = {m}: {reach[m]['local'] / reach[m]['factored']:.1f}×" for m in ms
              if reach[m]["local"] is not None and reach[m]["factored"] is not None]
    lines = [
        f"Data: m binary attributes, each value with its own random prototype of {c['dim']} "
        f"features (entries N(0, {c['signal']:g}²/{c['dim']})), an input the "
        + ("sum" if c["layout"] == "mixed" else "concatenation")
        + f" of its attributes' prototypes plus N(0, {c['noise']:g}²) noise per feature; new "
        "prototypes for every seed. Networks: the same MLP trunk (hidden sizes "
        f"{c['hidden']}, ReLU) with a factored output (one 2-way softmax per attribute, loss "
        "the sum of their cross-entropies) or a local output (one softmax over the 2^m "
        f"combinations). Adam (lr {c['lr']:g}), {c['steps']} steps of minibatches of "
        f"{c['batch_size']}; {c['valid_fraction']:.0%} of every training budget is carved "
        "out as the validation split, whose all-right accuracy (every 25 steps) picks the "
        "checkpoint; each test set is measured once. Accuracy means every attribute right.",
        f"Part 1: m = {c['heldout_attributes']}, {c['heldout_combinations']} of the "
        f"{2 ** c['heldout_attributes']} combinations held out of training (every value of "
        "every attribute still seen), the others given the same number of examples each. On "
        f"the held-out combinations, with {top} examples per seen combination, the factored "
        f"code is right on {h['factored']['unseen_mean']:.1%} of the test examples and the "
        f"local code on {h['local']['unseen_mean']:.1%} (chance {s['chance_all_right']:.1%}; "
        "the local code's units for those combinations never get a positive target, so it "
        "cannot name them); McNemar's test on the paired predictions, pooled over seeds "
        f"({h['unseen_test_examples']} examples): p {_p(h['mcnemar_unseen']['pvalue'])}. On "
        "new examples of the seen combinations the two codes reach "
        f"{h['factored']['seen_mean']:.1%} and {h['local']['seen_mean']:.1%}.",
        f"Part 2: m in {list(c['attributes'])}, training budgets {list(c['budgets'])} "
        "(combinations drawn uniformly among all 2^m), a test set of "
        f"{c['test_size']} examples per m and seed. Examples needed to reach "
        f"{c['target']:.0%} (interpolated on the seed-mean curve): "
        + "; ".join(f"m = {m}: factored {_fmt_reach(reach[m]['factored'])}, local "
                    f"{_fmt_reach(reach[m]['local'])}" for m in ms)
        + (f" (local / factored: {', '.join(ratios)})" if ratios else "")
        + ". The slope of log2(examples) against m is "
        + (f"{sl['factored']:.2f}" if sl["factored"] is not None else "undefined")
        + " for the factored code and "
        + (f"{sl['local']:.2f}" if sl["local"] is not None else "undefined")
        + " for the local code (1 would be a doubling per attribute). Significance at the "
          "smallest budget where the factored code reaches the target (McNemar on the "
          "predictions pooled over seeds; paired t on the seeds' accuracies): "
        + "; ".join(f"m = {m}: McNemar p {_p(s['curves'][m]['mcnemar']['pvalue'])}"
                    + (f", paired t p {_p(s['curves'][m]['paired_t_pvalue'])}"
                       if s["curves"][m]["paired_t_pvalue"] is not None else "")
                    for m in ms) + ". McNemar's test counts test examples only and ignores "
          "the spread between training runs, which the paired t over seeds includes.",
        "Claim tested (the slide: a distributed code learns each feature without seeing the "
        "exponentially many configurations of the others): (a) the factored code names unseen "
        "combinations, significantly better than the local code: "
        + ("held" if claim["unseen"] else "did not hold")
        + "; (b) the examples the local code needs grow exponentially with m (log2 slope ≥ "
          "0.5) and at least twice as fast as the factored code's: "
        + ("held" if claim["exponential_gap"] else "did not hold")
        + f". Published: {PUBLISHED}.",
        f"Wall time: part 1 {s['seconds_heldout']:.0f} s, part 2 {s['seconds_curves']:.0f} s "
        f"(BLAS threads: {s['threads'] or 'default'}).",
    ]
    return "\n\n".join(lines)


def _plot_curves(s, out):
    ms = list(s["curves"])
    fig, axes = new_figure(1, len(ms), figsize=(4 * len(ms), 3.6), squeeze=False)
    budgets = np.array(s["config"]["budgets"], dtype=float)
    for ax, m in zip(axes[0], ms):
        for code, color in (("factored", "tab:blue"), ("local", "tab:orange")):
            acc = np.array(s["curves"][m]["accuracy"][code])
            for row in acc:
                ax.plot(budgets, row, color=color, alpha=0.25, lw=0.8)
            ax.plot(budgets, acc.mean(0), "o-", color=color, label=f"{code} code")
        ax.axhline(s["config"]["target"], color="gray", ls=":", label="target")
        ax.set(xscale="log", xlabel="training examples (incl. validation)",
               ylabel="all attributes right (test)", title=f"m = {m} attributes", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return save_figure(fig, f"{out}/{NAME}_curves.png", dpi=110, tight=True)


def _plot_summary(s, out):
    fig, (a1, a2) = new_figure(1, 2, figsize=(11, 4))
    ms = [int(m) for m in s["curves"]]
    for code, color in (("factored", "tab:blue"), ("local", "tab:orange")):
        per_seed = np.array([[np.nan if v is None else v for v in
                              s["curves"][str(m)]["examples_to_target_per_seed"][code]]
                             for m in ms])
        for row in per_seed.T:
            a2.plot(ms, row, ".", color=color, alpha=0.4)
        y = [s["examples_to_target"][str(m)][code] for m in ms]
        a2.plot(ms, [np.nan if v is None else v for v in y], "o-", color=color,
                label=f"{code} code (seed-mean curve)")
    a2.set(yscale="log", xlabel="number of attributes m",
           ylabel=f"examples to {s['config']['target']:.0%} all-right",
           title="sample efficiency")
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    ns = list(s["heldout"])
    x = np.arange(len(ns))
    for k, (code, color) in enumerate((("factored", "tab:blue"), ("local", "tab:orange"))):
        for j, (part, hatch) in enumerate((("unseen", ""), ("seen", "//"))):
            vals = [s["heldout"][n][code][f"{part}_mean"] for n in ns]
            errs = [s["heldout"][n][code][f"{part}_sd"] for n in ns]
            a1.bar(x + (2 * k + j - 1.5) * 0.2, vals, 0.2, yerr=errs, color=color,
                   hatch=hatch, alpha=0.85, label=f"{code}, {part} combinations")
    a1.axhline(s["chance_all_right"], color="gray", ls=":", label="chance")
    a1.set(xticks=x, xticklabels=ns, xlabel="training examples per seen combination",
           ylabel="all attributes right (test)", ylim=(0, 1.4), yticks=np.linspace(0, 1, 6),
           title=f"m = {s['config']['heldout_attributes']}, "
                 f"{s['config']['heldout_combinations']} combinations held out")
    a1.legend(fontsize=7, ncol=2, loc="upper center")
    return save_figure(fig, f"{out}/{NAME}_summary.png", dpi=110, tight=True)
