"""The ``flowgrad`` command. ``python -m flowgrad`` (or ``flowgrad demo``) trains a small MLP on
scikit-learn's bundled digits — no download — and prints its test accuracy."""

from __future__ import annotations

import argparse
import time

import numpy as np

import flowgrad as fg
import flowgrad.nn.functional as F


def _load_digits(seed: int):
    """8x8 digit images (1,797, shipped with scikit-learn), split 80/20, scaled to [0, 1]."""
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - the extras install scikit-learn
        raise SystemExit("flowgrad demo: needs scikit-learn for its bundled digits; "
                         "pip install 'flowgrad[extras]'") from e
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_test = len(x) // 5
    test, train = order[:n_test], order[n_test:]
    return x[train], y[train], x[test], y[test]


def train_digits_mlp(epochs: int = 30, hidden: int = 64, lr: float = 0.1, batch_size: int = 32,
                     seed: int = 0, progress: bool = True) -> dict:
    """Minibatch SGD on an MLP 64-hidden-10 with ReLU and cross-entropy (lecture: "Iterative
    training by SGD", "Log-Likelihood as Loss function"). Returns accuracies and losses."""
    fg.manual_seed(seed)
    xtr, ytr, xte, yte = _load_digits(seed)
    sizes = [xtr.shape[1], hidden, 10]
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        bound = 1 / np.sqrt(fan_in)  # PyTorch's nn.Linear default range
        params.append((fg.rand(fan_out, fan_in) * 2 * bound - bound).requires_grad_())
        params.append((fg.rand(fan_out) * 2 * bound - bound).requires_grad_())

    def forward(x):
        h = F.relu(F.linear(x, params[0], params[1]))
        return F.linear(h, params[2], params[3])

    rng = np.random.default_rng(seed)
    bar = range(epochs)
    if progress:
        try:
            from tqdm import tqdm

            bar = tqdm(bar, desc="digits MLP", unit="epoch")
        except ImportError:
            pass
    losses = []
    for _ in bar:
        order = rng.permutation(len(xtr))
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            loss = F.cross_entropy(forward(fg.from_numpy(xtr[idx])), fg.from_numpy(ytr[idx]))
            loss.backward()
            with fg.no_grad():
                for p in params:
                    p.data -= lr * p.grad.data
                    p.grad = None
            total += loss.item() * len(idx)
        losses.append(total / len(xtr))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    with fg.no_grad():
        train_acc = float((forward(fg.from_numpy(xtr)).argmax(1).numpy() == ytr).mean())
        test_acc = float((forward(fg.from_numpy(xte)).argmax(1).numpy() == yte).mean())
    return {"train_accuracy": train_acc, "test_accuracy": test_acc, "losses": losses,
            "n_train": len(xtr), "n_test": len(xte)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="flowgrad", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    demo = sub.add_parser("demo", help="train an MLP on scikit-learn's digits (the default)")
    for p in (parser, demo):
        p.add_argument("--epochs", type=int, default=30)
        p.add_argument("--hidden", type=int, default=64)
        p.add_argument("--lr", type=float, default=0.1)
        p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    result = train_digits_mlp(args.epochs, args.hidden, args.lr, seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"digits MLP 64-{args.hidden}-10, {args.epochs} epochs of SGD on {result['n_train']} "
          f"images: final train loss {result['losses'][-1]:.4f}, "
          f"train accuracy {result['train_accuracy']:.2%}, "
          f"test accuracy {result['test_accuracy']:.2%} ({result['n_test']} held-out images), "
          f"{seconds:.1f} s")
    return 0
