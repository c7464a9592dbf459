"""Task generators for modular recurrent models (RIMs, Goyal et al. 2019, arXiv 1909.10893; the
shared global workspace, Goyal et al. 2021, arXiv 2103.01197; SCOFF, Goyal et al. 2020,
arXiv 2006.16225). NumPy arrays, batch first, seeded with ``np.random.default_rng(seed)``.

- ``copying``: the RIMs copying task (official ``event_based/copying_data.py`` of
  anirudh9119/RIMs);
- ``adding_k`` / ``adding_two_markers``: adding with k marked values on one marker channel
  (the SCOFF adding table), and the RIMs repository's two-marker version
  (``event_based/adding_data.py``);
- ``seq_mnist`` / ``resample_nearest``: sequential MNIST at several resolutions (official
  ``event_based/train_mnist.py``, ``mnist_prep``);
- ``simulate_balls`` / ``render_balls`` / ``bouncing_balls``: 2-D elastic balls in a box,
  rendered to frames (the bouncing-balls setting of RIMs section 4.2 and SCOFF);
- ``triangles``: equilateral-triangle detection (anirudh9119/shared_workspace
  ``Triangle/dataset.py``);
- ``sort_of_clevr``: Sort-of-CLEVR (shared_workspace ``sort_of_clevr/sort_of_clevr_generator.py``,
  after Santoro et al. 2017, arXiv 1706.01427).

Images are drawn with NumPy (disks by distance masks), not OpenCV, so pixel outlines of small
disks may differ by a pixel from ``cv2.circle``'s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["COPYING_CLASSES", "EQUILATERAL_TOLERANCE", "SORT_OF_CLEVR_ANSWERS",
           "SORT_OF_CLEVR_ANSWER_WORDS", "SORT_OF_CLEVR_COLORS", "SORT_OF_CLEVR_QUESTION_TYPES",
           "BouncingBalls", "SortOfClevr", "Triangles", "adding_k",
           "adding_two_markers", "bouncing_balls", "copying", "render_balls",
           "resample_nearest", "seq_mnist", "seq_mnist_from_images", "simulate_balls",
           "describe_sort_of_clevr_question", "sort_of_clevr", "sort_of_clevr_answer_words",
           "sort_of_clevr_question_type", "sort_of_clevr_rows", "triangles"]

COPYING_CLASSES = 20  # the official train_copying.py's output size (ntokens = 20)


def _check_count(name: str, **values):
    for key, v in values.items():
        if int(v) != v or v < 1:
            raise ValueError(f"{name}: {key} must be a positive integer, got {key}={v!r}")


# --- copying ---------------------------------------------------------------------------------

def copying(n: int, dormant_T: int, seq_len: int = 10, n_symbols: int = 8, seed: int = 0):
    """The RIMs copying task (official ``copying_data.py``).

    Input row (length ``dormant_T + 2 * seq_len``): ``seq_len`` digits drawn uniformly from
    1..n_symbols (1..8 officially), then ``dormant_T - 1`` zeros, the marker ``n_symbols + 1``
    (9), then ``seq_len`` zeros. Target row: ``seq_len + dormant_T`` zeros, then the digits.
    So ``y[:, -seq_len:] == x[:, :seq_len]``: the marker comes just before the ``seq_len``
    steps in which the digits are to be output. The official model predicts
    ``COPYING_CLASSES`` = 20 classes at every step with cross-entropy over all positions (only
    0..9 occur). Train at T, test at 4T (RIMs table 1: 50 and 200).

    Returns ``(x, y)``, both int64 of shape (n, dormant_T + 2 * seq_len) (the official code
    returns them time first in batches of 64).
    """
    _check_count("copying", n=n, dormant_T=dormant_T, seq_len=seq_len, n_symbols=n_symbols)
    rng = np.random.default_rng(seed)
    digits = rng.integers(1, n_symbols + 1, size=(n, seq_len))
    length = dormant_T + 2 * seq_len
    x = np.zeros((n, length), dtype=np.int64)
    y = np.zeros((n, length), dtype=np.int64)
    x[:, :seq_len] = digits
    x[:, seq_len + dormant_T - 1] = n_symbols + 1
    y[:, seq_len + dormant_T:] = digits
    return x, y


# --- adding ----------------------------------------------------------------------------------

def adding_k(n: int, length: int, k_values=(2,), seed: int = 0, dtype=np.float32):
    """Adding with k marked values (the SCOFF adding table; train length 50 with k in {2, 4},
    test length 200 with k in {2, 3, 4, 5, 8, 9, 10}).

    Two features per step: a value ~ U(0, 1) and one marker channel equal to 1.0 at exactly k
    positions (distinct, uniform over the sequence) and 0.0 elsewhere. Each sequence's k is drawn
    uniformly from ``k_values``. The target is the sum of the k marked values (loss: MSE).
    The marker encoding of the SCOFF paper is not published; this single-channel encoding is the
    one the reproduction notes chose (section 4.3).

    Returns ``(x, y, k)``: x (n, length, 2) and y (n,) of ``dtype``, k (n,) int64.
    """
    _check_count("adding_k", n=n, length=length)
    ks = np.asarray(k_values, dtype=np.int64).reshape(-1)
    if ks.size == 0 or ks.min() < 1 or ks.max() > length:
        raise ValueError(f"adding_k: every k must be in [1, length={length}], got "
                         f"k_values={list(np.asarray(k_values).reshape(-1))}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    k = ks[rng.integers(0, ks.size, size=n)]
    # the k smallest of `length` uniform keys: k distinct positions, uniform over subsets
    order = np.argsort(rng.random((n, length)), axis=1)
    markers = (np.argsort(order, axis=1) < k[:, None]).astype(np.float64)
    y = (values * markers).sum(axis=1)
    return np.stack([values, markers], axis=-1).astype(dtype), y.astype(dtype), k


def adding_two_markers(n: int, length: int, seed: int = 0, dtype=np.float32):
    """The RIMs repository's adding data (official ``adding_data.py``): three features per step,
    a value ~ U(0, 1), a one-hot marker of one position in the first half (``length // 2``
    positions) and a one-hot marker of one position in the second half. The target is the sum
    of the two marked values (official: train 50, test 200, MSE).

    Returns ``(x, y)``: x (n, length, 3), y (n,), both ``dtype``.
    """
    _check_count("adding_two_markers", n=n)
    if int(length) != length or length < 2:
        raise ValueError(f"adding_two_markers: length must be an integer >= 2, got {length!r}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = length // 2
    rows = np.arange(n)
    i1 = rng.integers(0, half, size=n)
    i2 = half + rng.integers(0, half, size=n)
    x = np.zeros((n, length, 3))
    x[..., 0] = values
    x[rows, i1, 1] = 1.0
    x[rows, i2, 2] = 1.0
    y = values[rows, i1] + values[rows, i2]
    return x.astype(dtype), y.astype(dtype)


# --- sequential MNIST ------------------------------------------------------------------------

def resample_nearest(images, size: int):
    """Nearest-neighbour resampling of the last two axes to ``size`` x ``size``, as PyTorch's
    ``F.interpolate(mode="nearest")``: output index i reads input index floor(i * in / out)
    (exact integer arithmetic; PyTorch's float computation agrees for the MNIST sizes 28 ->
    14/16/19/24 and 14 -> 28, checked in the tests)."""
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"resample_nearest: images need at least 2 dimensions (H, W), got shape "
                         f"{images.shape}")
    _check_count("resample_nearest", size=size)
    h, w = images.shape[-2:]
    rows = np.minimum(np.arange(size) * h // size, h - 1)
    cols = np.minimum(np.arange(size) * w // size, w - 1)
    return images[..., rows[:, None], cols[None, :]]


def seq_mnist_from_images(images, resolution: int = 14):
    """The official RIMs preprocessing (``mnist_prep`` in ``train_mnist.py``) of images in
    [0, 1] (uint8 images are divided by 255): round to {0, 1} (half to even, as ``torch.round``),
    nearest-resample to ``resolution`` x ``resolution``, flatten row by row.

    Returns int64 tokens in {0, 1} of shape (n, resolution ** 2): the model reads one pixel per
    step (the official model embeds the tokens).
    """
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"seq_mnist_from_images: images must be (n, H, W) or (n, 1, H, W), got "
                         f"shape {np.asarray(images).shape}")
    x = x / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    binary = np.round(x)
    return resample_nearest(binary, resolution).reshape(len(x), -1).astype(np.int64)


def seq_mnist(train: bool = True, resolution: int = 14, limit: int | None = None, root=None):
    """Sequential MNIST at a resolution (RIMs table 2: train at 14 x 14, test at 16/19/24).

    Loads MNIST with ``flowgrad.datasets.MNIST`` (``root`` as there; the files are found in the
    data search path) and applies :func:`seq_mnist_from_images`: every image, train or test, is
    resampled from the original 28 x 28 (the official code does the same for the test sizes).
    The official code holds out 20% of the training images for validation (a permutation with
    seed 0); choose the split in the recipe. ``limit`` keeps the first examples.

    Returns ``(x, y)``: x int64 (n, resolution ** 2) in {0, 1}, y int64 (n,) digit labels.
    """
    from .mnist import MNIST

    ds = MNIST(root=root, train=train)
    images = ds.data.numpy()
    labels = ds.targets.numpy().astype(np.int64)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return seq_mnist_from_images(images, resolution), labels


# --- bouncing balls --------------------------------------------------------------------------

class BouncingBalls(NamedTuple):
    frames: np.ndarray      # (n, T, size, size) float32 in {0, 1}
    positions: np.ndarray   # (n, T, n_balls, 2) float64, (x, y) in the unit box
    velocities: np.ndarray  # (n, T, n_balls, 2) float64, box units per frame


def _initial_positions(rng, n, n_balls, radius, max_tries=1000):
    low, high = radius, 1.0 - radius
    pos = rng.uniform(low, high, size=(n, n_balls, 2))
    pending = np.arange(n)
    for _ in range(max_tries):
        d = np.linalg.norm(pos[pending, :, None] - pos[pending, None, :], axis=-1)
        d[:, np.arange(n_balls), np.arange(n_balls)] = np.inf
        pending = pending[(d < 2 * radius * 1.05).any(axis=(1, 2))]
        if pending.size == 0:
            return pos
        pos[pending] = rng.uniform(low, high, size=(pending.size, n_balls, 2))
    raise ValueError(f"simulate_balls: could not place n_balls={n_balls} of radius={radius} "
                     f"without overlap in the unit box in {max_tries} tries; use fewer or "
                     f"smaller balls")


def _advance(pos, vel, radius, masses, dt):
    """One Euler step of free flight, then elastic wall reflections (position mirrored at the
    wall, normal velocity negated) and elastic ball-ball impulses along the line of centres
    for every touching pair that approaches (momentum and kinetic energy conserved exactly)."""
    pos = pos + vel * dt
    low, high = radius, 1.0 - radius
    hit_low, hit_high = (pos < low) & (vel < 0), (pos > high) & (vel > 0)
    pos = np.where(hit_low, 2 * low - pos, np.where(hit_high, 2 * high - pos, pos))
    vel = np.where(hit_low | hit_high, -vel, vel)
    pos = np.clip(pos, low, high)
    n_balls = pos.shape[1]
    for i in range(n_balls):
        for j in range(i + 1, n_balls):
            d = pos[:, i] - pos[:, j]
            dist = np.linalg.norm(d, axis=-1)
            normal = d / np.maximum(dist, 1e-12)[:, None]
            approach = ((vel[:, i] - vel[:, j]) * normal).sum(-1)
            hit = (dist < 2 * radius) & (approach < 0)
            if not hit.any():
                continue
            mi, mj = masses[:, i], masses[:, j]
            impulse = np.where(hit, 2 * mi * mj / (mi + mj) * approach, 0.0)[:, None] * normal
            vel[:, i] = vel[:, i] - impulse / mi[:, None]
            vel[:, j] = vel[:, j] + impulse / mj[:, None]
    return pos, vel


def simulate_balls(n: int, steps: int, n_balls: int, radius: float = 0.08,
                   speed=(0.02, 0.05), masses=None, substeps: int = 8, initial=None,
                   seed: int = 0):
    """Elastic balls in the unit box [0, 1]^2 (ball-ball and wall collisions, no gravity or
    friction), the physics of the bouncing-balls data of RIMs (section 4.2) and SCOFF.

    Args:
        n: sequences; steps: frames per sequence; n_balls: balls per sequence (RIMs: 4 to train,
            6 to 8 to test).
        radius: ball radius in box units (all balls equal).
        speed: (low, high): initial speeds uniform in it (box units per frame), directions
            uniform.
        masses: (n_balls,) masses (default all 1).
        substeps: integration steps per frame (collisions are resolved at each).
        initial: optional ``(positions, velocities)`` each (n, n_balls, 2) instead of random ones.
        seed: the generator's seed.

    Returns ``(positions, velocities)``, each (n, steps, n_balls, 2) float64, (x, y) per ball;
    frame 0 is the initial state. Every position stays in [radius, 1 - radius].
    """
    _check_count("simulate_balls", n=n, steps=steps, n_balls=n_balls, substeps=substeps)
    if not 0 < radius < 0.5:
        raise ValueError(f"simulate_balls: radius must be in (0, 0.5), got radius={radius}")
    lo, hi = speed
    if not 0 <= lo <= hi:
        raise ValueError(f"simulate_balls: speed must be (low, high) with 0 <= low <= high, got "
                         f"speed={speed}")
    m = np.ones(n_balls) if masses is None else np.asarray(masses, dtype=np.float64)
    if m.shape != (n_balls,) or (m <= 0).any():
        raise ValueError(f"simulate_balls: masses must be {n_balls} positive values, got "
                         f"{masses!r}")
    rng = np.random.default_rng(seed)
    if initial is None:
        pos = _initial_positions(rng, n, n_balls, radius)
        angle = rng.uniform(0, 2 * np.pi, size=(n, n_balls))
        v = rng.uniform(lo, hi, size=(n, n_balls))
        vel = np.stack([v * np.cos(angle), v * np.sin(angle)], axis=-1)
    else:
        pos, vel = (np.array(a, dtype=np.float64) for a in initial)
        if pos.shape != (n, n_balls, 2) or vel.shape != (n, n_balls, 2):
            raise ValueError(f"simulate_balls: initial positions and velocities must be "
                             f"{(n, n_balls, 2)}, got {pos.shape} and {vel.shape}")
    masses_b = np.broadcast_to(m, (n, n_balls))
    positions = np.empty((n, steps, n_balls, 2))
    velocities = np.empty((n, steps, n_balls, 2))
    positions[:, 0], velocities[:, 0] = pos, vel
    for t in range(1, steps):
        for _ in range(substeps):
            pos, vel = _advance(pos, vel, radius, masses_b, 1.0 / substeps)
        positions[:, t], velocities[:, t] = pos, vel
    return positions, velocities


def render_balls(positions, radius: float = 0.08, size: int = 64):
    """Frames of balls at ``positions`` (..., n_balls, 2) in the unit box: pixel (row r, column
    c) has centre ((c + 0.5) / size, (r + 0.5) / size) and is 1 where it lies within ``radius``
    of a ball's centre (x is the column, y the row), else 0.

    Returns float32 (..., size, size)."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim < 2 or positions.shape[-1] != 2:
        raise ValueError(f"render_balls: positions must be (..., n_balls, 2), got shape "
                         f"{positions.shape}")
    _check_count("render_balls", size=size)
    centres = (np.arange(size) + 0.5) / size
    frames = np.zeros(positions.shape[:-2] + (size, size), dtype=bool)
    for b in range(positions.shape[-2]):
        dx = (centres - positions[..., b, 0:1]) ** 2  # (..., size) over columns
        dy = (centres - positions[..., b, 1:2]) ** 2  # (..., size) over rows
        frames |= dy[..., :, None] + dx[..., None, :] <= radius ** 2
    return frames.astype(np.float32)


