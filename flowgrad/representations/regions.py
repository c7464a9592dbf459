"""Linear regions of piecewise-linear networks (Montúfar, Pascanu, Cho & Bengio, "On the Number
of Linear Regions of Deep Neural Networks", NIPS 2014; lecture slide "Exponential advantage of
depth").

A network of Linear layers and ReLU / LeakyReLU / Hardtanh units is linear on each set of inputs
that share one activation pattern (which side of its breakpoint(s) every unit is on). Such a set
is an intersection of half-spaces (given the pattern, every pre-activation is affine in the
input), hence convex and connected: the linear regions met by a segment or a planar domain are
counted as the distinct activation patterns there.

* 1-D (a segment a → b): exact. The walk carries, on each piece of the segment, every layer's
  pre-activations as affine functions of the position t ∈ [0, 1], solves for the t where each
  unit crosses its breakpoint, splits the piece there, and goes on layer by layer.
* 2-D (a rectangle in the input plane, or in a plane through the input space): exact by the same
  idea on convex polygons (each polygon clipped by the line where a unit crosses its breakpoint;
  ``method="exact"``), and an enumeration of the patterns on a grid plus along its rows and
  columns (``method="grid"``) as an independent check. The grid method finds every region that
  contains a grid point or meets a grid line; a region that lies entirely inside one grid cell
  without touching its sides is missed, so it gives a lower bound that converges to the exact
  count as the resolution grows.

Floating point: crossings closer than 1e-12 of the segment's length (1-D) or vertices within a
relative 1e-9 of a breakpoint (2-D) are treated as touching, not crossing; regions thinner than
that are not resolved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..nn.containers import Sequential
from ..nn.layers.activation import Hardtanh, LeakyReLU, ReLU
from ..nn.layers.dropout import Dropout
from ..nn.layers.linear import Identity, Linear
from ..nn.layers.shape import Flatten
from ..nn.module import Module

__all__ = ["Regions1D", "Regions2D", "count_linear_regions", "linear_regions_1d",
           "linear_regions_2d", "montufar_lower_bound", "network_steps", "pattern_image",
           "shallow_max_regions"]

_NOT_PIECEWISE_LINEAR = ("Tanh", "Sigmoid", "GELU", "SiLU", "Mish", "ELU", "CELU", "SELU",
                         "Softplus", "LogSigmoid", "Softsign", "Tanhshrink", "Softmax",
                         "LogSoftmax", "Softmin", "Hardswish", "Hardsigmoid", "GLU", "PReLU")
_T_TOL = 1e-12
_V_TOL = 1e-9


# --- the network as a list of steps ----------------------------------------------------------

def network_steps(model: Module) -> list[tuple]:
    """The model as ("affine", W, b) and ("relu",) / ("leaky", slope) / ("hardtanh", lo, hi)
    steps in float64, nested Sequentials flattened. Any other module is a TypeError that names
    it (non-piecewise-linear units such as Tanh, Sigmoid or GELU have no linear regions)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"count_linear_regions: expected an nn.Sequential of Linear and ReLU / "
                        f"LeakyReLU / Hardtanh modules, got {type(model).__name__}")
    steps = []

    def visit(module, path):
        for name, child in module.named_children():
            where = f"{path}{name}"
            if isinstance(child, Sequential):
                visit(child, where + ".")
            elif isinstance(child, Linear):
                w = child.weight.detach().numpy().astype(np.float64)
                b = (child.bias.detach().numpy().astype(np.float64) if child.bias is not None
                     else np.zeros(w.shape[0]))
                steps.append(("affine", w, b))
            elif isinstance(child, ReLU):
                steps.append(("relu",))
            elif isinstance(child, LeakyReLU):
                steps.append(("leaky", float(child.negative_slope)))
            elif isinstance(child, Hardtanh):
                steps.append(("hardtanh", float(child.min_val), float(child.max_val)))
            elif isinstance(child, (Identity, Flatten)) or (
                    isinstance(child, Dropout) and not child.training):
                continue
            else:
                kind = type(child).__name__
                why = ("is not piecewise linear" if kind in _NOT_PIECEWISE_LINEAR else
                       "is not supported" + (" (call model.eval() first)"
                                             if isinstance(child, Dropout) else ""))
                raise TypeError(f"count_linear_regions: module {where} ({kind}) {why}; linear "
                                "regions are counted for Linear layers with ReLU, LeakyReLU "
                                "or Hardtanh units")

    visit(model, "")
    if not steps or steps[0][0] != "affine":
        raise TypeError("count_linear_regions: the model must start with a Linear layer")
    return steps


