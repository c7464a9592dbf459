"""MNIST with two CNNs, under the honest protocol (validation = the last 10,000 training images,
the epoch and LeNet-5's learning rate chosen on it; then, by default, the model retrained from
the same seed on all 60,000 training images for the chosen number of epochs; the test set
evaluated once at the end):

- LeNet-5 as LeCun, Bottou, Bengio & Haffner (1998) define it (flowgrad.models.LeNet5: 32x32
  input, C1-S2-C3(Table I)-S4-C5-F6, trainable subsampling, scaled tanh), with a linear +
  softmax output in place of the RBF layer. Published: 0.95% test error without distortions.
- A modern small CNN (3x3 convs, ReLU, max-pooling, dropout, Adam): no published counterpart.

(lecture: "Convolutional Nets")."""

from __future__ import annotations

import flowgrad as fg

from ..models import LeNet5, ModernCNN
from .common import (
    command_line,
    evaluate,
    mnist_splits,
    protocol_note,
    resolve_out,
    timed_refit,
    timed_validation_run,
    write_results,
)

DATA_PARALLEL = True  # under mpirun, common.train_classifier trains data-parallel
DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 128, "seed": 0, "lenet_epochs": 20,
            "lenet_lrs": (0.025, 0.05, 0.1), "n_valid": 10_000, "refit": True}
PUBLISHED_ERROR = 0.0095
QUICK = (1000, 500, 1000)  # training / validation / test examples of the short variant

LENET = ("LeNet-5 (LeCun et al. 1998): 32x32 input, C1 6@5x5, S2 trainable 2x2 subsampling, C3 "
         "16@5x5 with Table I's connections, S4, C5 120@5x5, F6 84, 1.7159 tanh(2a/3); linear "
         "84-10 + softmax cross-entropy instead of the RBF output")
MODERN = ("modern CNN: conv3x3-32, ReLU, max-pool, conv3x3-64, ReLU, max-pool, fc128 ReLU, "
          "dropout 0.25, fc10")


def build_cnn(kind, lr, epochs, seed):
    """LeNet-5 ("lenet5") or the modern CNN ("modern"), its optimizer and its cosine schedule
    over ``epochs`` epochs, the weights drawn after ``fg.manual_seed(seed)``: the validation
    run and the refit start from the same weights."""
    fg.manual_seed(seed)
    if kind == "lenet5":
        model = LeNet5()
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        model = ModernCNN()
        optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    return model, optimizer, fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)


def train_cnn(kind, dataset, epochs, lr, batch_size, seed, out, quick, progress,
              n_valid=10_000, with_test=True, name=None):
    """Train LeNet-5 ("lenet5") or the modern CNN ("modern") on ``dataset`` under the honest
    protocol; returns the train_classifier result plus its name, time and split sizes.
    ``with_test=False``: the test set is not evaluated (a validation run to be refit)."""
    splits = mnist_splits(dataset, n_valid=n_valid, quick=QUICK if quick else None)
    name = name or (f"{dataset}_lenet5" if kind == "lenet5" else f"{dataset}_cnn")
    return timed_validation_run(lambda: build_cnn(kind, lr, epochs, seed), splits, epochs,
                                batch_size, out, name,
                                "LeNet-5" if kind == "lenet5" else "modern CNN", progress,
                                with_test)


def refit_cnn(kind, lr, epochs, best_epoch, batch_size, seed, out, quick, progress, n_valid):
    """The refit step: ``kind``'s model from the same seed, trained on the training and the
    validation split together for ``best_epoch`` epochs of its cosine schedule over ``epochs``;
    the test set evaluated once. Returns refit_classifier's result plus its time."""
    splits = mnist_splits("mnist", n_valid=n_valid, quick=QUICK if quick else None)
    name = "mnist_lenet5" if kind == "lenet5" else "mnist_cnn"
    return timed_refit(lambda: build_cnn(kind, lr, epochs, seed), splits, best_epoch,
                       batch_size, out, name, progress)


