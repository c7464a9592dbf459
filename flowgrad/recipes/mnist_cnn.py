"""MNIST with a LeNet-5-like CNN; LeNet-5 reached 0.95% test error (LeCun, Bottou, Bengio &
Haffner 1998) (lecture: "Convolutional Nets")."""

from __future__ import annotations

import flowgrad as fg

from ..models import LeNetLike
from .common import Timer, mnist_arrays, train_classifier, write_results

DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 128, "seed": 0}
PUBLISHED_ERROR = 0.0095


def train_cnn(dataset, epochs, lr, batch_size, seed, out, quick, progress):
    fg.manual_seed(seed)
    (xtr, ytr), (xte, yte) = mnist_arrays(dataset, limit=1000 if quick else None)
    model = LeNetLike()
    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    scheduler = fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    with Timer() as t:
        history, final = train_classifier(model, (xtr, ytr), (xte, yte), optimizer, epochs,
                                          batch_size, seed, out, f"{dataset}_cnn",
                                          scheduler=scheduler, progress=progress)
    return final, t.seconds


def run(epochs=8, lr=1e-3, batch_size=128, seed=0, out="results", quick=False,
        progress=True) -> dict:
    epochs = min(epochs, 2) if quick else epochs
    final, seconds = train_cnn("mnist", epochs, lr, batch_size, seed, out, quick, progress)
    summary = {"title": "MNIST LeNet-5-like CNN", "test_error": final["error"],
               "published": {"test_error": PUBLISHED_ERROR,
                             "source": "LeNet-5, LeCun et al. 1998"},
               "epochs": epochs,
               "model": "conv3x3-32, pool, conv3x3-64, pool, fc128, dropout, fc10",
               "optimizer": "Adam, cosine lr",
               "command": f"flowgrad train mnist_cnn --epochs {epochs} --lr {lr}",
               "seed": seed, "seconds": seconds}
    if not quick:
        write_results("mnist_cnn", out, summary, [
            ("test error", f"{final['error']:.2%}", f"{PUBLISHED_ERROR:.2%} (LeNet-5)"),
            ("epochs", str(epochs), "—"),
        ], figures=(f"{out}/mnist_cnn_curves.png",))
    return summary