def _input_dim(steps) -> int:
    return steps[0][1].shape[1]


def _thresholds(step) -> tuple:
    return (step[1], step[2]) if step[0] == "hardtanh" else (0.0,)


def _states(step, z: np.ndarray) -> np.ndarray:
    """The activation state of every unit (0/1, or 0/1/2 for hardtanh) at pre-activations z."""
    if step[0] == "hardtanh":
        return (z > step[1]).astype(np.int8) + (z > step[2]).astype(np.int8)
    return (z > 0).astype(np.int8)


def _apply(step, state: np.ndarray, m: np.ndarray, c: np.ndarray):
    """The step's output as an affine map (m, c) of the region's coordinates, given the units'
    states on the region: m (n, k), c (n,)."""
    if step[0] == "relu":
        keep = state.astype(np.float64)
        return m * keep[:, None], c * keep
    if step[0] == "leaky":
        scale = np.where(state == 1, 1.0, step[1])
        return m * scale[:, None], c * scale
    lo, hi = step[1], step[2]
    mid = (state == 1).astype(np.float64)
    const = np.where(state == 0, lo, np.where(state == 2, hi, 0.0))
    return m * mid[:, None], c * mid + const


def _forward_patterns(steps, x: np.ndarray) -> np.ndarray:
    """Activation patterns (one row of states per input row of x)."""
    h, states = x.astype(np.float64), []
    for step in steps:
        if step[0] == "affine":
            h = h @ step[1].T + step[2]
        else:
            s = _states(step, h)
            states.append(s)
            if step[0] == "relu":
                h = h * s
            elif step[0] == "leaky":
                h = np.where(s == 1, h, step[1] * h)
            else:
                h = np.clip(h, step[1], step[2])
    return np.concatenate(states, axis=1) if states else np.zeros((len(x), 0), np.int8)


# --- 1-D: the exact walk along a segment -----------------------------------------------------

@dataclass
class Regions1D:
    """The linear regions met by the segment a → b. ``breakpoints`` are the positions t ∈ (0, 1)
    where some unit crosses its breakpoint (the input is a + t (b − a)); ``patterns`` holds the
    activation pattern of each of the ``count`` pieces; ``function_pieces`` merges neighbouring
    pieces on which the network's output is the same affine function (the pieces of the function
    itself, at most ``count``)."""

    count: int
    breakpoints: np.ndarray
    patterns: list = field(repr=False)
    slopes: np.ndarray = field(repr=False)
    function_pieces: int = 0


def _split_1d(step, pieces):
    out = []
    for t0, t1, m, c, pattern in pieces:
        cuts = []
        slope = m[:, 0]
        moving = slope != 0
        for theta in _thresholds(step):
            t = (theta - c[moving]) / slope[moving]
            cuts.append(t[(t > t0 + _T_TOL) & (t < t1 - _T_TOL)])
        cuts = np.unique(np.concatenate(cuts)) if cuts else np.empty(0)
        if len(cuts) > 1:  # crossings closer than the tolerance are one
            cuts = cuts[np.concatenate([[True], np.diff(cuts) > _T_TOL])]
        edges = np.concatenate([[t0], cuts, [t1]])
        for a, b in zip(edges[:-1], edges[1:]):
            state = _states(step, c + m[:, 0] * (0.5 * (a + b)))
            m2, c2 = _apply(step, state, m, c)
            out.append((a, b, m2, c2, pattern + [state]))
    return out


def linear_regions_1d(model, a, b) -> Regions1D:
    """Every linear region of ``model`` met by the segment from ``a`` to ``b`` (scalars for a
    one-input network, else points of its input space), exactly."""
    steps = network_steps(model)
    n0 = _input_dim(steps)
    a, b = (np.broadcast_to(np.asarray(p, dtype=np.float64).reshape(-1), (n0,)).copy()
            if np.size(p) in (1, n0) else None for p in (a, b))
    if a is None or b is None:
        raise ValueError(f"count_linear_regions: the segment's ends must be points of the "
                         f"{n0}-dimensional input space (or scalars for one input)")
    # the input as an affine function of t: x(t) = a + t (b − a)
    pieces = [(0.0, 1.0, (b - a)[:, None], a.copy(), [])]
    for step in steps:
        if step[0] == "affine":
            w, bias = step[1], step[2]
            pieces = [(t0, t1, w @ m, w @ c + bias, p) for t0, t1, m, c, p in pieces]
        else:
            pieces = _split_1d(step, pieces)
    slopes = np.stack([m[:, 0] for _, _, m, _, _ in pieces])
    same = [np.allclose(slopes[i], slopes[i + 1], rtol=1e-9, atol=1e-12)
            for i in range(len(pieces) - 1)]
    return Regions1D(count=len(pieces),
                     breakpoints=np.array([p[0] for p in pieces[1:]]),
                     patterns=[np.concatenate(p[4]) if p[4] else np.zeros(0, np.int8)
                               for p in pieces],
                     slopes=slopes, function_pieces=1 + int(np.sum(~np.asarray(same, bool))))


