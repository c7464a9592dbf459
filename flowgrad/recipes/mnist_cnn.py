"""MNIST with two CNNs, under the honest protocol (validation = the last 10,000 training images,
the test set evaluated once at the end):

- LeNet-5 as LeCun, Bottou, Bengio & Haffner (1998) define it (flowgrad.models.LeNet5: 32x32
  input, C1-S2-C3(Table I)-S4-C5-F6, trainable subsampling, scaled tanh), with a linear +
  softmax output in place of the RBF layer. Published: 0.95% test error without distortions.
- A modern small CNN (3x3 convs, ReLU, max-pooling, dropout, Adam): no published counterpart.

(lecture: "Convolutional Nets")."""

from __future__ import annotations

import flowgrad as fg

from ..models import LeNet5, ModernCNN
from .common import (
    Timer,
    command_line,
    held_out,
    mnist_splits,
    resolve_out,
    train_classifier,
    write_results,
)

DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 128, "seed": 0, "lenet_epochs": 20,
            "lenet_lr": 0.05, "n_valid": 10_000}
PUBLISHED_ERROR = 0.0095
QUICK = (1000, 500, 1000)  # training / validation / test examples of the short variant

LENET = ("LeNet-5 (LeCun et al. 1998): 32x32 input, C1 6@5x5, S2 trainable 2x2 subsampling, C3 "
         "16@5x5 with Table I's connections, S4, C5 120@5x5, F6 84, 1.7159 tanh(2a/3); linear "
         "84-10 + softmax cross-entropy instead of the RBF output")
MODERN = ("modern CNN: conv3x3-32, ReLU, max-pool, conv3x3-64, ReLU, max-pool, fc128 ReLU, "
          "dropout 0.25, fc10")


def train_cnn(kind, dataset, epochs, lr, batch_size, seed, out, quick, progress,
              n_valid=10_000):
    """Train LeNet-5 ("lenet5") or the modern CNN ("modern") on ``dataset`` under the honest
    protocol; returns the train_classifier result plus its name, time and split sizes."""
    fg.manual_seed(seed)
    train, valid, test = mnist_splits(dataset, n_valid=n_valid, quick=QUICK if quick else None)
    if kind == "lenet5":
        model = LeNet5()
        optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        name = f"{dataset}_lenet5"
    else:
        model = ModernCNN()
        optimizer = fg.optim.Adam(model.parameters(), lr=lr)
        name = f"{dataset}_cnn"
    scheduler = fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    with Timer() as t:
        result = train_classifier(model, train, valid, test, optimizer, epochs, batch_size, out,
                                  name, scheduler=scheduler, progress=progress,
                                  title="LeNet-5" if kind == "lenet5" else "modern CNN")
    result.update(seconds=t.seconds, name=name, n=(len(train[0]), len(valid[0]), len(test[0])))
    return result


def run(epochs=8, lr=1e-3, batch_size=128, seed=0, lenet_epochs=20, lenet_lr=0.05,
        n_valid=10_000, out=None, quick=False, progress=True) -> dict:
    command = command_line("mnist_cnn", run, locals())
    out = resolve_out("mnist_cnn", out)
    if quick:
        epochs, lenet_epochs = min(epochs, 2), min(lenet_epochs, 3)
    lenet = train_cnn("lenet5", "mnist", lenet_epochs, lenet_lr, batch_size, seed, out, quick,
                      progress, n_valid)
    modern = train_cnn("modern", "mnist", epochs, lr, batch_size, seed, out, quick, progress,
                       n_valid)
    ntr, nva, nte = lenet["n"]
    summary = {
        "title": "MNIST CNNs: LeNet-5 (LeCun et al. 1998) and a modern small CNN",
        "test_error": lenet["test"]["error"], "valid_error": lenet["valid"]["error"],
        "best_epoch": lenet["best_epoch"], "epochs": lenet_epochs,
        "modern_test_error": modern["test"]["error"],
        "modern_valid_error": modern["valid"]["error"], "modern_best_epoch": modern["best_epoch"],
        "modern_epochs": epochs,
        "published": {"test_error": PUBLISHED_ERROR,
                      "source": "LeNet-5 without distortions, LeCun, Bottou, Bengio & Haffner "
                                "1998", "modern": "no published counterpart"},
        "model": LENET, "modern_model": MODERN,
        "lenet5_parameters": 60_850,
        "optimizer": f"LeNet-5: SGD momentum 0.9, lr {lenet_lr}, cosine schedule over "
                     f"{lenet_epochs} epochs; modern CNN: Adam lr {lr}, cosine schedule over "
                     f"{epochs} epochs; batch {batch_size}",
        "splits": {"train": ntr, "valid": nva, "test": nte},
        "command": command, "seed": seed, "seconds": lenet["seconds"] + modern["seconds"],
        "lenet5_seconds": lenet["seconds"], "modern_seconds": modern["seconds"]}
    notes = (
        f"Splits: trained on the first {ntr:,} MNIST training images; validation is "
        f"{held_out(nva, n_valid)} (fixed, never trained on); the "
        f"test set is the {nte:,} MNIST "
        "test images. Each model is trained for a fixed number of epochs, its validation error "
        "is measured after every epoch, the weights of the epoch with the lowest validation "
        "error are kept, and the test set is evaluated once, with those weights. "
        "Hyperparameters were set before the run, not chosen on the test set. The curves show "
        "the training and validation splits only.\n\n"
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
        "passes over all 60,000 training images with stochastic diagonal Levenberg-Marquardt; "
        f"here plain minibatch SGD (batch {batch_size}, momentum 0.9, lr {lenet_lr}, cosine "
        f"schedule) for {lenet_epochs} epochs on {ntr:,} images; the learning rate was fixed "
        "before the run after a short trial of a few rates on part of the validation split "
        "(never on the test set).\n\n"
        f"Wall time: LeNet-5 {lenet['seconds']:.0f} s, modern CNN {modern['seconds']:.0f} s "
        "(the machine's cores may have been shared with other jobs).")
    write_results("mnist_cnn", out, summary, [
        ("LeNet-5 (paper's architecture, linear+softmax output): test error",
         f"{lenet['test']['error']:.2%}", f"{PUBLISHED_ERROR:.2%} (LeNet-5, no distortions)"),
        ("LeNet-5: validation error (kept epoch / epochs run)",
         f"{lenet['valid']['error']:.2%} (epoch {lenet['best_epoch']} / {lenet_epochs})", "—"),
        (f"{MODERN}, Adam, cosine lr: test error", f"{modern['test']['error']:.2%}",
         "no published counterpart"),
        ("modern CNN: validation error (kept epoch / epochs run)",
         f"{modern['valid']['error']:.2%} (epoch {modern['best_epoch']} / {epochs})", "—"),
    ], notes=notes, figures=(f"{lenet['name']}_curves.png", f"{modern['name']}_curves.png"))
    return summary
