"""Sample-quality measures for generative models that need no download.

* ``FeatureClassifier``: a small convolutional classifier trained with flowgrad on the real
  MNIST / Fashion-MNIST training images; it plays the role the Inception network plays in the
  Inception score and the FID. ``load_or_train_classifier`` trains it once and saves it with a
  SHA-256 checksum; later calls reload it when the checksum matches.
* ``frechet_distance``: the Fréchet distance between Gaussians fitted to two feature sets, the
  formula of the FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
  Local Nash Equilibrium", NeurIPS 2017, section 3): ||mu_a - mu_b||^2 + Tr(C_a + C_b
  - 2 (C_a C_b)^(1/2)), the square root by ``scipy.linalg.sqrtm``; when the product is singular
  and the square root is not finite, eps is added to both diagonals first (as the reference
  implementation pytorch-fid does).
* ``classifier_score``: the Inception-score analogue exp(E_x KL(p(y|x) || p(y))) (Salimans et
  al., "Improved Techniques for Training GANs", NeurIPS 2016, section 4), with the classifier
  above in place of the Inception network.
* ``conditional_accuracy``: the fraction of class-conditional samples classified as the class
  they were generated for.
* ``ring_of_gaussians`` and ``mode_coverage``: the 2-D ring of 8 Gaussians used to measure mode
  collapse (Metz et al., "Unrolled Generative Adversarial Networks", ICLR 2017; Srivastava et
  al., "VEEGAN", NeurIPS 2017). A sample is of high quality when it lies within 3 standard
  deviations of the nearest mode (VEEGAN, section 5.1); a mode counts as covered when at least
  ``threshold`` (1 %) of all samples are high-quality samples nearest to it (VEEGAN counts a
  mode with at least one such sample: ``threshold=0``).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import numpy as np

import flowgrad as fg

from .. import nn
from ..errors import ShapeError
from ..utils.threads import limit_threads as _limit_threads

__all__ = ["FeatureClassifier", "load_or_train_classifier", "train_feature_classifier",
           "sha256_of", "frechet_distance", "classifier_score", "conditional_accuracy",
           "ring_centres", "ring_of_gaussians", "mode_coverage"]

DATASETS = ("mnist", "fashion_mnist")


def _numpy(x) -> np.ndarray:
    """A NumPy array from a flowgrad Tensor, an array or nested lists."""
    if isinstance(x, fg.Tensor):
        x = x.detach().numpy()
    return np.asarray(x)


# --- the feature classifier ---------------------------------------------------------------------

class FeatureClassifier(nn.Module):
    """A small CNN for 28x28 grey images with pixels in [0, 1]: two stages of 3x3 convolution
    (padding 1), ReLU and 2x2 max-pooling, a ReLU fully connected layer of ``hidden`` units (the
    features of ``features``: the penultimate layer), dropout and a linear classifier.

    ``forward(x)`` returns logits (B, classes) as a Tensor; ``features(x)`` and
    ``predict_proba(x)`` take images (B, 1, 28, 28) or (B, 784) as a Tensor or an array, run in
    eval mode without gradients, by batches, and return float64 NumPy arrays (B, hidden) and
    (B, classes).
    """

    def __init__(self, channels: tuple = (16, 32), hidden: int = 128, classes: int = 10,
                 dropout: float = 0.25, image_size: int = 28) -> None:
        super().__init__()
        c1, c2 = channels
        if image_size % 4:
            raise ValueError(f"FeatureClassifier: image_size must be a multiple of 4, got "
                             f"{image_size}")
        self.config = {"channels": [int(c1), int(c2)], "hidden": int(hidden),
                       "classes": int(classes), "dropout": float(dropout),
                       "image_size": int(image_size)}
        self.image_size = image_size
        side = image_size // 4
        self.body = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(c2 * side * side, hidden), nn.ReLU(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, classes)

    def _images(self, x):
        side = self.image_size
        if x.ndim == 2 and x.shape[1] == side * side:
            return x.reshape(x.shape[0], 1, side, side)
        if x.ndim == 4 and tuple(x.shape[1:]) == (1, side, side):
            return x
        raise ShapeError(f"FeatureClassifier: expected images of shape (batch, 1, {side}, "
                         f"{side}) or (batch, {side * side}), got {tuple(x.shape)}")

    def embed(self, x):
        """The penultimate layer as a Tensor (B, hidden), with gradients."""
        return self.body(self._images(x))

    def forward(self, x):
        return self.head(self.dropout(self.embed(x)))

    def _batched(self, x, fn, width: int, batch_size: int) -> np.ndarray:
        arr = _numpy(x).astype(np.float32, copy=False)
        if arr.size and (arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise ValueError(f"FeatureClassifier: pixels must lie in [0, 1] (the range it was "
                             f"trained on), got values in [{arr.min():.3g}, {arr.max():.3g}]; "
                             "rescale tanh outputs with (x + 1) / 2")
        self._images(arr)  # shape check before any work
        was_training = self.training
        self.eval()
        try:
            with fg.no_grad():
                out = [fn(fg.from_numpy(np.ascontiguousarray(arr[s:s + batch_size]))).numpy()
                       for s in range(0, len(arr), batch_size)]
        finally:
            self.train(was_training)
        return (np.concatenate(out).astype(np.float64) if out
                else np.zeros((0, width), np.float64))

    def features(self, x, batch_size: int = 500) -> np.ndarray:
        """Penultimate-layer features (B, hidden), float64 NumPy."""
        return self._batched(x, self.embed, self.config["hidden"], batch_size)

    def predict_proba(self, x, batch_size: int = 500) -> np.ndarray:
        """Class probabilities p(y|x) (B, classes), float64 NumPy."""
        return self._batched(x, lambda t: self.forward(t).softmax(-1), self.config["classes"],
                             batch_size)

    def accuracy(self, x, y, batch_size: int = 500) -> float:
        """Fraction of ``x`` whose most probable class is ``y``."""
        return float((self.predict_proba(x, batch_size).argmax(1) == _numpy(y)).mean())


def sha256_of(path) -> str:
    """The SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _real_data(dataset: str):
    """MNIST / Fashion-MNIST as (train[0:50000], train[50000:60000], test), float32 images in
    [0, 1] of shape (N, 1, 28, 28) and int64 labels."""
    from ..datasets import MNIST, FashionMNIST

    cls = {"mnist": MNIST, "fashion_mnist": FashionMNIST}[dataset]
    splits = []
    for train in (True, False):
        ds = cls(train=train)
        x = (ds.data.numpy().astype(np.float32) / 255.0).reshape(-1, 1, 28, 28)
        splits.append((x, ds.targets.numpy().astype(np.int64)))
    (xtr, ytr), test = splits
    return (xtr[:50_000], ytr[:50_000]), (xtr[50_000:], ytr[50_000:]), test