# --- 2-D: convex polygons, and the grid-plus-lines enumeration ------------------------------

@dataclass
class Regions2D:
    """The linear regions met by a planar domain: ``count``, the ``patterns`` found, and (exact
    method) the convex ``polygons`` in plane coordinates, one per region."""

    count: int
    method: str
    patterns: list = field(repr=False)
    polygons: list = field(default_factory=list, repr=False)
    resolution: int = 0


def _clip(poly: np.ndarray, values: np.ndarray, theta: float, tol: float):
    """The parts of the convex polygon ``poly`` where the affine function (its vertex values
    ``values``) is below and above ``theta``."""
    below, above = [], []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        fp, fq = values[i] - theta, values[(i + 1) % n] - theta
        if fp <= tol:
            below.append(p)
        if fp >= -tol:
            above.append(p)
        if (fp < -tol and fq > tol) or (fp > tol and fq < -tol):
            x = p + (q - p) * (fp / (fp - fq))
            below.append(x)
            above.append(x)
    return np.array(below), np.array(above)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _split_2d(step, regions, min_area):
    out = []
    for poly, m, c, pattern in regions:
        parts = [poly]
        for j in range(len(c)):
            for theta in _thresholds(step):
                nxt = []
                for part in parts:
                    v = part @ m[j] + c[j]
                    tol = _V_TOL * max(1.0, float(np.abs(v).max()))
                    if v.min() < theta - tol and v.max() > theta + tol:
                        nxt += [q for q in _clip(part, v, theta, tol)
                                if len(q) >= 3 and _area(q) > min_area]
                    else:
                        nxt.append(part)
                parts = nxt
        for part in parts:
            state = _states(step, m @ part.mean(0) + c)
            m2, c2 = _apply(step, state, m, c)
            out.append((part, m2, c2, pattern + [state]))
    return out


def _plane(n0: int, plane):
    if plane is None:
        if n0 != 2:
            raise ValueError(f"count_linear_regions: a 2-D domain needs a network with 2 inputs "
                             f"(this one has {n0}), or plane=(origin, u, v) in its input space")
        return np.zeros(2), np.eye(2)
    origin, u, v = (np.asarray(p, dtype=np.float64).reshape(-1) for p in plane)
    if not len(origin) == len(u) == len(v) == n0:
        raise ValueError(f"count_linear_regions: plane=(origin, u, v) must hold three points of "
                         f"the {n0}-dimensional input space, got lengths {len(origin)}, "
                         f"{len(u)}, {len(v)}")
    return origin, np.stack([u, v], 1)


def _domain(domain):
    (x0, x1), (y0, y1) = domain
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"count_linear_regions: domain must be ((x0, x1), (y0, y1)) with "
                         f"x0 < x1 and y0 < y1, got {domain}")
    return float(x0), float(x1), float(y0), float(y1)