def bouncing_balls(n: int, steps: int = 51, n_balls: int = 4, size: int = 64,
                   radius: float = 0.08, seed: int = 0, **physics):
    """Bouncing-balls sequences: :func:`simulate_balls` rendered by :func:`render_balls`
    (RIMs: sequences of 51 frames of 64 x 64, binary cross-entropy; 4 balls for training and 6
    to 8 for testing; rollouts after 10 or 15 observed frames). ``physics``: the other
    arguments of :func:`simulate_balls` (speed, masses, substeps, initial).

    Returns ``BouncingBalls(frames, positions, velocities)``: frames float32
    (n, steps, size, size), positions and velocities float64 (n, steps, n_balls, 2).
    """
    positions, velocities = simulate_balls(n, steps, n_balls, radius=radius, seed=seed,
                                           **physics)
    return BouncingBalls(render_balls(positions, radius, size), positions, velocities)


# --- equilateral triangles -------------------------------------------------------------------

EQUILATERAL_TOLERANCE = 2 * np.sqrt(2)  # longest minus shortest side, pixels


class Triangles(NamedTuple):
    images: np.ndarray    # (n, 1, size, size) float32 in {0, 1}
    labels: np.ndarray    # (n,) int64, 1 = equilateral
    vertices: np.ndarray  # (n, 3, 2) int64, (x, y) = (column, row)


