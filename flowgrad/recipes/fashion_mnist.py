"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) with the MNIST recipes' CNN and MLP, side by
side: the same models on a harder drop-in replacement for MNIST."""

from __future__ import annotations

from . import mnist_mlp
from .common import write_results
from .mnist_cnn import train_cnn

DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 128, "seed": 0}


def run(epochs=8, lr=1e-3, batch_size=128, seed=0, out="results", quick=False,
        progress=True) -> dict:
    epochs = min(epochs, 2) if quick else epochs
    cnn, cnn_seconds = train_cnn("fashion_mnist", epochs, lr, batch_size, seed, out, quick,
                                 progress)
    mlp = mnist_mlp.run(epochs=epochs, batch_size=batch_size, seed=seed, out=out, quick=quick,
                        progress=progress, dataset="fashion_mnist")
    summary = {"title": "Fashion-MNIST: CNN and MLP", "cnn_test_error": cnn["error"],
               "mlp_test_error": mlp["test_error"],
               "published": {"note": "Xiao et al. 2017 report scikit-learn baselines (best "
                                     "89.7% accuracy, SVC); no single CNN figure is canonical"},
               "epochs": epochs, "command": f"flowgrad train fashion_mnist --epochs {epochs}",
               "seed": seed, "seconds": cnn_seconds + mlp["seconds"]}
    if not quick:
        write_results("fashion_mnist", out, summary, [
            ("CNN test error", f"{cnn['error']:.2%}", "—"),
            ("MLP 784-800-800-10 test error", f"{mlp['test_error']:.2%}", "—"),
            ("best scikit-learn baseline (SVC) test error", "—", "10.3% (Xiao et al. 2017)"),
        ], figures=(f"{out}/fashion_mnist_cnn_curves.png", f"{out}/fashion_mnist_mlp_curves.png"))
    return summary
