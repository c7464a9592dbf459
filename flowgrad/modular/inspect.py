"""Inspecting modular recurrent models: which modules are active when (the activation maps of
RIMs, Goyal et al. 2019, arXiv 1909.10893, figures 4 and 9), attention heatmaps, and whether a
module specialises on one ball of the bouncing-balls data (RIMs section 4.2; SCOFF, Goyal et al.
2020, arXiv 2006.16225).

Layouts follow the models and the generators: module masks and attention are time first,
(T, B, K) as ``RIM.masks`` and (T, B, K, 2) as ``RIM.attns``; ball positions are batch first,
(B, T, n_balls, 2) as ``flowgrad.datasets.modular_tasks.bouncing_balls``. Figures are drawn by
``flowgrad.plotting`` (no pyplot).
"""

from __future__ import annotations

import numpy as np

from ..errors import ShapeError
from ..plotting import new_figure, save_figure

__all__ = ["activation_map", "attention_ball_overlap", "attention_heatmap", "ball_events",
           "ball_following_score", "input_activity"]


def _array(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):
        x = x.numpy()
    return np.asarray(x)


def _finish(fig, path):
    if path is not None:
        save_figure(fig, path, tight=True)
    return fig


def activation_map(masks, sample=0, path=None, title: str | None = None, ax=None):
    """Which modules are active at each step: a K x T image (module rows, time columns).

    Args:
        masks: (T, B, K) or (T, K), boolean masks or activities in [0, 1] (``RIM.masks``).
        sample: the batch row shown, or ``"mean"``: the fraction of the batch in which each
            module is active.
        path: where to write the figure (optional).
        ax: draw into these axes instead of a new figure.

    Returns the matplotlib figure.
    """
    m = _array(masks).astype(np.float64)
    if m.ndim == 3:
        if sample == "mean":
            m = m.mean(axis=1)
        elif isinstance(sample, (int, np.integer)) and -m.shape[1] <= sample < m.shape[1]:
            m = m[:, sample]
        else:
            raise ValueError(f"activation_map: sample must be a batch index in "
                             f"[0, {m.shape[1]}) or 'mean', got sample={sample!r}")
    elif m.ndim != 2:
        raise ShapeError(f"activation_map: masks must be (T, B, K) or (T, K), got shape "
                         f"{m.shape}")
    size = (min(max(4.0, m.shape[0] / 8), 14.0), min(1.0 + 0.35 * m.shape[1], 8.0))
    fig, ax = new_figure(figsize=size) if ax is None else (ax.figure, ax)
    image = ax.imshow(m.T, aspect="auto", interpolation="nearest", cmap="Greys", vmin=0, vmax=1,
                      origin="lower")
    ax.set_xlabel("step")
    ax.set_ylabel("module")
    ax.set_yticks(range(m.shape[1]))
    ax.set_title(title or ("active modules" if sample != "mean" else "fraction active"))
    fig.colorbar(image, ax=ax)
    return _finish(fig, path)


def attention_heatmap(attn, select=None, path=None, title: str | None = None,
                      xlabel: str = "key", ylabel: str = "query", x_labels=None,
                      y_labels=None, ax=None):
    """A heatmap of attention weights (rows: queries, columns: keys).

    Args:
        attn: an array whose ``attn[select]`` is 2-D. Examples: communication weights
            (B, heads, K, K) with ``select=(0, 0)``; the input attention of a sequence
            ``RIM.attns`` (T, B, K, 2) with ``select=(slice(None), 0, slice(None), 1)`` gives the
            (T, K) weight each module puts on the input (show it with ``xlabel="module"``).
        select: an index tuple applied first (None: ``attn`` must be 2-D already).
        x_labels, y_labels: tick labels (optional).

    Returns the matplotlib figure.
    """
    a = _array(attn)
    full = a.shape
    if select is not None:
        a = a[select]
    if a.ndim != 2:
        raise ShapeError(f"attention_heatmap: attn[select] must be 2-D, got shape {a.shape} "
                         f"from attn of shape {full} and select={select!r}")
    size = (min(1.5 + 0.35 * max(a.shape[1], 6), 12.0),
            min(1.0 + 0.3 * max(a.shape[0], 6), 8.0))
    fig, ax = new_figure(figsize=size) if ax is None else (ax.figure, ax)
    image = ax.imshow(a.astype(np.float64), aspect="auto", interpolation="nearest",
                      cmap="viridis")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if x_labels is not None:
        ax.set_xticks(range(a.shape[1]), labels=list(x_labels))
    if y_labels is not None:
        ax.set_yticks(range(a.shape[0]), labels=list(y_labels))
    ax.set_title(title or "attention")
    fig.colorbar(image, ax=ax)
    return _finish(fig, path)