def _disk_offsets(radius: float):
    r = int(np.ceil(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    keep = dx ** 2 + dy ** 2 <= (radius + 0.5) ** 2
    return dx[keep], dy[keep]


def _stamp(images, points, radius):
    """Set to 1 the pixels of filled disks of ``radius`` centred at integer ``points``
    (n, m, 2) (x, y) in ``images`` (n, H, W) (clipped at the border)."""
    n, h, w = images.shape
    dx, dy = _disk_offsets(radius)
    xs = points[..., 0:1] + dx  # (n, m, d)
    ys = points[..., 1:2] + dy
    inside = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    batch = np.broadcast_to(np.arange(n)[:, None, None], xs.shape)
    images[batch[inside], ys[inside], xs[inside]] = 1.0


def _sides(v):
    a = np.linalg.norm(v[:, 1] - v[:, 2], axis=-1)
    b = np.linalg.norm(v[:, 0] - v[:, 2], axis=-1)
    c = np.linalg.norm(v[:, 0] - v[:, 1], axis=-1)
    return np.stack([a, b, c], axis=-1)


def triangles(n: int, size: int = 64, points_per_cluster: int = 8, cluster_radius: int = 1,
              dot_radius: float = 2.0, seed: int = 0):
    """Equilateral-triangle detection (shared-workspace paper; official ``Triangle/dataset.py``).

    Each image shows three clusters of dots. Equilateral (label 1, probability 1/2): vertices p1,
    p2 uniform integers in [r, size - r] (r = ``cluster_radius``), p3 = p1 + (p2 - p1) rotated
    by 60 degrees (x' = cos a dx + sin a dy, y' = -sin a dx + cos a dy), truncated to integers;
    redrawn until p3 lies in [r, size - r] too. Otherwise (label 0) three independent uniform
    vertices. Each vertex v gets ``points_per_cluster`` dots: pairs v + o, v - o with o uniform
    in [-r, r]^2 (integers); each dot is a filled disk of ``dot_radius`` pixels.

    Differences from the official code: label 1 means equilateral (officially 0); degenerate
    equilateral draws (p1 = p2) are redrawn, and so are random triangles whose longest and
    shortest sides differ by less than ``EQUILATERAL_TOLERANCE`` (2 sqrt 2 pixels, the most the
    truncation of p3 can make an equilateral triangle's sides differ), so every label agrees
    with the side lengths; pixels are 0/1 (officially 0/255).

    Returns ``Triangles(images, labels, vertices)``.
    """
    _check_count("triangles", n=n, size=size, points_per_cluster=points_per_cluster)
    if points_per_cluster % 2:
        raise ValueError(f"triangles: points_per_cluster must be even (dots come in pairs), got "
                         f"points_per_cluster={points_per_cluster}")
    r = int(cluster_radius)
    if r < 0 or 2 * r >= size:
        raise ValueError(f"triangles: cluster_radius must be in [0, size/2), got "
                         f"cluster_radius={cluster_radius}, size={size}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n).astype(np.int64)
    vertices = np.zeros((n, 3, 2), dtype=np.int64)
    pending = np.arange(n)
    cos, sin = np.cos(np.pi / 3), np.sin(np.pi / 3)
    while pending.size:
        v = rng.integers(r, size - r + 1, size=(pending.size, 3, 2))
        eq = labels[pending] == 1
        d = (v[:, 1] - v[:, 0]).astype(np.float64)
        p3 = np.trunc(v[:, 0] + np.stack([cos * d[:, 0] + sin * d[:, 1],
                                          -sin * d[:, 0] + cos * d[:, 1]], axis=-1))
        v[eq, 2] = p3[eq].astype(np.int64)
        sides = _sides(v)
        spread = sides.max(-1) - sides.min(-1)
        in_box = ((v >= r) & (v <= size - r)).all(axis=(1, 2))
        ok = np.where(eq, in_box & (sides[:, 2] > 0), spread >= EQUILATERAL_TOLERANCE)
        vertices[pending[ok]] = v[ok]
        pending = pending[~ok]
    half = points_per_cluster // 2
    offsets = rng.integers(-r, r + 1, size=(n, 3, half, 2))
    dots = np.concatenate([vertices[:, :, None] + offsets, vertices[:, :, None] - offsets],
                          axis=2).reshape(n, -1, 2)
    images = np.zeros((n, size, size), dtype=np.float32)
    _stamp(images, dots, dot_radius)
    return Triangles(images[:, None], labels, vertices)


# --- Sort-of-CLEVR ---------------------------------------------------------------------------

SORT_OF_CLEVR_COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255),
                        "orange": (255, 156, 0), "gray": (128, 128, 128),
                        "yellow": (255, 255, 0)}  # RGB, in the official order r g b o k y
SORT_OF_CLEVR_ANSWERS = ("yes", "no", "rectangle", "circle", "r", "g", "b", "o", "k", "y")
_KINDS = ("norel", "binary", "ternary")


class SortOfClevr(NamedTuple):
    images: np.ndarray  # (n, 3, size, size) float32 RGB in [0, 1], white background
    questions: dict     # kind -> (n, q, 18) float32
    answers: dict       # kind -> (n, q) int64 indices into SORT_OF_CLEVR_ANSWERS
    centers: np.ndarray  # (n, 6, 2) int64, (x, y) = (column, row) of each colour's object
    shapes: np.ndarray  # (n, 6) int64, 0 = square ("rectangle"), 1 = circle


def _place_objects(rng, size, obj):
    centers = np.zeros((6, 2), dtype=np.int64)
    for i in range(6):
        while True:
            c = rng.integers(obj, size - obj, size=2)
            if i == 0 or (((centers[:i] - c) ** 2).sum(-1) >= (2 * obj) ** 2).all():
                break
        centers[i] = c
    return centers


def _answer_tables(centers, shapes, size):
    """Every question's answer for one image: norel (6, 3), binary (6, 3), ternary (6, 6, 3)."""
    c = centers.astype(np.float64)
    norel = np.stack([2 + shapes,
                      np.where(c[:, 0] < size / 2, 0, 1),
                      np.where(c[:, 1] < size / 2, 0, 1)], axis=1)
    d2 = ((c[:, None] - c[None]) ** 2).sum(-1)
    closest = np.where(np.eye(6, dtype=bool), np.inf, d2).argmin(1)
    furthest = d2.argmax(1)
    same = (shapes[:, None] == shapes[None]).sum(1) - 1
    binary = np.stack([2 + shapes[closest], 2 + shapes[furthest], 4 + same], axis=1)
    # ternary, over every (A, B, C) at once: axes a, b, k; C ranges over the objects other than
    # A and B
    A, B, C = c[:, None, None], c[None, :, None], c[None, None, :]
    idx = np.arange(6)
    other = (idx[:, None, None] != idx[None, :, None]) & (idx[:, None, None] != idx[None, None, :])
    other &= idx[None, :, None] != idx[None, None, :]
    lo, hi = np.minimum(A, B), np.maximum(A, B)
    between = (((C >= lo) & (C <= hi)).all(-1) & other).sum(-1)
    m = (B[..., 1] - A[..., 1]) / ((B[..., 0] - A[..., 0]) + 1e-10)
    line = m * C[..., 0] + (A[..., 1] - m * A[..., 0])
    on_band = ((np.abs(C[..., 1] - line) <= 12) & other).any(-1)
    sq = np.stack(np.broadcast_arrays(((C - B) ** 2).sum(-1), ((C - A) ** 2).sum(-1),
                                      ((A - B) ** 2).sum(-1)), axis=-1)
    cross = ((B[..., 0] - A[..., 0]) * (C[..., 1] - A[..., 1])
             - (B[..., 1] - A[..., 1]) * (C[..., 0] - A[..., 0]))
    obtuse = ((2 * sq.max(-1) >= sq.sum(-1)) & (cross != 0) & other).sum(-1)
    ternary = np.stack([4 + between, np.where(on_band, 0, 1), 4 + obtuse], axis=-1)
    return norel, binary, ternary


def sort_of_clevr(n: int, questions_per_kind: int = 10, kinds=_KINDS, size: int = 75,
                  object_size: int = 5, seed: int = 0):
    """Sort-of-CLEVR (official ``sort_of_clevr_generator.py`` of the shared-workspace repository,
    after the relation-network paper, Santoro et al. 2017).

    Image: white ``size`` x ``size`` (75), one object per colour (red, green, blue, orange, gray,
    yellow), centre uniform in [object_size, size - object_size) per axis and at least
    2 * object_size from the earlier objects; a square of side 2 * object_size + 1 or a disk of
    radius object_size, with probability 1/2 each.

    Question vector (18): [0:6] one-hot colour of object A, [6:12] colour of object B (ternary
    only), [12:15] kind (norel, binary, ternary), [15:18] subtype. Answers index
    ``SORT_OF_CLEVR_ANSWERS`` = (yes, no, rectangle, circle, r, g, b, o, k, y); counts c answer
    4 + c. Subtypes:

    - norel: 0 shape of A; 1 is A on the left (x < size/2)? 2 is A on the top (y < size/2)?
    - binary: 0 shape of the object closest to A; 1 shape of the object furthest from A;
      2 number of other objects with A's shape.
    - ternary (A, B two distinct colours among the first five, as officially): 0 number of
      other objects inside the box spanned by A and B (borders included); 1 does any other
      object lie within 12 pixels (vertically) of the line through A and B (yes/no)? 2 number
      of other objects C making an obtuse triangle ABC (largest angle >= 90 and < 180 degrees).

    The official "closest" question marks A's own distance 999 and may answer A's own shape
    when every other object is farther than sqrt(999) pixels; here A is always excluded.

    Returns ``SortOfClevr(images, questions, answers, centers, shapes)`` for the ``kinds``
    asked, ``questions_per_kind`` questions (uniform colour and subtype) per image and kind.
    """
    _check_count("sort_of_clevr", n=n, questions_per_kind=questions_per_kind, size=size,
                 object_size=object_size)
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in _KINDS]
    if bad or not kinds:
        raise ValueError(f"sort_of_clevr: kinds must be among {_KINDS}, got {kinds}")
    if size <= 6 * object_size:
        raise ValueError(f"sort_of_clevr: size={size} is too small for six objects of "
                         f"object_size={object_size}")
    rng = np.random.default_rng(seed)
    colors = np.array(list(SORT_OF_CLEVR_COLORS.values()), dtype=np.float32) / 255.0
    images = np.ones((n, size, size, 3), dtype=np.float32)
    centers = np.zeros((n, 6, 2), dtype=np.int64)
    shapes = np.zeros((n, 6), dtype=np.int64)
    q = questions_per_kind
    questions = {k: np.zeros((n, q, 18), dtype=np.float32) for k in kinds}
    answers = {k: np.zeros((n, q), dtype=np.int64) for k in kinds}
    rows, cols = np.mgrid[0:size, 0:size]
    for i in range(n):
        centers[i] = _place_objects(rng, size, object_size)
        shapes[i] = rng.random(6) >= 0.5
        for j, ((x, y), s) in enumerate(zip(centers[i], shapes[i])):
            if s == 0:
                mask = (np.abs(cols - x) <= object_size) & (np.abs(rows - y) <= object_size)
            else:
                mask = (cols - x) ** 2 + (rows - y) ** 2 <= (object_size + 0.5) ** 2
            images[i][mask] = colors[j]
        tables = dict(zip(_KINDS, _answer_tables(centers[i], shapes[i], size)))
        for k in kinds:
            kind_index = _KINDS.index(k)
            subtype = rng.integers(0, 3, size=q)
            if k == "ternary":
                pairs = np.argsort(rng.random((q, 5)), axis=1)[:, :2]
                a, b = pairs[:, 0], pairs[:, 1]
                answers[k][i] = tables[k][a, b, subtype]
                questions[k][i, np.arange(q), 6 + b] = 1
            else:
                a = rng.integers(0, 6, size=q)
                answers[k][i] = tables[k][a, subtype]
            questions[k][i, np.arange(q), a] = 1
            questions[k][i, :, 12 + kind_index] = 1
            questions[k][i, np.arange(q), 15 + subtype] = 1
    return SortOfClevr(images.transpose(0, 3, 1, 2).copy(), questions, answers, centers, shapes)


