"""Generative adversarial nets (Goodfellow et al., "Generative Adversarial Nets", NIPS 2014;
lecture slide "Generative Adversarial Networks").

The discriminator D is a logistic classifier between data and generator samples G(z); the value
function is V(D, G) = E_x log D(x) + E_z log(1 - D(G(z))) (eq. 1). D maximises V; G minimises
it (the *minimax* loss) or, as the paper advises in §3 because log(1 - D(G(z))) saturates early
in training, maximises log D(G(z)) (the *non-saturating* loss). Everything is computed on D's
logits through ``binary_cross_entropy_with_logits``, stable at any logit.

``GANTrainer`` runs Algorithm 1: ``d_steps`` (k) discriminator steps, each on a fresh minibatch
of data and of noise, then one generator step on fresh noise, with separate optimizers; it keeps
per-epoch curves, writes sample grids and atomic checkpoints that resume a run exactly, and
reports the known failure signs (a discriminator that wins outright, a diverging generator loss,
mode collapse on 2-D data with known modes).
"""

from __future__ import annotations

import io
import math
import os
import time
from pathlib import Path

import numpy as np

import flowgrad as fg

from ..errors import ShapeError
from ..nn import functional as F
from ..serialization import SerializationError, atomic_write, load, save
from ..train.checkpoint import rng_state, set_rng_state
from ..train.history import History

__all__ = ["discriminator_loss", "generator_loss", "GANTrainer", "save_image_grid",
           "GENERATOR_LOSSES"]

GENERATOR_LOSSES = ("nonsaturating", "minimax")
NOISES = ("gaussian", "uniform")
UPDATES = ("alternating", "simultaneous")
FORMAT = "flowgrad-gan-checkpoint"


# --- losses on logits ---------------------------------------------------------------------------

