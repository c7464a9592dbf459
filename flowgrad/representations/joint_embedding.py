"""Maps between representations (lecture slides "Google Image Search: different object types
represented in the same space" and "Maps Between Representations").

An image encoder f_x and a class-description encoder f_y map into one joint space; the score of
image x for class y is <f_x(x), f_y(d_y)>. Trained with a ranking loss on the classes seen in
training, the map f_y places a class never seen from its description alone, which gives
zero-shot classification (Larochelle, Erhan & Bengio, "Zero-data learning of new tasks", AAAI
2008). The losses: the pairwise ranking hinge and WARP, the weighted approximate-rank pairwise
loss of WSABIE (Weston, Bengio & Usunier, "Large scale image annotation: learning to rank with
joint word-image embeddings", Machine Learning 81, 2010; "WSABIE: scaling up to large vocabulary
image annotation", IJCAI 2011), which samples negatives until one violates the margin and
weights the hinge by L(floor((Y - 1) / N)), L(k) = sum_{j<=k} 1/j, N the number of draws.
The measure the slide names is precision@k.
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn
from ..errors import ShapeError
from ..nn.functional.loss import _reduce, _reduction
from ..tensor import Tensor
from .selection import BestEpoch

__all__ = ["FASHION_MNIST_ATTRIBUTES", "FASHION_MNIST_CLASSES", "JointEmbedding",
           "ZeroShotClassifier", "fashion_mnist_attributes", "precision_at_k",
           "prototype_descriptions", "rank_weight", "ranking_hinge_loss",
           "train_joint_embedding", "warp_loss", "warp_sample"]

# --- class descriptions for Fashion-MNIST ------------------------------------------------------

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
FASHION_MNIST_ATTRIBUTES = {  # attribute: what a 1 means (0 otherwise)
    "upper_body": "worn on the upper body",
    "legs": "covers the legs",
    "feet": "worn on the feet",
    "sleeves": "has sleeves",
    "long_sleeves": "sleeves reach the wrist",
    "front_opening": "opens at the front (buttons or zip)",
    "collar": "has a collar",
    "long": "reaches below the hips",
    "covers_ankle": "footwear rising above the ankle",
    "heel": "has a raised heel",
    "straps": "made of straps with gaps between them",
    "laces": "has laces",
    "handle": "carried by a handle or shoulder strap (bag-like)",
    "wide": "its silhouette is wider than tall",
}
_TABLE = {  # class: the attributes it has, judged from the typical image of the class
    "T-shirt/top": ("upper_body", "sleeves"),
    "Trouser": ("legs", "long"),
    "Pullover": ("upper_body", "sleeves", "long_sleeves"),
    "Dress": ("upper_body", "legs", "long"),
    "Coat": ("upper_body", "sleeves", "long_sleeves", "front_opening", "collar", "long"),
    "Sandal": ("feet", "straps", "wide"),
    "Shirt": ("upper_body", "sleeves", "long_sleeves", "front_opening", "collar"),
    "Sneaker": ("feet", "laces", "wide"),
    "Bag": ("handle", "wide"),
    "Ankle boot": ("feet", "covers_ankle", "heel"),
}


def fashion_mnist_attributes() -> np.ndarray:
    """The binary attribute table of the ten Fashion-MNIST classes, (10, 14) float32: row c
    describes class c (FASHION_MNIST_CLASSES), column a is attribute a (the keys of
    FASHION_MNIST_ATTRIBUTES, in order). Written for this project from the classes' typical
    images; it is a description in the sense of Larochelle et al. (2008), not a published
    annotation."""
    names = list(FASHION_MNIST_ATTRIBUTES)
    table = np.zeros((len(FASHION_MNIST_CLASSES), len(names)), dtype=np.float32)
    for c, cls in enumerate(FASHION_MNIST_CLASSES):
        for attribute in _TABLE[cls]:
            table[c, names.index(attribute)] = 1.0
    return table


def prototype_descriptions(images: np.ndarray, labels: np.ndarray, classes, per_class: int,
                           rng: np.random.Generator | None = None) -> np.ndarray:
    """Each class described by a prototype image, the mean of ``per_class`` of its images
    (flattened), as Larochelle et al. (2008) described a character by its image: the first
    ``per_class`` of the class, or a random ``per_class`` of them when ``rng`` is given.
    Returns (len(classes), pixels) float32."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), -1)
    labels = np.asarray(labels)
    rows = []
    for c in classes:
        index = np.flatnonzero(labels == c)
        if len(index) < per_class:
            raise ValueError(f"prototype_descriptions: class {c} has {len(index)} images, "
                             f"{per_class} asked per prototype")
        if rng is not None:
            index = rng.choice(index, per_class, replace=False)
        rows.append(flat[index[:per_class]].mean(0))
    return np.stack(rows)


