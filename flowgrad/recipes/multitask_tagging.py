"""Multitask learning with a shared representation on the Brown corpus (lecture: "Multitask
Learning"; Collobert & Weston, ICML 2008; Collobert et al., "Natural Language Processing (Almost)
from Scratch", JMLR 12, 2011).

Data: the tagged Brown corpus (``flowgrad.datasets.brown_tags``, tags simplified to the
universal-like coarse set by default), split by Bengio et al.'s 2003 word ranges: the sentences
that start within the first 800,000 words train, the next 200,000 validate, the rest test.
Words are lower-cased (a capitalisation feature keeps the case, Collobert et al. 2011, section
3.5); the ``max_vocab`` − 2 most frequent training words are kept, the rest map to <unk>.

For each labelled fraction (the share of training sentences whose tags are kept, drawn per
seed, the smaller sets inside the larger) two networks of the same architecture
(``WindowNetwork``: window 5, shared word embeddings, a shared HardTanh hidden layer) are trained
from the same initialisation by SGD (gradient norm clipped) for the same number of steps, each
step drawing ``labelled_batch`` labelled windows:

* single-task: the tagging head only, on the labelled windows;
* multitask: the same labelled windows mixed with ``unlabelled_batch`` windows drawn from all the
  training text, whose tag target is missing; the tagging loss (softmax cross-entropy over the
  labelled windows only) plus the language-model ranking loss over every window of the batch
  against its centre-corrupted copy (margin 1).

The checkpoint of best tagging accuracy on (a fixed sample of) the validation split, measured
every ``eval_every`` steps, is kept: the step count is chosen on validation. The test split is
tagged once at the end. Per fraction: McNemar's test on the test predictions pooled over seeds
and a paired t-test over seeds; the most-frequent-tag baseline of the same labelled sentences.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy import stats

import flowgrad as fg

from ..datasets.brown_tags import brown_tagged
from ..debug.significance import mcnemar
from ..plotting import new_figure, save_figure
from ..representations.multitask import (
    MISSING,
    WindowNetwork,
    capitalization,
    make_windows,
    most_frequent_tag,
    multitask_loss,
    predict_tags,
)
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, resolve_out, write_results

NAME = "multitask_tagging"
DEFAULTS = {"fractions": (0.01, 0.1, 1.0), "seeds": 3, "tagset": "universal",
            "max_vocab": 10_000, "window": 5, "embedding_dim": 50, "caps_dim": 5, "hidden": 100,
            "steps": 4000, "labelled_batch": 32, "unlabelled_batch": 96, "lr": 0.5,
            "clip": 5.0, "lm_weight": 1.0, "eval_every": 400, "valid_words": 20_000, "seed": 0,
            "threads": 1}
N_TRAIN, N_VALID = 800_000, 200_000  # Bengio, Ducharme, Vincent & Jauvin 2003, Brown
PUBLISHED = ("the tagger gains from the language model trained on unlabelled text through the "
             "shared word representation (Collobert & Weston, ICML 2008; Collobert et al., JMLR "
             "2011, sections 4 and 5, with the window network on the WSJ and its 45 tags); the "
             "direction tested, as the lecture puts it: the gain is largest when "
             "labels are scarce. Their language models trained for weeks on far larger corpora, so "
             "only the direction is compared")
PAD, UNK = "<pad>", "<unk>"


def prepare(tagset: str, max_vocab: int, window: int) -> dict:
    """Windows, capitalisation ids and tag ids of the three splits (Bengio et al.'s ranges)."""
    corpus = brown_tagged(tagset=tagset)
    bound = np.searchsorted([N_TRAIN, N_TRAIN + N_VALID], corpus.starts, side="right")
    split_of = {0: "train", 1: "valid", 2: "test"}
    sents = {k: [] for k in split_of.values()}
    for words, tags, b in zip(corpus.sentences, corpus.tags, bound):
        sents[split_of[int(b)]].append((words, tags))
    counts = Counter(w.lower() for words, _ in sents["train"] for w in words)
    itos = [PAD, UNK] + [w for w, _ in counts.most_common(max_vocab - 2)]
    stoi = {w: i for i, w in enumerate(itos)}
    tag_names = corpus.tag_names()
    tag_id = {t: i for i, t in enumerate(tag_names)}
    data = {"vocab": itos, "tags": tag_names}
    word_id, caps_id = {}, {}  # per word type: the lower-cased id and the capitalisation
    for words, _ in corpus_pairs(sents):
        for w in words:
            if w not in word_id:
                word_id[w], caps_id[w] = stoi.get(w.lower(), 1), capitalization(w)
    for name, pairs in sents.items():
        ids = [[word_id[w] for w in words] for words, _ in pairs]
        caps = [[caps_id[w] for w in words] for words, _ in pairs]
        data[name] = {"words": make_windows(ids, window), "caps": make_windows(caps, window),
                      "tags": np.array([tag_id[t] for _, tags in pairs for t in tags], np.int64),
                      "ids": np.concatenate([np.asarray(s, np.int64) for s in ids]),
                      "sentence_of": np.repeat(np.arange(len(pairs)), [len(s) for s in ids]),
                      "sentences": len(pairs)}
    data["train_types"] = len(counts)
    return data


def corpus_pairs(sents: dict):
    """Every (words, tags) pair of the splits, train first."""
    for pairs in sents.values():
        yield from pairs


def labelled_sets(n_sentences: int, fractions, seed: int) -> dict:
    """For each fraction, the labelled training sentences: the first ⌈f·n⌉ of one random
    permutation per seed (so the smaller sets lie inside the larger ones)."""
    order = np.random.default_rng([seed, 17]).permutation(n_sentences)
    return {f: np.sort(order[:max(1, int(np.ceil(f * n_sentences)))]) for f in fractions}


def _accuracy(model, split, rows=None) -> float:
    w, c = split["words"], split["caps"]
    if rows is not None:
        w, c = w[rows], c[rows]
    pred = predict_tags(model, w, c)
    return float((pred == (split["tags"] if rows is None else split["tags"][rows])).mean())


def train_one(data, labelled: np.ndarray, multitask: bool, config: dict, seed: int,
              valid_rows: np.ndarray) -> dict:
    """One tagger (multitask or single-task) trained on the labelled windows ``labelled``; the
    checkpoint of best validation accuracy kept; the test set tagged once."""
    train = data["train"]
    fg.manual_seed(seed)
    model = WindowNetwork(len(data["vocab"]), len(data["tags"]), window=config["window"],
                          embedding_dim=config["embedding_dim"], hidden=config["hidden"],
                          caps_dim=config["caps_dim"], lm_head=multitask)
    opt = fg.optim.SGD(model.parameters(), lr=config["lr"])
    rng = np.random.default_rng([seed, len(labelled), int(multitask)])
    n_train = len(train["tags"])
    lb, ub = config["labelled_batch"], config["unlabelled_batch"]
    curve, best = [], (-1.0, 0, None)
    tag_losses, lm_losses = [], []
    with Timer() as t:
        for step in range(1, config["steps"] + 1):
            rows = labelled[rng.integers(0, len(labelled), lb)]
            tags = train["tags"][rows]
            if multitask:
                rows = np.concatenate([rows, rng.integers(0, n_train, ub)])
                tags = np.concatenate([tags, np.full(ub, MISSING, np.int64)])
            loss, parts = multitask_loss(model, train["words"][rows], tags, rng,
                                         caps=train["caps"][rows],
                                         lm_weight=config["lm_weight"])
            opt.zero_grad()
            loss.backward()
            if config["clip"]:
                fg.nn.utils.clip_grad_norm_(model.parameters(), config["clip"])
            opt.step()
            tag_losses.append(parts["tag"].item())
            if "lm" in parts:
                lm_losses.append(parts["lm"].item())
            if step % config["eval_every"] == 0 or step == config["steps"]:
                acc = _accuracy(model, data["valid"], valid_rows)
                curve.append((step, acc))
                if acc > best[0]:
                    best = (acc, step, {k: v.detach().numpy().copy()
                                        for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    test = data["test"]
    pred = predict_tags(model, test["words"], test["caps"])
    return {"valid_accuracy": best[0], "best_step": best[1], "curve": curve,
            "test_pred": pred, "test_accuracy": float((pred == test["tags"]).mean()),
            "final_tag_loss": float(np.mean(tag_losses[-200:])),
            "final_lm_loss": float(np.mean(lm_losses[-200:])) if lm_losses else None,
            "seconds": t.seconds}


def run(fractions=(0.01, 0.1, 1.0), seeds=3, tagset="universal", max_vocab=10_000, window=5,
        embedding_dim=50, caps_dim=5, hidden=100, steps=4000, labelled_batch=32,
        unlabelled_batch=96, lr=0.5, clip=5.0, lm_weight=1.0, eval_every=400, valid_words=20_000,
        seed=0, threads=1, out=None, quick=False, progress=True, write: bool = True) -> dict:
    """Single-task against multitask tagging accuracy at each labelled fraction, over seeds."""
    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    if quick:
        seeds, max_vocab, hidden, steps, eval_every, valid_words = 1, 3000, 50, 400, 100, 5000
    fractions = tuple(float(f) for f in (fractions if isinstance(fractions, (list, tuple))
                                         else (fractions,)))
    config = {"window": window, "embedding_dim": embedding_dim, "caps_dim": caps_dim,
              "hidden": hidden, "steps": steps, "labelled_batch": labelled_batch,
              "unlabelled_batch": unlabelled_batch, "lr": lr, "clip": clip, "lm_weight": lm_weight,
              "eval_every": eval_every}
    with _limit_threads(threads), Timer() as total:
        with Timer() as t_data:
            data = prepare(tagset, max_vocab, window)
        train, test = data["train"], data["test"]
        n_valid = len(data["valid"]["tags"])
        valid_rows = np.sort(np.random.default_rng([seed, 5]).choice(
            n_valid, min(valid_words, n_valid), replace=False))
        results = {f: {"single": [], "multi": [], "mft": [], "n_labelled": []}
                   for f in fractions}
        seen_test = {f: [] for f in fractions}
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=2 * seeds * len(fractions), desc=NAME, leave=False)
        for s in range(seeds):
            sets = labelled_sets(train["sentences"], fractions, seed + s)
            for f in fractions:
                rows = np.flatnonzero(np.isin(train["sentence_of"], sets[f]))
                r = results[f]
                r["n_labelled"].append(int(len(rows)))
                mft = most_frequent_tag(train["ids"][rows], train["tags"][rows], test["ids"])
                r["mft"].append(float((mft == test["tags"]).mean()))
                seen_test[f].append(np.isin(test["ids"], np.unique(train["ids"][rows]))
                                    & (test["ids"] != 1))
                for kind in ("single", "multi"):
                    r[kind].append(train_one(data, rows, kind == "multi", config, seed + s,
                                             valid_rows))
                    if bar is not None:
                        bar.update()
        if bar is not None:
            bar.close()
    summary = _summarise(data, results, seen_test, fractions, seeds)
    summary.update({
        "title": "Multitask learning on Brown (Collobert & Weston 2008): a POS tagger with and "
                 "without a shared language model, against the labelled fraction",
        "fractions": list(fractions), "seeds": seeds, "tagset": tagset, "tags": data["tags"],
        "vocab_size": len(data["vocab"]), "train_types": data["train_types"],
        "config": config, "valid_words": int(len(valid_rows)),
        "split_words": {k: int(len(data[k]["tags"])) for k in ("train", "valid", "test")},
        "split_sentences": {k: int(data[k]["sentences"]) for k in ("train", "valid", "test")},
        "test_unk_rate": float((test["ids"] == 1).mean()), "published": PUBLISHED,
        "threads": threads, "command": command, "seed": seed, "quick": quick,
        "seconds_data": t_data.seconds, "seconds": total.seconds})
    if write:
        figure = _plot(summary, out)
        write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                      figures=(figure,))
    return summary


def _mean_sd(values) -> dict:
    v = np.asarray(values, float)
    return {"mean": float(v.mean()), "sd": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "values": v.tolist()}


def _summarise(data, results, seen_test, fractions, seeds) -> dict:
    y = data["test"]["tags"]
    table, runs = {}, {}
    for f in fractions:
        r, key = results[f], f"{f:g}"
        single = [x["test_accuracy"] for x in r["single"]]
        multi = [x["test_accuracy"] for x in r["multi"]]
        pooled_y = np.concatenate([y] * seeds)
        m = mcnemar(np.concatenate([x["test_pred"] for x in r["multi"]]),
                    np.concatenate([x["test_pred"] for x in r["single"]]), pooled_y,
                    names=("multitask", "single-task"))
        tt = stats.ttest_rel(multi, single) if seeds > 1 else None
        unseen = [~s for s in seen_test[f]]
        acc_unseen = {k: [float((x["test_pred"][u] == y[u]).mean()) if u.any() else float("nan")
                          for x, u in zip(r[k], unseen)] for k in ("single", "multi")}
        table[key] = {
            "single": _mean_sd(single), "multi": _mean_sd(multi), "mft": _mean_sd(r["mft"]),
            "gain": _mean_sd(np.subtract(multi, single)),
            "single_unseen": _mean_sd(acc_unseen["single"]),
            "multi_unseen": _mean_sd(acc_unseen["multi"]),
            "unseen_share": float(np.mean([u.mean() for u in unseen])),
            "n_labelled_words": int(np.mean(r["n_labelled"])),
            "mcnemar": m.as_dict(), "ttest_pvalue": float(tt.pvalue) if tt else None,
            "best_step": {k: [x["best_step"] for x in r[k]] for k in ("single", "multi")},
            "valid": {k: _mean_sd([x["valid_accuracy"] for x in r[k]])
                      for k in ("single", "multi")},
            "seconds": {k: float(sum(x["seconds"] for x in r[k])) for k in ("single", "multi")}}
        runs[key] = {k: [{kk: vv for kk, vv in x.items() if kk != "test_pred"} for x in r[k]]
                     for k in ("single", "multi")}
    keys = [f"{f:g}" for f in fractions]
    gains = [table[k]["gain"]["mean"] for k in keys]
    smallest, largest = keys[int(np.argmin(fractions))], keys[int(np.argmax(fractions))]
    return {"table": table, "runs": runs,
            "single_test_accuracy": {k: table[k]["single"]["mean"] for k in keys},
            "multitask_test_accuracy": {k: table[k]["multi"]["mean"] for k in keys},
            "mft_test_accuracy": {k: table[k]["mft"]["mean"] for k in keys},
            "gain": dict(zip(keys, gains)),
            "multitask_helps_at_smallest": bool(
                table[smallest]["gain"]["mean"] > 0
                and table[smallest]["mcnemar"]["pvalue"] < 0.05),
            "gain_largest_at_smallest_fraction": bool(
                table[smallest]["gain"]["mean"] >= max(gains)),
            "gain_smallest_minus_largest": float(table[smallest]["gain"]["mean"]
                                                 - table[largest]["gain"]["mean"])}


def _pct(v: dict) -> str:
    return f"{100 * v['mean']:.2f}% ± {100 * v['sd']:.2f}"


def _rows(s) -> list:
    rows = []
    for key, t in s["table"].items():
        m = t["mcnemar"]
        tt = f", paired t-test p = {t['ttest_pvalue']:.2g}" if t["ttest_pvalue"] is not None \
            else ""
        rows.append((f"labelled fraction {key} ({t['n_labelled_words']} tagged words): test "
                     f"accuracy, single-task / multitask (mean ± sd over {s['seeds']} seeds)",
                     f"{_pct(t['single'])} / {_pct(t['multi'])} (gain "
                     f"{100 * t['gain']['mean']:+.2f} points; McNemar p = {m['pvalue']:.2g}"
                     f"{tt})",
                     "multitask ≥ single-task, the gain largest when labels are scarce "
                     "(Collobert & Weston 2008; Collobert et al. 2011)"))
        rows.append((f"labelled fraction {key}: accuracy on test words never seen in the "
                     f"labelled sentences ({100 * t['unseen_share']:.1f}% of test words, <unk> "
                     "included), single-task / multitask",
                     f"{_pct(t['single_unseen'])} / {_pct(t['multi_unseen'])}", "—"))
        rows.append((f"labelled fraction {key}: most-frequent-tag baseline (unseen words: the "
                     "most frequent tag)", _pct(t["mft"]), "—"))
    return rows


def _notes(s) -> str:
    cfg, t = s["config"], s["table"]
    keys = list(t)
    smallest = keys[int(np.argmin(s["fractions"]))]
    ts = t[smallest]
    helps = s["multitask_helps_at_smallest"]
    sign = lambda g: "higher" if g > 0 else "lower"  # noqa: E731
    lines = [
        f"Data: the Brown corpus's {sum(s['split_sentences'].values())} tagged sentences "
        f"({sum(s['split_words'].values())} words), tags simplified to the {len(s['tags'])} "
        f"{'coarse (universal-like)' if s['tagset'] == 'universal' else 'base'} tags "
        f"{', '.join(s['tags']) if len(s['tags']) <= 12 else ''} (flowgrad/datasets/"
        "brown_tags.py documents the mapping); split by Bengio et al.'s word ranges, a "
        "sentence going where its first word falls: "
        + ", ".join(f"{k} {s['split_sentences'][k]} sentences / {s['split_words'][k]} words"
                    for k in ("train", "valid", "test"))
        + " (the test split is the last genres, fiction mostly, so it is also a shift of "
        f"domain). Vocabulary: the {s['vocab_size'] - 2} most frequent lower-cased training "
        f"words of {s['train_types']}, plus <pad> and <unk>; {100 * s['test_unk_rate']:.1f}% "
        "of test words are <unk>.",
        f"Network (both models): window {cfg['window']}, word embeddings "
        f"{cfg['embedding_dim']} and capitalisation embeddings {cfg['caps_dim']} per position, "
        f"a shared hidden layer of {cfg['hidden']} HardTanh units, a softmax tagging head; the "
        "multitask network adds a linear language-model score head. Training: plain SGD, "
        f"lr {cfg['lr']:g}, the gradient's norm clipped at {cfg['clip']:g}, {cfg['steps']} "
        f"steps of {cfg['labelled_batch']} labelled windows "
        f"(drawn with replacement from the labelled sentences), the multitask batch adding "
        f"{cfg['unlabelled_batch']} windows drawn from all the training text with the tag "
        "target missing; multitask loss = tagging cross-entropy over the labelled windows + "
        f"{cfg['lm_weight']:g} × mean max(0, 1 − f(x) + f(x̃)) over every window x of the "
        "batch and its copy x̃ with the centre word replaced by a uniformly drawn dictionary "
        "word. Both models of a seed start from the same initial weights and see the same "
        "labelled sentences. The checkpoint of best accuracy on "
        f"{s['valid_words']} validation words (fixed sample), measured every "
        f"{cfg['eval_every']} steps, is kept; the test set is tagged once.",
        f"Outcome: with {smallest} of the training sentences labelled "
        f"({ts['n_labelled_words']} words), the multitask tagger's test accuracy is "
        f"{_pct(ts['multi'])} against {_pct(ts['single'])} for the single-task tagger "
        f"({100 * ts['gain']['mean']:+.2f} points, {sign(ts['gain']['mean'])}; McNemar on the "
        f"test predictions pooled over {s['seeds']} seeds p = {ts['mcnemar']['pvalue']:.2g}). "
        "The gain by fraction: "
        + ", ".join(f"{k}: {100 * t[k]['gain']['mean']:+.2f} points (p = "
                    f"{t[k]['mcnemar']['pvalue']:.2g})" for k in keys)
        + ". The published direction (multitask helps, most when labels are scarce): "
        + ("the gain is positive and significant (p < 0.05) at the smallest fraction"
           if helps else "the gain is not positive and significant at the smallest fraction")
        + (", and it is the largest of the fractions there; " if
           s["gain_largest_at_smallest_fraction"] else
           ", and it is not the largest of the fractions there; ")
        + ("the claim holds by this test." if helps and s["gain_largest_at_smallest_fraction"]
           else "the claim does not hold in this run.")
        + _seed_caveat(s, keys),
        "Where the gain comes from: on test words never seen in the labelled sentences the "
        "accuracies are, single-task / multitask, "
        + "; ".join(f"{k}: {100 * t[k]['single_unseen']['mean']:.2f}% / "
                    f"{100 * t[k]['multi_unseen']['mean']:.2f}% "
                    f"({100 * t[k]['unseen_share']:.1f}% of test words)" for k in keys)
        + ". The most-frequent-tag baseline (per word, from the same labelled sentences; unseen "
        "words get the commonest tag) reaches "
        + ", ".join(f"{k}: {100 * t[k]['mft']['mean']:.2f}%" for k in keys) + ".",
        f"Published: {PUBLISHED}. Our language model is trained for {cfg['steps']} steps of "
        f"{cfg['labelled_batch'] + cfg['unlabelled_batch']} windows, a few minutes on one CPU "
        "core, so its embeddings are far from theirs; the comparison is of direction only.",
        _late_caveat(s, keys),
        f"Wall time: data {s['seconds_data']:.0f} s, all {s['seconds']:.0f} s (BLAS threads: "
        f"{s['threads'] or 'default'}); best steps on validation: "
        + "; ".join(f"{k}: single {t[k]['best_step']['single']}, multi "
                    f"{t[k]['best_step']['multi']}" for k in keys) + ".",
    ]
    return "\n\n".join(lines)


def _seed_caveat(s, keys) -> str:
    """McNemar's test pools words that are not independent (the words of a sentence, the runs
    of a seed); the paired t-test over seeds is the stricter check."""
    t = s["table"]
    if s["seeds"] < 2:
        return (" With one seed, McNemar's test on words is the only test, and it treats the "
                "words as independent, which overstates the evidence.")
    weak = [k for k in keys if t[k]["ttest_pvalue"] is None or t[k]["ttest_pvalue"] >= 0.05]
    return (f" McNemar's test treats the {s['split_words']['test']} test words of each seed as "
            "independent; the stricter paired t-test over the "
            f"{s['seeds']} seeds gives " + ", ".join(
                f"{k}: p = {t[k]['ttest_pvalue']:.2g}" for k in keys)
            + (", so at " + ", ".join(weak) + " the difference is not significant across seeds "
               "at 0.05 and the evidence for the direction is weak." if weak
               else ", significant at every fraction."))


def _late_caveat(s, keys) -> str:
    steps, every = s["config"]["steps"], s["config"]["eval_every"]
    chosen = [b for k in keys for kind in ("single", "multi")
              for b in s["table"][k]["best_step"][kind]]
    late = sum(b >= 0.8 * steps for b in chosen)
    text = (f"{late} of the {len(chosen)} runs chose a checkpoint in the last fifth of the "
            f"{steps}-step budget (validation every {every} steps)")
    return text + (": both kinds of tagger were still improving, and a longer budget would "
                   "raise the accuracies; whether it would change the gains is not measured "
                   "here." if late > len(chosen) / 2 else ".")


def _plot(s, out):
    fig, axes = new_figure(1, 2, figsize=(11, 4))
    xs = np.array(s["fractions"], float)
    keys = list(s["table"])
    for ax, suffix, title in ((axes[0], "", "all test words"),
                              (axes[1], "_unseen", "test words unseen in the labelled data")):
        for kind, label, color in (("single", "single-task tagger", "tab:blue"),
                                   ("multi", "multitask (tagging + LM)", "tab:orange")):
            vals = np.array([s["table"][k][kind + suffix]["values"] for k in keys])
            for j in range(vals.shape[1]):
                ax.plot(xs, 100 * vals[:, j], ".", color=color, alpha=0.4)
            ax.plot(xs, 100 * vals.mean(1), "o-", color=color, label=label)
        if not suffix:
            ax.plot(xs, [100 * s["table"][k]["mft"]["mean"] for k in keys], "s--",
                    color="gray", label="most frequent tag")
        ax.set(xscale="log", xlabel="labelled fraction of the training sentences",
               ylabel="test tagging accuracy (%)", title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, f"{out}/{NAME}.png", dpi=110)