def _flat_logits(logits, what: str):
    shape = tuple(logits.shape)
    if len(shape) == 2 and shape[1] == 1:
        return logits.reshape(shape[0])
    if len(shape) != 1:
        raise ShapeError(f"{what}: expected the discriminator's logits of shape (N,) or (N, 1), "
                         f"got {shape}")
    return logits


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss, −[mean log D(x) + mean log(1 − D(G(z)))] (the negated value
    function of Goodfellow et al. 2014, eq. 1), from D's logits on a batch of data and a batch
    of generator samples, each of shape (N,) or (N, 1)."""
    real = _flat_logits(real_logits, "discriminator_loss(real_logits)")
    fake = _flat_logits(fake_logits, "discriminator_loss(fake_logits)")
    return (F.binary_cross_entropy_with_logits(real, fg.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, fg.zeros_like(fake)))


def generator_loss(fake_logits, kind: str = "nonsaturating"):
    """The generator's loss from D's logits on generator samples (shape (N,) or (N, 1)):
    ``"minimax"``: mean log(1 − D(G(z))), the term of eq. 1 that G minimises;
    ``"nonsaturating"``: −mean log D(G(z)), the variant of §3 with strong gradients early on."""
    fake = _flat_logits(fake_logits, "generator_loss")
    if kind == "minimax":
        return -F.binary_cross_entropy_with_logits(fake, fg.zeros_like(fake))
    if kind == "nonsaturating":
        return F.binary_cross_entropy_with_logits(fake, fg.ones_like(fake))
    raise ValueError(f"generator_loss: unknown kind {kind!r}; expected one of {GENERATOR_LOSSES}")


# --- sample grids -------------------------------------------------------------------------------

def _as_images(images) -> np.ndarray:
    """(N, H, W, C) float array from (N, C, H, W), (N, H, W) or (N, D) with D a square."""
    x = images.detach().numpy() if hasattr(images, "detach") else np.asarray(images)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        side = int(round(math.sqrt(x.shape[1])))
        if side * side != x.shape[1]:
            raise ShapeError(f"save_image_grid: flat images of {x.shape[1]} values are not "
                             f"square; pass (N, C, H, W) or (N, H, W)")
        x = x.reshape(len(x), side, side)
    if x.ndim == 3:
        x = x[..., None]
    elif x.ndim == 4 and x.shape[1] in (1, 3):
        x = x.transpose(0, 2, 3, 1)
    else:
        raise ShapeError(f"save_image_grid: expected images (N, C, H, W) with C 1 or 3, "
                         f"(N, H, W) or (N, H*W), got shape {x.shape}")
    return x


def save_image_grid(images, path, nrow: int = 8, value_range: tuple | None = None,
                    padding: int = 2) -> Path:
    """Write ``images`` ((N, C, H, W), (N, H, W) or flat (N, H*W); Tensor or array) as one PNG
    grid of ``nrow`` images per row. ``value_range`` maps to black..white; by default (0, 1),
    or (−1, 1) when some value is negative (a tanh output). Returns the path."""
    from matplotlib.image import imsave

    x = _as_images(images)
    if len(x) == 0:
        raise ValueError("save_image_grid: no images given")
    lo, hi = value_range if value_range is not None else ((-1.0, 1.0) if x.min() < 0
                                                          else (0.0, 1.0))
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    n, h, w, c = x.shape
    ncol = max(1, min(int(nrow), n))
    nrows = -(-n // ncol)
    grid = np.ones((nrows * (h + padding) + padding, ncol * (w + padding) + padding, c))
    for i in range(n):
        r, q = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + q * (w + padding)
        grid[top:top + h, left:left + w] = x[i]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    if c == 1:
        imsave(buf, grid[..., 0], cmap="gray", vmin=0.0, vmax=1.0, format="png")
    else:
        imsave(buf, grid, format="png")
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path


def _save_scatter(samples: np.ndarray, path, centres=None, title: str = "") -> Path:
    from ..plotting import new_figure, save_figure

    fig, ax = new_figure(figsize=(4, 4))
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.4, label="samples")
    if centres is not None:
        ax.scatter(centres[:, 0], centres[:, 1], marker="x", c="tab:red", s=40, label="modes")
    ax.set_aspect("equal")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path, dpi=90, tight=True)


def coverage(samples: np.ndarray, centres: np.ndarray, std: float) -> dict:
    """Mode coverage of 2-D samples (flowgrad.generative.metrics.mode_coverage: a mode counts
    when at least 1% of the samples lie within 3 std of it)."""
    from .metrics import mode_coverage

    return mode_coverage(samples, centres, std)


# --- the training loop --------------------------------------------------------------------------

def _set_requires_grad(module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def _mean(values) -> float:
    return float(np.mean(values)) if values else math.nan


class GANTrainer:
    """Adversarial training of ``generator`` against ``discriminator`` (Goodfellow et al. 2014,
    Algorithm 1): for each minibatch of the loader one discriminator step (data against fresh
    generator samples), and after every ``d_steps`` (k) of them one generator step on fresh
    noise; each network has its own optimizer.

    Args:
        generator: ``generator(z)`` (or ``generator(z, labels)`` when ``conditional``) maps noise
            (N, latent_dim) to samples shaped like the data.
        discriminator: ``discriminator(x)`` (or ``(x, labels)``) returns logits (N,) or (N, 1).
        g_optimizer, d_optimizer: optimizers over each network's parameters.
        latent_dim: size of z.
        loss: the generator's loss, ``"nonsaturating"`` (§3) or ``"minimax"`` (eq. 1).
        d_steps: discriminator steps per generator step (k of Algorithm 1).
        conditional: pass the batch's labels to both networks (Mirza & Osindero 2014); the
            loader then yields (x, labels). ``num_classes`` lets labels be checked up front.
        noise: ``"gaussian"`` N(0, I), ``"uniform"`` U(−1, 1), or a callable ``(n, latent_dim)
            -> Tensor``; drawn from flowgrad's random stream (``fg.manual_seed``).
        noise_scale: s multiplies the named noise: N(0, s²I) or U(−s, s) (Goodfellow et al.'s
            MNIST code draws U(−√3, √3), unit variance).
        d_loss_weight: factor on the discriminator's loss (Goodfellow et al.'s code uses 1/2).
        out: folder for sample grids, the curves and (by default) the checkpoint.
        sample_every: write a sample grid every this many epochs (and after the last one).
        checkpoint: checkpoint file (default ``out/gan_last.safetensors``; False: none),
            rewritten atomically after every epoch.
        mode_centres, mode_std: the modes of 2-D data with known modes (a ring of Gaussians);
            mode coverage is then measured each epoch on ``coverage_samples`` samples.
        callbacks: objects with optional ``on_batch_end(trainer)`` and
            ``on_epoch_end(trainer, record)`` (learning-rate and momentum schedules).
        patience: epochs a failure sign must persist before it is reported.
        pack: the discriminator judges ``pack`` samples at once, concatenated along the
            feature (channel) axis, all real or all generated (PacGAN, Lin, Khetan, Fanti & Oh
            2018: a packed discriminator sees a collapsed generator's lack of diversity);
            the discriminator then takes (N / pack, pack * features, ...) and every batch
            size must be a multiple of ``pack``.
        update: ``"alternating"`` (Algorithm 1: a D step on fresh samples, then a G step on
            fresh noise) or ``"simultaneous"`` (both networks from one forward pass of one
            batch of samples, as Goodfellow et al.'s pylearn2 code; needs d_steps = 1).
    """

    def __init__(self, generator, discriminator, g_optimizer, d_optimizer, latent_dim: int,
                 loss: str = "nonsaturating", d_steps: int = 1, conditional: bool = False,
                 num_classes: int | None = None, noise="gaussian", d_loss_weight: float = 1.0,
                 out=None, sample_every: int = 5, n_samples: int = 64, checkpoint=None,
                 mode_centres=None, mode_std: float | None = None,
                 coverage_samples: int = 10_000, callbacks=(), patience: int = 3,
                 pack: int = 1, update: str = "alternating", noise_scale: float = 1.0) -> None:
        if loss not in GENERATOR_LOSSES:
            raise ValueError(f"GANTrainer: unknown loss {loss!r}; expected one of "
                             f"{GENERATOR_LOSSES}")
        for name, value in (("latent_dim", latent_dim), ("d_steps", d_steps),
                            ("sample_every", sample_every), ("patience", patience),
                            ("pack", pack)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GANTrainer: {name} must be a positive integer, got {value!r}")
        if not callable(noise) and noise not in NOISES:
            raise ValueError(f"GANTrainer: unknown noise {noise!r}; expected one of {NOISES} "
                             f"or a callable (n, latent_dim) -> Tensor")
        if update not in UPDATES:
            raise ValueError(f"GANTrainer: unknown update {update!r}; expected one of {UPDATES}")
        if update == "simultaneous" and d_steps != 1:
            raise ValueError(f"GANTrainer: update='simultaneous' takes both steps from one "
                             f"forward pass, so d_steps must be 1, got {d_steps}")
        if not (isinstance(noise_scale, (int, float)) and noise_scale > 0):
            raise ValueError(f"GANTrainer: noise_scale must be a positive number, "
                             f"got {noise_scale!r}")
        if pack > 1 and conditional:
            raise ValueError("GANTrainer: pack > 1 (PacGAN) is not supported for conditional "
                             "training (the packed samples would need one label each)")
        if (mode_centres is None) != (mode_std is None):
            raise ValueError("GANTrainer: mode_centres and mode_std go together")
        self.generator, self.discriminator = generator, discriminator
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        self.latent_dim, self.loss, self.d_steps, self.pack = latent_dim, loss, d_steps, pack
        self.update, self.noise_scale = update, float(noise_scale)
        self.conditional, self.num_classes, self.noise = conditional, num_classes, noise
        self.d_loss_weight = float(d_loss_weight)
        self.out = None if out is None else Path(out)
        if checkpoint is None and self.out is not None:
            checkpoint = self.out / "gan_last.safetensors"
        self.checkpoint = None if checkpoint is False or checkpoint is None else Path(checkpoint)
        self.sample_every, self.n_samples = sample_every, n_samples
        self.mode_centres = None if mode_centres is None else np.asarray(mode_centres, float)
        self.mode_std, self.coverage_samples = mode_std, coverage_samples
        self.callbacks, self.patience = tuple(callbacks), patience
        self.history = History()
        self.epoch, self.step, self.g_steps = 0, 0, 0
        self.failure_signs: list[tuple[int, str]] = []
        fixed = np.random.default_rng(1234)  # the same noise for every grid: progress is visible
        self.fixed_z = fg.from_numpy(self._draw_numpy(fixed, n_samples))
        self.fixed_labels = (fg.from_numpy(np.arange(n_samples) % num_classes)
                             if conditional and num_classes else None)
        self._last_labels = None

    # --- noise and sampling ---------------------------------------------------------------------
    def _draw_numpy(self, rng, n: int) -> np.ndarray:
        if self.noise == "uniform":
            z = rng.uniform(-1.0, 1.0, (n, self.latent_dim))
        else:
            z = rng.standard_normal((n, self.latent_dim))
        return (z * self.noise_scale).astype(np.float32)

    def draw_noise(self, n: int):
        """n noise vectors z (N, latent_dim) from flowgrad's random stream."""
        if callable(self.noise):
            return self.noise(n, self.latent_dim)
        if self.noise == "uniform":
            z = fg.rand(n, self.latent_dim) * 2.0 - 1.0
        else:
            z = fg.randn(n, self.latent_dim)
        return z * self.noise_scale if self.noise_scale != 1.0 else z

    def _generate(self, z, labels):
        return self.generator(z, labels) if self.conditional else self.generator(z)

    def _discriminate(self, x, labels):
        if self.conditional:
            return self.discriminator(x, labels)
        if self.pack > 1:
            n = int(x.shape[0])
            if n % self.pack:
                raise ShapeError(f"GANTrainer: a batch of {n} samples cannot be packed in "
                                 f"groups of pack={self.pack}; use batch sizes that are "
                                 f"multiples of {self.pack} (drop_last=True in the loader)")
            x = x.reshape(n // self.pack, self.pack * int(x.shape[1]), *x.shape[2:])
        return self.discriminator(x)

    def sample(self, n: int, labels=None, z=None):
        """n generator samples (eval mode, no graph); ``labels`` (N,) when conditional."""
        if self.conditional and labels is None:
            raise ValueError("GANTrainer.sample: a conditional generator needs labels")
        if labels is not None:
            labels = labels if isinstance(labels, fg.Tensor) else fg.from_numpy(
                np.asarray(labels, dtype=np.int64))
            self._check_labels(labels, "sample")
        was = self.generator.training
        self.generator.eval()
        try:
            with fg.no_grad():
                return self._generate(self.draw_noise(n) if z is None else z, labels)
        finally:
            self.generator.train(was)

    # --- checks before training -----------------------------------------------------------------
    def _check_labels(self, labels, where: str) -> None:
        if self.num_classes is None:
            return
        values = labels.numpy()
        if values.size and (values.min() < 0 or values.max() >= self.num_classes):
            raise ValueError(f"GANTrainer.{where}: labels must be in 0..{self.num_classes - 1}, "
                             f"got values from {values.min()} to {values.max()}")

    def _data_example(self, loader):
        dataset = getattr(loader, "dataset", None)
        item = None
        if dataset is not None:
            try:
                item = dataset[0]
            except Exception:
                item = None
        if item is None:
            batch = next(iter(loader))
            item = tuple(b[0] for b in batch) if isinstance(batch, (tuple, list)) else batch[0]
        if isinstance(item, (tuple, list)):
            x, labels = item[0], (item[1] if len(item) > 1 else None)
        else:
            x, labels = item, None
        x = x if isinstance(x, fg.Tensor) else fg.from_numpy(np.asarray(x))
        return x, labels

    def check_shapes(self, loader) -> None:
        """One dry pass (eval mode, no graph, no random draw from flowgrad's stream): G's output
        must have the data's shape and D must return one logit per example; raises ShapeError
        naming both shapes otherwise, before any training."""
        x, label = self._data_example(loader)
        if self.conditional:
            if label is None:
                raise ValueError("GANTrainer: conditional training needs batches (x, labels)")
            label = label if isinstance(label, fg.Tensor) else fg.tensor(int(label))
            tensors = getattr(getattr(loader, "dataset", None), "tensors", None)
            every = tensors[1] if tensors is not None and len(tensors) > 1 else label
            self._check_labels(every.reshape(-1), "fit")
        data_shape = tuple(x.shape)
        modes = (self.generator.training, self.discriminator.training)
        self.generator.eval()
        self.discriminator.eval()
        try:
            with fg.no_grad():
                z = fg.from_numpy(self._draw_numpy(np.random.default_rng(0), 2 * self.pack))
                labels = (label.reshape(1).expand(2) if self.conditional else None)
                fake = self._generate(z, labels)
                fake_shape = tuple(fake.shape)
                if fake_shape[1:] != data_shape:
                    raise ShapeError(
                        f"GANTrainer: the generator's output has shape {fake_shape} for "
                        f"{fake_shape[0]} noise vectors (per sample {fake_shape[1:]}), but each "
                        f"data example has "
                        f"shape {data_shape}; the discriminator is trained on both, so they "
                        f"must match")
                try:
                    logits = self._discriminate(fake, labels)
                except ShapeError as e:
                    raise ShapeError(f"GANTrainer: the discriminator rejects a batch of shape "
                                     f"{fake_shape} (data examples have shape {data_shape}): "
                                     f"{e}") from e
                _flat_logits(logits, "GANTrainer: the discriminator's output")
        finally:
            self.generator.train(modes[0])
            self.discriminator.train(modes[1])

    # --- steps ----------------------------------------------------------------------------------
    def _split_batch(self, batch):
        if isinstance(batch, (tuple, list)):
            x = batch[0]
            labels = batch[1] if self.conditional else None
        else:
            x, labels = batch, None
        x = x if isinstance(x, fg.Tensor) else fg.from_numpy(np.asarray(x))
        if labels is not None:
            self._check_labels(labels, "fit")
            self._last_labels = labels
        return x, labels

    def _judge(self, x, fake, labels):
        """D's (weighted) loss on data x against samples ``fake``, and its logits on both."""
        real_logits = _flat_logits(self._discriminate(x, labels), "discriminator")
        fake_logits = _flat_logits(self._discriminate(fake, labels), "discriminator")
        loss = discriminator_loss(real_logits, fake_logits)
        if self.d_loss_weight != 1.0:
            loss = loss * self.d_loss_weight
        return loss, real_logits, fake_logits

    def discriminator_step(self, x, labels=None) -> dict:
        """One step of D on data x against as many generator samples."""
        n = int(x.shape[0])
        with fg.no_grad():
            fake = self._generate(self.draw_noise(n), labels)
        loss, real_logits, fake_logits = self._judge(x, fake, labels)
        self.d_optimizer.zero_grad()
        loss.backward()
        self.d_optimizer.step()
        return {"d_loss": loss.item(),
                "d_real_accuracy": float((real_logits.detach().numpy() > 0).mean()),
                "d_fake_accuracy": float((fake_logits.detach().numpy() < 0).mean())}

    def generator_step(self, n: int, labels=None) -> float:
        """One step of G on n fresh noise vectors (D's parameters frozen for it)."""
        _set_requires_grad(self.discriminator, False)
        try:
            logits = self._discriminate(self._generate(self.draw_noise(n), labels), labels)
            loss = generator_loss(logits, self.loss)
            self.g_optimizer.zero_grad()
            loss.backward()
            self.g_optimizer.step()
        finally:
            _set_requires_grad(self.discriminator, True)
        return loss.item()

    def simultaneous_step(self, x, labels=None) -> tuple[dict, float]:
        """Both networks updated from one forward pass, as Goodfellow et al.'s code does
        (``AdversaryCost2``): D sees the data and n generator samples once (one dropout mask
        each); D's gradient is that of its loss alone, G's that of its loss on the same
        logits of its samples; then both optimizers step."""
        n = int(x.shape[0])
        fake = self._generate(self.draw_noise(n), labels)
        d_loss, real_logits, fake_logits = self._judge(x, fake, labels)
        g_loss = generator_loss(fake_logits, self.loss)
        d_params = [p for p in self.discriminator.parameters() if p.requires_grad]
        d_grads = fg.autograd.grad(d_loss, d_params, retain_graph=True, allow_unused=True)
        self.g_optimizer.zero_grad()
        self.d_optimizer.zero_grad()
        g_loss.backward()  # G's gradient; what it leaves on D's parameters is replaced below
        for p, g in zip(d_params, d_grads):
            p.grad = g
        self.d_optimizer.step()
        self.g_optimizer.step()
        return ({"d_loss": d_loss.item(),
                 "d_real_accuracy": float((real_logits.detach().numpy() > 0).mean()),
                 "d_fake_accuracy": float((fake_logits.detach().numpy() < 0).mean())},
                g_loss.item())

    # --- fit ------------------------------------------------------------------------------------
    def fit(self, loader, epochs: int, resume: bool = False, progress: bool = True) -> History:
        """Train up to ``epochs`` epochs in total (a resumed run continues from its checkpoint);
        returns the History (per epoch: d_loss, g_loss, d_real_accuracy, d_fake_accuracy,
        seconds, learning rates, mode coverage when modes are known, failure signs)."""
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"GANTrainer.fit: epochs must be a non-negative integer, "
                             f"got {epochs!r}")
        self.check_shapes(loader)
        if resume:
            self.load(loader=loader)
        while self.epoch < epochs:
            self.epoch += 1
            record = self._train_epoch(loader, epochs, progress)
            if self.out is not None and (self.epoch % self.sample_every == 0
                                         or self.epoch == epochs):
                self.save_samples(self.out / f"samples_epoch{self.epoch:03d}.png")
            for cb in self.callbacks:
                if hasattr(cb, "on_epoch_end"):
                    cb.on_epoch_end(self, record)
            if self.checkpoint is not None:
                self.save(loader=loader)
        if self.out is not None and self.history.epochs:
            self.history.to_csv(self.out / "gan_history.csv")
            self.plot_curves(self.out / "gan_curves.png")
        return self.history

    def _train_epoch(self, loader, epochs: int, progress: bool) -> dict:
        start = time.perf_counter()
        bar = _bar(loader, self.epoch, epochs, progress)
        d_logs, g_losses = [], []
        for batch in loader:
            x, labels = self._split_batch(batch)
            if self.update == "simultaneous":
                d_log, g_loss = self.simultaneous_step(x, labels)
                d_logs.append(d_log)
                g_losses.append(g_loss)
                self.step += 1
                self.g_steps += 1
            else:
                d_logs.append(self.discriminator_step(x, labels))
                self.step += 1
            if self.update == "alternating" and self.step % self.d_steps == 0:
                g_losses.append(self.generator_step(int(x.shape[0]), labels))
                self.g_steps += 1
            for cb in self.callbacks:
                if hasattr(cb, "on_batch_end"):
                    cb.on_batch_end(self)
            if bar is not None:
                bar.set_postfix({"d_loss": f"{d_logs[-1]['d_loss']:.3f}",
                                 "g_loss": f"{g_losses[-1]:.3f}" if g_losses else "-"},
                                refresh=False)
                bar.update()
        record = {key: _mean([d[key] for d in d_logs]) for key in
                  ("d_loss", "d_real_accuracy", "d_fake_accuracy")}
        record["g_loss"] = _mean(g_losses)
        record["d_lr"] = self.d_optimizer.param_groups[0]["lr"]
        record["g_lr"] = self.g_optimizer.param_groups[0]["lr"]
        if self.mode_centres is not None:
            samples = self.sample(self.coverage_samples).numpy()
            cov = coverage(samples, self.mode_centres, self.mode_std)
            record["modes_covered"] = int(cov["modes_covered"])
            record["high_quality_fraction"] = float(cov["high_quality_fraction"])
        record["seconds"] = time.perf_counter() - start
        signs = self._failure_signs(record)
        record["failure_signs"] = "; ".join(signs)
        record = self.history.log_epoch(self.epoch, **record)
        self.failure_signs += [(self.epoch, s) for s in signs]
        if bar is not None:
            bar.close()
        if progress:
            text = (f"epoch {self.epoch}/{epochs}: D loss {record['d_loss']:.4f}, G loss "
                    f"{record['g_loss']:.4f}, D accuracy real {record['d_real_accuracy']:.1%} / "
                    f"fake {record['d_fake_accuracy']:.1%}")
            if "modes_covered" in record:
                text += f", modes covered {record['modes_covered']}/{len(self.mode_centres)}"
            print(text + "".join(f"\n  warning: {s}" for s in signs), flush=True)
        return record

    def _failure_signs(self, record: dict) -> list[str]:
        """The known failure signs, each once it has lasted ``patience`` epochs."""
        rows = self.history.epochs[-(self.patience - 1):] if self.patience > 1 else []
        rows = rows + [record]
        signs = []
        if len(rows) == self.patience and all(
                r["d_real_accuracy"] >= 0.99 and r["d_fake_accuracy"] >= 0.99 for r in rows):
            signs.append(f"discriminator accuracy at 100% on data and samples for "
                         f"{self.patience} epochs (it wins outright; the generator's gradient "
                         f"vanishes)")
        g = [r["g_loss"] for r in rows]
        lowest = min([r["g_loss"] for r in self.history.epochs] + [record["g_loss"]])
        if not math.isfinite(record["g_loss"]):
            signs.append("generator loss is not finite")
        elif (len(g) == self.patience and self.patience > 1
              and all(b > a for a, b in zip(g, g[1:])) and g[-1] > lowest + max(1.0, abs(lowest))):
            signs.append(f"generator loss diverging: rose for {self.patience} epochs to "
                         f"{g[-1]:.3g} (lowest {lowest:.3g})")
        if self.mode_centres is not None:
            k = len(self.mode_centres)
            covered = [r.get("modes_covered", k) for r in rows]
            if len(covered) == self.patience and all(c < k for c in covered):
                signs.append(f"mode collapse: {record['modes_covered']} of {k} modes covered "
                             f"(fewer than {k} for {self.patience} epochs)")
        return signs

    # --- outputs --------------------------------------------------------------------------------
    def save_samples(self, path) -> Path:
        """A grid of samples from the fixed noise (a scatter plot for 2-D data)."""
        labels = self.fixed_labels
        if self.conditional and labels is None:  # classes unknown: the last batch's labels
            last = self._last_labels.numpy()
            labels = fg.from_numpy(np.resize(last, len(self.fixed_z)))
        samples = self.sample(len(self.fixed_z) if self.mode_centres is None
                              else self.coverage_samples, labels=labels,
                              z=self.fixed_z if self.mode_centres is None else None).numpy()
        if samples.ndim == 2 and samples.shape[1] == 2:
            return _save_scatter(samples, path, self.mode_centres, f"epoch {self.epoch}")
        nrow = (self.num_classes if self.fixed_labels is not None
                else max(1, round(math.sqrt(len(samples)))))
        return save_image_grid(samples, path, nrow=nrow)

    def plot_curves(self, path) -> Path:
        """D and G losses and D's accuracy on data and samples, per epoch."""
        from ..plotting import new_figure, save_figure

        h = self.history
        fig, axes = new_figure(1, 2, figsize=(10, 3.6), layout="constrained")
        axes[0].plot(h["epoch"], h["d_loss"], "o-", ms=3, label="D loss")
        axes[0].plot(h["epoch"], h["g_loss"], "o-", ms=3, label=f"G loss ({self.loss})")
        axes[1].plot(h["epoch"], h["d_real_accuracy"], "o-", ms=3, label="D accuracy on data")
        axes[1].plot(h["epoch"], h["d_fake_accuracy"], "o-", ms=3,
                     label="D accuracy on samples")
        axes[1].set_ylim(-0.02, 1.02)
        for ax in axes:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        return save_figure(fig, path, dpi=100)

    # --- checkpoints ----------------------------------------------------------------------------
    def save(self, path=None, loader=None) -> Path:
        """Write both networks, both optimizers, the history, the counters and every random
        stream (flowgrad's and the loader's shuffling) to one file, atomically."""
        path = Path(path or self.checkpoint)
        path.parent.mkdir(parents=True, exist_ok=True)
        save({"format": FORMAT, "epoch": self.epoch, "step": self.step,
              "g_steps": self.g_steps,
              "generator": self.generator.state_dict(),
              "discriminator": self.discriminator.state_dict(),
              "g_optimizer": self.g_optimizer.state_dict(),
              "d_optimizer": self.d_optimizer.state_dict(),
              "history": self.history.state_dict(),
              "failure_signs": [[e, s] for e, s in self.failure_signs],
              "rng": rng_state(*(() if loader is None else (loader,)))}, str(path))
        return path

    def load(self, path=None, loader=None) -> bool:
        """Restore what ``save`` wrote; False (and nothing changed) when the file is absent."""
        path = Path(path or self.checkpoint) if (path or self.checkpoint) else None
        if path is None:
            raise ValueError("GANTrainer: resume needs a checkpoint path (checkpoint= or out=)")
        if not path.exists():
            return False
        ckpt = load(str(path))
        if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
            raise SerializationError(f"GANTrainer.load {str(path)!r}: not a GAN checkpoint "
                                     f"written by GANTrainer.save")
        self.generator.load_state_dict(ckpt["generator"])
        self.discriminator.load_state_dict(ckpt["discriminator"])
        self.g_optimizer.load_state_dict(ckpt["g_optimizer"])
        self.d_optimizer.load_state_dict(ckpt["d_optimizer"])
        self.history.load_state_dict(ckpt["history"])
        self.epoch, self.step = int(ckpt["epoch"]), int(ckpt["step"])
        self.g_steps = int(ckpt["g_steps"])
        self.failure_signs = [(int(e), str(s)) for e, s in ckpt.get("failure_signs", [])]
        set_rng_state(ckpt["rng"], *(() if loader is None else (loader,)))
        return True


def _bar(loader, epoch: int, epochs: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    total = len(loader) if hasattr(loader, "__len__") else None
    return tqdm(total=total, desc=f"GAN epoch {epoch}/{epochs}", unit="batch", leave=False,
                dynamic_ncols=True, disable=os.environ.get("TQDM_DISABLE") == "1")