# --- the two encoders and the joint space --------------------------------------------------------

def mlp(sizes, activation=nn.ReLU) -> nn.Sequential:
    """Affine layers of ``sizes`` with ``activation`` between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


class JointEmbedding(nn.Module):
    """Images and class descriptions in one space (slide "Maps Between Representations": f_x,
    f_y). ``image_encoder`` maps (N, *image_shape) to (N, dim), ``description_encoder`` maps
    (C, description_size) to (C, dim); ``forward(images, descriptions)`` is the (N, C) matrix of
    scores <f_x(x_n), f_y(d_c)>. By default both are MLPs: images flattened through
    ``image_hidden``, descriptions through ``description_hidden`` (empty: a linear map, as
    WSABIE's label embedding)."""

    def __init__(self, image_size: int, description_size: int, dim: int = 64,
                 image_hidden=(256,), description_hidden=(), image_encoder=None,
                 description_encoder=None) -> None:
        super().__init__()
        self.image_size, self.description_size, self.dim = image_size, description_size, dim
        self.image_encoder = image_encoder or mlp((image_size, *image_hidden, dim))
        self.description_encoder = description_encoder or mlp(
            (description_size, *description_hidden, dim))

    def embed_images(self, images) -> Tensor:
        x = images if isinstance(images, Tensor) else fg.tensor(np.asarray(images, np.float32))
        if x.ndim < 2 or int(np.prod(x.shape[1:])) != self.image_size:
            raise ShapeError(f"JointEmbedding.embed_images: images of shape {tuple(x.shape)}; "
                             f"expected (N, ...) with {self.image_size} values per image")
        return self.image_encoder(x.reshape(x.shape[0], self.image_size))

    def embed_descriptions(self, descriptions) -> Tensor:
        d = (descriptions if isinstance(descriptions, Tensor)
             else fg.tensor(np.asarray(descriptions, np.float32)))
        if d.ndim != 2 or d.shape[1] != self.description_size:
            raise ShapeError(f"JointEmbedding.embed_descriptions: descriptions of shape "
                             f"{tuple(d.shape)}; expected (classes, {self.description_size})")
        return self.description_encoder(d)

    def forward(self, images, descriptions) -> Tensor:
        return self.embed_images(images) @ self.embed_descriptions(descriptions).T


# --- ranking losses -------------------------------------------------------------------------------

def rank_weight(k) -> np.ndarray:
    """WARP's L(k) = sum_{j=1}^{k} 1/j (L(0) = 0), elementwise over integer ``k``."""
    k = np.asarray(k, dtype=np.int64)
    if k.size and k.min() < 0:
        raise ValueError(f"rank_weight: ranks must be >= 0, got {int(k.min())}")
    table = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, max(int(k.max(initial=0)), 0)
                                                              + 1))])
    return table[k]


def _check_scores(op: str, scores: Tensor, target) -> np.ndarray:
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise ShapeError(f"{op}: scores of shape {tuple(scores.shape)}; expected (N, classes) "
                         "with at least 2 classes")
    t = np.asarray(target.numpy() if isinstance(target, Tensor) else target)
    if t.shape != (scores.shape[0],) or not np.issubdtype(t.dtype, np.integer):
        raise ShapeError(f"{op}: target of shape {t.shape} ({t.dtype}); expected integer class "
                         f"indices of shape ({scores.shape[0]},)")
    if t.size and (t.min() < 0 or t.max() >= scores.shape[1]):
        bad = int(t[(t < 0) | (t >= scores.shape[1])][0])
        raise IndexError(f"{op}: target class {bad} outside [0, {scores.shape[1]})")
    return t.astype(np.int64)


def ranking_hinge_loss(scores: Tensor, target, margin: float = 1.0,
                       reduction: str = "mean") -> Tensor:
    """The pairwise ranking hinge, sum over y' != y of max(0, margin - s_y + s_y') per example
    (the margin ranking loss of Weston et al. 2010, eq. 2, with every negative counted once).
    ``scores`` (N, C), ``target`` (N,) class indices; the mean over examples by default."""
    t = _check_scores("ranking_hinge_loss", scores, target)
    positive = scores.gather(1, fg.tensor(t[:, None]))
    hinge = (scores - positive + margin).clamp_min(0.0)
    not_target = np.ones(scores.shape, dtype=bool)
    not_target[np.arange(len(t)), t] = False
    hinge = hinge * fg.tensor(not_target.astype(np.float32), dtype=scores.dtype)
    return _reduce(hinge.sum(1), _reduction("ranking_hinge_loss", None, None, reduction))


