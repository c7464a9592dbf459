"""MNIST with two MLPs, under the honest protocol (validation = the last 10,000 training images;
the learning rate and the epoch chosen on it; then, by default, the chosen model retrained from
the same seed on all 60,000 training images for the chosen number of epochs; the test set
evaluated once at the end):

- Simard, Steinkraus & Platt (2003), "Best practices for convolutional neural networks applied
  to visual document analysis", Table: "2 layer MLP (CE), no distortion: 1.6%": one hidden layer
  of 800 units, 784-800-10, cross-entropy. That is the model reproduced beside their number.
- A modern deeper MLP, 784-800-800-10 ReLU with dropout, Nesterov SGD and a cosine schedule:
  no published counterpart; it is reported as what it is.

(lecture: "Deep Nets and Backprop", "Iterative training by SGD")."""

from __future__ import annotations

import flowgrad as fg

from ..models import MLP
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
DEFAULTS = {"epochs": 20, "lr": 0.05, "batch_size": 128, "seed": 0, "simard_epochs": 30,
            "simard_lrs": (0.05, 0.1, 0.2, 0.4, 0.8), "n_valid": 10_000, "refit": True}
PUBLISHED_ERROR = 0.016
QUICK = (2000, 500, 1000)  # training / validation / test examples of the short variant

SIMARD = ("Simard et al. 2003 MLP 784-800-10, tanh hidden units, softmax cross-entropy, "
          "no distortions")
MODERN = "modern MLP 784-800-800-10, ReLU, dropout 0.2"


def build_mlp(kind, lr, epochs, seed):
    """The model ("simard" or "modern"), its optimizer and its cosine schedule over ``epochs``
    epochs, the weights drawn after ``fg.manual_seed(seed)``: the validation run and the refit
    start from the same weights."""
    fg.manual_seed(seed)
    if kind == "simard":
        model = MLP(sizes=(784, 800, 10), activation="tanh")
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        model = MLP(sizes=(784, 800, 800, 10), activation="relu", dropout=0.2)
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    return model, optimizer, fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)


def train_mlp(kind, dataset, epochs, lr, batch_size, seed, out, quick, progress, n_valid,
              name=None, with_test=True):
    """Train one of the two MLPs ("simard" or "modern") on ``dataset`` under the honest
    protocol; returns the train_classifier result plus its name, time and split sizes.
    ``with_test=False``: the test set is not evaluated (a candidate of a selection, or a
    validation run to be refit)."""
    splits = mnist_splits(dataset, flatten=True, n_valid=n_valid, quick=QUICK if quick else None)
    name = name or (f"{dataset}_mlp" if kind == "modern" else f"{dataset}_mlp_simard")
    return timed_validation_run(lambda: build_mlp(kind, lr, epochs, seed), splits, epochs,
                                batch_size, out, name, SIMARD if kind == "simard" else MODERN,
                                progress, with_test)


def refit_mlp(kind, lr, epochs, best_epoch, batch_size, seed, out, quick, progress, n_valid,
              name):
    """The refit step: ``kind``'s model from the same seed, trained on the training and the
    validation split together for ``best_epoch`` epochs of its cosine schedule over ``epochs``;
    the test set evaluated once. Returns refit_classifier's result plus its time."""
    splits = mnist_splits("mnist", flatten=True, n_valid=n_valid, quick=QUICK if quick else None)
    return timed_refit(lambda: build_mlp(kind, lr, epochs, seed), splits, best_epoch,
                       batch_size, out, name, progress)


