"""Deep data fusion (lecture slides "Combining Multiple Sources of Evidence with Shared
Representations" and "Deep Data Fusion"): a convnet that combines an image with a non-spatial
source (a vector), which the slide says to "copy ... at all positions" so that both live at the
same spatial scale and can be concatenated as channels. Beside it, the baselines the claim is
measured against: each source alone, and late fusion (one network per source, their class
scores added, so the sources meet only at the output).

The task ``digit_context_task`` needs both sources: an image of a digit d and a one-hot context
c choosing a shift; the label is (d + shift[c]) mod 10.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn
from ..errors import ShapeError
from ..tensor import Tensor
from .selection import BestEpoch

__all__ = ["FUSION_MODELS", "ConvTrunk", "ImageOnlyNet", "LateFusionNet", "TiledFusionNet",
           "VectorOnlyNet", "digit_context_task", "fuse_tiled", "fusion_accuracy",
           "fusion_model", "tile", "train_fusion"]


def tile(vector: Tensor, height: int, width: int) -> Tensor:
    """A non-spatial source copied at every position: (N, K) -> (N, K, height, width), each
    [:, :, i, j] equal to ``vector``; the gradient back to ``vector`` sums over positions."""
    if vector.ndim != 2:
        raise ShapeError(f"tile: vector of shape {tuple(vector.shape)}; expected (N, K)")
    n, k = vector.shape
    return vector.reshape(n, k, 1, 1).expand(n, k, height, width)


def fuse_tiled(feature_map: Tensor, vector: Tensor) -> Tensor:
    """The feature map (N, C, H, W) with ``vector`` (N, K) tiled over its positions as K more
    channels: (N, C + K, H, W)."""
    if feature_map.ndim != 4 or vector.ndim != 2 or vector.shape[0] != feature_map.shape[0]:
        raise ShapeError(f"fuse_tiled: feature map {tuple(feature_map.shape)} and vector "
                         f"{tuple(vector.shape)}; expected (N, C, H, W) and (N, K), same N")
    return fg.cat([feature_map, tile(vector, feature_map.shape[2], feature_map.shape[3])], 1)


def _check(name: str, image: Tensor, vector, image_channels: int, vector_size: int,
           needs_vector: bool) -> None:
    if image.ndim != 4 or image.shape[1] != image_channels:
        raise ShapeError(f"{name}: image of shape {tuple(image.shape)}; expected (N, "
                         f"{image_channels}, H, W)")
    if needs_vector:
        if vector is None or vector.ndim != 2 or vector.shape[1] != vector_size \
                or vector.shape[0] != image.shape[0]:
            shape = None if vector is None else tuple(vector.shape)
            raise ShapeError(f"{name}: vector of shape {shape}; expected ({image.shape[0]}, "
                             f"{vector_size}) beside image {tuple(image.shape)}")


class ConvTrunk(nn.Module):
    """Conv 3x3 (padding 1) -> ReLU -> 2x2 max-pool blocks, flattened: (N, in_channels,
    image_size, image_size) -> (N, out_features). ``extra_channels`` more channels (a tiled
    vector) are concatenated to the input of block ``fuse_at``."""

    def __init__(self, in_channels: int, channels=(16, 32), extra_channels: int = 0,
                 fuse_at: int = 0, image_size: int = 28) -> None:
        super().__init__()
        if extra_channels and not 0 <= fuse_at < len(channels):
            raise ValueError(f"ConvTrunk: fuse_at = {fuse_at} outside [0, {len(channels)})")
        self.fuse_at, self.extra_channels = fuse_at, extra_channels
        sizes = [in_channels, *channels]
        self.blocks = nn.ModuleList([
            nn.Conv2d(a + (extra_channels if i == fuse_at else 0), b, 3, padding=1)
            for i, (a, b) in enumerate(zip(sizes, sizes[1:]))])
        side = image_size
        for _ in channels:
            side //= 2
        if side < 1:
            raise ValueError(f"ConvTrunk: {len(channels)} pooling blocks leave nothing of an "
                             f"image of side {image_size}")
        self.out_features = sizes[-1] * side * side

    def forward(self, image: Tensor, vector: Tensor | None = None) -> Tensor:
        h = image
        for i, conv in enumerate(self.blocks):
            if self.extra_channels and i == self.fuse_at:
                h = fuse_tiled(h, vector)
            h = nn.functional.max_pool2d(conv(h).relu(), 2)
        return h.flatten(1)


class TiledFusionNet(nn.Module):
    """Early fusion as on the slide: the vector, through its own linear pre-processing
    (``vector_hidden`` units, none if 0), is copied at every position and concatenated as
    channels to the input of conv block ``fuse_at``; one trunk then sees both. forward(image
    (N, C, H, W), vector (N, K)) -> logits (N, classes)."""

    def __init__(self, image_channels: int, vector_size: int, classes: int,
                 channels=(16, 32), hidden: int = 64, vector_hidden: int = 0,
                 fuse_at: int = 0, image_size: int = 28) -> None:
        super().__init__()
        self.image_channels, self.vector_size = image_channels, vector_size
        self.vector_net = (nn.Sequential(nn.Linear(vector_size, vector_hidden), nn.ReLU())
                           if vector_hidden else nn.Identity())
        self.trunk = ConvTrunk(image_channels, channels, vector_hidden or vector_size, fuse_at,
                               image_size)
        self.head = nn.Sequential(nn.Linear(self.trunk.out_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, classes))

    def forward(self, image: Tensor, vector: Tensor) -> Tensor:
        _check("TiledFusionNet", image, vector, self.image_channels, self.vector_size, True)
        return self.head(self.trunk(image, self.vector_net(vector)))


class ImageOnlyNet(nn.Module):
    """The same trunk and head on the image alone; ``vector`` is accepted and ignored."""

    def __init__(self, image_channels: int, classes: int, channels=(16, 32),
                 hidden: int = 64, image_size: int = 28) -> None:
        super().__init__()
        self.image_channels = image_channels
        self.trunk = ConvTrunk(image_channels, channels, image_size=image_size)
        self.head = nn.Sequential(nn.Linear(self.trunk.out_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, classes))

    def forward(self, image: Tensor, vector: Tensor | None = None) -> Tensor:  # noqa: ARG002
        _check("ImageOnlyNet", image, None, self.image_channels, 0, False)
        return self.head(self.trunk(image))


class VectorOnlyNet(nn.Module):
    """An MLP on the vector alone; ``image`` is accepted and ignored."""

    def __init__(self, vector_size: int, classes: int, hidden: int = 64) -> None:
        super().__init__()
        self.vector_size = vector_size
        self.net = nn.Sequential(nn.Linear(vector_size, hidden), nn.ReLU(),
                                 nn.Linear(hidden, classes))

    def forward(self, image: Tensor | None, vector: Tensor) -> Tensor:  # noqa: ARG002
        if vector.ndim != 2 or vector.shape[1] != self.vector_size:
            raise ShapeError(f"VectorOnlyNet: vector of shape {tuple(vector.shape)}; expected "
                             f"(N, {self.vector_size})")
        return self.net(vector)


class LateFusionNet(nn.Module):
    """Late fusion: an image network and a vector network, each giving class scores, added
    (a product of the two softmax experts); the sources never meet before the output."""

    def __init__(self, image_channels: int, vector_size: int, classes: int,
                 channels=(16, 32), hidden: int = 64, image_size: int = 28) -> None:
        super().__init__()
        self.image_channels, self.vector_size = image_channels, vector_size
        self.image_net = ImageOnlyNet(image_channels, classes, channels, hidden, image_size)
        self.vector_net = VectorOnlyNet(vector_size, classes, hidden)

    def forward(self, image: Tensor, vector: Tensor) -> Tensor:
        _check("LateFusionNet", image, vector, self.image_channels, self.vector_size, True)
        return self.image_net(image) + self.vector_net(None, vector)


FUSION_MODELS = ("tiled", "late", "image", "vector")


def fusion_model(kind: str, image_channels: int, vector_size: int, classes: int,
                 channels=(16, 32), hidden: int = 64, image_size: int = 28,
                 **kwargs) -> nn.Module:
    """One of FUSION_MODELS for square images of side ``image_size``: "tiled"
    (TiledFusionNet, ``kwargs`` to it), "late", "image", "vector"; all called as
    model(image, vector)."""
    if kind == "tiled":
        return TiledFusionNet(image_channels, vector_size, classes, channels, hidden,
                              image_size=image_size, **kwargs)
    if kind == "late":
        return LateFusionNet(image_channels, vector_size, classes, channels, hidden, image_size)
    if kind == "image":
        return ImageOnlyNet(image_channels, classes, channels, hidden, image_size)
    if kind == "vector":
        return VectorOnlyNet(vector_size, classes, hidden)
    raise ValueError(f"fusion_model: unknown kind {kind!r}; expected one of {FUSION_MODELS}")


def digit_context_task(images: np.ndarray, digits: np.ndarray, shifts=(0, 1, 3, 6),
                       seed: int = 0) -> tuple:
    """Pairs each digit image with a random one-hot context c (len(shifts) values, uniform);
    the label is (digit + shifts[c]) mod 10. With distinct shifts neither source suffices: the
    image alone leaves len(shifts) equally likely labels (best accuracy 1 / len(shifts)), the
    context alone leaves the digit (about 1/10). Returns (images, contexts (N, len(shifts))
    float32, labels int64)."""
    digits = np.asarray(digits, dtype=np.int64)
    if len(images) != len(digits):
        raise ShapeError(f"digit_context_task: {len(images)} images and {len(digits)} digits")
    if len(set(shifts)) != len(shifts):
        raise ValueError(f"digit_context_task: shifts {tuple(shifts)} must be distinct")
    rng = np.random.default_rng(seed)
    c = rng.integers(0, len(shifts), len(digits))
    contexts = np.eye(len(shifts), dtype=np.float32)[c]
    labels = (digits + np.asarray(shifts)[c]) % 10
    return images, contexts, labels.astype(np.int64)


@fg.no_grad()
def fusion_accuracy(model: nn.Module, images: np.ndarray, vectors: np.ndarray,
                    labels: np.ndarray, batch_size: int = 1000) -> float:
    """Accuracy of model(image, vector) on arrays, in eval mode, by batches."""
    was_training = model.training
    model.eval()
    right = 0
    for s in range(0, len(labels), batch_size):
        logits = model(fg.tensor(images[s:s + batch_size]), fg.tensor(vectors[s:s + batch_size]))
        right += int((logits.numpy().argmax(1) == labels[s:s + batch_size]).sum())
    model.train(was_training)
    return right / max(len(labels), 1)


def train_fusion(model: nn.Module, images: np.ndarray, vectors: np.ndarray, labels: np.ndarray,
                 epochs: int = 5, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                 on_epoch=None) -> dict:
    """Adam on cross-entropy; ``on_epoch(epoch)`` returns a validation accuracy, the weights of
    the best epoch are kept. Returns {"train_loss": [...], "valid": [...], "best_epoch": e}."""
    rng = np.random.default_rng(seed)
    opt = fg.optim.Adam(model.parameters(), lr=lr)
    history = {"train_loss": [], "valid": [], "best_epoch": epochs}
    best = BestEpoch(model, history)
    for epoch in range(1, epochs + 1):
        model.train()
        order, total = rng.permutation(len(labels)), 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            logits = model(fg.tensor(images[idx]), fg.tensor(vectors[idx]))
            loss = nn.functional.cross_entropy(logits, fg.tensor(labels[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        history["train_loss"].append(total / len(labels))
        best.update(epoch, on_epoch)
    return best.restore()