def train_feature_classifier(train: tuple, valid: tuple, epochs: int = 10,
                             batch_size: int = 128, lr: float = 1e-3, seed: int = 0,
                             progress: bool = True, **config) -> tuple:
    """Train a FeatureClassifier with Adam on ``train`` = (x, y), measure ``valid`` after each
    epoch and keep the weights of the epoch with the best validation accuracy. Returns (model,
    history) with history a list of per-epoch dicts."""
    from ..utils.data import DataLoader, TensorDataset

    fg.manual_seed(seed)
    model = FeatureClassifier(**config)
    optimizer = fg.optim.Adam(model.parameters(), lr=lr)
    loader = DataLoader(TensorDataset(fg.from_numpy(train[0]), fg.from_numpy(train[1])),
                        batch_size=batch_size, shuffle=True)
    history, best, best_state = [], -1.0, None
    for epoch in range(1, epochs + 1):
        start, total, count = time.perf_counter(), 0.0, 0
        model.train()
        batches = loader
        if progress:
            from tqdm.auto import tqdm

            batches = tqdm(loader, desc=f"classifier epoch {epoch}/{epochs}", leave=False)
        for xb, yb in batches:
            loss = fg.nn.functional.cross_entropy(model(xb), yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(yb)
            count += len(yb)
        acc = model.accuracy(*valid)
        history.append({"epoch": epoch, "train_loss": total / count, "valid_accuracy": acc,
                        "seconds": time.perf_counter() - start})
        if progress:
            print(f"classifier epoch {epoch}: train loss {total / count:.4f}, "
                  f"validation accuracy {acc:.4f}")
        if acc > best:
            best = acc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, history


def load_or_train_classifier(dataset: str, path, epochs: int = 10, batch_size: int = 128,
                             lr: float = 1e-3, seed: int = 0, threads=None,
                             progress: bool = True, data=None, retrain: bool = False,
                             **config) -> FeatureClassifier:
    """The feature classifier of ``dataset`` ("mnist" or "fashion_mnist") stored at ``path``
    (safetensors, written by fg.save) with its checksum at ``path + ".sha256"``.

    If both files exist, the weights are reloaded when the file's SHA-256 matches the checksum
    file (a mismatch, or one file without the other, raises ValueError: the file changed; pass
    ``retrain=True`` to train again). Otherwise a classifier is trained (``threads`` BLAS
    threads) on train[0:50000] of the real training set, the epoch with the best accuracy on
    train[50000:60000] is kept, the test set is measured once, and weights, metadata (dataset,
    accuracies, epochs, training seconds) and checksum are written. ``data`` = (train, valid,
    test), each (x, y), replaces the real data (small tests). ``config``: FeatureClassifier's
    arguments. The returned model has ``info`` (the metadata, with ``sha256``) and is in eval
    mode.
    """
    if dataset not in DATASETS:
        raise ValueError(f"load_or_train_classifier: dataset must be one of {DATASETS}, got "
                         f"{dataset!r}")
    path = Path(path)
    check = _checksum_path(path)
    if not retrain and (path.exists() or check.exists()):
        return _load_checked(dataset, path, check)
    with _limit_threads(threads):
        train, valid, test = data if data is not None else _real_data(dataset)
        start = time.perf_counter()
        model, history = train_feature_classifier(train, valid, epochs, batch_size, lr, seed,
                                                  progress, **config)
        seconds = time.perf_counter() - start
        info = {"dataset": dataset, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                "seed": seed, "threads": threads, "train_seconds": seconds,
                "n_train": len(train[0]), "n_valid": len(valid[0]), "n_test": len(test[0]),
                "best_epoch": int(np.argmax([h["valid_accuracy"] for h in history])) + 1,
                "valid_accuracy": max(h["valid_accuracy"] for h in history),
                "test_accuracy": model.accuracy(*test), "history": history,
                "real_data": data is None}
    path.parent.mkdir(parents=True, exist_ok=True)
    fg.save({"state_dict": model.state_dict(), "config": model.config, "info": info}, path,
            format="safetensors")
    digest = sha256_of(path)
    check.write_text(f"{digest}  {path.name}\n")
    model.info = {**info, "sha256": digest}
    return model.eval()


def _load_checked(dataset: str, path: Path, check: Path) -> FeatureClassifier:
    if not path.exists() or not check.exists():
        missing = path if not path.exists() else check
        raise ValueError(f"load_or_train_classifier: {missing} is missing (the weights and "
                         f"their checksum file come together); pass retrain=True to train again")
    expected = check.read_text().split()[0] if check.read_text().split() else ""
    actual = sha256_of(path)
    if actual != expected:
        raise ValueError(f"load_or_train_classifier: the SHA-256 of {path} is {actual}, its "
                         f"checksum file {check} says {expected}; the file changed (pass "
                         "retrain=True to train again)")
    saved = fg.load(path)
    info = saved["info"]
    if info.get("dataset") != dataset:
        raise ValueError(f"load_or_train_classifier: {path} holds a {info.get('dataset')!r} "
                         f"classifier, asked for {dataset!r}")
    cfg = dict(saved["config"])
    cfg["channels"] = tuple(cfg["channels"])
    model = FeatureClassifier(**cfg)
    model.load_state_dict(saved["state_dict"])
    model.info = {**info, "sha256": actual}
    return model.eval()


# --- distances and scores -----------------------------------------------------------------------

def _features_2d(x, name: str) -> np.ndarray:
    arr = _numpy(x).astype(np.float64)
    if arr.ndim != 2:
        raise ShapeError(f"frechet_distance: {name} must be 2-D (samples, features), got shape "
                         f"{arr.shape}")
    if arr.shape[0] < 2:
        raise ValueError(f"frechet_distance: {name} needs at least 2 samples for a covariance, "
                         f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"frechet_distance: {name} contains NaN or infinite values")
    return arr


def frechet_distance(feats_a, feats_b, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu_a, C_a) and N(mu_b, C_b) fitted to two feature sets
    (samples, features): ||mu_a - mu_b||^2 + Tr(C_a) + Tr(C_b) - 2 Tr((C_a C_b)^(1/2)), the
    FID's formula (Heusel et al. 2017), covariances with ddof=1 (np.cov), the matrix square
    root by scipy.linalg.sqrtm, its real part kept. If the square root of the product is not
    finite (a singular product), ``eps`` is added to the diagonal of both covariances and the
    root computed again; an imaginary part above 1e-3 on its diagonal raises ValueError."""
    from scipy import linalg

    a, b = _features_2d(feats_a, "feats_a"), _features_2d(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ShapeError(f"frechet_distance: feature sizes differ: feats_a {a.shape}, feats_b "
                         f"{b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.atleast_2d(np.cov(a, rowvar=False))
    cov_b = np.atleast_2d(np.cov(b, rowvar=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        with np.errstate(all="ignore"):
            root = linalg.sqrtm(cov_a @ cov_b)
        if not np.isfinite(root).all():
            offset = np.eye(len(cov_a)) * eps
            root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"frechet_distance: the square root of C_a C_b has an imaginary "
                             f"part of {np.abs(root.imag).max():.3g}")
        root = root.real
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(root))


def _probabilities(probs, name: str) -> np.ndarray:
    p = _numpy(probs).astype(np.float64)
    if p.ndim != 2 or p.shape[0] == 0 or p.shape[1] == 0:
        raise ShapeError(f"{name}: probs must be 2-D (samples, classes) and non-empty, got "
                         f"shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any():
        raise ValueError(f"{name}: probs must be finite and non-negative")
    sums = p.sum(1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        bad = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(f"{name}: each row of probs must sum to 1 (row {bad} sums to "
                         f"{sums[bad]:.6g}); apply softmax to logits first")
    return p


def classifier_score(probs) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with p(y) the mean of the rows of ``probs`` (samples,
    classes): the Inception score of Salimans et al. (2016) computed with the feature
    classifier's probabilities. It is 1 when every row is the same and the number of classes
    when the rows are confident (one-hot) and the classes equally frequent."""
    p = _probabilities(probs, "classifier_score")
    marginal = p.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(marginal)), 0.0)
    return float(np.exp(terms.sum(1).mean()))


