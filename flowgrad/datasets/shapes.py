"""Generated images of geometric shapes in two stages of difficulty, after the shape-recognition
experiment of Bengio, Louradour, Collobert & Weston (2009, "Curriculum Learning", ICML; lecture:
"Order & Selection of Examples Matters").

Three classes: 0 rectangle, 1 ellipse, 2 triangle.

- ``basic_shapes`` (the easy stage, *BasicShapes*): squares, circles and equilateral triangles of
  about the same area, upright, of nearly canonical size and position (small jitter), white on a
  black background, no noise.
- ``geom_shapes`` (the target task, *GeomShapes*): rectangles and ellipses of any aspect ratio
  (up to 1:2.5) and irregular triangles, of random size, position and rotation, random grey
  levels for the shape and the background (contrast at least 0.3), plus Gaussian pixel noise.

Both are anti-aliased (``supersample``² samples per pixel), float32 in [0, 1], shaped
(N, 1, size, size), with exactly balanced classes in a random order, and fully determined by
``seed``. ``shapes(...)`` returns a train/test ``Split`` whose two halves come from independent
streams of the same seed.

Example:
    >>> x, y = geom_shapes(1000, seed=0)        # (1000, 1, 32, 32) float32, (1000,) int64
    >>> (xtr, ytr), (xte, yte) = shapes(5000, 2000, stage="basic", seed=1)
"""

from __future__ import annotations

import numpy as np

from .small import Split

__all__ = ["CLASSES", "PENTOMINOES", "basic_shapes", "geom_shapes", "shapes", "render",
           "pentomino", "cells"]

CLASSES = ("rectangle", "ellipse", "triangle")
_CIRCLE = 2.0 / np.sqrt(np.pi)      # radius of the circle with the area of a square of half-side 1
_TRIANGLE = 2.0 / 3 ** 0.25 * 2 / np.sqrt(3)  # circumradius of the equilateral one, same area


def _balanced_labels(n: int, rng: np.random.Generator, classes: int = 3) -> np.ndarray:
    return rng.permutation(np.arange(n) % classes).astype(np.int64)


def render(labels, centers, scales, aspects, angles, foreground, background, size: int = 32,
           vertices=None, supersample: int = 3, chunk: int = 500) -> np.ndarray:
    """Draw one shape per image. Per image: ``labels`` (0 rectangle, 1 ellipse, 2 triangle),
    ``centers`` (N, 2) (x, y) in pixels, ``scales`` (the half-side of the square of the same
    area, pixels), ``aspects`` (width/height), ``angles`` (radians, counter-clockwise),
    ``foreground``/``background`` grey levels; ``vertices`` (N, 3, 2) triangle corners in units
    of the scale (default: the upright equilateral triangle). Returns (N, size, size) float32."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if vertices is None:
        ang = np.deg2rad([90.0, 210.0, 330.0])
        vertices = np.broadcast_to(np.stack([np.cos(ang), np.sin(ang)], -1) * _TRIANGLE,
                                   (n, 3, 2))
    out = np.empty((n, size, size), np.float32)
    ss = supersample
    grid = (np.arange(size * ss, dtype=np.float32) + 0.5) / ss  # sample positions, pixels
    gx, gy = grid[None, None, :], grid[None, :, None]

    def f32(a, idx):  # per-image values of the chunk, broadcastable against the grid
        return np.asarray(a, np.float32)[idx][:, None, None]

    for label in (0, 1, 2):
        members = np.flatnonzero(labels == label)
        for s in range(0, members.size, chunk):
            idx = members[s:s + chunk]
            c, si = f32(np.cos(angles), idx), f32(np.sin(angles), idx)
            dx = gx - f32(centers[:, 0], idx)
            dy = f32(centers[:, 1], idx) - gy  # y up
            ra = np.sqrt(f32(aspects, idx))
            sc = f32(scales, idx)
            u = (c * dx + si * dy) / (sc * ra)  # rotate by -angle, then to the unit frame
            v = (c * dy - si * dx) * (ra / sc)
            if label == 0:
                mask = (np.abs(u) <= 1.0) & (np.abs(v) <= 1.0)
            elif label == 1:
                mask = u * u + v * v <= _CIRCLE ** 2
            else:
                vt = np.asarray(vertices, np.float32)[idx]
                e1, e2 = vt[:, 1] - vt[:, 0], vt[:, 2] - vt[:, 0]
                orient = np.sign(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])[:, None, None]
                mask = None
                for i in range(3):
                    a, b = vt[:, i], vt[:, (i + 1) % 3]
                    ax_, ay_ = a[:, 0][:, None, None], a[:, 1][:, None, None]
                    ex, ey = (b[:, 0] - a[:, 0])[:, None, None], (b[:, 1] - a[:, 1])[:, None, None]
                    side = (ex * (v - ay_) - ey * (u - ax_)) * orient >= 0
                    mask = side if mask is None else mask & side
            cover = mask.reshape(-1, size, ss, size, ss).mean(axis=(2, 4), dtype=np.float32)
            fg, bg = f32(foreground, idx), f32(background, idx)
            out[idx] = bg + (fg - bg) * cover
    return out


def basic_shapes(n: int, size: int = 32, seed: int = 0, jitter: float = 0.1
                 ) -> tuple[np.ndarray, np.ndarray]:
    """BasicShapes: n images (N, 1, size, size) of squares, circles and equilateral triangles of
    equal area (a square of side 0.44·size), upright, white on black, no noise; ``jitter``
    varies the size by ±jitter (relative) and the position by ±jitter·size pixels (0: exactly
    canonical)."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, rng)
    scale = 0.22 * size * rng.uniform(1 - jitter, 1 + jitter, n)
    centers = size / 2 + rng.uniform(-jitter, jitter, (n, 2)) * size
    x = render(y, centers, scale, np.ones(n), np.zeros(n), np.ones(n), np.zeros(n), size)
    return np.clip(x, 0.0, 1.0)[:, None], y


