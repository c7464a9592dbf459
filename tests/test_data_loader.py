"""flowgrad.utils.data against torch.utils.data: batches, lengths, collation, splits, samplers,
reproducibility, checkpoint/resume and the TensorDataset fast path."""

import collections
import json

import numpy as np
import pytest

import flowgrad as fg
from flowgrad.utils import data as D
from flowgrad.utils.data import (
    BatchSampler,
    ConcatDataset,
    CurriculumSampler,
    DataLoader,
    Generator,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    default_collate,
    random_split,
)


def _arrays(n=23, d=3):
    rng = np.random.default_rng(1)
    return rng.standard_normal((n, d)).astype(np.float32), np.arange(n, dtype=np.int64)


def _dataset(n=23, d=3):
    x, y = _arrays(n, d)
    return TensorDataset(fg.from_numpy(x), fg.from_numpy(y))


def _labels(loader):
    """One epoch as a list of label lists (labels are the sample indices)."""
    return [b[1].tolist() for b in loader]


def _slow(batch):  # a non-default collate_fn forces the per-sample path
    return default_collate(batch)


# --- DataLoader against PyTorch ------------------------------------------------------------------

@pytest.mark.parametrize("n,batch_size,drop_last", [(23, 5, False), (23, 5, True), (20, 5, False),
                                                    (20, 5, True), (3, 8, False), (3, 8, True),
                                                    (7, 1, False)])
def test_batches_match_torch(torch, n, batch_size, drop_last):
    x, y = _arrays(n)
    ours = DataLoader(TensorDataset(fg.from_numpy(x), fg.from_numpy(y)), batch_size=batch_size,
                      drop_last=drop_last)
    ref = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(ref)
    got, want = list(ours), list(ref)
    assert len(got) == len(want) == len(ours)
    for g, w in zip(got, want):
        assert type(g) is type(w) is list
        assert tuple(g[0].shape) == tuple(w[0].shape) and tuple(g[1].shape) == tuple(w[1].shape)
        assert g[0].dtype == fg.float32 and g[1].dtype == fg.int64
        np.testing.assert_array_equal(g[0].numpy(), w[0].numpy())
        np.testing.assert_array_equal(g[1].numpy(), w[1].numpy())