def conditional_accuracy(probs, labels) -> float:
    """Fraction of samples whose most probable class (argmax of ``probs`` (samples, classes))
    is the label they were generated for."""
    p = _probabilities(probs, "conditional_accuracy")
    y = _numpy(labels)
    if y.shape != (p.shape[0],):
        raise ShapeError(f"conditional_accuracy: labels of shape {y.shape} do not match probs "
                         f"{p.shape} (expected ({p.shape[0]},))")
    if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"conditional_accuracy: labels must be integers in 0..{p.shape[1] - 1},"
                         f" got dtype {y.dtype}, range [{y.min()}, {y.max()}]")
    return float((p.argmax(1) == y).mean())


# --- the ring of Gaussians ----------------------------------------------------------------------

def ring_centres(modes: int = 8, radius: float = 2.0) -> np.ndarray:
    """(modes, 2) centres at angles 2 pi k / modes on a circle of ``radius``."""
    angles = 2 * np.pi * np.arange(modes) / modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], 1)


def ring_of_gaussians(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02,
                      rng=None) -> np.ndarray:
    """``n`` samples (n, 2) float32 of an equal mixture of ``modes`` isotropic Gaussians with
    standard deviation ``std`` centred on ``ring_centres(modes, radius)``."""
    if modes < 1 or std <= 0 or radius <= 0:
        raise ValueError(f"ring_of_gaussians: need modes >= 1, std > 0 and radius > 0, got "
                         f"modes={modes}, std={std}, radius={radius}")
    rng = np.random.default_rng(rng)
    which = rng.integers(0, modes, size=n)
    points = ring_centres(modes, radius)[which] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32)


