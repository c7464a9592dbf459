"""Goodfellow et al. (2014), "Generative Adversarial Nets", Table 1 on MNIST: the Parzen-window
log-likelihood of the adversarial net's samples (225 ± 2 nats), with the model, training and
evaluation of the paper's code (github.com/goodfeli/adversarial: ``mnist.yaml``,
``__init__.py``, ``parzen_ll.py``).

Model (flowgrad.models.gan): generator 100-d uniform noise U(−√3, √3) → 1200 ReLU → 1200 ReLU
→ 784 sigmoid; discriminator maxout 240 × 5 → maxout 240 × 5 → sigmoid, dropout on each layer's
input (kept with probability 0.8 at the first, 0.5 at the others). Training: MNIST
train[0:50000], minibatches of 100, SGD with learning rate 0.1 divided by 1.000004 after every
update (not below 1e-6) and momentum rising linearly from 0.5 to 0.7 over 250 epochs, the
discriminator's loss halved and both networks updated at once from one forward pass, as in the
code. Evaluation: 10,000 generator samples, a Gaussian Parzen window whose width σ is chosen
among logspace(−1, 0, 10) on a validation slice of train[50000:60000], the mean log-likelihood
of the 10,000 test digits ± its standard error (flowgrad.generative.parzen).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import flowgrad as fg

from ..generative.gan import GANTrainer, save_image_grid
from ..generative.parzen import PAPER_SIGMAS, parzen_evaluate
from ..models.gan import GoodfellowMNISTDiscriminator, GoodfellowMNISTGenerator, marginal_logits
from ..plotting import new_figure, save_figure
from ..utils.data import DataLoader, TensorDataset
from ..utils.threads import limit_threads as _limit_threads
from .common import Timer, command_line, mnist_arrays, resolve_out, write_results

NAME = "gan_mnist"
DEFAULTS = {"epochs": 60, "batch_size": 100, "lr": 0.1, "seed": 0, "n_samples": 10_000,
            "n_valid": 1000, "eval_every": 5, "threads": 2}
PUBLISHED = {"Adversarial nets (Goodfellow et al. 2014)": "225 ± 2",
             "Deep GSN (Bengio et al. 2014)": "214 ± 1.1",
             "DBN (Bengio et al. 2013)": "138 ± 2",
             "Stacked CAE (Bengio et al. 2013)": "121 ± 1.6"}
FIGURES = ("gan_mnist_samples.png", "gan_mnist_nearest.png", "gan_mnist_parzen.png",
           "gan_curves.png")
CURVES = FIGURES[-1]
TIME_BUDGET = 90 * 60  # seconds, on 2 cores: the full run is sized to fit in this


class PaperSchedule:
    """pylearn2's ExponentialDecay (lr / 1.000004 per update, at least 1e-6) and
    MomentumAdjustor (momentum 0.5 → 0.7, linear from epoch 1 to epoch 250) of mnist.yaml."""

    def __init__(self, lr: float = 0.1, decay: float = 1.000004, min_lr: float = 1e-6,
                 momentum: tuple = (0.5, 0.7), saturate: int = 250) -> None:
        self.lr, self.decay, self.min_lr = lr, decay, min_lr
        self.momentum, self.saturate = momentum, saturate

    def momentum_at(self, epoch: int) -> float:
        a = min(max((epoch - 1) / (self.saturate - 1), 0.0), 1.0)
        return self.momentum[0] + a * (self.momentum[1] - self.momentum[0])

    def on_batch_end(self, trainer) -> None:
        lr = max(self.lr / self.decay ** trainer.step, self.min_lr)
        for opt in (trainer.g_optimizer, trainer.d_optimizer):
            for group in opt.param_groups:
                group["lr"] = lr

    def on_epoch_end(self, trainer, _record) -> None:
        momentum = self.momentum_at(trainer.epoch + 1)
        for opt in (trainer.g_optimizer, trainer.d_optimizer):
            for group in opt.param_groups:
                group["momentum"] = momentum


class KeepBestParzen:
    """Every ``every`` epochs (and at the last), the validation Parzen log-likelihood of
    ``n_samples`` samples (σ chosen on the same slice); keeps the generator's best weights.

    With ``record`` (a file), the curve, the best weights and the untrained generator's score
    are written there after every evaluation, so that a resumed run keeps them."""

    def __init__(self, valid: np.ndarray, n_samples: int, every: int, epochs: int,
                 record=None) -> None:
        self.valid, self.n_samples, self.every, self.epochs = valid, n_samples, every, epochs
        self.best, self.epoch, self.state, self.curve = -np.inf, None, None, []
        self.initial, self.record = None, None if record is None else Path(record)

    def save(self) -> None:
        if self.record is not None:
            fg.save({"best": float(self.best), "epoch": self.epoch, "initial": self.initial,
                     "curve": [list(c) for c in self.curve], "generator": self.state},
                    str(self.record))

    def restore(self, trainer, summary_file: Path) -> None:
        """Take back what ``save`` wrote; for a run written before ``record`` existed, the
        curve from its results JSON and, when the best epoch is the checkpoint's, the
        checkpoint's generator."""
        if self.record is not None and self.record.exists():
            r = fg.load(str(self.record))
            self.best, self.epoch, self.initial = float(r["best"]), r["epoch"], r["initial"]
            # an evaluation recorded after the checkpoint's epoch is redone by the resumed run
            self.curve = [tuple(c) for c in r["curve"] if c[0] <= trainer.epoch]
            self.state = r["generator"]
            return
        if not summary_file.exists():
            raise ValueError(f"{NAME}: resume found neither {self.record} nor {summary_file}")
        old = json.loads(summary_file.read_text())
        if old["chosen_epoch"] != trainer.epoch:
            raise ValueError(f"{NAME}: resume: the best generator of the earlier run (epoch "
                             f"{old['chosen_epoch']}) is not its checkpoint's (epoch "
                             f"{trainer.epoch}) and was not recorded")
        self.best, self.epoch = float(old["valid_parzen_best"]), int(old["chosen_epoch"])
        self.initial = float(old["initial_valid_parzen"])
        self.curve = [tuple(c) for c in old["valid_parzen_curve"]]
        self.state = {k: v.detach().clone() for k, v in trainer.generator.state_dict().items()}

    def on_epoch_end(self, trainer, record) -> None:
        if trainer.epoch % self.every and trainer.epoch != self.epochs:
            return
        samples = trainer.sample(self.n_samples).numpy()
        result = parzen_evaluate(samples, self.valid, self.valid)
        self.curve.append((trainer.epoch, result["mean"], result["sigma"]))
        record["valid_parzen"] = result["mean"]
        if result["mean"] > self.best:
            self.best, self.epoch = result["mean"], trainer.epoch
            self.state = {k: v.detach().clone()
                          for k, v in trainer.generator.state_dict().items()}
        self.save()


