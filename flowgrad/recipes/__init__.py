"""Recipes: one runnable file per reproduced result (``flowgrad train <name>``). Each writes
``results/<name>.md``, ``results/<name>.json`` and its figures, with the published number
beside ours; each has a ``quick`` variant that the tests run to show it learns."""

from __future__ import annotations

import importlib

RECIPES = {
    "digits_mlp": "MLP on scikit-learn's bundled 8x8 digits (the embedded default, no download)",
    "mnist_mlp": "MNIST MLP 784-800-800-10 ReLU: test error vs Simard et al. (2003) 1.6%",
    "mnist_cnn": "MNIST LeNet-5-like CNN: test error vs LeNet-5's 0.95% (LeCun et al. 1998)",
    "fashion_mnist": "Fashion-MNIST: the same CNN and MLP, test errors side by side",
    "mnist1d": "MNIST-1D (Greydanus 2020): logistic regression, MLP, CNN vs the official run",
    "relu_vs_tanh": "Deep MLP with ReLU vs tanh vs sigmoid (Glorot, Bordes & Bengio 2011)",
}


def get(name: str):
    """The recipe module ``name`` (it has ``DEFAULTS`` and ``run(**options)``)."""
    if name not in RECIPES:
        raise KeyError(f"unknown recipe {name!r}; available: {', '.join(RECIPES)}")
    return importlib.import_module(f"{__name__}.{name}")
