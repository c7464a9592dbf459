"""Generated scenes of several objects on textured backgrounds, with a per-pixel mask for each
object class: data on which the concepts hidden units may discover are known (lecture: "Hidden
Units Can Discover Semantically Meaningful Concepts", Zhou, Khosla, Lapedriza, Oliva & Torralba
2015, "Object detectors emerge in deep scene CNNs"; Bau, Zhou, Khosla, Oliva & Torralba 2017,
"Network Dissection").

Four object classes (``OBJECTS``): circle, square, triangle and bar (a rectangle of aspect
``BAR_ASPECT``), drawn with the anti-aliased renderer of ``flowgrad.datasets.shapes``. A scene
type is a set of object classes ("kitchen = stove + sink"); an image of scene type k holds
1..``max_per_class`` instances of each class of ``scene_types[k]`` and no object of any other
class, at random sizes, rotations and non-overlapping positions, each a flat grey level at least
``min_contrast`` away from the background's mean. Scene type k is thus a distribution over
multisets of objects, and the scene label is a function of which classes co-occur: the index of
the set of classes present (``scene_label``). The default types are the six pairs of the four
classes, so every class is in half of the scenes and no single class tells the scene.

Backgrounds are textures: a mean grey level plus two sinusoidal gratings of random orientation,
frequency and phase (amplitude ``texture``) and N(0, ``noise``²) pixel noise, clipped to [0, 1].

``masks[i, c]`` is True on the pixels where object class c is the visible object (coverage of
at least half the pixel after anti-aliasing); objects never overlap, so the masks of different
classes are disjoint and each object's pixels belong to exactly one mask.

Example:
    >>> s = scenes(1000, size=32, seed=0)
    >>> s.images.shape, s.labels.shape, s.masks.shape      # (1000,1,32,32) (1000,) (1000,4,32,32)
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .shapes import _CIRCLE, _TRIANGLE, render

__all__ = ["OBJECTS", "SCENE_TYPES", "BAR_ASPECT", "Scenes", "scenes", "scene_label",
           "scene_names"]

OBJECTS = ("circle", "square", "triangle", "bar")
SCENE_TYPES = tuple(combinations(OBJECTS, 2))  # the six pairs
BAR_ASPECT = 4.0
# per class: the renderer's shape (0 rectangle, 1 ellipse, 2 triangle), its aspect ratio and the
# radius of its bounding circle in units of the scale (half-side of the square of equal area)
_DRAW = {"circle": (1, 1.0, _CIRCLE), "square": (0, 1.0, np.sqrt(2.0)),
         "triangle": (2, 1.0, _TRIANGLE),
         "bar": (0, BAR_ASPECT, np.sqrt(BAR_ASPECT + 1.0 / BAR_ASPECT))}


@dataclass
class Scenes:
    """``images`` (N, 1, size, size) float32 in [0, 1]; ``labels`` (N,) int64, the scene type;
    ``masks`` (N, K, size, size) bool, one per object class of ``objects``; ``counts`` (N, K)
    int64, the number of instances of each class; ``scene_types`` the class sets."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    counts: np.ndarray
    objects: tuple
    scene_types: tuple

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> Scenes:
        """The scenes at ``index`` (a slice or an integer array)."""
        return Scenes(self.images[index], self.labels[index], self.masks[index],
                      self.counts[index], self.objects, self.scene_types)


def scene_names(scene_types=SCENE_TYPES) -> list[str]:
    """'circle+square', ... one name per scene type."""
    return ["+".join(t) for t in scene_types]


def _check_types(scene_types, objects=OBJECTS) -> tuple:
    types = tuple(tuple(t) for t in scene_types)
    if not types:
        raise ValueError("scenes: scene_types is empty; expected sets of object classes")
    for t in types:
        unknown = [o for o in t if o not in objects]
        if unknown or not t or len(set(t)) != len(t):
            raise ValueError(f"scenes: scene type {t!r} must be a non-empty set of distinct "
                             f"classes of {objects}")
    sets = [frozenset(t) for t in types]
    if len(set(sets)) != len(sets):
        raise ValueError(f"scenes: two scene types have the same classes: {types!r}; the label "
                         "would not be a function of the objects present")
    return types


def scene_label(present, scene_types=SCENE_TYPES, objects=OBJECTS) -> np.ndarray:
    """The scene type of each image from which object classes it holds: ``present`` (N, K)
    bool (or counts) -> (N,) int64, the index of the type whose class set is exactly the set
    present, -1 where no type matches."""
    types = _check_types(scene_types, objects)
    present = np.asarray(present) > 0
    if present.ndim != 2 or present.shape[1] != len(objects):
        raise ValueError(f"scene_label: present of shape {present.shape}; expected (N, "
                         f"{len(objects)}), one column per class of {objects}")
    table = np.array([[o in t for o in objects] for t in types])  # (T, K)
    match = np.all(present[:, None, :] == table[None], axis=2)     # (N, T)
    return np.where(match.any(1), match.argmax(1), -1).astype(np.int64)