def run(epochs=60, batch_size=100, lr=0.1, seed=0, n_samples=10_000, n_valid=1000,
        eval_every=5, threads=2, out=None, quick=False, progress=True,
        write: bool = True, rewrite: bool = False, resume: bool = False) -> dict:
    """Train the paper's adversarial pair on MNIST train[0:50000]; keep the generator of the
    epoch with the best validation Parzen log-likelihood (validation: the first ``n_valid`` of
    train[50000:60000]); evaluate the test set once with the paper's Parzen protocol.

    ``rewrite``: train nothing; write the results file of the earlier run in ``out`` again
    from its gan_mnist.json and figures, with this version's wording.

    ``resume``: continue the run in ``out`` from its checkpoint (exactly: both networks, both
    optimizers, the schedule and every random stream) up to ``epochs`` epochs in all, keeping
    its validation curve and best generator."""
    if rewrite:
        return _rewrite(out)
    # the command of the whole run: a resumed run is that command again with resume=True
    command = command_line(NAME, run, {**locals(), "resume": False})
    out = resolve_out(NAME, out)
    n_train, n_test = 50_000, 10_000
    if quick:  # epochs and eval_every stay as given when they differ from the defaults
        n_train, n_samples, n_valid, n_test = 2000, 1000, 200, 1000
        epochs = 3 if epochs == DEFAULTS["epochs"] else epochs
        eval_every = 3 if eval_every == DEFAULTS["eval_every"] else eval_every
    (xtr, _), (xte, _) = mnist_arrays("mnist", flatten=True)
    train, valid, test = xtr[:n_train], xtr[50_000:50_000 + n_valid], xte[:n_test]
    with _limit_threads(threads), Timer() as total:
        fg.manual_seed(seed)
        g = GoodfellowMNISTGenerator(output_bias=marginal_logits(xtr[:50_000]))
        d = GoodfellowMNISTDiscriminator()
        schedule = PaperSchedule(lr=lr)
        keep = KeepBestParzen(valid, n_samples, eval_every, epochs,
                              record=f"{out}/gan_mnist_best.safetensors")
        g_opt = fg.optim.SGD(g.parameters(), lr=lr, momentum=schedule.momentum_at(1))
        d_opt = fg.optim.SGD(d.parameters(), lr=lr, momentum=schedule.momentum_at(1))
        trainer = GANTrainer(g, d, g_opt, d_opt, latent_dim=100, loss="nonsaturating",
                             noise="uniform", noise_scale=3 ** 0.5, update="simultaneous",
                             d_loss_weight=0.5, out=out,
                             sample_every=max(1, eval_every), n_samples=100,
                             checkpoint=f"{out}/gan_mnist_last.safetensors",
                             callbacks=(schedule, keep))
        loader = DataLoader(TensorDataset(fg.from_numpy(train)), batch_size=batch_size,
                            shuffle=True)
        start_epoch = 0
        if resume:
            if not trainer.load(loader=loader):
                raise ValueError(f"{NAME}: resume found no checkpoint {trainer.checkpoint}")
            start_epoch = trainer.epoch
            keep.restore(trainer, Path(out) / f"{NAME}.json")
        else:
            keep.initial = parzen_evaluate(trainer.sample(n_samples).numpy(), valid,
                                           valid)["mean"]
        cpu = time.process_time()
        history = trainer.fit(loader, epochs, progress=progress)
        cpu = time.process_time() - cpu
        if keep.state is not None:
            g.load_state_dict(keep.state)
        with Timer() as t_eval:
            samples = trainer.sample(n_samples).numpy()
            result = parzen_evaluate(samples, valid, test)
        reference = real_data_parzen(train, valid, n_samples)
    epoch_seconds = [r["seconds"] for r in history.epochs]  # every epoch, resumed runs' too
    batches = max(epochs - start_epoch, 1) * len(loader)
    # CPU seconds of this process (all its threads) per minibatch, times 500 minibatches: the
    # time of one full epoch on one otherwise idle core, an upper bound for two cores that
    # holds even when other jobs share the machine (wall time then does not).
    per_epoch_full = cpu / batches * 50_000 / batch_size
    summary = {
        "title": "Goodfellow et al. (2014) adversarial nets on MNIST: Parzen log-likelihood",
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "n_train": n_train,
        "n_valid": n_valid, "n_test": n_test, "n_samples": n_samples, "eval_every": eval_every,
        "test_parzen_mean": result["mean"], "test_parzen_stderr": result["stderr"],
        "sigma": result["sigma"], "per_sigma": result["per_sigma"],
        "chosen_epoch": keep.epoch, "valid_parzen_best": keep.best,
        "valid_parzen_curve": keep.curve, "initial_valid_parzen": keep.initial,
        "resumed_from_epoch": start_epoch, "real_data_valid_parzen": reference,
        "final_d_real_accuracy": history.last["d_real_accuracy"],
        "final_d_fake_accuracy": history.last["d_fake_accuracy"],
        "failure_signs": [[e, s] for e, s in trainer.failure_signs],
        "epoch_seconds": epoch_seconds, "train_seconds": float(np.sum(epoch_seconds)),
        "train_cpu_seconds": cpu, "cpu_seconds_per_batch": cpu / batches,
        "eval_seconds": t_eval.seconds,
        "estimated_full_epoch_seconds": per_epoch_full,
        "estimated_epochs_in_budget": int(TIME_BUDGET // max(per_epoch_full, 1e-9)),
        "published": PUBLISHED, "threads": threads, "command": command, "seed": seed,
        # a resumed run's wall time includes the epochs run before it stopped
        "seconds": total.seconds + float(np.sum(epoch_seconds[:start_epoch]))}
    if write:
        figures = (save_image_grid(samples[:100], f"{out}/gan_mnist_samples.png", nrow=10),
                   _nearest_figure(samples[:10], train, out),
                   _plot_parzen(summary, out), f"{out}/{CURVES}")
        with _limit_threads(threads):
            write_results(NAME, out, summary, _rows(summary), notes=_notes(summary),
                          figures=figures)
    return summary


def real_data_parzen(train: np.ndarray, valid: np.ndarray, n_samples: int, seed: int = 0
                     ) -> dict:
    """The estimator's reference: ``n_samples`` training images drawn without replacement
    (``seed``) put in the generator's place, scored on the validation slice with σ chosen there
    as for the generator. A generator whose samples were as good as the training images would
    score about this much; the test set is not used."""
    pick = np.random.default_rng(seed).choice(len(train), min(n_samples, len(train)),
                                              replace=False)
    result = parzen_evaluate(train[pick], valid, valid)
    return {"mean": result["mean"], "sigma": result["sigma"], "n": len(pick)}


def _rewrite(out) -> dict:
    if out is None or not (Path(out) / f"{NAME}.json").exists():
        raise ValueError(f"gan_mnist: rewrite needs --out, the directory of an earlier run "
                         f"holding {NAME}.json; got {out!r}")
    summary = json.loads((Path(out) / f"{NAME}.json").read_text())
    if "real_data_valid_parzen" not in summary:  # runs written before the reference existed
        (xtr, _), _ = mnist_arrays("mnist", flatten=True)
        summary["real_data_valid_parzen"] = real_data_parzen(
            xtr[:summary["n_train"]], xtr[50_000:50_000 + summary["n_valid"]],
            summary["n_samples"])
    figures = tuple(str(Path(out) / f) for f in FIGURES)
    write_results(NAME, out, summary, _rows(summary), notes=_notes(summary), figures=figures)
    return summary


def _rows(s) -> list:
    rows = [("Adversarial nets, test Parzen log-likelihood (nats), mean ± standard error",
             f"{s['test_parzen_mean']:.1f} ± {s['test_parzen_stderr']:.1f} (σ = "
             f"{s['sigma']:.3f}, generator of epoch {s['chosen_epoch']} of {s['epochs']})",
             "225 ± 2 (Goodfellow et al. 2014, Table 1)")]
    rows += [(f"{name}, test Parzen log-likelihood (published)", "—", value)
             for name, value in PUBLISHED.items() if not name.startswith("Adversarial")]
    ref = s["real_data_valid_parzen"]
    rows += [("untrained generator (output bias = data marginals), validation Parzen "
              "log-likelihood", f"{s['initial_valid_parzen']:.1f}", "—"),
             ("the generator of the chosen epoch, validation Parzen log-likelihood",
              f"{s['valid_parzen_best']:.1f}", "—"),
             (f"reference: {ref['n']:,} training images in place of the samples, validation "
              "Parzen log-likelihood (σ chosen the same way)",
              f"{ref['mean']:.1f} (σ = {ref['sigma']:.3f})", "—"),
             ("training time: wall per epoch measured; CPU per minibatch; a full epoch of 500 "
              "minibatches estimated from the CPU time",
              f"{np.median(s['epoch_seconds']):.0f} s; {s['cpu_seconds_per_batch']:.3f} s; "
              f"{s['estimated_full_epoch_seconds']:.0f} s ({s['estimated_epochs_in_budget']} "
              "epochs fit in 90 min)", "—"),
             ("wall time of this run (training, Parzen evaluation)",
              f"{s['train_seconds']:.0f} s, {s['eval_seconds']:.0f} s", "—")]
    return rows


def _notes(s) -> str:
    signs = ("; ".join(f"epoch {e}: {t}" for e, t in s["failure_signs"])
             or "none")
    quick = s["n_train"] < 50_000
    data = (f"the first {s['n_train']:,} of MNIST train[0:50000] (short variant)" if quick
            else "MNIST train[0:50000]")
    resumed = s.get("resumed_from_epoch", 0)
    resumed = (f" The run was stopped and resumed from its checkpoint (the command above with "
               f"--set resume=True; the last time after epoch {resumed}), which restores both "
               "networks, both optimizers with the schedule's learning rate and momentum, every "
               "random stream, the validation curve and the best generator so far."
               if resumed else "")
    return (
        f"Protocol: trained on {data}, {s['epochs']} epochs of minibatches of "
        f"{s['batch_size']}; as in the paper's code (AdversaryCost2), each minibatch and one "
        "batch of samples pass through the discriminator once (one dropout mask), and both "
        "networks are updated at once from that pass (Algorithm 1 with k = 1, without its "
        f"alternation).{resumed} The generator's loss is the non-saturating -log D(G(z)) on those "
        "logits, the discriminator's the cross-entropy of data against samples, halved. "
        "Noise: 100-d uniform on (-sqrt 3, sqrt 3), as mnist.yaml sets (noise: 'uniform'). The "
        f"validation slice is the first {s['n_valid']:,} images of train[50000:60000] (the "
        "code's parzen_ll.py uses train[50000:60000][:1000]); every "
        f"{s['eval_every']} epochs the validation Parzen log-likelihood of "
        f"{s['n_samples']:,} samples (σ chosen on the same slice among "
        f"logspace(-1, 0, 10) = {', '.join(f'{v:.3f}' for v in PAPER_SIGMAS)}) picks the "
        "generator kept; the test set "
        f"({s['n_test']:,} digits) is evaluated once, with {s['n_samples']:,} samples of that "
        "generator and the σ with the best validation log-likelihood. The standard error is "
        "std / sqrt(n) over the test digits. The reference row scores training images as "
        "if a generator had drawn them (same number, same validation slice, same σ grid): it "
        "shows how far the estimate can go on this data; it uses no test digit. The published "
        "figures of the other models are "
        "copied from Goodfellow et al.'s Table 1. The Parzen estimate is known to be a poor "
        "likelihood measure in high dimension (Theis, van den Oord & Bethge 2016); it is "
        f"reported because the paper reports it. Failure signs reported during training: "
        f"{signs}. Discriminator accuracy in the last epoch: {s['final_d_real_accuracy']:.1%} "
        f"on data, {s['final_d_fake_accuracy']:.1%} on samples. Time budget: the recipe is "
        f"sized to finish within 90 minutes on 2 cores; from this run's CPU time, an epoch "
        f"over 50,000 images takes about {s['estimated_full_epoch_seconds']:.0f} s on one idle "
        f"core (wall time is not used: other jobs shared the machine), so about "
        f"{s['estimated_epochs_in_budget']} epochs fit (the paper's code ran far longer: its "
        "momentum schedule alone spans 250 epochs).")


def _nearest_figure(samples: np.ndarray, train: np.ndarray, out) -> str:
    """Samples (left) beside their nearest training images (right), as the paper's Fig. 2."""
    d2 = (samples ** 2).sum(1)[:, None] - 2 * samples @ train.T + (train ** 2).sum(1)[None]
    nearest = train[d2.argmin(1)]
    pairs = np.stack([samples, nearest], 1).reshape(-1, 784)
    return str(save_image_grid(pairs, f"{out}/gan_mnist_nearest.png", nrow=2))


def _plot_parzen(s, out) -> str:
    fig, axes = new_figure(1, 2, figsize=(10, 3.5), layout="constrained")
    sig, ll = zip(*s["per_sigma"])
    axes[0].semilogx(sig, ll, "o-")
    axes[0].axvline(s["sigma"], color="gray", ls=":", label=f"chosen σ = {s['sigma']:.3f}")
    axes[0].set(xlabel="σ", ylabel="validation log-likelihood (nats)",
                title="Parzen width chosen on validation")
    if s["valid_parzen_curve"]:
        e, v, _ = zip(*s["valid_parzen_curve"])
        axes[1].plot(e, v, "o-", label="validation")
    axes[1].axhline(225, color="tab:red", ls="--", label="published test 225")
    axes[1].set(xlabel="epoch", ylabel="Parzen log-likelihood (nats)",
                title="validation Parzen log-likelihood during training")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return str(save_figure(fig, f"{out}/gan_mnist_parzen.png", dpi=100))
