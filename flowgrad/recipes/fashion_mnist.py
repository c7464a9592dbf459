"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) with the MNIST recipes' modern CNN and modern MLP,
side by side, under the honest protocol (validation = the last 10,000 training images, the test
set evaluated once at the end): the same models on a harder drop-in replacement for MNIST."""

from __future__ import annotations

from .common import command_line, held_out, resolve_out, write_results
from .mnist_cnn import MODERN as CNN
from .mnist_cnn import train_cnn
from .mnist_mlp import MODERN as MLP
from .mnist_mlp import train_mlp

DATA_PARALLEL = True  # under mpirun, common.train_classifier trains data-parallel
DEFAULTS = {"epochs": 8, "lr": 1e-3, "batch_size": 128, "seed": 0, "mlp_lr": 0.05,
            "n_valid": 10_000}


def run(epochs=8, lr=1e-3, batch_size=128, seed=0, mlp_lr=0.05, n_valid=10_000, out=None,
        quick=False, progress=True) -> dict:
    command = command_line("fashion_mnist", run, locals())
    out = resolve_out("fashion_mnist", out)
    epochs = min(epochs, 2) if quick else epochs
    cnn = train_cnn("modern", "fashion_mnist", epochs, lr, batch_size, seed, out, quick,
                    progress, n_valid)
    mlp = train_mlp("modern", "fashion_mnist", epochs, mlp_lr, batch_size, seed, out, quick,
                    progress, n_valid)
    ntr, nva, nte = cnn["n"]
    summary = {"title": "Fashion-MNIST: the modern CNN and the modern MLP",
               "cnn_test_error": cnn["test"]["error"], "cnn_valid_error": cnn["valid"]["error"],
               "cnn_best_epoch": cnn["best_epoch"], "mlp_test_error": mlp["test"]["error"],
               "mlp_valid_error": mlp["valid"]["error"], "mlp_best_epoch": mlp["best_epoch"],
               "published": {"svc_test_error": 0.103,
                             "note": "Xiao et al. 2017 benchmark scikit-learn classifiers (best "
                                     "89.7% accuracy, SVC); no single CNN figure is canonical"},
               "cnn_model": CNN, "mlp_model": MLP,
               "optimizer": f"CNN: Adam lr {lr}, cosine over {epochs} epochs; MLP: SGD Nesterov "
                            f"momentum 0.9, lr {mlp_lr}, cosine over {epochs} epochs; batch "
                            f"{batch_size}",
               "splits": {"train": ntr, "valid": nva, "test": nte},
               "epochs": epochs, "command": command, "seed": seed,
               "seconds": cnn["seconds"] + mlp["seconds"], "cnn_seconds": cnn["seconds"],
               "mlp_seconds": mlp["seconds"]}
    notes = (
        f"Splits: trained on the first {ntr:,} Fashion-MNIST training images; validation is "
        f"{held_out(nva, n_valid)} (fixed, never trained on); the "
        "test set is the "
        f"{nte:,} Fashion-MNIST test images. Each model is trained for {epochs} epochs, its "
        "validation error is measured after every epoch, the weights of the epoch with the "
        "lowest validation error are kept, and the test set is evaluated once, with those "
        "weights. The models and hyperparameters are the MNIST recipes' modern ones, fixed "
        "before the run; the curves show the training and validation splits only. Neither "
        "model has a published Fashion-MNIST counterpart; the published row is the best "
        "scikit-learn baseline of the dataset's paper (Xiao et al. 2017, SVC).\n\n"
        f"Wall time: CNN {cnn['seconds']:.0f} s, MLP {mlp['seconds']:.0f} s (the machine's "
        "cores may have been shared with other jobs).")
    write_results("fashion_mnist", out, summary, [
        (f"{CNN}, Adam: test error", f"{cnn['test']['error']:.2%}", "no published counterpart"),
        ("CNN: validation error (kept epoch / epochs run)",
         f"{cnn['valid']['error']:.2%} (epoch {cnn['best_epoch']} / {epochs})", "—"),
        (f"{MLP}, Nesterov SGD: test error", f"{mlp['test']['error']:.2%}",
         "no published counterpart"),
        ("MLP: validation error (kept epoch / epochs run)",
         f"{mlp['valid']['error']:.2%} (epoch {mlp['best_epoch']} / {epochs})", "—"),
        ("best scikit-learn baseline (SVC): test error", "—", "10.3% (Xiao et al. 2017)"),
    ], notes=notes, figures=(f"{cnn['name']}_curves.png", f"{mlp['name']}_curves.png"))
    return summary