def run(epochs=8, lr=1e-3, batch_size=128, seed=0, lenet_epochs=20,
        lenet_lrs=(0.025, 0.05, 0.1),
        n_valid=10_000, refit=True, out=None, quick=False, progress=True) -> dict:
    command = command_line("mnist_cnn", run, locals())
    out = resolve_out("mnist_cnn", out)
    if quick:
        epochs, lenet_epochs = min(epochs, 2), min(lenet_epochs, 3)
    lenet_lrs = tuple(lenet_lrs) if isinstance(lenet_lrs, (list, tuple)) else (lenet_lrs,)
    # LeNet-5's learning rate and epoch are chosen on the validation split; only the chosen
    # candidate (refit on all the training images, by default) ever sees the test set
    candidates = {llr: train_cnn("lenet5", "mnist", lenet_epochs, llr, batch_size, seed, out,
                                 quick, progress, n_valid, with_test=False,
                                 name=f"mnist_lenet5_lr{llr:g}")
                  for llr in lenet_lrs}
    lenet_lr = min(candidates, key=lambda k: candidates[k]["valid"]["error"])
    lenet = candidates[lenet_lr]
    modern = train_cnn("modern", "mnist", epochs, lr, batch_size, seed, out, quick, progress,
                       n_valid, with_test=not refit)
    lenet_seconds = sum(c["seconds"] for c in candidates.values())
    modern_seconds = modern["seconds"]
    ntr, nva, nte = lenet["n"]
    if refit:
        lenet_fit = refit_cnn("lenet5", lenet_lr, lenet_epochs, lenet["best_epoch"], batch_size,
                              seed, out, quick, progress, n_valid)
        modern_fit = refit_cnn("modern", lr, epochs, modern["best_epoch"], batch_size, seed,
                               out, quick, progress, n_valid)
        lenet_test, modern_test = lenet_fit["test"], modern_fit["test"]
        lenet_seconds += lenet_fit["seconds"]
        modern_seconds += modern_fit["seconds"]
        n_final = lenet_fit["n_train"]
    else:
        lenet_test = evaluate(lenet["model"], *mnist_splits(
            "mnist", n_valid=n_valid, quick=QUICK if quick else None)[2])
        modern_test, n_final = modern["test"], ntr
    for c in (*candidates.values(), modern):
        c.pop("model")
    summary = {
        "title": "MNIST CNNs: LeNet-5 (LeCun et al. 1998) and a modern small CNN",
        "test_error": lenet_test["error"], "valid_error": lenet["valid"]["error"],
        "best_epoch": lenet["best_epoch"], "epochs": lenet_epochs, "lenet_lr": lenet_lr,
        "lenet_valid_error_by_lr": {f"{k:g}": c["valid"]["error"]
                                    for k, c in candidates.items()},
        "modern_test_error": modern_test["error"],
        "modern_valid_error": modern["valid"]["error"], "modern_best_epoch": modern["best_epoch"],
        "modern_epochs": epochs, "refit": refit, "final_train_size": n_final,
        "published": {"test_error": PUBLISHED_ERROR,
                      "source": "LeNet-5 without distortions, LeCun, Bottou, Bengio & Haffner "
                                "1998", "modern": "no published counterpart"},
        "model": LENET, "modern_model": MODERN,
        "lenet5_parameters": 60_850,
        "optimizer": f"LeNet-5: SGD momentum 0.9, lr {lenet_lr:g} (chosen on validation "
                     f"from {', '.join(f'{k:g}' for k in lenet_lrs)}), cosine schedule over "
                     f"{lenet_epochs} epochs; modern CNN: Adam lr {lr}, cosine schedule over "
                     f"{epochs} epochs; batch {batch_size}",
        "splits": {"train": ntr, "valid": nva, "test": nte, "final_train": n_final},
        "command": command, "seed": seed, "seconds": lenet_seconds + modern_seconds,
        "lenet5_seconds": lenet_seconds, "modern_seconds": modern_seconds}
    if refit:
        summary.update(lenet5_refit_seconds=lenet_fit["seconds"],
                       modern_refit_seconds=modern_fit["seconds"])
    protocol = protocol_note(refit, (ntr, nva, nte), n_valid, n_final, "LeNet-5",
                             "Hyperparameters other than the epoch were set before the run; "
                             "nothing is chosen on the test set.")
    grid = "; ".join(f"lr {k:g}: {c['valid']['error']:.2%} (epoch {c['best_epoch']})"
                     for k, c in candidates.items())
    notes = (
        protocol + "\n\n"
        "LeNet-5 is built as the paper defines it (flowgrad/models/lenet.py): 28x28 images "
        "padded to 32x32 and scaled to background -0.1 / ink 1.175; C1 6 maps 5x5; S2 sums "
        "each 2x2 block, multiplies it by a trainable coefficient and adds a trainable bias per "
        "map; C3 16 maps 5x5, each seeing only the S2 maps of the paper's Table I (a fixed mask "
        "on a full convolution weight: 1,516 trainable parameters); S4 like S2; C5 120 maps "
        "5x5; F6 84 units; every layer through f(a) = 1.7159 tanh(2a/3). Initialisation: the "
        "paper's uniform ±2.4/F (F the fan-in) was made for its second-order training; under "
        "plain SGD it shrinks the signal layer by layer and nothing learns, so the weights are "
        "drawn as in LeCun et al.'s \"Efficient BackProp\" (1998) for this squashing "
        "function, uniform with standard deviation F^-1/2 (LeNet5(init=\"paper\") gives the "
        "paper's). One change to the architecture: the paper's output layer of Euclidean "
        "RBF units with fixed "
        "codes (and its loss with a rejection term) is replaced by a linear layer 84→10 with "
        "softmax cross-entropy (60,850 trainable parameters in all). The paper trained 20 "
        "passes over all 60,000 training images, one example at a time, with stochastic "
        "diagonal Levenberg-Marquardt; here plain minibatch SGD (batch "
        f"{batch_size}, momentum 0.9, lr {lenet_lr:g}, cosine schedule over {lenet_epochs} "
        f"epochs), the final model trained on {n_final:,} images for "
        f"{lenet['best_epoch']} epochs. Its learning rate is chosen on the validation split: "
        "each rate of the grid is trained, and the one whose kept epoch has the lowest "
        f"validation error is the one {'refit and ' if refit else ''}tested; validation error "
        f"per rate: {grid}. Minibatches of {batch_size} rather than per-example updates are "
        "kept for the time budget (per-example updates are much slower in NumPy). The modern "
        "CNN's hyperparameters were fixed before the run; only its epoch is chosen on "
        "validation.\n\n"
        f"Wall time: LeNet-5 {lenet_seconds:.0f} s ({len(candidates)} learning rates"
        + (f" + refit {lenet_fit['seconds']:.0f} s" if refit else "") + ")"
        + f", modern CNN {modern_seconds:.0f} s"
        + (f" (refit {modern_fit['seconds']:.0f} s)" if refit else "")
        + " (the machine's cores may have been shared with other jobs).")
    if refit:
        table = [
            ("LeNet-5 (paper's architecture, linear+softmax output): **test error** of the "
             f"refit model (all {n_final:,} training images, {lenet['best_epoch']} epochs, "
             f"lr {lenet_lr:g})",
             f"{lenet_test['error']:.2%}", f"{PUBLISHED_ERROR:.2%} (LeNet-5, no distortions)"),
            (f"LeNet-5, validation run on {ntr:,} images: validation error (learning rate "
             "chosen, kept epoch / epochs run)",
             f"{lenet['valid']['error']:.2%} (lr {lenet_lr:g}, epoch {lenet['best_epoch']} / "
             f"{lenet_epochs})",
             "—"),
            (f"{MODERN}, Adam, cosine lr: **test error** of the refit model (all {n_final:,} "
             f"training images, {modern['best_epoch']} epochs)",
             f"{modern_test['error']:.2%}", "no published counterpart"),
            (f"modern CNN, validation run on {ntr:,} images: validation error (kept epoch / "
             "epochs run)",
             f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
        ]
    else:
        table = [
            ("LeNet-5 (paper's architecture, linear+softmax output): test error",
             f"{lenet_test['error']:.2%}", f"{PUBLISHED_ERROR:.2%} (LeNet-5, no distortions)"),
            ("LeNet-5: validation error (learning rate chosen, kept epoch / epochs run)",
             f"{lenet['valid']['error']:.2%} (lr {lenet_lr:g}, epoch {lenet['best_epoch']} / "
             f"{lenet_epochs})",
             "—"),
            (f"{MODERN}, Adam, cosine lr: test error", f"{modern_test['error']:.2%}",
             "no published counterpart"),
            ("modern CNN: validation error (kept epoch / epochs run)",
             f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
        ]
    write_results("mnist_cnn", out, summary, table, notes=notes,
                  figures=(f"{lenet['name']}_curves.png", f"{modern['name']}_curves.png"))
    return summary