def test_map_dataset_of_tuples_and_batch_size_none_match_torch(torch):
    class Pairs(D.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.full(2, i, dtype=np.float32), i

    class TPairs(torch.utils.data.Dataset):
        __len__ = Pairs.__len__
        __getitem__ = Pairs.__getitem__

    for kw in ({"batch_size": 3}, {"batch_size": 3, "drop_last": True}, {"batch_size": None}):
        ours, ref = DataLoader(Pairs(), **kw), torch.utils.data.DataLoader(TPairs(), **kw)
        assert len(ours) == len(ref)
        for g, w in zip(ours, ref, strict=True):
            np.testing.assert_array_equal(g[0].numpy(), w[0].numpy())
            if kw["batch_size"] is None:
                assert g[1] == w[1]
            else:
                np.testing.assert_array_equal(g[1].numpy(), w[1].numpy())


def test_iterable_dataset_matches_torch(torch):
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(range(10))

        def __len__(self):
            return 10

    class TStream(torch.utils.data.IterableDataset):
        __iter__ = Stream.__iter__
        __len__ = Stream.__len__

    for drop_last in (False, True):
        ours = DataLoader(Stream(), batch_size=4, drop_last=drop_last)
        ref = torch.utils.data.DataLoader(TStream(), batch_size=4, drop_last=drop_last)
        assert len(ours) == len(ref)
        assert [b.tolist() for b in ours] == [b.tolist() for b in ref]
    with pytest.raises(ValueError, match="expected unspecified shuffle"):
        DataLoader(Stream(), shuffle=True)


def test_argument_errors_match_torch(torch):
    for kw in ({"shuffle": True, "sampler": [0, 1]}, {"batch_sampler": [[0]], "batch_size": 2},
               {"batch_size": None, "drop_last": True}, {"batch_size": 0}):
        with pytest.raises(ValueError) as theirs:
            torch.utils.data.DataLoader(range(3), **kw)
        with pytest.raises(ValueError) as ours:
            DataLoader(range(3), **kw)
        assert str(ours.value) == str(theirs.value)


def test_samplers_match_torch_where_deterministic(torch):
    tu = torch.utils.data
    assert list(SequentialSampler(range(5))) == list(tu.SequentialSampler(range(5)))
    for bs, dl in ((3, False), (3, True), (5, True), (6, False)):
        ours = BatchSampler(SequentialSampler(range(10)), bs, dl)
        ref = tu.BatchSampler(tu.SequentialSampler(range(10)), bs, dl)
        assert list(ours) == list(ref) and len(ours) == len(ref)
    assert len(RandomSampler(range(10), replacement=True, num_samples=25)) == 25
    assert len(list(RandomSampler(range(10), num_samples=25))) == 25
    perm = list(SubsetRandomSampler([3, 5, 7, 11]))
    assert sorted(perm) == [3, 5, 7, 11]
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(ValueError, match="batch_size should be a positive integer"):
        BatchSampler(range(3), 0, False)


def test_concat_and_subset_match_torch(torch):
    a, b = list(range(5)), list(range(10, 13))
    ours, ref = ConcatDataset([a, b]), torch.utils.data.ConcatDataset([a, b])
    assert len(ours) == len(ref) and ours.cumulative_sizes == ref.cumulative_sizes
    assert [ours[i] for i in range(-8, 8)] == [ref[i] for i in range(-8, 8)]
    sub = Subset(list(range(10)), [9, 2, 4])
    assert len(sub) == 3 and [sub[i] for i in range(3)] == [9, 2, 4]
    assert sub.__getitems__([0, 2]) == [9, 4]
    with pytest.raises(AssertionError, match="empty"):
        ConcatDataset([])


def test_tensor_dataset_size_mismatch_names_sizes():
    with pytest.raises(ValueError, match=r"\[3, 4\]") as e:
        TensorDataset(fg.zeros(3, 2), fg.zeros(4))
    assert isinstance(e.value, AssertionError)  # PyTorch raises AssertionError here
    ds = _dataset(5)
    x, y = ds[2]
    assert x.shape == (3,) and y.shape == () and int(y.item()) == 2
    assert len(ds) == 5


# --- collation -----------------------------------------------------------------------------------

def _same(ours, theirs):
    """Structural equality of a flowgrad collate result and PyTorch's."""
    import torch

    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, fg.Tensor), type(ours)
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    elif isinstance(theirs, dict):
        assert type(ours) is type(theirs) and ours.keys() == theirs.keys()
        for k in theirs:
            _same(ours[k], theirs[k])
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs)
        for o, t in zip(ours, theirs):
            _same(o, t)
    else:
        assert ours == theirs


Point = collections.namedtuple("Point", ["x", "y"])


def test_default_collate_nested_matches_torch(torch):
    from torch.utils.data import default_collate as torch_collate

    batch = [{"img": np.full((2, 2), i, dtype=np.float32), "label": i, "w": 0.5 * i,
              "flag": i % 2 == 0, "name": f"s{i}", "pair": (i, [i, 2 * i]),
              "pt": Point(np.float32(i), np.int64(i)), "f64": np.zeros(3)} for i in range(4)]
    _same(default_collate(batch), torch_collate(batch))
    tensors = [fg.tensor([1.0, 2.0]) * k for k in range(3)]
    out = default_collate(tensors)
    assert out.shape == (3, 2) and out.dtype == fg.float32
    assert default_collate([(fg.tensor(1), 2.0)])[1].dtype == fg.float64  # floats -> float64
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([np.zeros(2), np.zeros(3)])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([object(), object()])


def test_collate_keeps_graph_of_tensors_requiring_grad():
    w = fg.ones(2, requires_grad=True)
    out = default_collate([w * 2, w * 3])
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [5.0, 5.0])


# --- random_split --------------------------------------------------------------------------------

@pytest.mark.parametrize("n,lengths", [(10, [0.33, 0.33, 0.34]), (11, [0.5, 0.5]),
                                       (100, [0.8, 0.1, 0.1]), (7, [0.3, 0.7]), (10, [3, 7]),
                                       (5, [0.2, 0.2, 0.2, 0.2, 0.2])])