def geom_shapes(n: int, size: int = 32, seed: int = 0, noise: float = 0.1,
                min_contrast: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """GeomShapes: n images (N, 1, size, size) of rectangles, ellipses and triangles with random
    aspect ratio (1:2.5 to 2.5:1), irregular triangles, random size (area of a square of side
    0.24·size to 0.56·size), rotation and position (kept inside the image), random grey levels
    (|foreground − background| >= ``min_contrast``) and N(0, ``noise``²) pixel noise, clipped to
    [0, 1]."""
    rng = np.random.default_rng(seed)
    y = _balanced_labels(n, rng)
    scale = rng.uniform(0.12, 0.28, n) * size
    aspect = np.exp(rng.uniform(-np.log(2.5), np.log(2.5), n))
    angle = rng.uniform(0, 2 * np.pi, n)
    base = np.deg2rad([90.0, 210.0, 330.0])[None, :] + np.deg2rad(rng.uniform(-25, 25, (n, 3)))
    radius = _TRIANGLE * rng.uniform(0.75, 1.25, (n, 3))
    vertices = np.stack([np.cos(base) * radius, np.sin(base) * radius], -1)
    # keep the shape inside: its farthest point is at most scale * max(√a, 1/√a) * reach
    reach = np.where(y == 2, radius.max(1), np.where(y == 0, np.sqrt(2.0), _CIRCLE))
    extent = scale * np.sqrt(np.maximum(aspect, 1 / aspect)) * reach
    margin = np.minimum(extent, size / 2)
    centers = margin[:, None] + rng.uniform(0, 1, (n, 2)) * (size - 2 * margin)[:, None]
    fg = rng.uniform(0, 1, n)
    bg = rng.uniform(0, 1, n)
    low = np.abs(fg - bg) < min_contrast  # push the pair apart, staying in [0, 1]
    mid = (fg + bg) / 2
    mid = np.clip(mid, min_contrast / 2, 1 - min_contrast / 2)
    sign = np.where(fg >= bg, 1.0, -1.0)
    fg = np.where(low, mid + sign * min_contrast / 2, fg)
    bg = np.where(low, mid - sign * min_contrast / 2, bg)
    x = render(y, centers, scale, aspect, angle, fg, bg, size, vertices=vertices)
    if noise:
        x += rng.normal(0.0, noise, x.shape).astype(np.float32)
    return np.clip(x, 0.0, 1.0)[:, None], y


def shapes(n_train: int, n_test: int, stage: str = "geom", size: int = 32, seed: int = 0,
           flatten: bool = False, **kwargs) -> Split:
    """Train and test sets of one stage ("basic" or "geom"); the test set is drawn from an
    independent stream of the same seed. ``flatten`` gives (N, size·size) images."""
    make = {"basic": basic_shapes, "geom": geom_shapes}.get(stage)
    if make is None:
        raise ValueError(f"shapes: stage must be 'basic' or 'geom', got {stage!r}")
    ss = np.random.SeedSequence(seed)
    s_train, s_test = (int(c.generate_state(1)[0]) for c in ss.spawn(2))
    xtr, ytr = make(n_train, size=size, seed=s_train, **kwargs)
    xte, yte = make(n_test, size=size, seed=s_test, **kwargs)
    if flatten:
        xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
    return Split(xtr, ytr, xte, yte)


# --- Pentomino-like task (Gülçehre & Bengio 2013) -----------------------------------------------

PENTOMINOES = {  # rows of the 10 sprites, '#' on
    "F": (".##", "##.", ".#."), "I": ("#####",), "L": ("#.", "#.", "#.", "##"),
    "N": (".#", ".#", "##", "#."), "P": ("##", "##", "#."), "T": ("###", ".#.", ".#."),
    "U": ("#.#", "###"), "V": ("#..", "#..", "###"), "W": ("#..", "##.", ".##"),
    "Z": ("##.", ".#.", ".##"),
}


def _sprites() -> list[list[np.ndarray]]:
    """For each pentomino, its 4 rotations (by 90°) as boolean arrays."""
    out = []
    for rows in PENTOMINOES.values():
        a = np.array([[c == "#" for c in r] for r in rows])
        out.append([np.rot90(a, k) for k in range(4)])
    return out


def pentomino(n: int, seed: int = 0, grid: int = 3, cell: int = 8, objects: int = 3
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A task in the spirit of Gülçehre & Bengio's Pentomino (2013, "Knowledge Matters: Importance
    of Prior Information for Optimization"): images of ``grid``×``grid`` cells of ``cell``×``cell``
    pixels; ``objects`` cells hold one pentomino sprite each (one of 10 shapes, rotated by a
    multiple of 90°, at a random offset in its cell), the others are empty. The label is 1 when
    all the sprites are of the same shape, else 0 (exactly half of each). Solving it goes
    through an intermediate concept, the shape in each cell, returned as ``parts``.

    Returns ``x`` (N, 1, grid·cell, grid·cell) float32 in {0, 1}, ``y`` (N,) int64 and ``parts``
    (N, grid²) int64: 0 for an empty cell, 1 + the shape's index otherwise (cells row-major)."""
    if objects > grid * grid:
        raise ValueError(f"pentomino: {objects} objects do not fit in {grid}x{grid} cells")
    if cell < 5:
        raise ValueError(f"pentomino: cells must be at least 5 pixels wide, got {cell}")
    rng = np.random.default_rng(seed)
    sprites = _sprites()
    k = len(sprites)
    y = rng.permutation(np.arange(n) % 2).astype(np.int64)
    shapes_ = rng.integers(0, k, (n, objects))
    same = rng.integers(0, k, n)
    shapes_[y == 1] = same[y == 1][:, None]
    bad = (y == 0) & np.all(shapes_ == shapes_[:, :1], axis=1)
    while bad.any():  # negatives must not be all alike
        shapes_[bad] = rng.integers(0, k, (int(bad.sum()), objects))
        bad = (y == 0) & np.all(shapes_ == shapes_[:, :1], axis=1)
    cells = np.argsort(rng.random((n, grid * grid)), axis=1)[:, :objects]
    rot = rng.integers(0, 4, (n, objects))
    u = rng.random((n, objects, 2))
    size = grid * cell
    x = np.zeros((n, size, size), np.float32)
    parts = np.zeros((n, grid * grid), np.int64)
    for i in range(n):
        for j in range(objects):
            s = sprites[shapes_[i, j]][rot[i, j]]
            h, w = s.shape
            r0 = (cells[i, j] // grid) * cell + int(u[i, j, 0] * (cell - h + 1))
            c0 = (cells[i, j] % grid) * cell + int(u[i, j, 1] * (cell - w + 1))
            x[i, r0:r0 + h, c0:c0 + w] = s
            parts[i, cells[i, j]] = shapes_[i, j] + 1
    return x[:, None], y, parts


def cells(x: np.ndarray, grid: int = 3) -> np.ndarray:
    """Cut images (N, 1, H, W) into their grid cells: (N, grid², (H/grid)·(W/grid)), row-major."""
    n, _, h, w = x.shape
    ch, cw = h // grid, w // grid
    return (x.reshape(n, grid, ch, grid, cw).transpose(0, 1, 3, 2, 4)
            .reshape(n, grid * grid, ch * cw))