def input_activity(attn):
    """The weight each module puts on the input rather than on the null slot: ``attn[..., 1]``
    of input attention (..., K, 2) (``RIM.attns``; ``attn[..., 0]`` is the null weight)."""
    a = _array(attn)
    if a.ndim < 2 or a.shape[-1] != 2:
        raise ShapeError(f"input_activity: attn must be (..., K, 2) over [null, input], got "
                         f"shape {a.shape}")
    return a[..., 1]


def _time_first(positions, name):
    p = _array(positions).astype(np.float64)
    if p.ndim == 3 and p.shape[-1] == 2:
        return p[:, None], True  # (T, N, 2) -> (T, 1, N, 2)
    if p.ndim == 4 and p.shape[-1] == 2:
        return p.transpose(1, 0, 2, 3), False  # (B, T, N, 2) -> (T, B, N, 2)
    raise ShapeError(f"{name}: positions must be (B, T, n_balls, 2) or (T, n_balls, 2), got "
                     f"shape {p.shape}")


def ball_events(positions, kind: str = "collision", region=None, radius: float = 0.0,
                tol: float = 1e-6):
    """Per-step, per-ball binary events from ball positions.

    Args:
        positions: (B, T, n_balls, 2) as ``bouncing_balls`` returns, or (T, n_balls, 2).
        kind: ``"collision"``: the ball's displacement changes around step t, i.e.
            ||(p[t+1] - p[t]) - (p[t] - p[t-1])|| > ``tol`` (a wall or ball collision between
            steps t - 1 and t + 1; the first and last steps are never events);
            ``"region"``: the ball (a disk of ``radius``) overlaps the rectangle
            ``region = (x0, y0, x1, y1)`` (box units), e.g. the input patch a module reads.

    Returns bool events (T, B, n_balls) (time first, as module masks), or (T, n_balls) for
    positions of one sequence.
    """
    p, single = _time_first(positions, "ball_events")
    if kind == "collision":
        events = np.zeros(p.shape[:3], dtype=bool)
        if p.shape[0] >= 3:
            change = np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1)
            events[1:-1] = change > tol
    elif kind == "region":
        if region is None or len(region) != 4:
            raise ValueError(f"ball_events: kind='region' needs region=(x0, y0, x1, y1), got "
                             f"region={region!r}")
        x0, y0, x1, y1 = region
        nearest = np.stack([np.clip(p[..., 0], x0, x1), np.clip(p[..., 1], y0, y1)], axis=-1)
        events = np.linalg.norm(p - nearest, axis=-1) <= radius
    else:
        raise ValueError(f"ball_events: kind must be 'collision' or 'region', got kind={kind!r}")
    return events[:, 0] if single else events


def _entropy(p):
    q = np.stack([p, 1 - p])
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(q > 0, q * np.log2(q), 0.0).sum(0)


def _mutual_information(a, e):
    """MI in bits between the binary columns of a (S, K) and of e (S, N): (K, N)."""
    s = len(a)
    mi = np.zeros((a.shape[1], e.shape[1]))
    pa, pe = a.mean(0), e.mean(0)
    for va, ma in ((1, a), (0, 1 - a)):
        for ve, me in ((1, e), (0, 1 - e)):
            joint = ma.T @ me / s
            marg = np.outer(pa if va else 1 - pa, pe if ve else 1 - pe)
            with np.errstate(divide="ignore", invalid="ignore"):
                mi += np.where(joint > 0, joint * np.log2(joint / marg), 0.0)
    return np.maximum(mi, 0.0), _entropy(pa), _entropy(pe)


