"""MNIST with two MLPs, under the honest protocol (validation = the last 10,000 training images,
the test set evaluated once at the end):

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
    Timer,
    command_line,
    evaluate,
    held_out,
    mnist_splits,
    resolve_out,
    train_classifier,
    write_results,
)

DEFAULTS = {"epochs": 20, "lr": 0.05, "batch_size": 128, "seed": 0, "simard_epochs": 30,
            "simard_lrs": (0.05, 0.1, 0.2, 0.4, 0.8), "n_valid": 10_000}
PUBLISHED_ERROR = 0.016
QUICK = (2000, 500, 1000)  # training / validation / test examples of the short variant

SIMARD = ("Simard et al. 2003 MLP 784-800-10, tanh hidden units, softmax cross-entropy, "
          "no distortions")
MODERN = "modern MLP 784-800-800-10, ReLU, dropout 0.2"


def train_mlp(kind, dataset, epochs, lr, batch_size, seed, out, quick, progress, n_valid,
              name=None, with_test=True):
    """Train one of the two MLPs ("simard" or "modern") on ``dataset`` under the honest
    protocol; returns the train_classifier result plus its name, time and split sizes.
    ``with_test=False``: the test set is not evaluated (a candidate of a selection)."""
    fg.manual_seed(seed)
    train, valid, test = mnist_splits(dataset, flatten=True, n_valid=n_valid,
                                      quick=QUICK if quick else None)
    if kind == "simard":
        model = MLP(sizes=(784, 800, 10), activation="tanh")
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        model = MLP(sizes=(784, 800, 800, 10), activation="relu", dropout=0.2)
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    scheduler = fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    name = name or (f"{dataset}_mlp" if kind == "modern" else f"{dataset}_mlp_simard")
    with Timer() as t:
        result = train_classifier(model, train, valid, test if with_test else None, optimizer,
                                  epochs, batch_size, out,
                                  name, scheduler=scheduler, progress=progress,
                                  title=SIMARD if kind == "simard" else MODERN)
    result.update(seconds=t.seconds, name=name, n=(len(train[0]), len(valid[0]), len(test[0])))
    return result


def run(epochs=20, lr=0.05, batch_size=128, seed=0, simard_epochs=30,
        simard_lrs=(0.05, 0.1, 0.2, 0.4, 0.8), n_valid=10_000, out=None, quick=False,
        progress=True) -> dict:
    command = command_line("mnist_mlp", run, locals())
    out = resolve_out("mnist_mlp", out)
    if quick:
        epochs, simard_epochs = min(epochs, 3), min(simard_epochs, 3)
    simard_lrs = tuple(simard_lrs) if isinstance(simard_lrs, (list, tuple)) else (simard_lrs,)
    # Simard's net: the learning rate and the epoch are chosen on the validation split; only the
    # chosen candidate ever sees the test set, once
    candidates = {slr: train_mlp("simard", "mnist", simard_epochs, slr, batch_size, seed, out,
                                 quick, progress, n_valid, name=f"mnist_mlp_simard_lr{slr:g}",
                                 with_test=False)
                  for slr in simard_lrs}
    simard_lr = min(candidates, key=lambda k: candidates[k]["valid"]["error"])
    simard = candidates[simard_lr]
    simard["test"] = evaluate(simard["model"], *mnist_splits("mnist", flatten=True,
                                                             n_valid=n_valid,
                                                             quick=QUICK if quick else None)[2])
    simard["seconds"] = sum(c["seconds"] for c in candidates.values())
    modern = train_mlp("modern", "mnist", epochs, lr, batch_size, seed, out, quick, progress,
                       n_valid)
    summary = {
        "title": "MNIST MLPs: Simard et al. (2003)'s 784-800-10 and a modern 784-800-800-10",
        "test_error": simard["test"]["error"], "valid_error": simard["valid"]["error"],
        "best_epoch": simard["best_epoch"], "epochs": simard_epochs, "simard_lr": simard_lr,
        "simard_valid_error_by_lr": {f"{k:g}": c["valid"]["error"]
                                     for k, c in candidates.items()},
        "modern_test_error": modern["test"]["error"],
        "modern_valid_error": modern["valid"]["error"], "modern_best_epoch": modern["best_epoch"],
        "modern_epochs": epochs,
        "published": {"test_error": PUBLISHED_ERROR,
                      "source": "Simard, Steinkraus & Platt 2003, 2 layer MLP (CE), 800 hidden "
                                "units, no distortions",
                      "modern": "no published counterpart"},
        "model": SIMARD, "modern_model": MODERN,
        "optimizer": f"Simard MLP: SGD momentum 0.9, lr {simard_lr:g} (chosen on validation "
                     f"from {', '.join(f'{k:g}' for k in simard_lrs)}), cosine schedule over "
                     f"{simard_epochs} epochs; modern MLP: SGD Nesterov momentum 0.9, lr {lr}, "
                     f"cosine schedule over {epochs} epochs; batch {batch_size}",
        "splits": {"train": simard["n"][0], "valid": simard["n"][1], "test": simard["n"][2]},
        "command": command, "seed": seed, "seconds": simard["seconds"] + modern["seconds"],
        "simard_seconds": simard["seconds"], "modern_seconds": modern["seconds"]}
    ntr, nva, nte = simard["n"]
    grid = "; ".join(f"lr {k:g}: {c['valid']['error']:.2%} (epoch {c['best_epoch']})"
                     for k, c in candidates.items())
    notes = (
        f"Splits: the model is trained on the first {ntr:,} MNIST training images; validation "
        f"is {held_out(nva, n_valid)} (fixed, never trained on); the "
        "test set is the "
        f"{nte:,} MNIST test images. Each model is trained for a fixed number of epochs, its "
        "validation error is measured after every epoch, the weights of the epoch with the "
        "lowest validation error are kept, and the test set is evaluated once, with those "
        "weights. Nothing is chosen on the test set. The "
        "curves show the training and validation splits only.\n\n"
        "Simard et al. (2003) give the architecture (one hidden layer of 800 units), the loss "
        "(cross-entropy) and no distortions for their 1.6%; the hidden non-linearity (tanh "
        "here) and the optimiser are our choice: they trained online, on all 60,000 training "
        f"images, where this run trains on {ntr:,} with minibatches of {batch_size}, SGD "
        f"with momentum 0.9 and a cosine schedule over {simard_epochs} epochs, PyTorch's "
        "default initialisation. Its learning rate is chosen on the validation split: each "
        "rate of the grid is trained, and the one whose kept epoch has the lowest validation "
        f"error is the one tested; validation error per rate: {grid}. The modern MLP's "
        "hyperparameters were fixed before the run; only its epoch is chosen on validation.\n\n"
        f"Wall time: Simard MLP {simard['seconds']:.0f} s ({len(candidates)} learning "
        f"rates), modern MLP "
        f"{modern['seconds']:.0f} s (the machine's cores may have been shared with other jobs).")
    write_results("mnist_mlp", out, summary, [
        (f"{SIMARD}: test error", f"{simard['test']['error']:.2%}",
         f"{PUBLISHED_ERROR:.1%} (Simard et al. 2003)"),
        ("Simard MLP: validation error (learning rate chosen, kept epoch / epochs run)",
         f"{simard['valid']['error']:.2%} (lr {simard_lr:g}, epoch {simard['best_epoch']} / "
         f"{simard_epochs})", "—"),
        (f"{MODERN}, Nesterov SGD, cosine lr: test error", f"{modern['test']['error']:.2%}",
         "no published counterpart"),
        ("modern MLP: validation error (kept epoch / epochs run)",
         f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
    ], notes=notes, figures=(f"{simard['name']}_curves.png", f"{modern['name']}_curves.png"))
    for c in candidates.values():
        c.pop("model")
    modern.pop("model")
    return summary