def test_random_split_lengths_match_torch(torch, n, lengths):
    ours = random_split(range(n), lengths, generator=Generator().manual_seed(0))
    ref = torch.utils.data.random_split(range(n), lengths,
                                        generator=torch.Generator().manual_seed(0))
    assert [len(s) for s in ours] == [len(s) for s in ref]
    seen = sorted(i for s in ours for i in (s[k] for k in range(len(s))))
    assert seen == list(range(n))  # disjoint and covering


def test_random_split_errors_and_reproducibility():
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(range(10), [1.5, -0.5])
    with pytest.warns(UserWarning, match=r"Length of split at index \d is 0"):
        random_split(range(2), [0.9, 0.05, 0.05])
    a = random_split(range(50), [0.5, 0.5], generator=7)
    b = random_split(range(50), [0.5, 0.5], generator=Generator().manual_seed(7))
    assert a[0].indices == b[0].indices
    fg.manual_seed(3)
    c = random_split(range(50), [0.5, 0.5])
    fg.manual_seed(3)
    d = random_split(range(50), [0.5, 0.5])
    assert c[0].indices == d[0].indices


# --- shuffling: reproducible, fresh each epoch ---------------------------------------------------

def test_shuffle_reproducible_under_manual_seed_and_different_across_epochs():
    ds = _dataset(40)

    def run():
        loader = DataLoader(ds, batch_size=8, shuffle=True)
        return [_labels(loader) for _ in range(3)]

    fg.manual_seed(123)
    first = run()
    fg.manual_seed(123)
    assert run() == first
    fg.manual_seed(124)
    assert run() != first
    epochs = [sum(e, []) for e in first]
    assert all(sorted(e) == list(range(40)) for e in epochs)
    assert epochs[0] != epochs[1] != epochs[2]


@pytest.mark.parametrize("make", [lambda: Generator().manual_seed(5), lambda: 5,
                                  lambda: np.random.default_rng(5)])
def test_explicit_generator_is_independent_of_global_stream(make):
    ds = _dataset(30)
    fg.manual_seed(0)
    a = [_labels(DataLoader(ds, batch_size=7, shuffle=True, generator=make()))
         for _ in range(2)]
    fg.manual_seed(99)
    fg.rand(10)
    b = [_labels(DataLoader(ds, batch_size=7, shuffle=True, generator=make()))
         for _ in range(2)]
    assert a == b


def test_generator_api():
    g = Generator().manual_seed(42)
    assert g.initial_seed() == 42
    state = g.get_state()
    x = g.numpy.random(3)
    g.set_state(state)
    np.testing.assert_array_equal(g.numpy.random(3), x)
    assert Generator().numpy.random() == Generator().numpy.random()  # fixed default seed
    json.dumps(state)
    with pytest.raises(TypeError):
        Generator().manual_seed(1.5)
    fg.manual_seed(11)
    s = D.get_rng_state()
    r1 = fg.rand(4).numpy()
    D.set_rng_state(s)
    np.testing.assert_array_equal(fg.rand(4).numpy(), r1)


# --- checkpoint / resume mid-epoch ---------------------------------------------------------------