SORT_OF_CLEVR_ANSWER_WORDS = ("yes", "no", "square", "circle", "0", "1", "2", "3", "4", "5")
SORT_OF_CLEVR_QUESTION_TYPES = {
    "norel": ("shape", "left", "top"),
    "binary": ("nearest shape", "farthest shape", "count same shape"),
    "ternary": ("count between", "any near the line", "count obtuse")}


def sort_of_clevr_rows(data: SortOfClevr):
    """One row per (image, question), image by image and, within an image, kind by kind in the
    order generated: ``(image_index (M,) int64, questions (M, 18) float32, answers (M,) int64,
    kind (M,) int64)``, ``kind`` indexing ``("norel", "binary", "ternary")``."""
    kinds = list(data.questions)
    n, q = data.answers[kinds[0]].shape
    questions = np.stack([data.questions[k] for k in kinds], axis=1).reshape(n * len(kinds) * q,
                                                                             -1)
    answers = np.stack([data.answers[k] for k in kinds], axis=1).reshape(-1)
    kind = np.broadcast_to(np.array([_KINDS.index(k) for k in kinds])[None, :, None],
                           (n, len(kinds), q)).reshape(-1).astype(np.int64)
    return np.repeat(np.arange(n), len(kinds) * q), questions, answers, kind


