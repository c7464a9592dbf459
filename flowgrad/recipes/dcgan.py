"""Convolutional GANs (lecture: "Convolutional GANs"): a DCGAN (Radford, Metz & Chintala,
"Unsupervised Representation Learning with Deep Convolutional Generative Adversarial Networks",
ICLR 2016, arXiv 1511.06434) on MNIST and Fashion-MNIST beside a plain MLP GAN trained with the
same budget.

Sample quality is measured without any download: a small CNN trained with flowgrad on the real
training images (``flowgrad.generative.metrics``, saved once with its checksum) gives the
Fréchet distance (FID's formula, Heusel et al. 2017) between its penultimate features of
generated images and of real training images; the distance of the real test images to the same
training images is the floor a perfect generator would reach with as many samples. The figures:
sample grids, a latent-space interpolation (Radford et al., section 6.1) and vector arithmetic on
latent vectors averaged over samples the classifier labels as a class (section 6.3.2).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import flowgrad as fg

from .. import nn
from ..models.dcgan import DCGANDiscriminator, DCGANGenerator, dcgan_optimizers
from ..plotting import new_figure, save_figure
from ..utils.threads import limit_threads
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

NAME = "dcgan"
DEFAULTS = {"datasets": ("mnist", "fashion_mnist"), "epochs": 5, "batch_size": 128,
            "latent_dim": 100, "base_width": 64, "lr": 2e-4, "beta1": 0.5, "n_samples": 10_000,
            "classifier_epochs": 5, "classifier_dir": "runs/classifiers", "seed": 0,
            "threads": 1}
LABELS = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}
PUBLISHED = ("no published number: Radford et al. show MNIST samples of a conditional model in "
             "their appendix (code: Newmu/dcgan_code, mnist/) and report no MNIST or "
             "Fashion-MNIST measure; the Fréchet distance came later (Heusel et al. 2017)")
QUICK = {"n_train": 2000, "n_valid": 500, "n_test": 1000, "epochs": 3, "base_width": 8,
         "batch_size": 64, "n_samples": 1000, "classifier_epochs": 3, "lr": 1e-3,
         "mlp_hidden": 256, "mlp_units": 64}


def latent(n: int, dim: int, rng) -> np.ndarray:
    """z ~ U(-1, 1)^dim, the prior of Radford et al.'s code (and Mirza & Osindero's "unit
    hypercube")."""
    return rng.uniform(-1.0, 1.0, size=(n, dim)).astype(np.float32)


class MLPGenerator(nn.Module):
    """The baseline generator: Goodfellow et al. (2014)'s MNIST sizes, z -> 1200 ReLU -> 1200
    ReLU -> 784, here with a tanh output to share the DCGAN's [-1, 1] data."""

    output_range = (-1.0, 1.0)

    def __init__(self, latent_dim: int = 100, hidden: int = 1200) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(),
                                 nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 784),
                                 nn.Tanh())

    def forward(self, z):
        return self.net(z).reshape(z.shape[0], 1, 28, 28)


class MLPDiscriminator(nn.Module):
    """The baseline discriminator: Goodfellow et al. (2014)'s two maxout layers of 240 units x 5
    pieces with dropout (0.2 on the input, 0.5 after), then one logit."""

    def __init__(self, units: int = 240, pieces: int = 5) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Maxout(784, units, pieces),
                                 nn.Dropout(0.5), nn.Maxout(units, units, pieces),
                                 nn.Dropout(0.5), nn.Linear(units, 1))

    def forward(self, x):
        return self.net(x).reshape(-1)


def to_unit(images) -> np.ndarray:
    """Generator images in [-1, 1] -> pixels in [0, 1] for the classifier and the figures."""
    x = images.detach().numpy() if isinstance(images, fg.Tensor) else np.asarray(images)
    return np.clip((x + 1.0) / 2.0, 0.0, 1.0).astype(np.float32)


