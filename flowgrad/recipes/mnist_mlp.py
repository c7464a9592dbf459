"""MNIST with a 784-800-800-10 ReLU MLP; Simard, Steinkraus & Platt (2003) report 1.6% test
error for 800 hidden units (lecture: "Deep Nets and Backprop", "Iterative training by SGD")."""

from __future__ import annotations

import flowgrad as fg

from ..models import MLP
from .common import Timer, mnist_arrays, train_classifier, write_results

DEFAULTS = {"epochs": 20, "lr": 0.05, "batch_size": 128, "seed": 0}
PUBLISHED_ERROR = 0.016


def run(epochs=20, lr=0.05, batch_size=128, seed=0, out="results", quick=False, progress=True,
        dataset="mnist") -> dict:
    fg.manual_seed(seed)
    (xtr, ytr), (xte, yte) = mnist_arrays(dataset, flatten=True, limit=2000 if quick else None)
    if quick:
        epochs = min(epochs, 3)
    model = MLP(sizes=(784, 800, 800, 10), dropout=0.2)
    optimizer = fg.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True)
    scheduler = fg.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    name = f"{dataset}_mlp"
    with Timer() as t:
        history, final = train_classifier(model, (xtr, ytr), (xte, yte), optimizer, epochs,
                                          batch_size, seed, out, name, scheduler=scheduler,
                                          progress=progress)
    summary = {"title": f"{dataset.upper()} MLP 784-800-800-10 ReLU", "test_error": final["error"],
               "published": {"test_error": PUBLISHED_ERROR,
                             "source": "Simard, Steinkraus & Platt 2003, 800 hidden units"},
               "epochs": epochs, "optimizer": "SGD, Nesterov momentum 0.9, cosine lr, dropout 0.2",
               "command": f"flowgrad train mnist_mlp --epochs {epochs} --lr {lr}",
               "seed": seed, "seconds": t.seconds}
    if not quick and dataset == "mnist":
        write_results(name, out, summary, [
            ("test error", f"{final['error']:.2%}", f"{PUBLISHED_ERROR:.1%}"),
            ("epochs", str(epochs), "—"),
        ], figures=(f"{out}/{name}_curves.png",))
    return summary
