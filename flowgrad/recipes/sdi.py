"""SDI, structure discovery from interventions (Ke et al. 2019, arXiv 1910.01075; the lecture's
closing causal slides): its Table 2 (chain3, fork3, collider3, confounder3: structural Hamming
distance per seed, and the log-likelihood under a previously unseen intervention, baseline vs
proposed) and its Table 1 (Asia, Sachs, collider8, chain13, jungle13, collider13, full13: SHD
of the worst of 5 seeds) with NOTEARS, PC and GES run here on the same ground truths.

Ground truths: for the synthetic graphs a CategoricalSCM (SDI's MLP conditionals, redrawn at
every training distribution as the official ``alterdists``; soft interventions redraw one
node's network); for Asia and Sachs the BIF networks (interventions: one node's CPT rows
replaced by softmax(U(-2.5, 2.5))). SDI never sees the targets: it predicts them.

"Baseline" in Table 2. The slide does not define it. Here it is the same learner (the same
per-variable MLPs, data and functional updates) *without* structure learning: Phase 1 only,
its beliefs left at their initial sigma(gamma) ~ 0.5, so each variable's parent set is a coin
flip per configuration. "Proposed" is SDI's learner with its learned beliefs. Both are scored,
without adaptation, on samples of an intervention that neither saw (a fresh soft intervention
on a random node of the last training distribution), as the mean log-likelihood per variable
per sample in nats, averaged over 100 configurations drawn from each model's beliefs. The
slide's numbers are given beside ours; their normalisation is not stated on the slide, so the
comparison is of the sign and size of the gap, not of the values.

Every (graph, method, seed) cell is a JSON file in ``sdi_cells/`` of the run directory, written
as soon as it ends; rerunning with the same ``--out`` skips the finished cells, so the grid can
be completed over several runs. The budgets are recorded in every cell and in the .md.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import Timer, command_line, resolve_out, summary_machine, write_results

SMALL = ("chain3", "fork3", "collider3", "confounder3")
LARGE = ("asia", "sachs", "collider8", "chain13", "jungle13", "collider13", "full13")
BIF = ("asia", "sachs")
METHODS = ("sdi", "notears", "pc", "ges")
METHOD_NAMES = {"sdi": "SDI", "notears": "NOTEARS (linear, flowgrad)",
                "pc": "PC (causal-learn, chi-square)", "ges": "GES (causal-learn, BDeu)"}

# Table 2 of the slide / Ke et al. 2019 (arXiv 1910.01075v1): log-likelihood under a
# previously unseen intervention.
PUBLISHED_LL = {"baseline": {"fork3": -0.5036, "chain3": -0.4562, "confounder3": -0.3628,
                             "collider3": -0.5082},
                "proposed": {"fork3": -0.4502, "chain3": -0.3801, "confounder3": -0.2819,
                             "collider3": -0.4677}}
# Table 1 (SHD, worst of seeds 1-5).
PUBLISHED_SHD = {
    "Zheng et al. (NOTEARS)": [14, 22, 18, 39, 22, 24, 71],
    "Yu et al. (DAG-GNN)": [10, 19, 7, 14, 16, 12, 77],
    "Heinze-Deml et al.": [8, 17, 7, 12, 12, 7, 28],
    "Peters et al.": [5, 17, 2, 2, 8, 2, 16],
    "Eaton & Murphy": [0, "OOM", 7, "OOM", "OOM", "OOM", "OOM"],
    "SDI": [0, 6, 0, 0, 0, 0, 7],
}
SOURCE = ("Ke et al. 2019, arXiv 1910.01075 (Learning Neural Causal Models from Unknown "
          "Interventions), Table 1 (SHD, worst of seeds 1-5) and Table 2 (log-likelihood under "
          "an unseen intervention), as on the lecture's slide; the official code "
          "nke001/causal_learning_unknown_interventions (README commands) for the settings")

DEFAULTS = {"table": "both", "small_graphs": ",".join(SMALL), "large_graphs": ",".join(LARGE),
            "methods": ",".join(METHODS), "seeds": "1,2,3,4,5", "epochs": 12,
            "large_epochs": 30, "functional_batches": 100, "interventions": 100, "predict": 10,
            "gamma_lr": 0.05, "categories": 2, "large_categories": 3,
            "baseline_samples": 5000}
# the short variant: fork3, one seed, a few hundred interventions, Table 2 only
QUICK = {"graphs": "fork3", "seeds": "1", "epochs": 4, "functional_batches": 100,
         "interventions": 100, "predict": 10, "batch_size": 256}


def _names(value, allowed: tuple, what: str) -> list:
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    names = [str(v).strip() for v in items if str(v).strip()]
    bad = [n for n in names if n not in allowed]
    if bad:
        raise ValueError(f"sdi: unknown {what} {bad!r}; expected some of {', '.join(allowed)}")
    return names


def _seeds(seeds) -> list:
    if isinstance(seeds, (list, tuple)):
        return [int(s) for s in seeds]
    if isinstance(seeds, str):
        return [int(s) for s in seeds.split(",") if s.strip()]
    return list(range(1, int(seeds) + 1))


def ground_truth(graph: str, seed: int, categories: int):
    """The truth of ``graph`` for ``seed``: a BIF network (asia, sachs) or a CategoricalSCM on
    the synthetic family with its MLP conditionals drawn from ``seed``."""
    from ..causal import CategoricalSCM, graph_family, load_bif

    if graph in BIF:
        return load_bif(graph)
    return CategoricalSCM(graph_family(graph), categories, seed=seed)


def true_edge_count(graph: str) -> int:
    """The number of edges of ``graph``'s true DAG: the SHD of a method that outputs no edge."""
    return int(np.asarray(ground_truth(graph, seed=0, categories=2).adjacency).sum())