@fg.no_grad()
def generate(generator, z: np.ndarray, labels=None, batch_size: int = 500) -> np.ndarray:
    """Images in [0, 1] for latent vectors ``z`` (eval mode: batch norm's running statistics)."""
    was = generator.training
    generator.eval()
    out = []
    for s in range(0, len(z), batch_size):
        zb = fg.from_numpy(np.ascontiguousarray(z[s:s + batch_size]))
        args = (zb,) if labels is None else (zb, labels[s:s + batch_size])
        x = generator(*args).numpy()
        lo, hi = getattr(generator, "output_range", (-1.0, 1.0))
        out.append(np.clip((x - lo) / (hi - lo), 0.0, 1.0).astype(np.float32))
    generator.train(was)
    return np.concatenate(out)


def train_gan(generator, discriminator, x: np.ndarray, y: np.ndarray, epochs: int,
              batch_size: int, lr: float, beta1: float, latent_dim: int, out, progress: bool,
              conditional: bool = False, seed: int = 0, optimizers=None,
              **trainer_options) -> dict:
    """GANTrainer (non-saturating loss, one D step per G step, z ~ U(-1, 1), Adam(lr, beta1)
    for each network unless ``optimizers`` = (G's, D's); ``trainer_options`` such as
    ``update``, ``d_loss_weight`` and ``callbacks`` go to GANTrainer) on ``x`` scaled to the
    generator's output range; a sample grid every epoch, the curves and a checkpoint under
    ``out``."""
    from ..generative import GANTrainer
    from ..utils.data import DataLoader, TensorDataset

    lo, hi = getattr(generator, "output_range", (-1.0, 1.0))
    data = (x * (hi - lo) + lo).astype(np.float32)
    fg.manual_seed(seed)
    loader = DataLoader(TensorDataset(fg.from_numpy(data), fg.from_numpy(y)),
                        batch_size=batch_size, shuffle=True, drop_last=True)
    opt_g, opt_d = optimizers or dcgan_optimizers(generator, discriminator, lr=lr, beta1=beta1)
    trainer = GANTrainer(generator, discriminator, opt_g, opt_d, latent_dim,
                         loss="nonsaturating", d_steps=1, conditional=conditional,
                         num_classes=10 if conditional else None, noise="uniform",
                         out=str(out), sample_every=1, **trainer_options)
    with Timer() as t:
        history = trainer.fit(loader, epochs, progress=progress)
    return {"history": history, "seconds": t.seconds, "trainer": trainer,
            "seconds_per_epoch": t.seconds / max(epochs, 1)}


def _history_rows(history) -> list:
    """The trainer's per-epoch records (a flowgrad.train History) as a list of dicts."""
    return [dict(record) for record in getattr(history, "epochs", history)]


def _classifier(dataset, splits, epochs, directory, threads, progress, quick, out):
    from ..generative.metrics import load_or_train_classifier

    if quick:  # a small classifier on the short variant's own images, never the shared one
        return load_or_train_classifier(dataset, Path(out) / f"{dataset}_classifier.safetensors",
                                        epochs=epochs, threads=threads, progress=progress,
                                        data=splits)
    return load_or_train_classifier(dataset, Path(directory) / f"{dataset}.safetensors",
                                    epochs=epochs, threads=threads, progress=progress)


