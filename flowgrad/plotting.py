"""The one way flowgrad draws figures: matplotlib's object-oriented API (a ``Figure`` with its
own Agg canvas), never ``pyplot`` and never ``matplotlib.use``, so the user's backend, their
open pyplot figures and their interactive session are left exactly as they were.

    >>> fig, ax = new_figure(figsize=(6, 4))
    >>> ax.plot(x, y)
    >>> save_figure(fig, "results/curve.png")

Every figure in ``flowgrad.debug`` and ``flowgrad.train`` is made by ``new_figure`` and written
by ``save_figure`` (atomically: a reader sees the old file or the new one).
"""

from __future__ import annotations

import io
from pathlib import Path

__all__ = ["new_figure", "save_figure"]


def new_figure(nrows: int = 1, ncols: int = 1, figsize: tuple | None = None, *,
               squeeze: bool = True, layout: str | None = None, axes: bool = True,
               **subplot_kw):
    """A figure on a private Agg canvas and its axes, like ``plt.subplots`` without pyplot.

    Args:
        nrows, ncols: the grid of axes (``axes=False``: none, add them yourself).
        figsize: (width, height) in inches; default matplotlib's.
        squeeze: as ``plt.subplots``: one axes object for a 1×1 grid, a 1-D array for one
            row or column, else a 2-D array (``squeeze=False``: always 2-D).
        layout: ``"constrained"``, ``"tight"`` or None (then ``save_figure(tight=True)``).
        subplot_kw: passed to every ``add_subplot`` (e.g. ``projection=...``).

    Returns ``(fig, axes)`` (``axes`` is None with ``axes=False``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout=layout)
    FigureCanvasAgg(fig)
    if not axes:
        return fig, None
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze, subplot_kw=subplot_kw or None)


def save_figure(fig, path, dpi: int = 100, tight: bool = False) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix, PNG when it names none), creating the
    folder; ``tight=True`` runs ``tight_layout`` first. Returns the path. Nothing global
    changes."""
    from .serialization import atomic_write

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fmt = path.suffix[1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    atomic_write(path, lambda f: f.write(buf.getvalue()))
    return path
