"""Count-based and feed-forward neural language models on the Penn Treebank, beside Mikolov's
numbers (PhD thesis 2012, Table 4.1: Kneser-Ney 5-gram 141.2, feed-forward NNLM 140.2 test
perplexity) (lecture: "Neural Language Models").

- Interpolated modified Kneser-Ney of orders 3, 4 and 5 (``flowgrad.models.KneserNey``): the
  order is chosen on the validation split; the chosen model meets the test split once.
- The deleted-interpolation trigram (``InterpolatedNGram``, weights fitted by EM on the
  validation split): a fixed baseline, tested once.
- With ``--set nplm=1``: Bengio et al. (2003)'s feed-forward model, n=5, m=60, h=100, direct
  connections (the reproduction notes' small-compute configuration), its epoch chosen on
  validation by early stopping; alone and mixed 0.5/0.5 with the chosen Kneser-Ney model. It is
  off by default: its full-softmax training takes hours on two cores.
"""

from __future__ import annotations

from pathlib import Path

from ..models.nplm import NPLMConfig, mixture_perplexity
from ..models.nplm import perplexity as nplm_perplexity
from .brown_nplm import load_splits, plot_nplm_curves, train_nplm
from .common import Timer, command_line, resolve_out, write_results

DEFAULTS = {"orders": (3, 4, 5), "nplm": 0, "seed": 0, "nplm_grid": ("adam:0.001",),
            "batch_size": 128, "max_epochs": 10}
PUBLISHED = {"KN5": 141.2, "FF NNLM": 140.2, "target_nplm": 150.0, "KN5 band": 5.0}
SOURCE = "Mikolov 2012 (PhD thesis), Table 4.1, PTB test perplexity"
QUICK = {"train": 30_000, "valid": 4_000, "test": 4_000, "vocab": 1000, "max_epochs": 2}


def load_ptb(quick: bool):
    """(train, valid, test, words) of Mikolov's PTB (a 1,000-word vocabulary and the first tokens
    of each split in the short variant)."""
    from ..datasets.text import PennTreebank

    return load_splits(PennTreebank, quick, QUICK)


def parse_grid(grid) -> list[tuple[str, float]]:
    """("adam:0.001", "sgd:0.1") -> [("adam", 0.001), ("sgd", 0.1)]: the NPLM's candidate
    (optimizer, learning rate) pairs."""
    grid = (grid,) if isinstance(grid, str) else tuple(grid)
    out = []
    for spec in grid:
        opt, sep, lr = str(spec).partition(":")
        if not sep or opt not in ("adam", "sgd"):
            raise ValueError(f"nplm_grid entries are 'adam:LR' or 'sgd:LR', got {spec!r}")
        out.append((opt, float(lr)))
    return out