def run(datasets=("mnist", "fashion_mnist"), epochs=5, batch_size=128, latent_dim=100,
        base_width=64, lr=2e-4, beta1=0.5, n_samples=10_000, classifier_epochs=5,
        classifier_dir="runs/classifiers", seed=0, threads=1, out=None, quick=False,
        progress=True, write: bool = True) -> dict:
    """For each dataset: the feature classifier (trained once), a DCGAN and an MLP GAN trained
    with the same budget on train[0:50000], ``n_samples`` samples of each, their Fréchet
    distances to the training images beside the test images' (the floor), and the figures.

    Each dataset is a cell, ``dcgan_cells/<dataset>.json`` in ``out``, written when it ends;
    the results file covers every cell found there, so the datasets can run as separate
    processes into one ``--out`` (each draws from its own seeded stream), and a rerun skips the
    finished ones."""
    from ..generative.metrics import classifier_score, frechet_distance

    command = command_line(NAME, run, locals())
    out = resolve_out(NAME, out)
    datasets = (datasets,) if isinstance(datasets, str) else tuple(datasets)
    sizes = None
    if quick:
        datasets = datasets[:1]
        epochs, base_width, batch_size = QUICK["epochs"], QUICK["base_width"], QUICK["batch_size"]
        n_samples, classifier_epochs = QUICK["n_samples"], QUICK["classifier_epochs"]
        sizes, lr = (QUICK["n_train"], QUICK["n_valid"], QUICK["n_test"]), QUICK["lr"]
    mlp_hidden, mlp_units = (QUICK["mlp_hidden"], QUICK["mlp_units"]) if quick else (1200, 240)
    cells = Path(out) / "dcgan_cells"
    setup = {"epochs": epochs, "batch_size": batch_size, "latent_dim": latent_dim,
             "base_width": base_width, "lr": lr, "beta1": beta1, "n_samples": n_samples,
             "seed": seed, "quick": bool(quick)}
    summary = {"title": "DCGAN vs an MLP GAN on MNIST and Fashion-MNIST (classifier-feature "
                        "Fréchet distance)", "datasets": list(datasets), "epochs": epochs,
               "batch_size": batch_size, "latent_dim": latent_dim, "base_width": base_width,
               "lr": lr, "beta1": beta1, "n_samples": n_samples, "seed": seed,
               "threads": threads, "published": PUBLISHED, "command": command, "results": {},
               "mlp_hidden": mlp_hidden, "mlp_units": mlp_units}
    figures, trained_now = [], 0.0
    with limit_threads(threads), Timer() as total:
        for dataset in datasets:
            cell = read_cell(cells, dataset, setup, NAME)
            if cell is not None:
                continue
            rng = np.random.default_rng([seed, list(LABELS).index(dataset)])
            dataset_figures = []
            splits = mnist_splits(dataset, quick=sizes)
            (xtr, ytr), _, (xte, _) = splits
            clf = _classifier(dataset, splits, classifier_epochs, classifier_dir, threads,
                              progress, quick, out)
            n_ref = min(n_samples, len(xtr))
            ref = clf.features(xtr[rng.permutation(len(xtr))[:n_ref]])
            n_test = min(n_samples, len(xte))
            floor = frechet_distance(clf.features(xte[:n_test]), ref)
            result = {"floor_fd": floor, "n_reference": n_ref, "n_test": n_test,
                      "n_train": len(xtr),
                      "classifier": {k: clf.info.get(k) for k in
                                     ("test_accuracy", "valid_accuracy", "sha256", "epochs",
                                      "n_train")}}
            models = {"dcgan": (DCGANGenerator(latent_dim, 1, 28, base_width),
                                DCGANDiscriminator(1, 28, base_width)),
                      "mlp": (MLPGenerator(latent_dim, mlp_hidden),
                              MLPDiscriminator(mlp_units))}
            z_eval = latent(n_samples, latent_dim, rng)
            for kind, (g, d) in models.items():
                untrained = frechet_distance(clf.features(generate(g, z_eval[:n_test])), ref)
                trained = train_gan(g, d, xtr, ytr, epochs, batch_size, lr, beta1, latent_dim,
                                    Path(out) / f"{dataset}_{kind}", progress, seed=seed)
                samples = generate(g, z_eval)
                probs = clf.predict_proba(samples)
                counts = np.bincount(probs.argmax(1), minlength=10)
                result[kind] = {
                    "fd": frechet_distance(clf.features(samples), ref), "untrained_fd": untrained,
                    "classifier_score": classifier_score(probs),
                    "class_fractions": (counts / counts.sum()).tolist(),
                    "seconds": trained["seconds"],
                    "seconds_per_epoch": trained["seconds_per_epoch"],
                    "history": _history_rows(trained["history"]),
                    "params": sum(p.numel() for p in g.parameters()) + sum(
                        p.numel() for p in d.parameters())}
                summary[f"{dataset}_{kind}_fd"] = result[kind]["fd"]
                summary[f"{dataset}_{kind}_untrained_fd"] = untrained
                if write:
                    dataset_figures.append(_plot_samples(
                        samples[:100], f"{LABELS[dataset]}: {kind} samples", out,
                        f"{dataset}_{kind}_samples"))
                if kind == "dcgan":
                    dcgan_g, dcgan_probs = g, probs
            arithmetic = latent_arithmetic(dcgan_g, clf, z_eval, dcgan_probs)
            result["arithmetic"] = arithmetic["scores"]
            if write:
                dataset_figures.append(_plot_interpolation(dcgan_g, latent_dim, rng, out,
                                                           dataset))
                dataset_figures.append(_plot_arithmetic(arithmetic, out, dataset))
            result.update(setup=setup, command=command,
                          figures=[Path(f).name for f in dataset_figures])
            write_cell(cells, dataset, result)
            trained_now += result["dcgan"]["seconds"] + result["mlp"]["seconds"]
    summary["results"] = collect_cells(cells, LABELS, setup, NAME)
    for dataset, result in summary["results"].items():
        figures += [str(Path(out) / f) for f in result.get("figures", [])]
        summary[f"{dataset}_floor_fd"] = result["floor_fd"]
        for kind in ("dcgan", "mlp"):
            summary[f"{dataset}_{kind}_fd"] = result[kind]["fd"]
            summary[f"{dataset}_{kind}_untrained_fd"] = result[kind]["untrained_fd"]
    summary["datasets"] = list(summary["results"])
    summary["runs"] = sorted({r["command"] for r in summary["results"].values()})
    # wall time: this run's, with the training it skipped counted as its cells recorded it
    summary["seconds"] = total.seconds - trained_now + sum(
        r[k]["seconds"] for r in summary["results"].values() for k in ("dcgan", "mlp"))
    if write:
        with limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=tuple(figures))
    return summary