def warp_sample(scores: np.ndarray, target: np.ndarray, margin: float,
                rng: np.random.Generator) -> tuple:
    """WARP's sampling (Weston et al. 2011, Algorithm 1) for each row: draw negatives y' != y
    uniformly, with replacement, until one violates the margin (margin - s_y + s_y' > 0) or
    Y - 1 draws have been made. All draws are taken at once, (N, Y - 1) from
    ``rng.integers(0, Y - 1)``, and read left to right. Returns (negative, draws): the first
    violating label (-1 where none) and N, the draws it took (0 where none)."""
    n, classes = scores.shape
    draws = rng.integers(0, classes - 1, size=(n, classes - 1))
    negatives = draws + (draws >= target[:, None])  # skip the target label
    rows = np.arange(n)[:, None]
    violates = margin - scores[np.arange(n), target][:, None] + scores[rows, negatives] > 0
    found = violates.any(1)
    first = violates.argmax(1)
    negative = np.where(found, negatives[np.arange(n), first], -1)
    return negative, np.where(found, first + 1, 0)


def warp_loss(scores: Tensor, target, margin: float = 1.0, rng=None,
              reduction: str = "mean") -> Tensor:
    """WARP (Weston, Bengio & Usunier 2011): for each example, sample negatives until one
    violates the margin (``warp_sample``); with N draws over Y classes the rank of the target
    is estimated as floor((Y - 1) / N) and the loss is L(floor((Y - 1) / N)) *
    (margin - s_y + s_y'), L(k) = sum_{j<=k} 1/j; an example with no violator found adds 0.
    The weight is a constant of the sample: the gradient flows through s_y and s_y' only.
    ``rng``: a NumPy Generator, a seed, or None (a generator seeded from flowgrad's stream, so
    ``fg.manual_seed`` fixes it)."""
    t = _check_scores("warp_loss", scores, target)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(int(fg.randint(0, 2**31 - 1, (1,)).item())
                                    if rng is None else rng)
    values = scores.detach().numpy().astype(np.float64)
    negative, draws = warp_sample(values, t, margin, rng)
    found = negative >= 0
    weight = np.zeros(len(t))
    weight[found] = rank_weight((scores.shape[1] - 1) // draws[found])
    pair = np.stack([t, np.where(found, negative, t)], 1)
    picked = scores.gather(1, fg.tensor(pair))
    hinge = (picked[:, 1] - picked[:, 0] + margin) * fg.tensor(weight, dtype=scores.dtype)
    return _reduce(hinge, _reduction("warp_loss", None, None, reduction))


# --- measures -----------------------------------------------------------------------------------

def precision_at_k(scores, relevant, k: int) -> float:
    """Mean over queries (rows of ``scores``, (Q, M)) of the share of relevant items among the
    k best-scored ones (ties broken by the lower index). ``relevant``: (Q, M) booleans, or (Q,)
    the index of each query's one relevant item (then precision@1 is the accuracy)."""
    s = np.asarray(scores.detach().numpy() if isinstance(scores, Tensor) else scores)
    if s.ndim != 2:
        raise ShapeError(f"precision_at_k: scores of shape {s.shape}; expected (queries, items)")
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"precision_at_k: k = {k} outside [1, {s.shape[1]}] (items per query)")
    r = np.asarray(relevant)
    if r.shape == (s.shape[0],):
        if not np.issubdtype(r.dtype, np.integer) or r.min(initial=0) < 0 \
                or r.max(initial=0) >= s.shape[1]:
            raise ShapeError(f"precision_at_k: relevant item indices must be integers in "
                             f"[0, {s.shape[1]})")
        mask = np.zeros(s.shape, dtype=bool)
        mask[np.arange(len(r)), r] = True
        r = mask
    elif r.shape != s.shape:
        raise ShapeError(f"precision_at_k: relevant of shape {r.shape}; expected {s.shape} "
                         f"(booleans) or ({s.shape[0]},) (item indices)")
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float(np.take_along_axis(r.astype(bool), top, 1).sum(1).mean() / k)


# --- zero-shot classification -----------------------------------------------------------------