def run(orders=(3, 4, 5), nplm=0, seed=0, nplm_grid=("adam:0.001",), batch_size=128,
        max_epochs=10, patience=2, objective="full", context=5, embedding_dim=60, hidden=100,
        direct=True, max_batches=None, threads=None, out=None, quick=False,
        progress=True) -> dict:
    """Kneser-Ney of each order in ``orders`` (one chosen on validation), the interpolated
    trigram, and with ``nplm=1`` the feed-forward NPLM trained by ``objective`` with each
    (optimizer, learning rate) of ``nplm_grid`` (the one with the lowest validation perplexity
    kept); the test split evaluated once per chosen model at the end."""
    from ..models.ngram import InterpolatedNGram, KneserNey
    from .ptb_lstm import _limit_threads

    command = command_line("ptb_ngram", run, locals())
    out = Path(resolve_out("ptb_ngram", out))
    out.mkdir(parents=True, exist_ok=True)
    orders = (orders,) if isinstance(orders, int) else tuple(orders)
    if quick:
        max_epochs = min(max_epochs, QUICK["max_epochs"])
    with _limit_threads(threads), Timer() as t:
        train, valid, test, words = load_ptb(quick)
        V = len(words)
        kn, kn_valid = {}, {}
        with Timer() as t_ngram:
            for k in orders:
                kn[k] = KneserNey(k, vocab=V).fit(train)
                kn_valid[k] = kn[k].perplexity(valid)
            chosen = min(kn_valid, key=kn_valid.get)
            trigram = InterpolatedNGram(3, vocab=V).fit(train, heldout=valid)
            rows = {f"KN{chosen}": {"valid": kn_valid[chosen],
                                    "test": kn[chosen].perplexity(test)},
                    "interpolated trigram": {"valid": trigram.perplexity(valid),
                                             "test": trigram.perplexity(test)}}
        result = None
        if nplm:
            config = NPLMConfig(vocab_size=V, context=context, embedding_dim=embedding_dim,
                                hidden=hidden, direct=bool(direct))
            candidates = {}
            for opt, rate in parse_grid(nplm_grid):
                candidates[f"{opt}:{rate:g}"] = train_nplm(
                    config, train, valid, objective=objective, optimizer=opt, lr=rate,
                    batch_size=batch_size, max_epochs=max_epochs, patience=patience, seed=seed,
                    max_batches=max_batches, progress=progress, desc=f"ptb nplm {opt} {rate:g}")
            choice = min(candidates, key=lambda k: candidates[k]["valid_ppl"])
            result = candidates[choice]
            optimizer, lr = choice.split(":")
            model = result["model"]
            rows["NPLM"] = {"valid": result["valid_ppl"], "test": nplm_perplexity(model, test)}
            rows[f"NPLM mixed with KN{chosen}"] = {
                "valid": mixture_perplexity(model, kn[chosen], valid, 0.5),
                "test": mixture_perplexity(model, kn[chosen], test, 0.5)}
    summary = {
        "title": "Penn Treebank: Kneser-Ney n-grams and the feed-forward NPLM",
        "kn_valid_ppl": {f"KN{k}": v for k, v in kn_valid.items()}, "kn_order": chosen,
        "kn_test_ppl": rows[f"KN{chosen}"]["test"], "kn_valid_ppl_chosen": kn_valid[chosen],
        "trigram_valid_ppl": rows["interpolated trigram"]["valid"],
        "trigram_test_ppl": rows["interpolated trigram"]["test"], "perplexities": rows,
        "ngram_seconds": t_ngram.seconds, "vocab_size": V,
        "tokens": {"train": len(train), "valid": len(valid), "test": len(test)},
        "published": {"KN5_test": PUBLISHED["KN5"], "ff_nnlm_test": PUBLISHED["FF NNLM"],
                      "source": SOURCE, "also": "Press & Wolf's baseline list: KN 5-gram 141",
                      "nplm_target": PUBLISHED["target_nplm"]},
        "command": command, "seed": seed, "quick": quick}
    figures = ()
    if result is not None:
        summary.update(
            nplm_test_ppl=rows["NPLM"]["test"], nplm_valid_ppl=result["valid_ppl"],
            nplm_mixed_test_ppl=rows[f"NPLM mixed with KN{chosen}"]["test"],
            nplm={"config": vars(config), "objective": objective, "optimizer": optimizer,
                  "lr": float(lr), "grid_valid_ppl": {k: c["valid_ppl"]
                                                      for k, c in candidates.items()},
                  "batch_size": batch_size, "max_epochs": max_epochs,
                  "patience": patience, "max_batches": max_batches,
                  **{k: result[k] for k in ("history", "best_epoch", "epochs_run",
                                            "seconds_per_epoch_estimate", "train_seconds",
                                            "valid_seconds", "num_parameters")}})
        figures = (plot_nplm_curves({f"NPLM, {k}": c for k, c in candidates.items()},
                                    out / "ptb_ngram_nplm_curves.png",
                                    "PTB: NPLM validation perplexity"),)
    summary["seconds"] = t.seconds
    _write(summary, out, figures)
    return summary