def latent_arithmetic(generator, clf, z: np.ndarray, probs: np.ndarray, confident: float = 0.9,
                      per_class: int = 3) -> dict:
    """Radford et al.'s vector arithmetic (section 6.3.2) with classes as the concepts: for each
    class k, the mean latent vector of ``per_class`` samples the classifier labels k with
    probability >= ``confident`` (they averaged three exemplars). The class means are decoded;
    then for pairs (a, b) and each exemplar z of class b: z - mean_b + mean_a, which should show
    class a. Scores: the fraction of decoded class means, and of arithmetic results, that the
    classifier labels as the intended class."""
    labels, top = probs.argmax(1), probs.max(1)
    means, exemplars = {}, {}
    for k in range(probs.shape[1]):
        idx = np.flatnonzero((labels == k) & (top >= confident))[:per_class]
        if len(idx) == per_class:
            means[k] = z[idx].mean(0)
            exemplars[k] = z[idx]
    classes = sorted(means)
    mean_images = generate(generator, np.stack([means[k] for k in classes])) if classes else None
    mean_ok = (float((clf.predict_proba(mean_images).argmax(1) == np.array(classes)).mean())
               if classes else float("nan"))
    pairs = [(a, b) for a, b in zip(classes, classes[1:] + classes[:1]) if a != b]
    rows, targets = [], []
    for a, b in pairs:
        zs = exemplars[b] - means[b] + means[a]
        rows.append((a, b, generate(generator, exemplars[b]), generate(generator, zs)))
        targets += [a] * len(zs)
    arith_ok = float("nan")
    if rows:
        made = np.concatenate([r[3] for r in rows])
        arith_ok = float((clf.predict_proba(made).argmax(1) == np.array(targets)).mean())
    return {"classes": classes, "mean_images": mean_images, "rows": rows,
            "scores": {"classes_found": len(classes), "class_means_correct": mean_ok,
                       "arithmetic_correct": arith_ok, "arithmetic_trials": len(targets)}}