def linear_regions_2d(model, domain=((-1.0, 1.0), (-1.0, 1.0)), method: str = "exact",
                      resolution: int = 200, plane=None) -> Regions2D:
    """The linear regions of ``model`` met by the rectangle ``domain`` = ((x0, x1), (y0, y1)),
    in the input plane (two-input networks) or in the plane origin + s u + t v (``plane``).

    method="exact": recursive clipping of convex polygons (exact up to the tolerance in the
    module's docstring). method="grid": the distinct patterns at the points of a
    ``resolution`` × ``resolution`` grid and along its rows and columns (exact 1-D walks): a
    lower bound, exact when every region contains a grid point or meets a grid line."""
    steps = network_steps(model)
    origin, basis = _plane(_input_dim(steps), plane)
    x0, x1, y0, y1 = _domain(domain)
    if method == "exact":
        square = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
        min_area = 1e-16 * (x1 - x0) * (y1 - y0)
        regions = [(square, basis.copy(), origin.copy(), [])]
        for step in steps:
            if step[0] == "affine":
                w, bias = step[1], step[2]
                regions = [(p, w @ m, w @ c + bias, pat) for p, m, c, pat in regions]
            else:
                regions = _split_2d(step, regions, min_area)
        patterns = [np.concatenate(pat) if pat else np.zeros(0, np.int8)
                    for _, _, _, pat in regions]
        return Regions2D(count=len(regions), method=method, patterns=patterns,
                         polygons=[p for p, _, _, _ in regions])
    if method != "grid":
        raise ValueError(f"count_linear_regions: method must be 'exact' or 'grid', got "
                         f"{method!r}")
    xs, ys = np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution)
    gx, gy = np.meshgrid(xs, ys)
    points = origin + np.stack([gx.ravel(), gy.ravel()], 1) @ basis.T
    found = {p.tobytes(): p for p in np.unique(_forward_patterns(steps, points), axis=0)}
    for y in ys:  # the rows
        for p in linear_regions_1d(model, origin + basis @ [x0, y],
                                   origin + basis @ [x1, y]).patterns:
            found.setdefault(p.tobytes(), p)
    for x in xs:  # the columns
        for p in linear_regions_1d(model, origin + basis @ [x, y0],
                                   origin + basis @ [x, y1]).patterns:
            found.setdefault(p.tobytes(), p)
    return Regions2D(count=len(found), method=method, patterns=list(found.values()),
                     resolution=resolution)


def pattern_image(model, domain=((-1.0, 1.0), (-1.0, 1.0)), resolution: int = 400,
                  plane=None) -> np.ndarray:
    """An integer image (resolution × resolution, rows along y) of activation-pattern ids on the
    domain's grid: one colour per linear region for a picture."""
    steps = network_steps(model)
    origin, basis = _plane(_input_dim(steps), plane)
    x0, x1, y0, y1 = _domain(domain)
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    points = origin + np.stack([gx.ravel(), gy.ravel()], 1) @ basis.T
    _, ids = np.unique(_forward_patterns(steps, points), axis=0, return_inverse=True)
    return ids.reshape(resolution, resolution)


def count_linear_regions(model, segment=None, domain=None, method: str = "exact",
                         resolution: int = 200, plane=None) -> int:
    """The number of linear regions of ``model`` (an nn.Sequential of Linear layers with ReLU,
    LeakyReLU or Hardtanh units) met by ``segment`` = (a, b), exactly, or by the rectangle
    ``domain`` = ((x0, x1), (y0, y1)) (see linear_regions_2d for ``method``, ``resolution``
    and ``plane``)."""
    if (segment is None) == (domain is None):
        raise ValueError("count_linear_regions: give exactly one of segment=(a, b) and "
                         "domain=((x0, x1), (y0, y1))")
    if segment is not None:
        a, b = segment
        return linear_regions_1d(model, a, b).count
    return linear_regions_2d(model, domain, method=method, resolution=resolution,
                             plane=plane).count


# --- the counts of Montúfar et al. (2014) ----------------------------------------------------

def shallow_max_regions(n0: int, n: int) -> int:
    """Σ_{j=0}^{n0} C(n, j): the most regions of one hidden layer of n ReLUs on n0 inputs (an
    arrangement of n hyperplanes in general position; Zaslavsky 1975, Pascanu et al. 2013)."""
    return sum(math.comb(n, j) for j in range(min(n0, n) + 1))


def montufar_lower_bound(n0: int, widths) -> int:
    """(Π_{i=1}^{L−1} ⌊n_i / n0⌋^{n0}) · Σ_{j=0}^{n0} C(n_L, j): the number of linear regions
    that a ReLU network with n0 inputs and hidden widths n_1, ..., n_L ≥ n0 can reach
    (Montúfar, Pascanu, Cho & Bengio 2014, Theorem 4 / Corollary 5: a lower bound on the
    maximal number of regions)."""
    widths = [int(w) for w in widths]
    if n0 < 1 or not widths:
        raise ValueError(f"montufar_lower_bound: need n0 ≥ 1 and at least one hidden layer, got "
                         f"n0={n0}, widths={widths}")
    if any(w < n0 for w in widths):
        raise ValueError(f"montufar_lower_bound: the bound needs every width ≥ n0 = {n0}, got "
                         f"widths {widths}")
    prod = 1
    for w in widths[:-1]:
        prod *= (w // n0) ** n0
    return prod * shallow_max_regions(n0, widths[-1])