def _resume_case(make_loader, use_global, fast=True):
    """Run 3 epochs straight; then run 1.5 epochs, checkpoint, scramble everything, restore into
    new objects and finish: the rest must be bit-identical."""
    fg.manual_seed(2024)
    loader = make_loader()
    straight = [_labels(loader) for _ in range(3)]

    fg.manual_seed(2024)
    loader = make_loader()
    got = [_labels(loader)]
    it = iter(loader)
    half = [next(it)[1].tolist() for _ in range(len(straight[1]) // 2)]
    state = json.loads(json.dumps(loader.state_dict()))  # must survive JSON (checkpoints)
    rng = json.loads(json.dumps(D.get_rng_state()))
    fg.manual_seed(7)  # scramble the global stream and make new objects
    fg.rand(100)
    loader = make_loader()
    _labels(loader)  # even a consumed epoch must not matter after load_state_dict
    loader.load_state_dict(state)
    if use_global:
        D.set_rng_state(rng)
    got.append(half + _labels(loader))
    got.append(_labels(loader))
    assert got == straight


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("kind", ["global", "generator", "weighted", "subset", "curriculum",
                                  "sequential", "random_split"])
def test_loader_state_dict_resumes_epoch_exactly(kind, fast):
    ds = _dataset(50)
    extra = {} if fast else {"collate_fn": _slow}

    def make():
        if kind == "global":
            return DataLoader(ds, batch_size=6, shuffle=True, **extra)
        if kind == "generator":
            return DataLoader(ds, batch_size=6, shuffle=True, generator=Generator().manual_seed(3),
                              **extra)
        if kind == "weighted":
            return DataLoader(ds, batch_size=6, sampler=WeightedRandomSampler(
                np.linspace(1, 2, 50), 40, generator=9), **extra)
        if kind == "subset":
            return DataLoader(ds, batch_size=6, sampler=SubsetRandomSampler(range(0, 50, 2)),
                              **extra)
        if kind == "curriculum":
            return DataLoader(ds, batch_size=6, sampler=CurriculumSampler(
                np.arange(50)[::-1], schedule=[0.4, 0.7, 1.0]), **extra)
        if kind == "sequential":
            return DataLoader(ds, batch_size=6, **extra)
        train, _ = random_split(ds, [0.8, 0.2], generator=1)
        return DataLoader(train, batch_size=6, shuffle=True, drop_last=True, **extra)

    _resume_case(make, use_global=kind != "generator", fast=fast)


def test_sampler_state_dict_resumes_rest_of_epoch():
    s = RandomSampler(range(20), generator=Generator().manual_seed(1))
    full = list(s) + list(s)
    s = RandomSampler(range(20), generator=Generator().manual_seed(1))
    it = iter(s)
    head = [next(it) for _ in range(7)]
    state = s.state_dict()
    s2 = RandomSampler(range(20), generator=Generator().manual_seed(555))
    s2.load_state_dict(state)
    assert head + list(s2) + list(s2) == full


def test_loader_without_sampler_state_replays_batches():
    class Plain:  # a sampler with no state_dict: resume skips the batches already seen
        def __iter__(self):
            return iter([4, 3, 2, 1, 0, 9, 8, 7, 6, 5])

        def __len__(self):
            return 10

    ds = _dataset(10)
    loader = DataLoader(ds, batch_size=3, sampler=Plain())
    full = _labels(loader)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert state == {"batches_yielded": 1, "sampler": None}
    other = DataLoader(ds, batch_size=3, sampler=Plain())
    other.load_state_dict(state)
    assert _labels(other) == full[1:]
    assert _labels(other) == full


# --- weighted and curriculum sampling ------------------------------------------------------------

def test_weighted_sampler_frequencies():
    w = np.array([1.0, 2.0, 3.0, 4.0, 0.0])
    s = WeightedRandomSampler(w, 200_000, generator=0)
    counts = np.bincount(list(s), minlength=5) / 200_000
    np.testing.assert_allclose(counts, w / w.sum(), atol=0.005)
    assert counts[4] == 0
    draws = list(WeightedRandomSampler(fg.tensor([0.1, 0.9, 0.4, 0.7, 3.0, 0.6]), 5,
                                       replacement=False))
    assert len(set(draws)) == 5
    with pytest.raises(ValueError, match="weights should be a 1d sequence"):
        WeightedRandomSampler([[1.0]], 1)
    with pytest.raises(ValueError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
    with pytest.raises(ValueError, match="non-negative"):
        WeightedRandomSampler([1.0, -1.0], 2)


def test_curriculum_pool_grows_from_easiest():
    rng = np.random.default_rng(0)
    scores = rng.random(100)
    easy_order = np.argsort(scores, kind="stable")
    s = CurriculumSampler(scores, schedule=D.linear_schedule(start=0.2, epochs=4), generator=3)
    loader = DataLoader(_dataset(100), batch_size=10, sampler=s)
    sizes = []
    for epoch in range(6):
        assert len(s) == s.pool_size(epoch)
        assert len(loader) == -(-s.pool_size(epoch) // 10)
        seen = sum(_labels(loader), [])
        sizes.append(len(seen))
        assert sorted(seen) == sorted(easy_order[:len(seen)].tolist())  # the easiest ones
    assert sizes == [20, 40, 60, 80, 100, 100]
    assert all(a <= b for a, b in zip(sizes, sizes[1:]))
    ordered = CurriculumSampler([3.0, 1.0, 2.0, 0.5], schedule=lambda e: 3, shuffle=False)
    assert list(ordered) == [3, 1, 2]
    ordered.set_epoch(0)
    assert list(ordered) == [3, 1, 2]
    with pytest.raises(ValueError, match="fraction must be in"):
        CurriculumSampler([1.0, 2.0], schedule=[1.5]).pool_size(0)


# --- the TensorDataset fast path -----------------------------------------------------------------

@pytest.mark.parametrize("shuffle,drop_last,batch_size", [(True, False, 7), (True, True, 7),
                                                          (False, False, 4), (False, True, 50)])
def test_fast_path_equals_slow_path(shuffle, drop_last, batch_size):
    ds = _dataset(45)
    fg.manual_seed(5)
    fast = list(DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last))
    fg.manual_seed(5)
    slow = list(DataLoader(ds, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                           collate_fn=_slow))
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow):
        assert type(f) is type(s) is list
        for a, b in zip(f, s):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fast_path_gathers_whole_batches(monkeypatch):
    ds = _dataset(40)
    calls = []
    monkeypatch.setattr(TensorDataset, "__getitem__", lambda self, i: calls.append(i))
    train, _ = random_split(ds, [30, 10], generator=0)  # Subsets of a TensorDataset too
    for loader in (DataLoader(ds, batch_size=8, shuffle=True),
                   DataLoader(train, batch_size=8, shuffle=True),
                   DataLoader(ds, batch_sampler=[[3, 1], [0, 2, 39]])):
        n = sum(len(b[1]) for b in loader)
        assert n == len(loader.dataset) or n == 5
    assert calls == []  # no per-sample indexing at all
    out = list(DataLoader(train, batch_size=30))[0][1].tolist()
    assert out == list(train.indices)
    batch = ds._take(np.array([5, 1]))
    assert batch[0]._data.flags.writeable and not np.shares_memory(batch[0]._data,
                                                                  ds.tensors[0]._data)


class _Squares(D.Dataset):
    """Per-sample Python work, where workers help; records which process fetched what."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        import os

        info = D.get_worker_info()
        return {"x": np.float32(i * i), "worker": -1 if info is None else info.id,
                "pid": os.getpid(), "draw": float(fg.rand(1).item())}


def test_workers_load_in_other_processes_in_sampler_order():
    import os

    gen = Generator().manual_seed(3)
    with_workers = DataLoader(_Squares(), batch_size=3, shuffle=True, num_workers=2,
                              generator=gen)
    batches = list(with_workers)
    plain = list(DataLoader(_Squares(), batch_size=3, shuffle=True,
                            generator=Generator().manual_seed(3)))
    assert [b["x"].tolist() for b in batches] != [] and len(batches) == 4
    # same sampler stream: same batches in the same order, fetched by workers 0, 1, 0, 1
    assert sorted(sum((b["x"].tolist() for b in batches), [])) == [i * i for i in range(10)]
    assert [b["worker"].tolist()[0] for b in batches] == [0, 1, 0, 1]
    assert all(p != os.getpid() for b in batches for p in b["pid"].tolist())
    assert D.get_worker_info() is None
    # the same order as without workers: the sampler draws its epoch seed before the workers'
    # base seed is drawn
    assert [b["x"].tolist() for b in batches] == [b["x"].tolist() for b in plain]


def test_workers_are_seeded_per_worker_and_per_epoch():
    loader = DataLoader(_Squares(), batch_size=5, num_workers=2,
                        generator=Generator().manual_seed(0))
    first = [b["draw"].tolist() for b in loader]
    second = [b["draw"].tolist() for b in loader]
    assert first[0] != first[1]  # worker 0 and worker 1 draw different streams
    assert first != second       # a new base seed each epoch
    again = DataLoader(_Squares(), batch_size=5, num_workers=2,
                       generator=Generator().manual_seed(0))
    assert [b["draw"].tolist() for b in again] == first  # reproducible from the generator


def _init_fn(worker_id):
    fg.manual_seed(100 + worker_id)


def test_worker_init_fn_runs_in_each_worker():
    loader = DataLoader(_Squares(), batch_size=5, num_workers=2, worker_init_fn=_init_fn)
    draws = [b["draw"].tolist()[0] for b in loader]
    for k, d in enumerate(draws):
        fg.manual_seed(100 + k)
        assert d == float(fg.rand(1).item())


class _Failing(D.Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise KeyError(f"no sample {i}")
        return np.float32(i)


def test_worker_error_names_the_worker_and_carries_the_traceback():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \d raised(.|\n)*KeyError: 'no "
                                           r"sample 4'"):
        list(DataLoader(_Failing(), batch_size=2, num_workers=2))


class _Shards(IterableDataset):
    """Each worker yields its share, as PyTorch's documentation shows with get_worker_info."""

    def __iter__(self):
        info = D.get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, 11, step))


