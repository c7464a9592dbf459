"""Word-embedding analysis (flowgrad.debug.embeddings): cosine nearest neighbours on a matrix
with known answers, and the 2-D map written as a PNG by t-SNE and by PCA."""

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import debug, nn

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")
threadpoolctl = pytest.importorskip("threadpoolctl")


@pytest.fixture
def one_thread():
    """t-SNE's OpenMP threads spin against each other on a busy 2-core machine (0.2 s with one
    thread, up to 20 s with two under load)."""
    with threadpoolctl.threadpool_limits(1):
        yield

WORDS = ["cat", "dog", "car", "truck", "apple", "pear"]
# two near-parallel vectors per topic; scale must not matter for cosine similarity
MATRIX = np.array([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 5.0, 0.0], [0.0, 9.5, 0.5],
                   [0.0, 0.0, 1.0], [0.3, 0.0, 1.0]])


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_nearest_neighbors_known_answers():
    got = debug.nearest_neighbors(MATRIX, WORDS, "cat", k=2)
    assert [w for w, _ in got] == ["dog", "pear"]
    assert got[0][1] == pytest.approx(_cos(MATRIX[0], MATRIX[1]))
    assert got[1][1] == pytest.approx(_cos(MATRIX[0], MATRIX[5]))
    many = debug.nearest_neighbors(fg.tensor(MATRIX), WORDS, ["truck", "apple"], k=1)
    assert many == {"truck": [("car", pytest.approx(_cos(MATRIX[3], MATRIX[2])))],
                    "apple": [("pear", pytest.approx(_cos(MATRIX[4], MATRIX[5])))]}


def test_the_word_itself_is_excluded_and_k_is_capped():
    dup = np.vstack([MATRIX, MATRIX[0]])  # an exact copy of "cat" as a 7th word
    got = debug.nearest_neighbors(dup, WORDS + ["kitty"], "cat", k=100)
    assert len(got) == 6 and [w for w, _ in got][0] == "kitty"
    assert "cat" not in [w for w, _ in got] and got[0][1] == pytest.approx(1.0)
    sims = [s for _, s in got]
    assert sims == sorted(sims, reverse=True)


def test_vocab_forms_embedding_module_and_errors():
    emb = nn.Embedding(6, 3)
    with fg.no_grad():
        emb.weight.copy_(fg.tensor(MATRIX, dtype=fg.float32))
    by_dict = debug.nearest_neighbors(emb, {w: i for i, w in enumerate(WORDS)}, "car", k=1)
    assert by_dict[0][0] == "truck"
    by_index = debug.nearest_neighbors(MATRIX, None, 4, k=1)
    assert by_index[0][0] == 5
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        debug.nearest_neighbors(MATRIX, WORDS, "zebra")


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_embedding_map_writes_a_png(tmp_path, method, one_thread):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((3, 8)) * 5
    matrix = np.repeat(centers, 10, axis=0) + rng.standard_normal((30, 8)) * 0.1
    vocab = [f"w{i}" for i in range(30)]
    out = debug.embedding_map(fg.tensor(matrix), vocab[:24], tmp_path / "maps" / "m.png",
                              method=method, vocab=vocab)
    assert out.path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.coords.shape == (24, 2) and out.words[0] == "w0" and out.method == method
    # the three clusters stay apart on the map: each point's nearest point is in its cluster
    d = np.linalg.norm(out.coords[:, None] - out.coords[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    cluster = np.arange(24) // 10
    assert (cluster[d.argmin(1)] == cluster).all()
    by_id = debug.embedding_map(matrix, [0, 1, 12, 25], tmp_path / "ids.png", method=method,
                                vocab=vocab, perplexity=1.0)
    assert by_id.words == ["w0", "w1", "w12", "w25"]


def test_embedding_map_refuses_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="'tsne' or 'pca'"):
        debug.embedding_map(MATRIX, WORDS, tmp_path / "x.png", method="umap", vocab=WORDS)
    with pytest.raises(ValueError, match="at least 3"):
        debug.embedding_map(MATRIX, WORDS[:2], tmp_path / "x.png", vocab=WORDS)
