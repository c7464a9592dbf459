"""Conditional GANs on MNIST (lecture: the conditional generation examples): Mirza & Osindero's
conditional adversarial net ("Conditional Generative Adversarial Nets", 2014, arXiv 1411.1784,
section 4.1: MLP generator and maxout discriminator, both fed the one-hot class) and a
conditional DCGAN (Radford et al. 2016's architecture with the class concatenated to z and to
every layer's input, as in their code's ``mnist/train_cond_dcgan.py``).

Measure: an independent classifier trained with flowgrad on the real training images
(``flowgrad.generative.metrics``, saved once with its checksum) labels class-conditional samples;
the fraction labelled as the class they were generated for is the conditional accuracy (target
>= 95%). Also the classifier-feature Fréchet distance to real training images and the
Inception-score analogue. Figure: the class grid (one row per class, the same z in each column).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import flowgrad as fg

from ..models.dcgan import (
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
)
from ..plotting import new_figure, save_figure
from .common import (
    Timer,
    collect_cells,
    command_line,
    mnist_splits,
    read_cell,
    resolve_out,
    runs_behind,
    write_cell,
    write_results,
)
from .dcgan import (
    _classifier,
    _grid,
    _history_rows,
    generate,
    latent,
    limit_threads,
    train_gan,
)
from .gan_mnist import PaperSchedule

NAME = "conditional_gan"
DEFAULTS = {"models": ("mlp", "dcgan"), "epochs": 5, "batch_size": 100, "latent_dim": 100,
            "base_width": 64, "lr": 2e-4, "beta1": 0.5, "n_samples": 10_000,
            "classifier_epochs": 5, "classifier_dir": "runs/classifiers", "seed": 0,
            "threads": 1, "mlp_protocol": "paper"}
PROTOCOLS = ("paper", "adam")
LABELS = {"mlp": "conditional MLP GAN (Mirza & Osindero 2014)",
          "dcgan": "conditional DCGAN (Radford et al. 2016 layout)"}
CLASSES = 10
TARGET = 0.95
PUBLISHED = {"mlp": "Parzen-window log-likelihood 132 ± 1.8 on MNIST test (Mirza & Osindero "
                    "2014, Table 1; no classifier accuracy published); the target here: "
                    ">= 95% of samples classified as their class",
             "dcgan": "no published number (Radford et al. show conditional MNIST samples in "
                      "their code's repository only); target >= 95%"}
QUICK = {"n_train": 2000, "n_valid": 500, "n_test": 500, "epochs": 3, "base_width": 8,
         "batch_size": 50, "n_samples": 1000, "classifier_epochs": 3, "lr": 1e-3,
         "mlp": {"z_hidden": 64, "y_hidden": 64, "hidden": 256},
         "mlp_d": {"x_units": 64, "y_units": 16, "joint_units": 64}}


def _models(kind: str, latent_dim: int, base_width: int, quick: bool):
    if kind == "mlp":
        sizes_g = QUICK["mlp"] if quick else {}
        sizes_d = QUICK["mlp_d"] if quick else {}
        return (ConditionalMLPGenerator(latent_dim, CLASSES, **sizes_g),
                ConditionalMLPDiscriminator(CLASSES, **sizes_d))
    if kind == "dcgan":
        return (DCGANGenerator(latent_dim, 1, 28, base_width, num_classes=CLASSES),
                DCGANDiscriminator(1, 28, base_width, num_classes=CLASSES))
    raise ValueError(f"conditional_gan: unknown model {kind!r}; expected 'mlp' or 'dcgan'")


def run(models=("mlp", "dcgan"), epochs=5, batch_size=100, latent_dim=100, base_width=64,
        lr=2e-4, beta1=0.5, n_samples=10_000, classifier_epochs=5,
        classifier_dir="runs/classifiers", seed=0, threads=1, mlp_protocol="paper", out=None,
        quick=False, progress=True, write: bool = True) -> dict:
    """Train each conditional model on MNIST train[0:50000] with the same budget, draw
    ``n_samples`` samples (equally many per class), and measure how many the independent
    classifier labels as their class.

    Each model is a cell, ``conditional_gan_cells/<model>.json`` in ``out``, written when it
    ends; the results file covers every cell found there, so the models can run as separate
    processes into one ``--out``, and a rerun skips the finished ones.

    ``mlp_protocol``: ``"paper"`` trains the MLP pair as Mirza & Osindero's section 4.1 (below,
    ``_paper_training``); ``"adam"`` with the conditional DCGAN's Adam(lr, beta1)."""
    from ..generative.metrics import classifier_score, conditional_accuracy, frechet_distance

    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    models = (models,) if isinstance(models, str) else tuple(models)
    for kind in models:
        _models(kind, 2, 2, True)  # an unknown name fails here, before any training
    if mlp_protocol not in PROTOCOLS:
        raise ValueError(f"conditional_gan: unknown mlp_protocol {mlp_protocol!r}; expected one "
                         f"of {PROTOCOLS}")
    sizes = None
    if quick:
        epochs, base_width, batch_size = QUICK["epochs"], QUICK["base_width"], QUICK["batch_size"]
        n_samples, classifier_epochs = QUICK["n_samples"], QUICK["classifier_epochs"]
        sizes, lr = (QUICK["n_train"], QUICK["n_valid"], QUICK["n_test"]), QUICK["lr"]
    rng = np.random.default_rng(seed)
    cells = Path(out) / f"{NAME}_cells"
    setup = {"epochs": epochs, "batch_size": batch_size, "latent_dim": latent_dim,
             "base_width": base_width, "lr": lr, "beta1": beta1, "n_samples": n_samples,
             "seed": seed, "quick": bool(quick)}

    def setup_of(kind: str) -> dict:
        return {**setup, "mlp_protocol": mlp_protocol} if kind == "mlp" else setup

    summary = {"title": "Conditional GANs on MNIST: are samples of class k classified as k?",
               "models": list(models), "epochs": epochs, "batch_size": batch_size,
               "latent_dim": latent_dim, "base_width": base_width, "lr": lr, "beta1": beta1,
               "n_samples": n_samples, "seed": seed, "threads": threads, "target": TARGET,
               "mlp_protocol": mlp_protocol,
               "command": command, "results": {}}
    figures, trained_now = [], 0.0
    with limit_threads(threads), Timer() as total:
        splits = mnist_splits("mnist", quick=sizes)
        (xtr, ytr), _, _ = splits
        summary["n_train"] = len(xtr)
        clf = _classifier("mnist", splits, classifier_epochs, classifier_dir, threads, progress,
                          quick, out)
        ref = clf.features(xtr[rng.permutation(len(xtr))[:min(n_samples, len(xtr))]])
        summary["classifier"] = {k: clf.info.get(k) for k in
                                 ("test_accuracy", "valid_accuracy", "sha256", "n_train")}
        labels = np.arange(n_samples) % CLASSES
        z = latent(n_samples, latent_dim, rng)
        for kind in models:
            if read_cell(cells, kind, setup_of(kind), NAME) is not None:
                continue
            g, d = _models(kind, latent_dim, base_width, quick)
            options = {}
            if kind == "mlp" and mlp_protocol == "paper":
                options = _paper_training(g, d, xtr)
            untrained = conditional_accuracy(clf.predict_proba(generate(g, z, labels)), labels)
            trained = train_gan(g, d, xtr, ytr, epochs, batch_size, lr, beta1, latent_dim,
                                Path(out) / kind, progress, conditional=True, seed=seed,
                                **options)
            samples = generate(g, z, labels)
            probs = clf.predict_proba(samples)
            per_class = [float((probs[labels == k].argmax(1) == k).mean())
                         for k in range(CLASSES)]
            result = {"conditional_accuracy": conditional_accuracy(probs, labels),
                      "untrained_conditional_accuracy": untrained, "per_class": per_class,
                      "fd": frechet_distance(clf.features(samples), ref),
                      "classifier_score": classifier_score(probs),
                      "seconds": trained["seconds"],
                      "seconds_per_epoch": trained["seconds_per_epoch"],
                      "history": _history_rows(trained["history"]),
                      "published": PUBLISHED[kind], "setup": setup_of(kind),
                      "command": command,
                      "figures": []}
            if write:
                grid_rng = np.random.default_rng([seed, list(LABELS).index(kind)])
                result["figures"].append(
                    Path(_plot_class_grid(g, latent_dim, grid_rng, out, kind)).name)
            write_cell(cells, kind, result)
            trained_now += result["seconds"]
    # each model may have its own number of epochs (its row says which)
    summary["results"] = collect_cells(cells, LABELS, setup_of, NAME, own=("epochs",))
    for kind, result in summary["results"].items():
        summary[f"{kind}_conditional_accuracy"] = result["conditional_accuracy"]
        summary[f"{kind}_untrained_conditional_accuracy"] = result[
            "untrained_conditional_accuracy"]
        figures += [str(Path(out) / f) for f in result["figures"]]
    summary["models"] = list(summary["results"])
    summary["runs"] = sorted({r["command"] for r in summary["results"].values()})
    # wall time: this run's, with the training it skipped counted as its cells recorded it
    summary["seconds"] = total.seconds - trained_now + sum(
        r["seconds"] for r in summary["results"].values())
    if write:
        with limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=tuple(figures))
    return summary


