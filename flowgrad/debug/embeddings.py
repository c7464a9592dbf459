"""Looking at learned word embeddings (lecture: "Neural word embeddings – visualization";
the word-feature matrix C of Bengio et al. 2003): nearest neighbours by cosine similarity and
a 2-D map (t-SNE, van der Maaten & Hinton 2008, or PCA) of chosen words.

Example:
    >>> nearest_neighbors(model.C.weight, vocab, ["monday", "france"], k=5)
    {'monday': [('tuesday', 0.91), ...], 'france': [('germany', 0.87), ...]}
    >>> embedding_map(model.C.weight, vocab[:300], "embeddings.png", vocab=vocab)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import backend

__all__ = ["nearest_neighbors", "embedding_map", "EmbeddingMap"]


def _matrix(embedding_matrix) -> np.ndarray:
    """A (|V|, m) float64 NumPy array from a Tensor, an nn.Embedding or an array."""
    from ..tensor import Tensor

    e = getattr(embedding_matrix, "weight", embedding_matrix)
    if isinstance(e, Tensor):
        e = e._data
    e = np.asarray(backend.to_numpy(e), dtype=np.float64)
    if e.ndim != 2:
        raise ValueError(f"embeddings: expected a 2-D matrix (num_words, dim), got shape "
                         f"{e.shape}")
    return e


def _lookup(vocab) -> tuple[dict, list | None]:
    """(word -> row, row -> word) from a list of words (row = position) or a dict word -> row."""
    if vocab is None:
        return {}, None
    if isinstance(vocab, dict):
        names = [None] * (max(vocab.values()) + 1 if vocab else 0)
        for w, i in vocab.items():
            names[i] = w
        return dict(vocab), names
    names = list(vocab)
    return {w: i for i, w in enumerate(names)}, names


def _row(word, index: dict, n: int) -> int:
    if isinstance(word, (int, np.integer)) and not isinstance(word, bool):
        if not 0 <= word < n:
            raise IndexError(f"embeddings: row {word} is out of range for {n} words")
        return int(word)
    if word not in index:
        raise KeyError(f"embeddings: {word!r} is not in the vocabulary ({len(index)} words); "
                       "pass the list or dict that maps words to rows of the matrix")
    return index[word]


def _unit(e: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.where(norms > 0, norms, 1.0)


def nearest_neighbors(embedding_matrix, vocab_or_list, words, k: int = 10):
    """The ``k`` words closest to ``words`` by cosine similarity, the word itself excluded.

    Args: embedding_matrix (|V|, m): a Tensor, nn.Embedding or array; vocab_or_list: the
    words of the rows (a list, row = position, or a dict word -> row; None: rows are named by
    their index); words: one word (or row index), or a list of them.
    Returns [(word, similarity), ...] best first for one word, or a dict word -> that list.
    """
    e = _unit(_matrix(embedding_matrix))
    index, names = _lookup(vocab_or_list)
    single = isinstance(words, (str, int, np.integer))
    queries = [words] if single else list(words)
    rows = [_row(w, index, len(e)) for w in queries]
    k = min(k, len(e) - 1)
    sims = e[rows] @ e.T
    sims[np.arange(len(rows)), rows] = -np.inf
    out = {}
    for q, s in zip(queries, sims):
        best = np.argpartition(-s, k - 1)[:k] if k > 0 else np.array([], dtype=np.int64)
        best = best[np.argsort(-s[best], kind="stable")]
        out[q] = [(names[j] if names is not None else int(j), float(s[j])) for j in best]
    return out[words] if single else out


@dataclass
class EmbeddingMap:
    """The 2-D coordinates (N, 2) of ``words`` under ``method`` and the PNG written."""

    words: list
    coords: np.ndarray
    method: str
    path: Path


def embedding_map(embedding_matrix, words, path, method: str = "tsne", *, vocab=None,
                  perplexity: float | None = None, seed: int = 0,
                  title: str | None = None) -> EmbeddingMap:
    """A 2-D map of the embeddings of ``words``, as an annotated scatter plot written to ``path``.

    Args: embedding_matrix (|V|, m); words: the words to show (e.g. the few hundred most
    frequent), as strings looked up in ``vocab`` (a list or dict word -> row) or as row
    indices (labelled with ``vocab`` when given); method: "tsne" (scikit-learn's TSNE, PCA
    initialisation, ``perplexity`` default min(30, (N-1)/3)) or "pca".
    """
    if method not in ("tsne", "pca"):
        raise ValueError(f"embedding_map: method must be 'tsne' or 'pca', got {method!r}")
    e = _matrix(embedding_matrix)
    index, names = _lookup(vocab)
    words = list(words)
    if len(words) < 3:
        raise ValueError(f"embedding_map: need at least 3 words to map, got {len(words)}")
    rows = [_row(w, index, len(e)) for w in words]
    labels = [str(names[r]) if names is not None and isinstance(w, (int, np.integer)) else str(w)
              for w, r in zip(words, rows)]
    x = e[rows]
    if method == "pca":
        from sklearn.decomposition import PCA

        coords = PCA(n_components=2, random_state=seed).fit_transform(x)
    else:
        from sklearn.manifold import TSNE

        perp = perplexity if perplexity is not None else min(30.0, (len(rows) - 1) / 3)
        coords = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed,
                      ).fit_transform(x)
    path = _draw(coords, labels, path, title or f"{len(rows)} word embeddings ({method})")
    return EmbeddingMap(labels, coords, method, path)


def _draw(coords: np.ndarray, labels: list, path, title: str) -> Path:
    from ..plotting import new_figure, save_figure

    side = 6 if len(labels) <= 100 else 10
    fig, ax = new_figure(figsize=(side, side))
    ax.scatter(coords[:, 0], coords[:, 1], s=6, color="tab:blue", alpha=0.6)
    for (cx, cy), label in zip(coords, labels):
        ax.annotate(label, (cx, cy), fontsize=7, xytext=(2, 2), textcoords="offset points")
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, path, dpi=100, tight=True)