def mode_coverage(samples, modes_centres, std: float, threshold: float = 0.01) -> dict:
    """Mode collapse measured on a mixture with known centres (VEEGAN, section 5.1).

    Each sample goes to its nearest centre; it is of high quality when it lies within 3 ``std``
    of that centre. ``per_mode`` is the fraction of all samples that are high-quality samples
    of each mode; a mode is covered when that fraction is at least ``threshold`` (and at least
    one sample). Returns {"modes_covered", "modes", "per_mode", "covered", "high_quality_fraction",
    "n_samples"}."""
    x = _numpy(samples).astype(np.float64)
    centres = _numpy(modes_centres).astype(np.float64)
    if centres.ndim != 2 or x.ndim != 2 or x.shape[1] != centres.shape[1] or len(x) == 0:
        raise ShapeError(f"mode_coverage: expected samples (n, d) and modes_centres (modes, d) "
                         f"with the same d and n > 0, got {x.shape} and {centres.shape}")
    if std <= 0 or not 0 <= threshold <= 1:
        raise ValueError(f"mode_coverage: need std > 0 and 0 <= threshold <= 1, got std={std}, "
                         f"threshold={threshold}")
    dist = np.sqrt(((x[:, None, :] - centres[None, :, :]) ** 2).sum(-1))
    nearest = dist.argmin(1)
    good = dist[np.arange(len(x)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    per_mode = counts / len(x)
    covered = (per_mode >= threshold) & (counts >= 1)
    return {"modes_covered": int(covered.sum()), "modes": len(centres),
            "per_mode": per_mode.tolist(), "covered": covered.tolist(),
            "high_quality_fraction": float(good.mean()), "n_samples": len(x)}
