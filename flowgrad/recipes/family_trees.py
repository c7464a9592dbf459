"""Relational embeddings on Hinton (1986)'s family trees (lecture: "Combining Multiple Sources
of Evidence with Shared Representations"; data: ``flowgrad.datasets.family_trees``, models:
``flowgrad.representations.relational``).

For each seed the 112 true (head, relation, tail) triples are split at random into ``n_test``
test triples, ``n_valid`` validation triples and the rest for training (every person and every
relation keeps at least one training triple). TransE (translation energy), RESCAL (bilinear)
and DistMult (diagonal bilinear) are trained with the margin ranking loss on corrupted triples;
the embedding size of each is chosen among ``dims`` by the filtered MRR on the validation split,
where the best checkpoint is also kept; the test triples are then ranked once (filtered
link prediction, head and tail sides), beside the expected metrics of a random ranking. The
learned person vectors are mapped to 2-D by PCA and coloured by generation, family and branch,
and a leave-one-out logistic-regression probe measures how well each attribute can be read
from them.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

import flowgrad as fg

from ..datasets.family_trees import RELATIONS, family_people, family_triples
from ..plotting import new_figure, save_figure
from ..representations.relational import (
    MODELS,
    TripleIndex,
    filtered_ranks,
    fit_triples,
    link_prediction,
    random_ranking,
)
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "family_trees"
DEFAULTS = {"models": ("transe", "rescal", "distmult"), "dims": (16, 32), "seeds": 5,
            "n_test": 12, "n_valid": 12, "steps": 600, "lr": 0.01, "negatives": 8,
            "margins": {"transe": 2.0, "rescal": 1.0, "distmult": 1.0},
            "weight_decay": {"transe": 0.0, "rescal": 1e-3, "distmult": 0.0},
            "eval_every": 50, "seed": 0, "threads": 1}
ATTRIBUTES = ("generation", "family", "branch", "sex")
PUBLISHED = ("Hinton (1986): trained on 100 of the 104 (person, relation) questions, the "
             "network answered all 4 held-out ones correctly in one run and 3 of 4 in "
             "another (a different model and protocol; compare with tail hits@1)")


def split_triples(ids: np.ndarray, n_test: int, n_valid: int, rng, tries: int = 1000):
    """(train, valid, test) rows of ``ids``, every entity and relation kept in train."""
    n_ent, n_rel = ids[:, [0, 2]].max() + 1, ids[:, 1].max() + 1
    for _ in range(tries):
        perm = rng.permutation(len(ids))
        test, valid, train = (ids[perm[:n_test]], ids[perm[n_test:n_test + n_valid]],
                              ids[perm[n_test + n_valid:]])
        if len(np.unique(train[:, [0, 2]])) == n_ent and len(np.unique(train[:, 1])) == n_rel:
            return train, valid, test
    raise ValueError(f"split_triples: no split of {len(ids)} triples into {n_test} test and "
                     f"{n_valid} validation keeps every entity and relation in training")


def _probe(vectors: np.ndarray, labels) -> float:
    """Leave-one-out accuracy of a logistic regression reading ``labels`` from ``vectors``."""
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels)
    right = 0
    for i in range(len(labels)):
        keep = np.arange(len(labels)) != i
        clf = LogisticRegression(max_iter=2000).fit(vectors[keep], labels[keep])
        right += int(clf.predict(vectors[i:i + 1])[0] == labels[i])
    return right / len(labels)


def _labels(people) -> dict:
    return {a: [str(getattr(p, a)) for p in people] for a in ATTRIBUTES}


def run(models=("transe", "rescal", "distmult"), dims=(16, 32), seeds=5, n_test=12, n_valid=12,
        steps=600, lr=0.01, negatives=8, margins=None, weight_decay=None, eval_every=50,
        seed=0, threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Link prediction on held-out family-tree triples for each model over ``seeds`` splits,
    the random baseline, attribute probes and the embedding maps."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        models, dims, seeds, steps = ("transe", "distmult"), (16,), 2, 250
    models = tuple(models) if isinstance(models, (list, tuple)) else (models,)
    dims = tuple(int(d) for d in (dims if isinstance(dims, (list, tuple)) else (dims,)))
    margins = {**DEFAULTS["margins"], **(margins or {})}
    weight_decay = {**DEFAULTS["weight_decay"], **(weight_decay or {})}
    for name in models:
        if name not in MODELS:
            raise ValueError(f"family_trees: unknown model {name!r}; expected one of "
                             f"{', '.join(MODELS)}")
    people = family_people()
    index = TripleIndex([p.name for p in people], RELATIONS)
    ids = index.encode(family_triples())
    known = {tuple(t) for t in ids.tolist()}
    labels = _labels(people)
    results = {name: {"test": [], "tail_hits@1": [], "dim": [], "best_step": [],
                      "valid_mrr": [], "probe": {a: [] for a in ATTRIBUTES}}
               for name in models}
    baseline, maps = [], {}
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=seeds * len(models) * len(dims), desc=NAME, leave=False)
    with _limit_threads(threads), Timer() as t:
        for s in range(seeds):
            train, valid, test = split_triples(ids, n_test, n_valid,
                                               np.random.default_rng([seed, s, 1]))
            train_known = {tuple(x) for x in train.tolist()}
            valid_known = train_known | {tuple(x) for x in valid.tolist()}
            baseline.append(random_ranking(test, known, index.num_entities))
            for name in models:
                best = None
                for dim in dims:
                    fg.manual_seed(1000 * s + dim)
                    model = MODELS[name](index.num_entities, index.num_relations, dim)
                    hist = fit_triples(model, train, index.num_entities,
                                       np.random.default_rng([seed, s, 2, dim]), steps=steps,
                                       lr=lr, margin=margins[name], negatives=negatives,
                                       weight_decay=weight_decay[name], known=train_known,
                                       valid=valid, valid_known=valid_known,
                                       eval_every=eval_every)
                    mrr = max(v for _, v in hist["valid"])
                    if best is None or mrr > best[0]:
                        best = (mrr, dim, model, hist["best_step"])
                    if bar is not None:
                        bar.update()
                mrr, dim, model, step = best
                r = results[name]
                r["test"].append(link_prediction(model, test, known, index.num_entities))
                tail = filtered_ranks(model, test, known, index.num_entities, sides=("tail",))
                r["tail_hits@1"].append(float((tail["tail"] <= 1).mean()))
                r["dim"].append(dim)
                r["best_step"].append(step)
                r["valid_mrr"].append(mrr)
                vectors = model.entity_vectors().astype(np.float64)
                for a in ATTRIBUTES:
                    r["probe"][a].append(_probe(vectors, labels[a]))
                if s == 0:
                    maps[name] = vectors
    if bar is not None:
        bar.close()
    table = {}
    keys = ("mean_rank", "mrr", "hits@1", "hits@3", "hits@10")
    for name, r in results.items():
        table[name] = {k: {"mean": float(np.mean([x[k] for x in r["test"]])),
                           "sd": float(np.std([x[k] for x in r["test"]], ddof=1))
                           if seeds > 1 else 0.0} for k in keys}
        table[name]["tail_hits@1"] = {"mean": float(np.mean(r["tail_hits@1"])),
                                      "sd": float(np.std(r["tail_hits@1"], ddof=1))
                                      if seeds > 1 else 0.0}
        table[name]["probe"] = {a: float(np.mean(v)) for a, v in r["probe"].items()}
    table["random"] = {k: {"mean": float(np.mean([x[k] for x in baseline])), "sd": 0.0}
                       for k in keys}
    majority = {a: max(labels[a].count(v) for v in set(labels[a])) / len(labels[a])
                for a in ATTRIBUTES}
    summary = {"title": "Relational embeddings of Hinton's family trees: link prediction on "
                        "held-out triples",
               "n_triples": len(ids), "n_queries": len({(h, r) for h, r, _ in ids.tolist()}),
               "n_train": len(ids) - n_test - n_valid, "n_valid": n_valid, "n_test": n_test,
               "seeds": seeds, "dims": list(dims), "steps": steps, "lr": lr,
               "negatives": negatives, "margins": margins, "weight_decay": weight_decay,
               "models": list(models), "table": table,
               "runs": {n: {k: v for k, v in r.items() if k != "probe"}
                        for n, r in results.items()},
               "probe_majority": majority, "published": PUBLISHED, "threads": threads,
               "command": command, "seed": seed, "seconds": t.seconds}
    for name in models:
        summary[f"{name}_test_mrr"] = table[name]["mrr"]["mean"]
        summary[f"{name}_test_hits@10"] = table[name]["hits@10"]["mean"]
    summary["random_test_mrr"] = table["random"]["mrr"]["mean"]
    summary["best_model"] = max(models, key=lambda n: table[n]["mrr"]["mean"])
    random_mrr = [b["mrr"] for b in baseline]
    for name in models:
        mrr = [x["mrr"] for x in results[name]["test"]]
        tt = stats.ttest_rel(mrr, random_mrr, alternative="greater") if seeds > 1 else None
        table[name]["vs_random_pvalue"] = (float(tt.pvalue) if tt is not None
                                           and np.isfinite(tt.pvalue) else None)
    best = summary["best_model"]
    probe = table[best]["probe"]
    summary["claim_held"] = {
        "link_prediction": all(table[n]["mrr"]["mean"] > table["random"]["mrr"]["mean"]
                               for n in models),
        "attributes": all(probe[a] > majority[a] for a in ("generation", "family", "branch"))}
    if write:
        figures = (_plot_maps(maps, people, out),)
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def _pm(v, digits=3) -> str:
    return f"{v['mean']:.{digits}f} ± {v['sd']:.{digits}f}"


def _rows(s) -> list:
    rows = []
    for name in s["models"] + ["random"]:
        v = s["table"][name]
        label = "random ranking (expected)" if name == "random" else name
        rows.append((f"{label}: filtered mean rank / MRR / hits@1 / hits@3 / hits@10 on the "
                     f"{s['n_test']} test triples (head and tail), mean ± sd over "
                     f"{s['seeds']} splits",
                     f"{_pm(v['mean_rank'], 2)} / {_pm(v['mrr'])} / {_pm(v['hits@1'])} / "
                     f"{_pm(v['hits@3'])} / {_pm(v['hits@10'])}", "—"))
    for k, name in enumerate(s["models"]):
        rows.append((f"{name}: tail hits@1 (the held-out person named first)",
                     _pm(s["table"][name]["tail_hits@1"]), PUBLISHED if k == 0 else "as above"))
    for name in s["models"]:
        p = s["table"][name]["probe"]
        rows.append((f"{name}: leave-one-out probe accuracy from the person vectors "
                     "(generation / family / branch / sex; majority class in brackets)",
                     " / ".join(f"{p[a]:.2f} ({s['probe_majority'][a]:.2f})"
                                for a in ATTRIBUTES),
                     "Hinton's hidden units encoded generation, nationality and branch"))
    return rows


def _notes(s) -> str:
    t = s["table"]
    best = s["best_model"]
    lines = [
        f"Data: the two isomorphic trees of Hinton (1986), 24 people and 12 relations, "
        f"{s['n_triples']} true (person, relation, person) triples, which form "
        f"{s['n_queries']} distinct (person, relation) questions: Hinton's 104 instances. Per "
        f"split: {s['n_test']} test, {s['n_valid']} validation and {s['n_train']} training "
        "triples, every person and relation in training.",
        "Models: TransE, score −‖e_h + r − e_t‖₁ with unit-norm person vectors (Bordes et al. "
        "2013); RESCAL, e_hᵀ W_r e_t (Nickel et al. 2011); DistMult, Σ e_h r e_t (Yang et al. "
        "2015), the last two with person vectors kept in the unit ball. Loss: the margin "
        f"ranking loss with {s['negatives']} corruptions per training triple per step (head or "
        "tail replaced at random, known training triples redrawn); margins "
        f"{ {n: s['margins'][n] for n in s['models']} }, Adam weight decay "
        f"{ {n: s['weight_decay'][n] for n in s['models']} }; full-batch Adam (lr {s['lr']:g}) "
        f"for {s['steps']} steps; the embedding size among {s['dims']} and the checkpoint "
        "(every 50 steps) chosen by filtered MRR on the validation split; test measured once. "
        "Ranks are filtered against all 112 true triples, ties counted half.",
        f"Outcome: the best model by test MRR is {best} (MRR {_pm(t[best]['mrr'])}, hits@10 "
        f"{_pm(t[best]['hits@10'])}) against a random ranking's expected MRR "
        f"{t['random']['mrr']['mean']:.3f} and hits@10 {t['random']['hits@10']['mean']:.3f}. "
        "Claims tested (the lecture: shared learned representations of entities and "
        "relations generalise to facts never seen, and their features capture the people's "
        "attributes): (a) every model's mean test MRR above the random ranking's: "
        + ("held" if s["claim_held"]["link_prediction"] else "did not hold") + " ("
        + ", ".join(f"{n} {t[n]['mrr']['mean']:.3f}"
                    + (f", one-sided paired t over splits p = {t[n]['vs_random_pvalue']:.2g}"
                       if t[n]["vs_random_pvalue"] is not None else "")
                    for n in s["models"]) + "); (b) generation, family and branch read from "
        f"{best}'s person vectors (leave-one-out logistic regression) better than the "
        "majority class: " + ("held" if s["claim_held"]["attributes"] else "did not hold")
        + " (" + ", ".join(f"{a} {t[best]['probe'][a]:.2f} against "
                           f"{s['probe_majority'][a]:.2f}" for a in ATTRIBUTES) + "; a "
        "leave-one-out accuracy far below the majority share means no linear signal, since "
        "leaving one person out makes the other class the majority of a balanced attribute). "
        "DistMult's score is symmetric in head and tail: it gives father(x, y) and "
        "father(y, x) the same score, although no relation of the trees is symmetric.",
        f"Published: {PUBLISHED}. The test here has {s['n_test']} triples per split and "
        f"{s['seeds']} splits, so differences between models of a few hundredths are within "
        "the spread.",
        "The figure maps the person vectors of the first split (PCA to 2-D) for each model, "
        "coloured by generation, family and branch (left: Christopher's son's couple and his "
        "parents; right: Andrew's daughter's couple and her parents; middle: the couple that "
        "joins the lines and their children).",
        f"Wall time: {s['seconds']:.0f} s (BLAS threads: {s['threads'] or 'default'}).",
    ]
    return "\n\n".join(lines)


def _plot_maps(maps, people, out):
    from sklearn.decomposition import PCA

    names = list(maps)
    fig, axes = new_figure(len(names), 3, figsize=(14, 4.2 * len(names)), squeeze=False)
    colours = {"generation": {"1": "tab:blue", "2": "tab:orange", "3": "tab:green"},
               "family": {"English": "tab:red", "Italian": "tab:purple"},
               "branch": {"left": "tab:cyan", "middle": "tab:olive", "right": "tab:brown"}}
    for row, name in zip(axes, names):
        xy = PCA(n_components=2).fit_transform(maps[name])
        for ax, (attr, palette) in zip(row, colours.items()):
            for value, colour in palette.items():
                sel = [i for i, p in enumerate(people) if str(getattr(p, attr)) == value]
                ax.scatter(xy[sel, 0], xy[sel, 1], c=colour, s=40,
                           marker="o", label=f"{attr} {value}")
            for i, p in enumerate(people):
                ax.annotate(p.name, xy[i], fontsize=6, xytext=(2, 2),
                            textcoords="offset points",
                            style="italic" if p.family == "Italian" else "normal")
            ax.set(title=f"{name}: coloured by {attr}", xlabel="PC 1", ylabel="PC 2")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
    return save_figure(fig, f"{out}/{NAME}_embeddings.png", dpi=100, tight=True)