def _decode_sort_of_clevr(question):
    v = np.asarray(question).reshape(-1)
    if v.shape != (18,):
        raise ValueError(f"sort_of_clevr: a question is a vector of 18 numbers, got shape "
                         f"{np.asarray(question).shape}")
    parts = {"colour": v[:6], "kind": v[12:15], "subtype": v[15:18]}
    for name, part in parts.items():
        if not ((part == 0) | (part == 1)).all() or part.sum() != 1:
            raise ValueError(f"sort_of_clevr: the question's {name} part is not one-hot: "
                             f"{part.tolist()} in {v.tolist()}")
    kind = int(parts["kind"].argmax())
    second = v[6:12]
    if kind == 2 and not (((second == 0) | (second == 1)).all() and second.sum() == 1):
        raise ValueError(f"sort_of_clevr: a ternary question needs a one-hot second colour at "
                         f"[6:12], got {second.tolist()}")
    if kind != 2 and second.any():
        raise ValueError(f"sort_of_clevr: only ternary questions have a second colour, got "
                         f"{v.tolist()}")
    return int(parts["colour"].argmax()), int(second.argmax()), kind, int(parts["subtype"].argmax())


def sort_of_clevr_question_type(question) -> str:
    """The type of an 18-d question vector: one of ``SORT_OF_CLEVR_QUESTION_TYPES``' names."""
    _, _, kind, subtype = _decode_sort_of_clevr(question)
    return SORT_OF_CLEVR_QUESTION_TYPES[_KINDS[kind]][subtype]