def sdi_config(setup: dict, seed: int, epochs: int):
    from ..causal import SDIConfig

    return SDIConfig(epochs=epochs, functional_batches=setup["functional_batches"],
                     interventions_per_distribution=setup["interventions"],
                     predict=setup["predict"], gamma_lr=setup["gamma_lr"],
                     batch_size=setup.get("batch_size", 256), seed=seed)


def sdi_cell(graph: str, seed: int, setup: dict, epochs: int, categories: int,
             table2: bool, progress: bool) -> dict:
    """One SDI run; for Table 2 also the log-likelihoods under an unseen intervention."""
    from dataclasses import replace

    from ..causal import fit_sdi, structural_hamming_distance

    truth = ground_truth(graph, seed, categories)
    cards = truth.cardinalities
    config = sdi_config(setup, seed, epochs)
    res = fit_sdi(truth, cards, config, progress=progress)
    cell = {"graph": graph, "method": "sdi", "seed": seed,
            "shd": int(structural_hamming_distance(res.edge_probs, truth.adjacency)),
            "seconds": res.seconds, "epochs_run": len(res.history),
            "seconds_per_epoch": res.seconds / max(1, len(res.history)),
            "converged_epoch": res.converged_epoch,
            "intervention_accuracy": res.intervention_accuracy,
            "shd_per_epoch": [h.get("shd") for h in res.history],
            "edge_probs": np.round(res.edge_probs, 4).tolist(),
            "true_adjacency": np.asarray(truth.adjacency).tolist(),
            "budget": config.budget()}
    if table2:
        final = res.truth if res.truth is not None else truth
        with Timer() as t:
            base = fit_sdi(final, cards, replace(config, epochs=1,
                                                 interventions_per_distribution=0,
                                                 redraw_truth=False), progress=False)
            rng = np.random.default_rng(10_000 + seed)
            node = int(rng.integers(0, len(cards)))
            unseen = final.intervene(node, rng).sample(2000, rng)
            cell.update({
                "unseen_target": node,
                "loglik_proposed": res.learner.log_likelihood(unseen, 100, rng),
                "loglik_proposed_map_graph": res.learner.log_likelihood(
                    unseen, graph=res.adjacency),
                "loglik_baseline": base.learner.log_likelihood(unseen, 100, rng),
                "loglik_truth_before_intervention": float(
                    final.log_prob(unseen).mean() / len(cards))})
        cell["table2_seconds"] = t.seconds
    return cell


def baseline_cell(graph: str, method: str, seed: int, setup: dict, categories: int) -> dict:
    """NOTEARS, PC or GES on ``baseline_samples`` observational samples of the same truth."""
    from ..causal import ges, notears_linear, pc, structural_hamming_distance

    truth = ground_truth(graph, seed, categories)
    x = truth.sample(setup["baseline_samples"], np.random.default_rng(seed))
    with Timer() as t:
        if method == "notears":
            w = notears_linear(x.astype(np.float64))
            adj = (np.abs(w) > 0).astype(int)
        elif method == "pc":
            adj = pc(x, test="chisq")
        else:
            adj = ges(x, score="bdeu")
    return {"graph": graph, "method": method, "seed": seed,
            "shd": int(structural_hamming_distance(adj, truth.adjacency)),
            "seconds": t.seconds, "adjacency": np.asarray(adj).tolist(),
            "budget": {"samples": setup["baseline_samples"], "data": "observational"}}