def _texture(n: int, size: int, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.zeros((n, size, size), np.float32)
    for _ in range(2):  # two gratings per image
        theta = rng.uniform(0, np.pi, n)[:, None, None]
        freq = rng.uniform(0.15, 0.6, n)[:, None, None]  # radians per pixel
        phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
        out += np.sin(freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase).astype(
            np.float32)
    return amplitude / 2 * out


def _place(radii: np.ndarray, size: int, rng: np.random.Generator, tries: int = 64):
    """Centres (M, 2) for discs of ``radii`` inside the image, no two closer than the sum of
    their radii plus one pixel; None when ``tries`` random candidates per disc all fail."""
    centers = np.zeros((len(radii), 2))
    for j, r in enumerate(radii):
        cand = rng.uniform(r, size - r, (tries, 2))
        gap = np.hypot(*(cand[:, None, :] - centers[None, :j]).transpose(2, 0, 1))
        ok = np.all(gap >= radii[:j] + r + 1.0, axis=1)
        if not ok.any():
            return None
        centers[j] = cand[ok.argmax()]
    return centers


def scenes(n: int, size: int = 32, seed: int = 0, scene_types=SCENE_TYPES,
           max_per_class: int = 2, scale: tuple = (0.11, 0.14), texture: float = 0.15,
           noise: float = 0.04, min_contrast: float = 0.35) -> Scenes:
    """``n`` scenes of side ``size`` (32 to 64 pixels), scene types balanced exactly and in a
    random order, fully determined by ``seed``. ``scale``: the range of an object's scale
    (half-side of the square of equal area) as a fraction of ``size``."""
    if not 16 <= size <= 128:
        raise ValueError(f"scenes: size must be in 16..128 pixels, got {size}")
    if not 0.0 <= min_contrast <= 0.5:
        raise ValueError(f"scenes: min_contrast must be in [0, 0.5], got {min_contrast}")
    if n < 1 or max_per_class < 1:
        raise ValueError(f"scenes: n and max_per_class must be >= 1, got {n} and "
                         f"{max_per_class}")
    types = _check_types(scene_types)
    k = len(OBJECTS)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(types)).astype(np.int64)
    counts = np.zeros((n, k), np.int64)
    objects = []  # (image, class, centre x, centre y, scale, angle)
    for i in range(n):
        for _ in range(100):  # draw the multiset of objects, then try to place it
            classes = [OBJECTS.index(o) for o in types[labels[i]]
                       for _ in range(rng.integers(1, max_per_class + 1))]
            scales = rng.uniform(scale[0], scale[1], len(classes)) * size
            radii = scales * np.array([_DRAW[OBJECTS[c]][2] for c in classes])
            centers = _place(radii, size, rng)
            if centers is not None:
                break
        else:
            raise ValueError(f"scenes: objects of scale {scale} (fractions of the side) do "
                             f"not fit without overlap in {size}x{size} images; use smaller "
                             "scales or max_per_class")
        for c, s, xy in zip(classes, scales, centers):
            objects.append((i, c, xy[0], xy[1], s, rng.uniform(0, 2 * np.pi)))
            counts[i, c] += 1
    obj = np.array(objects)
    img, cls = obj[:, 0].astype(int), obj[:, 1].astype(int)
    shape = np.array([_DRAW[OBJECTS[c]][0] for c in cls])
    aspect = np.array([_DRAW[OBJECTS[c]][1] for c in cls])
    cover = render(shape, obj[:, 2:4], obj[:, 4], aspect, obj[:, 5], np.ones(len(obj)),
                   np.zeros(len(obj)), size)  # (M, size, size) coverage in [0, 1]
    mean = rng.uniform(0.25, 0.75, n).astype(np.float32)
    images = mean[:, None, None] + _texture(n, size, rng, texture)
    # each object's grey level: at least min_contrast above or below its background's mean,
    # on a side (chosen at random) where [0, 1] leaves that much room
    room_up, room_down = 1.0 - mean[img], mean[img]
    up = np.where((room_up >= min_contrast) & (room_down >= min_contrast),
                  rng.random(len(obj)) < 0.5, room_up >= min_contrast)
    room = np.where(up, room_up, room_down)
    gap = min_contrast + rng.random(len(obj)) * np.maximum(room - min_contrast, 0.0)
    fg = np.where(up, mean[img] + gap, mean[img] - gap).astype(np.float32)
    masks = np.zeros((n, k, size, size), bool)
    for j in range(len(obj)):  # objects do not overlap: plain compositing
        i = img[j]
        images[i] = images[i] * (1 - cover[j]) + fg[j] * cover[j]
        masks[i, cls[j]] |= cover[j] >= 0.5
    if noise:
        images += rng.normal(0.0, noise, images.shape).astype(np.float32)
    return Scenes(np.clip(images, 0.0, 1.0)[:, None], labels, masks, counts, OBJECTS, types)