def describe_sort_of_clevr_question(question) -> str:
    """An 18-d question vector in words, for figures and reports."""
    a, b, kind, subtype = _decode_sort_of_clevr(question)
    names = list(SORT_OF_CLEVR_COLORS)
    obj, other = f"the {names[a]} object", f"the {names[b]} object"
    return ([f"What is the shape of {obj}?", f"Is {obj} on the left?", f"Is {obj} at the top?"],
            [f"What is the shape of the object nearest to {obj}?",
             f"What is the shape of the object farthest from {obj}?",
             f"How many other objects have the shape of {obj}?"],
            [f"How many other objects lie in the box spanned by {obj} and {other}?",
             f"Does any other object lie within 12 pixels of the line through {obj} and "
             f"{other}?",
             f"How many other objects make an obtuse triangle with {obj} and {other}?"]
            )[kind][subtype]


def sort_of_clevr_answer_words(answer: int) -> str:
    """An answer index in words: yes, no, square, circle or a count "0".."5" (the official
    generator's labels are ``SORT_OF_CLEVR_ANSWERS``; a count c is the class 4 + c)."""
    if isinstance(answer, bool) or int(answer) != answer or not 0 <= answer < 10:
        raise ValueError(f"sort_of_clevr: an answer is an index in 0..9, got {answer!r}")
    return SORT_OF_CLEVR_ANSWER_WORDS[int(answer)]