def _cell(cells: Path, graph: str, method: str, seed: int, setup: dict, make,
          check: bool = True) -> dict:
    """The cell's record from ``cells``, or ``make()``'s, written there. ``check``: a cell
    found must have been written with ``setup`` (off when only summarising: a table may then
    gather cells of several budgets, each listed with its own)."""
    path = cells / f"{graph}_{method}_seed{seed}.json"
    if path.exists():
        done = json.loads(path.read_text())
        if check and done.get("setup") != setup:
            raise ValueError(f"{path} was written with other settings ({done.get('setup')}); "
                             f"this run has {setup}. Choose another --out")
        return done
    cell = make()
    cell["setup"] = setup
    path.write_text(json.dumps(cell, indent=1, default=float) + "\n")
    return cell


def _fmt(v, digits: int = 4) -> str:
    if v is None:
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def run(table="both", small_graphs=DEFAULTS["small_graphs"],
        large_graphs=DEFAULTS["large_graphs"], methods=DEFAULTS["methods"],
        seeds=DEFAULTS["seeds"], epochs=12, large_epochs=30, functional_batches=100,
        interventions=100, predict=10, gamma_lr=0.05, categories=2, large_categories=3,
        baseline_samples=5000, train=True, threads=1, out=None, quick=False,
        progress=True) -> dict:
    """Run every cell of Table 2 (``table`` "2"), Table 1 ("1") or both not finished yet in
    ``out``, then summarise all the cells found there. ``train=False`` only rewrites the summary
    from the cells already there."""
    from ..causal import plot_graph_comparison
    from .ptb_lstm import _limit_threads

    command = command_line("sdi", run, locals())
    out = Path(resolve_out("sdi", out))
    tables = {"both": ("2", "1"), "2": ("2",), "1": ("1",)}.get(str(table))
    if tables is None:
        raise ValueError(f"sdi: table={table!r}; expected '1', '2' or 'both'")
    small = _names(small_graphs, SMALL, "graph")
    large = _names(large_graphs, LARGE, "graph")
    kinds = _names(methods, METHODS, "method")
    seed_list = _seeds(seeds)
    setup = {"functional_batches": functional_batches, "interventions": interventions,
             "predict": predict, "gamma_lr": gamma_lr, "baseline_samples": baseline_samples,
             "quick": bool(quick)}
    if quick:
        tables, small, seed_list = ("2",), QUICK["graphs"].split(","), _seeds(QUICK["seeds"])
        epochs = QUICK["epochs"]
        setup.update({k: QUICK[k] for k in ("functional_batches", "interventions", "predict",
                                            "batch_size")})
    cells_dir = out / "sdi_cells"
    cells_dir.mkdir(parents=True, exist_ok=True)
    small_cells, large_cells = [], []
    with _limit_threads(threads), Timer() as timer:
        if "2" in tables:
            for graph in small:
                for seed in seed_list:
                    if not train and not (cells_dir / f"{graph}_sdi_seed{seed}.json").exists():
                        continue
                    small_cells.append(_cell(cells_dir, graph, "sdi", seed,
                                             {**setup, "epochs": epochs,
                                              "categories": categories},
                                             lambda g=graph, s=seed: sdi_cell(
                                                 g, s, setup, epochs, categories, True,
                                                 progress), check=train))
        if "1" in tables:
            for graph in large:
                n = categories if graph in BIF else large_categories
                for method in kinds:
                    for seed in seed_list:
                        path = cells_dir / f"{graph}_{method}_seed{seed}.json"
                        if not train and not path.exists():
                            continue
                        if method == "sdi":
                            key = {**setup, "epochs": large_epochs, "categories": n}
                        else:
                            key = {"baseline_samples": baseline_samples, "categories": n}
                        large_cells.append(_cell(
                            cells_dir, graph, method, seed, key,
                            lambda g=graph, m=method, s=seed, n=n: (
                                sdi_cell(g, s, setup, large_epochs, n, False, progress)
                                if m == "sdi" else baseline_cell(g, m, s, setup, n)),
                            check=train))
    summary, table_rows, notes, figures = _summarise(small_cells, large_cells, small, large,
                                                     kinds, out, plot_graph_comparison)
    summary.update({"title": "SDI: structure discovery from interventions (Ke et al. 2019)",
                    "command": command, "seed": ",".join(map(str, seed_list)),
                    "seconds": timer.seconds if train else sum(
                        c.get("seconds", 0.0) for c in small_cells + large_cells),
                    "setup": setup, "epochs": epochs,
                    "large_epochs": large_epochs, "quick": bool(quick)})
    if not train:
        summary["machine"] = summary_machine()
    commands = _cell_commands(small_cells, large_cells)
    notes += ("\n\nThe runs behind these tables (each writes its cells in sdi_cells/; a run skips "
              "the cells its output directory holds already):\n\n"
              + "\n".join(f"- `{c}`" for c in commands))
    summary["cell_commands"] = commands
    write_results("sdi", out, summary, table_rows, notes, figures)
    return summary