def _grid(images: np.ndarray, nrow: int) -> np.ndarray:
    n = len(images)
    rows = -(-n // nrow)
    side = images.shape[-1]
    canvas = np.ones((rows * (side + 2), nrow * (side + 2)), np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        canvas[r * (side + 2) + 1:r * (side + 2) + 1 + side,
               c * (side + 2) + 1:c * (side + 2) + 1 + side] = img.reshape(side, side)
    return canvas


def _plot_samples(images, title, out, name):
    fig, ax = new_figure(1, 1, figsize=(6, 6.3))
    ax.imshow(_grid(images, 10), cmap="gray", vmin=0, vmax=1)
    ax.set(title=title, xticks=[], yticks=[])
    return save_figure(fig, f"{out}/{NAME}_{name}.png", dpi=100, tight=True)


def _plot_interpolation(generator, latent_dim, rng, out, dataset, rows: int = 8,
                        steps: int = 10):
    """Each row: linear interpolation between two random latent vectors (Radford et al.,
    section 6.1, Fig. 4)."""
    a, b = latent(rows, latent_dim, rng), latent(rows, latent_dim, rng)
    t = np.linspace(0, 1, steps, dtype=np.float32)[None, :, None]
    z = (a[:, None] * (1 - t) + b[:, None] * t).reshape(-1, latent_dim)
    images = generate(generator, z)
    fig, ax = new_figure(1, 1, figsize=(7, 6))
    ax.imshow(_grid(images, steps), cmap="gray", vmin=0, vmax=1)
    ax.set(title=f"{LABELS[dataset]}: DCGAN latent interpolation (each row z_a -> z_b)",
           xticks=[], yticks=[])
    return save_figure(fig, f"{out}/{NAME}_{dataset}_interpolation.png", dpi=100, tight=True)


def _plot_arithmetic(arith, out, dataset):
    rows = arith["rows"]
    fig, axes = new_figure(1, 2, figsize=(11, 5), squeeze=False)
    ax0, ax1 = axes[0]
    if arith["mean_images"] is not None:
        ax0.imshow(_grid(arith["mean_images"], len(arith["classes"])), cmap="gray", vmin=0,
                   vmax=1)
    else:
        ax0.text(0.5, 0.5, "no class has 3 samples labelled\nwith probability >= 0.9",
                 ha="center", va="center")
    ax0.set(title=f"decoded class means of z (classes {arith['classes']})", xticks=[],
            yticks=[])
    if rows:
        per = len(rows[0][2])
        stack = np.concatenate([np.concatenate([r[2], r[3]]) for r in rows])
        ax1.imshow(_grid(stack, 2 * per), cmap="gray", vmin=0, vmax=1)
        ax1.set_yticks([(i + 0.5) * 30 for i in range(len(rows))],
                       [f"{b} -> {a}" for a, b, _, _ in rows], fontsize=7)
    else:
        ax1.set_yticks([])
    ax1.set(title="left: exemplars z of class b; right: z - mean_b + mean_a", xticks=[])
    fig.suptitle(f"{LABELS[dataset]}: DCGAN vector arithmetic")
    return save_figure(fig, f"{out}/{NAME}_{dataset}_arithmetic.png", dpi=100, tight=True)


def _rows(s) -> list:
    rows = []
    for dataset, r in s["results"].items():
        name = LABELS[dataset]
        rows.append((f"{name}: Fréchet distance, real test vs real train (the floor, "
                     f"{r['n_test']:,} vs {r['n_reference']:,})", f"{r['floor_fd']:.3f}", "—"))
        for kind, label in (("dcgan", "DCGAN"), ("mlp", "MLP GAN (baseline)")):
            m = r[kind]
            rows.append((f"{name}: Fréchet distance, {label} samples vs real train "
                         f"({s['n_samples']:,} samples; untrained {m['untrained_fd']:.1f})",
                         f"{m['fd']:.3f} (classifier score {m['classifier_score']:.2f})",
                         s["published"] if kind == "dcgan" else "—"))
        a = r["arithmetic"]
        if a["classes_found"]:
            rows.append((f"{name}: decoded class-mean latent vectors classified as their class",
                         f"{a['class_means_correct']:.0%} of {a['classes_found']}", "—"))
        else:
            rows.append((f"{name}: vector arithmetic", "no class has 3 samples labelled with "
                         "probability >= 0.9", "—"))
        if a["arithmetic_trials"]:
            rows.append((f"{name}: z - mean_b + mean_a classified as a",
                         f"{a['arithmetic_correct']:.0%} of {a['arithmetic_trials']}", "—"))
        rows.append((f"{name}: training time per epoch, DCGAN / MLP GAN",
                     f"{r['dcgan']['seconds_per_epoch']:.0f} s / "
                     f"{r['mlp']['seconds_per_epoch']:.0f} s", "—"))
    return rows


def _notes(s) -> str:
    first = next(iter(s["results"].values()))
    lines = [
        f"Data: the first {first['n_train']:,} MNIST (or Fashion-MNIST) training images for "
        "training (the last 10,000 of the 60,000 are the classifier's validation split), pixels "
        f"scaled to [-1, 1] for the tanh outputs; {first['n_test']:,} test images only for the "
        "floor. No GAN choice uses the test set.",
        f"DCGAN (Radford et al. 2016, section 3 guidelines; kernel sizes and the 28x28 layout "
        f"from Newmu/dcgan_code's MNIST model): z ~ U(-1, 1)^{s['latent_dim']} -> linear to "
        f"{2 * s['base_width']} x 7 x 7 with batch norm and ReLU -> 5x5 transposed convolution "
        f"of stride 2 to {s['base_width']} x 14 x 14 (batch norm, ReLU) -> to 1 x 28 x 28 "
        f"(tanh); the discriminator mirrors it with strided 5x5 convolutions (no batch norm on "
        "the first), LeakyReLU 0.2 and one logit; weights N(0, 0.02).",
        f"MLP GAN (the baseline): Goodfellow et al. (2014)'s MNIST model (generator "
        f"{s['mlp_hidden']}-{s['mlp_hidden']} ReLU, discriminator two maxout layers of "
        f"{s['mlp_units']} units x 5 pieces with dropout; the paper's sizes are 1200 and 240), "
        "with a tanh output, trained with exactly the DCGAN's budget and optimizer.",
        f"Training (both): {s['epochs']} epochs, batch {s['batch_size']}, the non-saturating "
        f"generator loss, one discriminator step per generator step, Adam(lr {s['lr']}, beta1 "
        f"{s['beta1']}) for each network (Radford et al., section 4). BLAS threads: "
        f"{s['threads']}.",
        f"Measure: the Fréchet distance (FID's formula) between the penultimate features (128) "
        f"of a small CNN classifier trained with flowgrad on the real training images (trained "
        f"once, checksummed) for {s['n_samples']:,} samples and for the same number of real "
        "training images; the floor is the same distance for the real test images. Samples are "
        "drawn in eval mode (batch norm's running statistics). The classifier score is the "
        "Inception-score analogue exp(E KL(p(y|x) || p(y))) (10 is the most for 10 classes).",
        "Vector arithmetic (Radford et al., section 6.3.2, with classes as the concepts): for "
        "each class, three samples the classifier labels as that class with probability >= 0.9 "
        "give a mean latent vector; the figure decodes the class means and, for pairs (a, b), "
        "z - mean_b + mean_a for each exemplar z of class b; the table counts how many of those "
        "the classifier labels a.",
        f"Published: {s['published']}. One seed; no significance is claimed.",
        "", "Outcome:"]
    for dataset, r in s["results"].items():
        d, m, f = r["dcgan"]["fd"], r["mlp"]["fd"], r["floor_fd"]
        lines.append(f"- {LABELS[dataset]}: DCGAN {d:.2f}, MLP GAN {m:.2f}, floor {f:.2f}: the "
                     f"DCGAN is {'closer to' if d < m else 'not closer to'} the real images "
                     "than the MLP GAN.")
    return ("\n\n".join(lines[:8]) + "\n\n" + "\n".join(lines[8:]) + "\n\n"
            + runs_behind(s.get("runs", []), "dcgan_cells"))