def _paper_training(generator, discriminator, images: np.ndarray) -> dict:
    """Mirza & Osindero (2014), section 4.1: SGD on minibatches of 100, learning rate 0.1
    divided by 1.00004 after every update down to 1e-6, momentum rising from 0.5 to 0.7 (the
    epoch where it saturates is not given: 250, as Goodfellow et al.'s code), dropout 0.5 in both
    networks. What the paper leaves to its framework follows Goodfellow et al.'s adversarial
    code (pylearn2), which the same group used: weights U(-0.05, 0.05) in G and U(-0.005,
    0.005) in D with zero biases, G's output bias set from the training pixels' marginals, both
    networks updated at once from one forward pass, D's loss halved. Initialises the pair in
    place; returns GANTrainer options for ``train_gan``."""
    from ..models.gan import marginal_logits, uniform_init

    uniform_init(generator, 0.05)
    uniform_init(discriminator, 0.005)
    with fg.no_grad():
        generator.out.bias.copy_(fg.from_numpy(marginal_logits(images.reshape(len(images), -1))))
    schedule = PaperSchedule(lr=0.1, decay=1.00004)
    optimizers = (fg.optim.SGD(generator.parameters(), lr=0.1, momentum=schedule.momentum_at(1)),
                  fg.optim.SGD(discriminator.parameters(), lr=0.1,
                               momentum=schedule.momentum_at(1)))
    return {"optimizers": optimizers, "update": "simultaneous", "d_loss_weight": 0.5,
            "callbacks": (schedule,)}