def _cell_commands(small_cells: list, large_cells: list) -> list[str]:
    """One command per group of cells with the same settings that trains exactly those
    cells: Table 2's SDI cells, Table 1's SDI cells, Table 1's baseline cells."""
    per_graph = {}
    for table, cells in (("2", small_cells), ("1", large_cells)):
        for c in cells:
            setup = c.get("setup", {})
            sdi = c["method"] == "sdi"
            key = (table, sdi, tuple(sorted((k, v) for k, v in setup.items()
                                            if k not in ("categories", "quick"))))
            g = per_graph.setdefault(key + (c["graph"],), {"methods": set(), "seeds": set(),
                                                           "categories": set()})
            g["methods"].add(c["method"])
            g["seeds"].add(c["seed"])
            g["categories"].add(setup.get("categories"))
    groups = {}  # graphs with the same settings, methods and seeds share one command
    for (*key, graph), g in per_graph.items():
        merged = groups.setdefault(tuple(key) + (tuple(sorted(g["methods"])),
                                                 tuple(sorted(g["seeds"]))),
                                   {"graphs": set(), "methods": g["methods"],
                                    "seeds": g["seeds"], "categories": set()})
        merged["graphs"].add(graph)
        merged["categories"] |= g["categories"]
    commands = []
    for (table, _sdi, setup, _methods, _seeds), g in sorted(groups.items()):
        values = {"table": table, "seeds": ",".join(map(str, sorted(g["seeds"])))}
        setup = dict(setup)
        if table == "2":
            values["small_graphs"] = ",".join(x for x in SMALL if x in g["graphs"])
            values["epochs"] = setup.pop("epochs", None)
            if g["categories"] != {None}:
                values["categories"] = min(c for c in g["categories"] if c is not None)
        else:
            values["large_graphs"] = ",".join(x for x in LARGE if x in g["graphs"])
            values["methods"] = ",".join(m for m in METHODS if m in g["methods"])
            values["large_epochs"] = setup.pop("epochs", None)
        values.update({k: v for k, v in setup.items() if k in DEFAULTS})
        values = {k: v for k, v in values.items() if v is not None}
        commands.append(command_line("sdi", run, values))
    return commands