def _write(s: dict, out: Path, figures: tuple) -> None:
    rows, k = s["perplexities"], s["kn_order"]
    kn = rows[f"KN{k}"]
    grid = ", ".join(f"{name} {v:.1f}" for name, v in s["kn_valid_ppl"].items())
    kn_pub = (f"{PUBLISHED['KN5']} ({SOURCE}; KN5); expected {PUBLISHED['KN5']:g} ± "
              f"{PUBLISHED['KN5 band']:g}")
    table = [(f"**Kneser-Ney {k}-gram test perplexity** (order chosen on validation)",
              f"{kn['test']:.1f}", kn_pub if k == 5 else
              f"{PUBLISHED['KN5']} for KN5 ({SOURCE}); our chosen order differs"),
             ("Kneser-Ney validation perplexity by order (the choice)", grid, "—"),
             ("interpolated trigram (deleted interpolation, EM on validation): valid / test",
              f"{rows['interpolated trigram']['valid']:.1f} / "
              f"{rows['interpolated trigram']['test']:.1f}", "no published number on PTB cited")]
    if "NPLM" in rows:
        n = s["nplm"]
        c = n["config"]
        table += [(f"**feed-forward NPLM** n={c['context']} m={c['embedding_dim']} "
                   f"h={c['hidden']} {'direct' if c['direct'] else 'no direct'} "
                   f"[{n['objective']} objective], epoch {n['best_epoch']} of "
                   f"{n['epochs_run']}: test perplexity", f"{rows['NPLM']['test']:.1f}",
                   f"{PUBLISHED['FF NNLM']} (feed-forward NNLM, {SOURCE}); target <= "
                   f"{PUBLISHED['target_nplm']:g}"),
                  ("feed-forward NPLM: validation perplexity (kept epoch)",
                   f"{rows['NPLM']['valid']:.1f}", "—"),
                  (f"NPLM mixed 0.5/0.5 with KN{k}: valid / test",
                   f"{rows[f'NPLM mixed with KN{k}']['valid']:.1f} / "
                   f"{rows[f'NPLM mixed with KN{k}']['test']:.1f}", "—")]
    else:
        table.append(("feed-forward NPLM", "not run (it is enabled by --set nplm=1)",
                      f"{PUBLISHED['FF NNLM']} ({SOURCE})"))
    t = s["tokens"]
    notes = [
        f"Corpus: the Penn Treebank as preprocessed by Mikolov et al. (2010), "
        f"{s['vocab_size']:,} words, {t['train']:,} / {t['valid']:,} / {t['test']:,} tokens "
        "(train / validation / test) with one <eos> per line, scored as one stream"
        + (" (short variant: the first tokens of each split and the 1,000 most frequent words "
           "of the training slice; not comparable with the published numbers)"
           if s["quick"] else "") + ".",
        "",
        "Protocol: every n-gram model is counted on the training split only. The Kneser-Ney "
        "order is the one with the lowest validation perplexity; only that model is evaluated "
        "on the test split, once. The interpolated trigram's mixture weights are fitted by EM "
        "on the validation split (its validation perplexity is therefore not held out); it is "
        "a fixed baseline and is tested once. Kneser-Ney here is interpolated modified "
        "Kneser-Ney (Chen & Goodman 1998) with discounts from the count-of-counts; Mikolov's "
        "KN5 was built with SRILM (the details of its discounting and pruning may differ)."
        f" N-gram time: {s['ngram_seconds']:.0f} s.",
    ]
    if "NPLM" in rows:
        n = s["nplm"]
        est = n["seconds_per_epoch_estimate"]
        grid = "; ".join(f"{k}: {v:.1f}" for k, v in n["grid_valid_ppl"].items())
        notes += ["", f"NPLM: {n['objective']} objective, {n['optimizer']} with learning rate "
                  f"{n['lr']:g} (chosen on validation; candidates and their validation "
                  f"perplexities: {grid}; Adam without weight decay, SGD with weight decay 1e-4 "
                  f"on the weights and C), minibatches of {n['batch_size']} "
                  "shuffled context windows; the exact validation perplexity after every "
                  f"epoch, stopping after {n['patience']} epochs without improvement or at "
                  f"{n['max_epochs']}; the weights of the best epoch of the chosen candidate "
                  "are kept and tested once (no other candidate meets the test split). The "
                  "other settings were fixed before the run. "
                  f"{n['num_parameters']:,} parameters. Time: "
                  f"{n['train_seconds']:.0f} s training"
                  + (f" (estimated {est:.0f} s per epoch from the first batches)" if est else "")
                  + f", {n['valid_seconds']:.0f} s validation."
                  + (f" Each epoch stopped after {n['max_batches']} batches (a timing probe)."
                     if n["max_batches"] else "")]
    notes += ["", f"Wall time {s['seconds']:.0f} s (the machine's cores may have been shared "
              "with other jobs)."]
    write_results("ptb_ngram", out, s, table, notes="\n".join(notes), figures=figures)