def _plot_class_grid(generator, latent_dim, rng, out, kind, columns: int = 10):
    """One row per class, the same latent vector in each column (Mirza & Osindero, Fig. 2)."""
    z = np.tile(latent(columns, latent_dim, rng), (CLASSES, 1))
    labels = np.repeat(np.arange(CLASSES), columns)
    images = generate(generator, z, labels)
    fig, ax = new_figure(1, 1, figsize=(6, 6.3))
    ax.imshow(_grid(images, columns), cmap="gray", vmin=0, vmax=1)
    ax.set(title=f"{LABELS[kind]}: row k = class k", xticks=[], yticks=[])
    return save_figure(fig, f"{out}/{NAME}_{kind}_classes.png", dpi=100, tight=True)


def _rows(s) -> list:
    rows = [("independent classifier: test accuracy on real MNIST",
             f"{s['classifier']['test_accuracy']:.2%}", "—")]
    for kind, r in s["results"].items():
        worst = int(np.argmin(r["per_class"]))
        training = f"{r['setup']['epochs']} epochs"
        if kind == "mlp":
            training += f", {r['setup'].get('mlp_protocol', 'adam')} protocol"
        rows.append((f"{LABELS[kind]} ({training}): samples classified as their class "
                     f"({s['n_samples']:,} samples; untrained "
                     f"{r['untrained_conditional_accuracy']:.1%})",
                     f"{r['conditional_accuracy']:.2%} (worst class {worst}: "
                     f"{r['per_class'][worst]:.1%})", r["published"]))
        rows.append((f"{LABELS[kind]}: Fréchet distance to real training images / classifier "
                     "score", f"{r['fd']:.3f} / {r['classifier_score']:.2f}", "—"))
        # the median of the epochs' wall times: robust to an epoch slowed by other jobs
        per_epoch = (np.median([e["seconds"] for e in r["history"]]) if r.get("history")
                     else r["seconds_per_epoch"])
        rows.append((f"{LABELS[kind]}: training time per epoch (median over epochs, wall)",
                     f"{per_epoch:.0f} s", "—"))
    return rows