class ZeroShotClassifier:
    """Classifies images among described classes by the nearest description in the joint space
    (the highest score), whether or not the class was seen in training. ``descriptions``
    (C, description_size) describes ``classes`` (C class ids), row by row. For the generalised
    setting (seen and unseen classes scored together), ``calibration`` is subtracted from the
    scores of the classes in ``seen`` (calibrated stacking, Chao, Changpinyo, Gong & Sha,
    ECCV 2016), which counters the bias towards the classes trained on. The descriptions are
    embedded once, when the classifier is made: make a new one after more training."""

    def __init__(self, model: JointEmbedding, descriptions, classes, seen=(),
                 calibration: float = 0.0) -> None:
        d = np.asarray(descriptions, dtype=np.float32)
        classes = [int(c) for c in classes]
        if d.ndim != 2 or d.shape[1] != model.description_size:
            raise ShapeError(f"ZeroShotClassifier: descriptions of shape {d.shape}; expected "
                             f"(classes, {model.description_size})")
        if len(classes) != len(d) or len(set(classes)) != len(classes):
            raise ValueError(f"ZeroShotClassifier: {len(d)} descriptions for classes "
                             f"{classes}; expected one distinct class id per row")
        self.model, self.descriptions, self.classes = model, d, classes
        self.seen, self.calibration = {int(c) for c in seen}, float(calibration)
        with fg.no_grad():
            self.prototypes = model.embed_descriptions(d).numpy()

    def _rows(self, among) -> np.ndarray:
        if among is None:
            return np.arange(len(self.classes))
        unknown = [int(c) for c in among if int(c) not in self.classes]
        if unknown:
            raise ValueError(f"ZeroShotClassifier: class {unknown[0]} has no description; "
                             f"described classes: {self.classes}")
        return np.array([self.classes.index(int(c)) for c in among])

    @fg.no_grad()
    def embed(self, images, batch_size: int = 2000) -> np.ndarray:
        """The images' points in the joint space, (N, dim), in eval mode."""
        was_training = self.model.training
        self.model.eval()
        out = [self.model.embed_images(images[s:s + batch_size]).numpy()
               for s in range(0, len(images), batch_size)]
        self.model.train(was_training)
        return np.concatenate(out) if out else np.zeros((0, self.model.dim), np.float32)

    def scores(self, images, among=None) -> np.ndarray:
        """(N, len(among)) scores, columns in the order of ``among`` (default: all classes)."""
        rows = self._rows(among)
        scores = self.embed(images) @ self.prototypes[rows].T
        shift = np.array([self.calibration if self.classes[r] in self.seen else 0.0
                          for r in rows], dtype=np.float32)
        return scores - shift

    def predict(self, images, among=None) -> np.ndarray:
        """The class id of the nearest description, among ``among`` (default: all)."""
        classes = np.array(self.classes)[self._rows(among)]
        return classes[self.scores(images, among).argmax(1)]

    def accuracy(self, images, labels, among=None) -> float:
        labels = np.asarray(labels)
        allowed = set(np.array(self.classes)[self._rows(among)].tolist())
        outside = sorted(set(labels.tolist()) - allowed)
        if outside:
            raise ValueError(f"ZeroShotClassifier.accuracy: label {outside[0]} is not among the "
                             f"classes scored, {sorted(allowed)}")
        return float((self.predict(images, among) == labels).mean())


# --- training ---------------------------------------------------------------------------------

def train_joint_embedding(model: JointEmbedding, images: np.ndarray, labels: np.ndarray,
                          descriptions, classes, loss: str = "warp", epochs: int = 10,
                          batch_size: int = 128, lr: float = 1e-3, weight_decay: float = 0.0,
                          margin: float = 1.0, seed: int = 0, on_epoch=None) -> dict:
    """Adam on minibatches: each image ranked against every class of ``classes`` (its own
    positive, the others negative) with ``loss`` ("warp" or "hinge"). ``descriptions``: a
    (len(classes), description_size) array, or a function of a NumPy Generator returning one
    (a fresh description each step, e.g. a prototype of random images). ``on_epoch(epoch)``,
    when given, returns a validation score (higher is better); the weights of the best epoch
    are kept. Returns {"train_loss": [...], "valid": [...], "best_epoch": e}."""
    if loss not in ("warp", "hinge"):
        raise ValueError(f"train_joint_embedding: loss {loss!r}; expected 'warp' or 'hinge'")
    classes = [int(c) for c in classes]
    unknown = sorted(set(np.unique(labels).tolist()) - set(classes))
    if unknown:
        raise ValueError(f"train_joint_embedding: label {unknown[0]} is not one of the classes "
                         f"described, {classes}")
    lookup = np.full(max(classes + np.unique(labels).tolist()) + 1, -1)
    lookup[classes] = np.arange(len(classes))
    target = lookup[labels]
    rng = np.random.default_rng(seed)
    fg.manual_seed(seed)
    opt = fg.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history = {"train_loss": [], "valid": [], "best_epoch": epochs}
    best = BestEpoch(model, history)
    for epoch in range(1, epochs + 1):
        model.train()
        order, total = rng.permutation(len(images)), 0.0
        for s in range(0, len(order), batch_size):
            idx = order[s:s + batch_size]
            d = descriptions(rng) if callable(descriptions) else descriptions
            scores = model(images[idx], d)
            value = (warp_loss(scores, target[idx], margin, rng) if loss == "warp"
                     else ranking_hinge_loss(scores, target[idx], margin))
            opt.zero_grad()
            value.backward()
            opt.step()
            total += value.item() * len(idx)
        history["train_loss"].append(total / len(images))
        best.update(epoch, on_epoch)
    return best.restore()
