"""Network dissection: which hidden units of a convnet are detectors of known concepts
(lecture: "Hidden Units Can Discover Semantically Meaningful Concepts"; Zhou, Khosla, Lapedriza,
Oliva & Torralba 2015, "Object detectors emerge in deep scene CNNs", ICLR; the measure is the
one of Bau, Zhou, Khosla, Oliva & Torralba 2017, "Network Dissection: Quantifying
Interpretability of Deep Visual Representations", CVPR, section 2.2).

For unit k of a layer, over a probe set of N images with per-pixel concept masks L_c:

1. its activation maps A_k(x) (h×w) over all probe images;
2. the threshold T_k: the ``quantile`` (Bau et al.: 0.995) of the values of A_k over every
   spatial position of every probe image, computed on the maps at the layer's own resolution,
   as Bau et al. do;
3. each map upsampled to the image size with bilinear interpolation (PyTorch's
   ``interpolate(mode="bilinear", align_corners=False)``, flowgrad's implementation), S_k(x);
4. the binary map M_k(x) = S_k(x) >= T_k, where the unit's floor (its minimum over the probe
   set, e.g. the zeros of a ReLU) never counts as active: a dead or constant unit, whose
   quantile equals its floor, is active nowhere, where ``>=`` alone would make it active
   everywhere; ``>=`` rather than Bau et al.'s ``>`` keeps the top value itself (a unit whose
   map is a binary mask is active exactly on the mask);
5. IoU_{k,c} = Σ_x |M_k(x) ∩ L_c(x)| / Σ_x |M_k(x) ∪ L_c(x)|, summed over the probe set;
6. unit k is a detector of its best concept c* = argmax_c IoU_{k,c} when IoU_{k,c*} exceeds
   ``iou_threshold`` (Bau et al.: 0.04); ``Dissection.share`` gives the share of detector
   units at any other threshold, for the sensitivity to it.

``activation_maps`` collects the maps of named layers of a model with forward hooks;
``permutation_test`` compares two sets of units (trained against random weights)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import flowgrad as fg

from ..errors import ShapeError

__all__ = ["Dissection", "activation_maps", "detector_shares", "dissect", "iou",
           "permutation_test",
           "threshold_maps", "unit_thresholds", "upsample_maps"]


def _check_maps(name: str, maps) -> np.ndarray:
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ShapeError(f"{name}: activation maps of shape {maps.shape}; expected (N, units, "
                         "height, width)")
    return maps


def upsample_maps(maps, size) -> np.ndarray:
    """Maps (N, U, h, w) resized to ``size`` (an int or (H, W)) by bilinear interpolation
    (align_corners=False, as ``torch.nn.functional.interpolate``); float32."""
    maps = _check_maps("upsample_maps", maps).astype(np.float32, copy=False)
    size = (int(size), int(size)) if np.isscalar(size) else tuple(int(s) for s in size)
    if maps.shape[2:] == size:
        return maps
    with fg.no_grad():
        out = fg.nn.functional.interpolate(fg.tensor(maps), size=size, mode="bilinear",
                                           align_corners=False)
    return out.numpy()


def unit_thresholds(maps, quantile: float = 0.995) -> np.ndarray:
    """T_k: the ``quantile`` of each unit's activations over all images and positions of
    ``maps`` (N, U, h, w) -> (U,) (NumPy's linear interpolation between order statistics)."""
    maps = _check_maps("unit_thresholds", maps)
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"unit_thresholds: quantile must be in (0, 1), got {quantile}")
    flat = np.moveaxis(maps, 1, 0).reshape(maps.shape[1], -1)
    return np.quantile(flat, quantile, axis=1)


def threshold_maps(maps, thresholds, floors=None) -> np.ndarray:
    """M_k = maps >= T_k and maps > floor_k, per unit: ``maps`` (N, U, H, W), ``thresholds``
    and ``floors`` (U,) (default: each unit's minimum over ``maps``) -> bool (N, U, H, W)."""
    maps = _check_maps("threshold_maps", maps)
    thresholds = np.asarray(thresholds)
    if thresholds.shape != (maps.shape[1],):
        raise ShapeError(f"threshold_maps: thresholds of shape {thresholds.shape} for maps "
                         f"{maps.shape}; expected ({maps.shape[1]},), one per unit")
    if floors is None:
        floors = maps.min(axis=(0, 2, 3))
    floors = np.asarray(floors)
    t, f = thresholds[None, :, None, None], floors[None, :, None, None]
    return (maps >= t) & (maps > f)


def iou(active, masks) -> np.ndarray:
    """Dataset-level IoU of binary unit maps with concept masks: ``active`` (N, U, H, W) and
    ``masks`` (N, C, H, W) -> (U, C), Σ intersection / Σ union over all N images (0 where both
    are empty)."""
    active, masks = np.asarray(active), np.asarray(masks)
    if active.ndim != 4 or masks.ndim != 4 or active.shape[0] != masks.shape[0] \
            or active.shape[2:] != masks.shape[2:]:
        raise ShapeError(f"iou: unit maps of shape {active.shape} and concept masks of shape "
                         f"{masks.shape}; expected (N, units, H, W) and (N, concepts, H, W) "
                         "with the same N, H and W (upsample the maps to the image size first)")
    a = np.moveaxis(active, 1, 0).reshape(active.shape[1], -1).astype(np.float32)
    m = np.moveaxis(masks, 1, 0).reshape(masks.shape[1], -1).astype(np.float32)
    inter = a @ m.T
    union = a.sum(1)[:, None] + m.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