def run(epochs=20, lr=0.05, batch_size=128, seed=0, simard_epochs=30,
        simard_lrs=(0.05, 0.1, 0.2, 0.4, 0.8), n_valid=10_000, refit=True, out=None,
        quick=False, progress=True) -> dict:
    command = command_line("mnist_mlp", run, locals())
    out = resolve_out("mnist_mlp", out)
    if quick:
        epochs, simard_epochs = min(epochs, 3), min(simard_epochs, 3)
    simard_lrs = tuple(simard_lrs) if isinstance(simard_lrs, (list, tuple)) else (simard_lrs,)
    # Simard's net: the learning rate and the epoch are chosen on the validation split; only the
    # chosen candidate (refit on all the training images, by default) ever sees the test set
    candidates = {slr: train_mlp("simard", "mnist", simard_epochs, slr, batch_size, seed, out,
                                 quick, progress, n_valid, name=f"mnist_mlp_simard_lr{slr:g}",
                                 with_test=False)
                  for slr in simard_lrs}
    simard_lr = min(candidates, key=lambda k: candidates[k]["valid"]["error"])
    simard = candidates[simard_lr]
    modern = train_mlp("modern", "mnist", epochs, lr, batch_size, seed, out, quick, progress,
                       n_valid, with_test=not refit)
    simard_seconds = sum(c["seconds"] for c in candidates.values())
    modern_seconds = modern["seconds"]
    if refit:
        simard_fit = refit_mlp("simard", simard_lr, simard_epochs, simard["best_epoch"],
                               batch_size, seed, out, quick, progress, n_valid,
                               "mnist_mlp_simard")
        modern_fit = refit_mlp("modern", lr, epochs, modern["best_epoch"], batch_size, seed,
                               out, quick, progress, n_valid, "mnist_mlp")
        simard_test, modern_test = simard_fit["test"], modern_fit["test"]
        simard_seconds += simard_fit["seconds"]
        modern_seconds += modern_fit["seconds"]
        n_final = simard_fit["n_train"]
    else:
        simard_test = evaluate(simard["model"], *mnist_splits(
            "mnist", flatten=True, n_valid=n_valid, quick=QUICK if quick else None)[2])
        modern_test = modern["test"]
        n_final = simard["n"][0]
    ntr, nva, nte = simard["n"]
    summary = {
        "title": "MNIST MLPs: Simard et al. (2003)'s 784-800-10 and a modern 784-800-800-10",
        "test_error": simard_test["error"], "valid_error": simard["valid"]["error"],
        "best_epoch": simard["best_epoch"], "epochs": simard_epochs, "simard_lr": simard_lr,
        "simard_valid_error_by_lr": {f"{k:g}": c["valid"]["error"]
                                     for k, c in candidates.items()},
        "modern_test_error": modern_test["error"],
        "modern_valid_error": modern["valid"]["error"], "modern_best_epoch": modern["best_epoch"],
        "modern_epochs": epochs, "refit": refit, "final_train_size": n_final,
        "published": {"test_error": PUBLISHED_ERROR,
                      "source": "Simard, Steinkraus & Platt 2003, 2 layer MLP (CE), 800 hidden "
                                "units, no distortions",
                      "modern": "no published counterpart"},
        "model": SIMARD, "modern_model": MODERN,
        "optimizer": f"Simard MLP: SGD momentum 0.9, lr {simard_lr:g} (chosen on validation "
                     f"from {', '.join(f'{k:g}' for k in simard_lrs)}), cosine schedule over "
                     f"{simard_epochs} epochs; modern MLP: SGD Nesterov momentum 0.9, lr {lr}, "
                     f"cosine schedule over {epochs} epochs; batch {batch_size}",
        "splits": {"train": ntr, "valid": nva, "test": nte, "final_train": n_final},
        "command": command, "seed": seed, "seconds": simard_seconds + modern_seconds,
        "simard_seconds": simard_seconds, "modern_seconds": modern_seconds}
    if refit:
        summary.update(simard_refit_seconds=simard_fit["seconds"],
                       modern_refit_seconds=modern_fit["seconds"])
    grid = "; ".join(f"lr {k:g}: {c['valid']['error']:.2%} (epoch {c['best_epoch']})"
                     for k, c in candidates.items())
    protocol = protocol_note(refit, (ntr, nva, nte), n_valid, n_final, "the Simard MLP")
    notes = (
        protocol + "\n\n"
        "Simard et al. (2003) give the architecture (one hidden layer of 800 units), the loss "
        "(cross-entropy) and no distortions for their 1.6%; the hidden non-linearity (tanh "
        "here) and the optimiser are our choice: they trained online (one example at a time), "
        f"on all 60,000 training images; the final model here is trained on {n_final:,} with "
        f"minibatches of {batch_size} (kept for the time budget: per-example updates are much "
        "slower in NumPy), SGD with momentum 0.9 and a cosine schedule over "
        f"{simard_epochs} epochs, PyTorch's default initialisation. Its learning rate is chosen "
        "on the validation split: each rate of the grid is trained, and the one whose kept "
        "epoch has the lowest validation error is the one refit and tested; validation error "
        f"per rate: {grid}. The modern MLP's hyperparameters were fixed before the run; only "
        "its epoch is chosen on validation.\n\n"
        f"Wall time: Simard MLP {simard_seconds:.0f} s ({len(candidates)} learning rates"
        + (f" + refit {simard_fit['seconds']:.0f} s" if refit else "")
        + f"), modern MLP {modern_seconds:.0f} s"
        + (f" (refit {modern_fit['seconds']:.0f} s)" if refit else "")
        + " (the machine's cores may have been shared with other jobs).")
    if refit:
        table = [
            (f"{SIMARD}: **test error** of the refit model (all {n_final:,} training images, "
             f"{simard['best_epoch']} epochs, lr {simard_lr:g})",
             f"{simard_test['error']:.2%}", f"{PUBLISHED_ERROR:.1%} (Simard et al. 2003)"),
            (f"Simard MLP, validation run on {ntr:,} images: validation error (learning rate "
             "chosen, kept epoch / epochs run)",
             f"{simard['valid']['error']:.2%} (lr {simard_lr:g}, epoch {simard['best_epoch']} "
             f"/ {simard_epochs})", "—"),
            (f"{MODERN}, Nesterov SGD, cosine lr: **test error** of the refit model (all "
             f"{n_final:,} training images, {modern['best_epoch']} epochs)",
             f"{modern_test['error']:.2%}", "no published counterpart"),
            (f"modern MLP, validation run on {ntr:,} images: validation error (kept epoch / "
             "epochs run)",
             f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
        ]
    else:
        table = [
            (f"{SIMARD}: test error", f"{simard_test['error']:.2%}",
             f"{PUBLISHED_ERROR:.1%} (Simard et al. 2003)"),
            ("Simard MLP: validation error (learning rate chosen, kept epoch / epochs run)",
             f"{simard['valid']['error']:.2%} (lr {simard_lr:g}, epoch {simard['best_epoch']} "
             f"/ {simard_epochs})", "—"),
            (f"{MODERN}, Nesterov SGD, cosine lr: test error", f"{modern_test['error']:.2%}",
             "no published counterpart"),
            ("modern MLP: validation error (kept epoch / epochs run)",
             f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
        ]
    write_results("mnist_mlp", out, summary, table, notes=notes,
                  figures=(f"{simard['name']}_curves.png", f"{modern['name']}_curves.png"))
    for c in candidates.values():
        c.pop("model")
    modern.pop("model")
    return summary