def ball_following_score(activity, events, measure: str = "nmi", threshold: float = 0.5):
    """How much each module's activity follows each ball.

    The samples are all (step, sequence) pairs. For module k and ball j:

    - ``"mi"``: the mutual information (bits) between the binary activity a_k (masks, or
      activities above ``threshold``) and the binary event e_j (``ball_events``, nonzero = 1):
      sum over a, e in {0, 1} of p(a, e) log2(p(a, e) / (p(a) p(e))).
    - ``"nmi"``: that MI divided by min(H(a_k), H(e_j)), in [0, 1]: 1 when one variable is a
      function of the other (the module is active exactly when the ball has an event, or
      exactly when it has none); 0 when they are independent or either is constant.
    - ``"correlation"``: the Pearson correlation of the raw values (activity and events as
      floats), 0 where either is constant.

    A module "follows" ball j when its row of the matrix peaks at j; ``score`` is that peak
    (for "correlation", the largest correlation, so a module active when the ball is not
    scores low).

    Args:
        activity: (T, B, K) or (T, K): ``RIM.masks``, or ``input_activity(RIM.attns)``.
        events: (T, B, n_balls) or (T, n_balls) with the same leading axes, e.g.
            ``ball_events(positions)``.

    Returns a dict: ``matrix`` (K, n_balls), ``ball`` (K,) int64 (argmax per module),
    ``score`` (K,).
    """
    a = _array(activity).astype(np.float64)
    e = _array(events).astype(np.float64)
    if a.ndim not in (2, 3) or e.ndim != a.ndim or a.shape[:-1] != e.shape[:-1]:
        raise ShapeError(f"ball_following_score: activity (T, B, K) or (T, K) and events "
                         f"(T, B, n_balls) or (T, n_balls) must share their leading axes, got "
                         f"activity {a.shape} and events {e.shape}")
    a = a.reshape(-1, a.shape[-1])
    e = e.reshape(-1, e.shape[-1])
    if measure in ("mi", "nmi"):
        mi, ha, he = _mutual_information((a > threshold).astype(np.float64),
                                         (e != 0).astype(np.float64))
        if measure == "mi":
            matrix = mi
        else:
            denom = np.minimum(ha[:, None], he[None, :])
            matrix = np.where(denom > 1e-12, mi / np.where(denom > 1e-12, denom, 1.0), 0.0)
            matrix = np.clip(matrix, 0.0, 1.0)
    elif measure == "correlation":
        ac, ec = a - a.mean(0), e - e.mean(0)
        norm = np.outer(np.sqrt((ac ** 2).sum(0)), np.sqrt((ec ** 2).sum(0)))
        matrix = np.where(norm > 1e-12, ac.T @ ec / np.where(norm > 1e-12, norm, 1.0), 0.0)
    else:
        raise ValueError(f"ball_following_score: measure must be 'mi', 'nmi' or "
                         f"'correlation', got measure={measure!r}")
    ball = matrix.argmax(1).astype(np.int64)
    return {"matrix": matrix, "ball": ball, "score": matrix[np.arange(len(ball)), ball]}


def attention_ball_overlap(attention_maps, positions, radius: float):
    """For models that attend over image locations: the mean fraction of module k's attention
    mass that falls on ball j's disk.

    Args:
        attention_maps: (T, B, K, H, W) non-negative weights over the frame's pixels (pixel (r, c)
            has centre ((c + 0.5) / W, (r + 0.5) / H) in the unit box, as ``render_balls``).
        positions: (B, T, n_balls, 2) ball centres (``bouncing_balls``).
        radius: the balls' radius (box units).

    Returns (K, n_balls): the average over steps and sequences of
    sum(attention on the disk) / sum(attention) (0 for a map with no mass).
    """
    w = _array(attention_maps).astype(np.float64)
    p, _ = _time_first(positions, "attention_ball_overlap")
    if w.ndim != 5 or w.shape[:2] != p.shape[:2]:
        raise ShapeError(f"attention_ball_overlap: attention_maps must be (T, B, K, H, W) with "
                         f"(T, B) = {p.shape[:2]} of the positions, got shape {w.shape}")
    h, wd = w.shape[-2:]
    ys, xs = (np.arange(h) + 0.5) / h, (np.arange(wd) + 0.5) / wd
    dx = (xs - p[..., 0:1]) ** 2  # (T, B, N, W)
    dy = (ys - p[..., 1:2]) ** 2  # (T, B, N, H)
    disks = (dy[..., :, None] + dx[..., None, :] <= radius ** 2).astype(np.float64)
    on_ball = np.einsum("tbkhw,tbnhw->tbkn", w, disks)
    total = w.sum(axis=(-2, -1))[..., None]
    frac = np.where(total > 0, on_ball / np.where(total > 0, total, 1.0), 0.0)
    return frac.mean(axis=(0, 1))