@dataclass
class Dissection:
    """One layer dissected: ``iou`` (U, C) with ``concepts``; ``thresholds`` (U,) the T_k;
    ``active_fraction`` (U,) the share of probe pixels where each unit is active."""

    iou: np.ndarray
    thresholds: np.ndarray
    active_fraction: np.ndarray
    concepts: tuple
    quantile: float
    iou_threshold: float
    layer: str = ""

    @property
    def best_concept(self) -> np.ndarray:
        """(U,) the index of each unit's concept of highest IoU."""
        return self.iou.argmax(1)

    @property
    def best_iou(self) -> np.ndarray:
        return self.iou.max(1)

    def detectors(self, iou_threshold: float | None = None) -> np.ndarray:
        """(U,) bool: units whose best IoU exceeds the threshold (default: the one given)."""
        t = self.iou_threshold if iou_threshold is None else iou_threshold
        return self.best_iou > t

    def share(self, iou_threshold: float | None = None) -> float:
        """The share of the layer's units that are detectors of some concept."""
        return float(self.detectors(iou_threshold).mean())

    def concept_counts(self, iou_threshold: float | None = None) -> dict:
        """{concept: number of detector units whose best concept it is}."""
        det = self.detectors(iou_threshold)
        return {c: int(np.sum(det & (self.best_concept == i)))
                for i, c in enumerate(self.concepts)}


def dissect(maps, masks, concepts=None, quantile: float = 0.995, iou_threshold: float = 0.04,
            layer: str = "", chunk: int = 16) -> Dissection:
    """Dissect one layer: ``maps`` (N, U, h, w), its units' activations over the probe
    images; ``masks`` (N, C, H, W) bool, the concepts' masks at the image size; ``concepts``
    their C names. Steps 1-6 of the module's description, ``chunk`` units at a time."""
    maps = _check_maps("dissect", maps)
    masks = np.asarray(masks)
    if masks.ndim != 4 or masks.shape[0] != maps.shape[0]:
        raise ShapeError(f"dissect: concept masks of shape {masks.shape} for activation maps "
                         f"{maps.shape}; expected (N, concepts, H, W) with the maps' N = "
                         f"{maps.shape[0]}")
    concepts = tuple(concepts) if concepts is not None else tuple(
        f"concept {i}" for i in range(masks.shape[1]))
    if len(concepts) != masks.shape[1]:
        raise ValueError(f"dissect: {len(concepts)} concept names for masks of shape "
                         f"{masks.shape}; expected {masks.shape[1]}")
    if not 0.0 <= iou_threshold < 1.0:
        raise ValueError(f"dissect: iou_threshold must be in [0, 1), got {iou_threshold}")
    thresholds = unit_thresholds(maps, quantile)
    floors = maps.min(axis=(0, 2, 3))
    units = maps.shape[1]
    table = np.zeros((units, masks.shape[1]))
    active_fraction = np.zeros(units)
    for s in range(0, units, chunk):
        up = upsample_maps(maps[:, s:s + chunk], masks.shape[2:])
        active = threshold_maps(up, thresholds[s:s + chunk], floors[s:s + chunk])
        table[s:s + chunk] = iou(active, masks)
        active_fraction[s:s + chunk] = active.mean(axis=(0, 2, 3))
    return Dissection(table, thresholds, active_fraction, concepts, quantile, iou_threshold,
                      layer)


def detector_shares(dissections: dict, iou_threshold: float | None = None) -> dict:
    """The summary by layer: {layer: share of its units that are detectors of some concept}
    for {layer: Dissection}, at each one's threshold or at ``iou_threshold``."""
    return {name: d.share(iou_threshold) for name, d in dissections.items()}


@fg.no_grad()
def activation_maps(model, layers: dict, images, batch_size: int = 250) -> dict:
    """The outputs of the modules ``layers`` ({name: module} of ``model``) over ``images``
    (N, C, H, W), in eval mode, collected with forward hooks: {name: (N, U, h, w) float32}."""
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise ShapeError(f"activation_maps: images of shape {images.shape}; expected (N, C, H, "
                         "W)")
    store = {name: [] for name in layers}
    handles = [module.register_forward_hook(
        lambda _m, _args, output, name=name: store[name].append(output.numpy().copy()))
        for name, module in layers.items()]
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(images), batch_size):
            model(fg.tensor(images[s:s + batch_size]))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = {name: np.concatenate(v) for name, v in store.items()}
    for name, v in out.items():
        if v.ndim != 4:
            raise ShapeError(f"activation_maps: layer {name!r} gives outputs of shape "
                             f"{v.shape}; expected convolutional maps (N, units, h, w)")
    return out


def permutation_test(a, b, n_permutations: int = 10_000, seed: int = 0) -> dict:
    """One-sided permutation test that the mean of ``a`` exceeds the mean of ``b`` (e.g. the
    detector indicators of trained and of random-weight units): the labels of the pooled
    values are shuffled ``n_permutations`` times; p = (1 + #{perm. difference >= observed}) /
    (1 + n_permutations). Returns {"difference", "p_value", "n_a", "n_b"}."""
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError(f"permutation_test: both samples need values, got {a.size} and "
                         f"{b.size}")
    pooled = np.concatenate([a, b])
    observed = a.mean() - b.mean()
    rng = np.random.default_rng(seed)
    idx = np.argsort(rng.random((n_permutations, pooled.size)), axis=1)
    perm = pooled[idx]
    diffs = perm[:, :a.size].mean(1) - perm[:, a.size:].mean(1)
    hits = int(np.sum(diffs >= observed - 1e-12))
    return {"difference": float(observed), "p_value": (1 + hits) / (1 + n_permutations),
            "n_a": int(a.size), "n_b": int(b.size)}