def _summarise(small_cells, large_cells, small, large, kinds, out, plot) -> tuple:
    summary, rows, lines, figures = {}, [], [], []
    if small_cells:
        by_graph = {g: [c for c in small_cells if c["graph"] == g] for g in small}
        lines += ["## Table 2 setting: 3-variable graphs, SDI with predicted targets", "",
                  "| graph | SHD per seed | seeds with SHD 0 | baseline LL (ours) | proposed LL "
                  "(ours) | seeds proposed > baseline | true SCM before the intervention | "
                  "baseline LL (slide) | proposed LL (slide) | target prediction "
                  "accuracy | seconds per seed (mean) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for g, cells in by_graph.items():
            if not cells:
                continue
            shds = [c["shd"] for c in cells]
            base = float(np.mean([c["loglik_baseline"] for c in cells]))
            prop = float(np.mean([c["loglik_proposed"] for c in cells]))
            acc = float(np.mean([c["intervention_accuracy"] or 0 for c in cells]))
            secs = float(np.mean([c["seconds"] for c in cells]))
            zero = sum(s == 0 for s in shds)
            wins = sum(c["loglik_proposed"] > c["loglik_baseline"] for c in cells)
            true_min = float(np.mean([np.array(c["edge_probs"])[
                np.array(c["true_adjacency"]) == 1].min() for c in cells]))
            oracle = float(np.mean([c["loglik_truth_before_intervention"] for c in cells]))
            summary[g] = {"shd": shds, "shd_zero_seeds": zero, "loglik_baseline": base,
                          "loglik_proposed": prop, "ll_gain": prop - base,
                          "proposed_better_seeds": wins, "loglik_truth_before": oracle,
                          "true_edge_belief_min": true_min,
                          "intervention_accuracy": acc,
                          "seconds_mean": secs}
            lines.append(f"| {g} | {', '.join(map(str, shds))} | {zero}/{len(shds)} | "
                         f"{base:.4f} | {prop:.4f} | {wins}/{len(cells)} | {oracle:.4f} | "
                         f"{PUBLISHED_LL['baseline'][g]:.4f} | "
                         f"{PUBLISHED_LL['proposed'][g]:.4f} | {acc:.2f} | {secs:.0f} |")
            rows.append((f"{g}: seeds with SHD 0", f"{zero}/{len(shds)} (SHD {shds})",
                         "SDI recovers the graph (Table 1 caption)"))
            rows.append((f"{g}: LL unseen intervention, baseline / proposed",
                         f"{base:.4f} / {prop:.4f}",
                         f"{PUBLISHED_LL['baseline'][g]:.4f} / "
                         f"{PUBLISHED_LL['proposed'][g]:.4f}"))
        first = small_cells[0]
        fig = plot(np.array(first["edge_probs"]), np.array(first["true_adjacency"]),
                   out / "sdi_table2_graph.png",
                   title=f"SDI on {first['graph']}, seed {first['seed']}")
        figures.append(fig)
        summary["shd_zero_seeds_min"] = min(v["shd_zero_seeds"] for k, v in summary.items()
                                            if isinstance(v, dict))
        lines += ["", "LL: mean log-likelihood per variable per sample (nats) of 2000 samples "
                  "of an intervention unseen in training, without adaptation, mean over "
                  "seeds; the baseline is the learner without structure learning (see the "
                  "module's note). Per-seed values, the truth's own log-likelihood of the same "
                  "samples and the learned graph's are in the cell files.", ""]
        budget = small_cells[0]["budget"]
        lines += ["Budget per seed (SDIConfig): " + ", ".join(
            f"{k}={v}" for k, v in budget.items()), ""]
    if large_cells:
        lines += ["## Table 1: SHD, worst of the seeds run (per-seed values in brackets)", "",
                  "| method | " + " | ".join(large) + " |",
                  "|---|" + "---|" * len(large)]
        for name, vals in PUBLISHED_SHD.items():
            row = dict(zip(LARGE, vals))
            lines.append(f"| {name} (published) | " + " | ".join(str(row[g]) for g in large)
                         + " |")
        empty = {g: true_edge_count(g) for g in large}
        summary["empty_graph_shd"] = empty
        lines.append("| the empty graph (reference: SHD = the number of true edges) | "
                     + " | ".join(str(empty[g]) for g in large) + " |")
        summary["table1"] = {}
        for method in kinds:
            cells = [c for c in large_cells if c["method"] == method]
            if not cells:
                continue
            out_row = []
            for g in large:
                mine = [c for c in cells if c["graph"] == g]
                if not mine:
                    out_row.append("not run")
                    continue
                shds = [c["shd"] for c in mine]
                secs = sum(c["seconds"] for c in mine)
                summary["table1"][f"{g}/{method}"] = {"worst": max(shds), "shd": shds,
                                                      "seconds": secs}
                out_row.append(f"{max(shds)} ({', '.join(map(str, shds))}; {secs:.0f} s)")
            lines.append(f"| {METHOD_NAMES[method]} (here) | " + " | ".join(out_row) + " |")
        sdi_cells = [c for c in large_cells if c["method"] == "sdi"]
        if sdi_cells:
            c = sdi_cells[0]
            figures.append(plot(np.array(c["edge_probs"]), np.array(c["true_adjacency"]),
                                out / "sdi_table1_graph.png",
                                title=f"SDI on {c['graph']}, seed {c['seed']}"))
            budgets = {}  # the cells of each budget (SDIConfig less its seed)
            for x in sdi_cells:
                key = json.dumps({k: v for k, v in x["budget"].items() if k != "seed"})
                budgets.setdefault(key, []).append(x)
            for group in budgets.values():
                budget = {k: v for k, v in group[0]["budget"].items() if k != "seed"}
                lines += ["", f"SDI budget of {', '.join(dict.fromkeys(x['graph'] for x in group))}"
                          ": " + ", ".join(f"{k}={v}" for k, v in budget.items()) + "; seconds per "
                          "epoch: " + ", ".join(f"{x['graph']} seed {x['seed']} "
                                                f"{x['seconds_per_epoch']:.0f} s" for x in group)]
        lines += ["", "\"not run\": no cell for it in the run directory yet; rerunning the "
                  "same command with the same --out computes only the missing cells.",
                  "", "NOTEARS, PC and GES see observational samples only (they are "
                  "observational methods); SHD counts a reversed edge twice and an undirected "
                  "edge of a CPDAG as present in both directions. Seconds: the sum over seeds.",
                  ""]
    lines += [f"Source of the published numbers: {SOURCE}."]
    return summary, rows, "\n".join(lines), figures