def test_iterable_dataset_shards_across_workers_in_turn():
    batches = [b.tolist() for b in DataLoader(_Shards(), batch_size=2, num_workers=2)]
    # worker 0 has 0 2 4 6 8 10, worker 1 has 1 3 5 7 9: batches alternate, then the rest
    assert batches == [[0, 2], [1, 3], [4, 6], [5, 7], [8, 10], [9]]
    assert [b.tolist() for b in DataLoader(_Shards(), batch_size=2, num_workers=2,
                                           drop_last=True)] == [[0, 2], [1, 3], [4, 6],
                                                                [5, 7], [8, 10]]


def test_resume_mid_epoch_with_workers_is_exact():
    def make():
        return DataLoader(_Squares(), batch_size=2, shuffle=True, num_workers=2,
                          generator=Generator().manual_seed(5))

    straight = [b["x"].tolist() for b in make()]
    loader = make()
    it = iter(loader)
    seen = [next(it)["x"].tolist() for _ in range(2)]
    state = json.loads(json.dumps(loader.state_dict()))
    del it
    resumed = make()
    resumed.load_state_dict(state)
    assert seen + [b["x"].tolist() for b in resumed] == straight


def test_worker_options_are_checked_like_torch():
    with pytest.raises(ValueError, match="num_workers > 0"):
        DataLoader(_Squares(), num_workers=0, prefetch_factor=2)
    with pytest.raises(ValueError, match="non-negative"):
        DataLoader(_Squares(), num_workers=-1)
    # a TensorDataset keeps its one-gather fast path in the main process
    assert _labels(DataLoader(_dataset(5), batch_size=2, num_workers=2)) == [[0, 1], [2, 3],
                                                                            [4]]