def _notes(s) -> str:
    lines = [
        f"Data: the first {s['n_train']:,} MNIST training images with their labels (the last "
        "10,000 of the 60,000 are the classifier's validation split); the test set is not used "
        "by the GANs.",
        "Conditional MLP GAN (Mirza & Osindero 2014, section 4.1): z ~ U(-1, 1)^100 -> 200 "
        "ReLU and the one-hot class -> 1000 ReLU, joined into 1200 ReLU (dropout 0.5) -> 784 "
        "sigmoid; the discriminator maps the image to maxout 240 units x 5 pieces and the class "
        "to maxout 50 x 5, joined (dropout 0.5) into maxout 240 x 4 (dropout 0.5) -> one logit. "
        + ("Training as the paper (section 4.1): SGD on minibatches of 100, lr 0.1 divided by "
           "1.00004 per update (down to 1e-6), momentum 0.5 rising linearly to 0.7 by epoch "
           "250 (the paper does not say when; Goodfellow et al.'s code's value), dropout 0.5 in "
           "both networks; what the paper leaves to its framework as Goodfellow et al.'s "
           "adversarial code: weights U(-0.05, 0.05) in G and U(-0.005, 0.005) in D, zero "
           "biases, G's output bias from the pixels' marginals, both networks updated at once "
           "from one forward pass, D's loss halved. The paper stopped on a validation Parzen "
           "estimate; here the budget below is fixed."
           if s.get("mlp_protocol") == "paper" else
           "The paper trained with SGD (lr 0.1 decayed by 1.00004 per step, momentum 0.5 -> "
           "0.7) and stopped on a validation Parzen estimate; here it shares the conditional "
           "DCGAN's Adam optimizer and budget instead (below)."),
        f"Conditional DCGAN: the DCGAN of the dcgan recipe (base width {s['base_width']}) with "
        "the one-hot class concatenated to z, to the input of each (transposed) convolution as "
        "constant feature maps and to the discriminator's flattened features (as the DCGAN "
        "authors' conditional MNIST model).",
        "Training (both): the epochs given in each model's rows, batch "
        f"{s['batch_size']}, the non-saturating "
        "generator loss, one discriminator step per generator step, the real labels of each "
        f"batch given to both networks; Adam(lr {s['lr']}, beta1 {s['beta1']}) per network for "
        "the conditional DCGAN"
        + (" (the MLP pair: the paper's SGD above)" if s.get("mlp_protocol") == "paper"
           else " and the MLP pair") + f". BLAS threads: {s['threads']}.",
        f"Measure: {s['n_samples']:,} samples, equally many of each class, drawn in eval mode; "
        "the independent classifier (a small CNN trained with flowgrad on the real training "
        "images, trained once and checksummed) labels each; the conditional accuracy is the "
        "fraction labelled as the class asked for. The Fréchet distance uses the classifier's "
        "penultimate features against as many real training images. One seed; no significance "
        "is claimed.",
        "", "Outcome:"]
    for kind, r in s["results"].items():
        acc = r["conditional_accuracy"]
        last = r["history"][-1] if r.get("history") else None
        signs = [f"epoch {e['epoch']}: {e['failure_signs']}" for e in r.get("history", [])
                 if e.get("failure_signs")]
        lines.append(f"- {LABELS[kind]}: {acc:.2%} of the samples are classified as their "
                     f"class: the {s['target']:.0%} target is "
                     f"{'met' if acc >= s['target'] else 'not met'}."
                     + (f" Discriminator accuracy in the last epoch: "
                        f"{last['d_real_accuracy']:.1%} on data, {last['d_fake_accuracy']:.1%} "
                        f"on samples (generator loss {last['g_loss']:.2f})." if last else "")
                     + (f" Failure signs: {len(signs)} epoch(s), the last {signs[-1]}."
                        if signs else " No failure sign was reported."))
    return ("\n\n".join(lines[:5]) + "\n\n" + "\n".join(lines[5:]) + "\n\n"
            + runs_behind(s.get("runs", []), "conditional_gan_cells"))