def test_spawn_context_works_too():
    loader = DataLoader(_Squares(), batch_size=4, num_workers=1,
                        multiprocessing_context="spawn")
    assert [b["x"].tolist() for b in loader] == [[0, 1, 4, 9], [16, 25, 36, 49], [64, 81]]


class _Dying(D.Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        import os

        os._exit(3)


def test_a_dead_worker_is_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="exited unexpectedly with exit code 3"):
        list(DataLoader(_Dying(), batch_size=2, num_workers=1))


class _Big(D.Dataset):
    """80 kB samples: a few prefetched batches fill the result pipe, which is what made
    workers hang on exit (their queue's feeder thread waited on a reader that had left)."""

    def __len__(self):
        return 4000

    def __getitem__(self, i):
        return np.full(20000, i, dtype=np.float32)


class _BigStream(IterableDataset):
    def __iter__(self):
        for i in range(4000):
            yield np.full(20000, i, dtype=np.float32)


@pytest.mark.parametrize("dataset", [_Big, _BigStream])
def test_leaving_a_multi_worker_loop_early_is_fast_and_leaves_no_worker(dataset):
    import multiprocessing
    import time

    before = set(multiprocessing.active_children())
    it = iter(DataLoader(dataset(), batch_size=64, num_workers=2))
    assert next(it).shape == (64, 20000)
    workers = [p for p in multiprocessing.active_children() if p not in before]
    assert len(workers) == 2
    time.sleep(0.3)  # let the workers fill the queues
    start = time.perf_counter()
    it.close()  # what `break` does to the loop's iterator (PyTorch: about 0.05 s)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.5, f"closing took {elapsed:.2f} s"  # was about 5 s per worker
    assert not any(p.is_alive() for p in workers)
    assert all(p.exitcode is not None for p in workers)
