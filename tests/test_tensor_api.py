"""Tensor creation, attributes, conversions and dtype rules, compared with PyTorch."""

import numpy as np
import pytest

import flowgrad as fg


def test_creation_dtypes_match_torch(torch):
    cases = [
        (lambda m: m.tensor([1.0, 2.0])), (lambda m: m.tensor([1, 2])),
        (lambda m: m.tensor([True, False])), (lambda m: m.tensor(3.5)),
        (lambda m: m.zeros(2, 3)), (lambda m: m.ones((2, 3), dtype=m.float64)),
        (lambda m: m.full((2,), 7)), (lambda m: m.full((2,), 7.0)), (lambda m: m.eye(3)),
        (lambda m: m.eye(2, 3)), (lambda m: m.arange(5)), (lambda m: m.arange(0, 1, 0.25)),
        (lambda m: m.arange(1, 10, 3)), (lambda m: m.linspace(0, 1, 5)),
        (lambda m: m.zeros_like(m.ones(2, dtype=m.int32))),
        (lambda m: m.ones_like(m.ones(2, 2))), (lambda m: m.full_like(m.ones(3), 2.5)),
        (lambda m: m.empty(2, 2).shape), (lambda m: m.tensor(np.arange(3, dtype=np.float64))),
        (lambda m: m.from_numpy(np.arange(3, dtype=np.int32))),
        (lambda m: m.as_tensor([1.5, 2])),
    ]
    for make in cases:
        a, b = make(fg), make(torch)
        if isinstance(a, tuple):
            assert tuple(a) == tuple(b)
            continue
        assert str(a.dtype) == str(b.dtype).replace("torch.", ""), (a, b)
        assert tuple(a.shape) == tuple(b.shape)
        if a.dtype != fg.bool and "empty" not in str(make):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


def test_random_factories_shapes_ranges_and_seed():
    fg.manual_seed(123)
    a = fg.randn(3, 4)
    b = fg.rand(2, 2, dtype=fg.float64)
    c = fg.randint(0, 5, (100,))
    d = fg.randperm(10)
    fg.manual_seed(123)
    assert np.array_equal(a.numpy(), fg.randn(3, 4).numpy())
    assert a.dtype == fg.float32 and b.dtype == fg.float64 and c.dtype == fg.int64
    assert (b.numpy() >= 0).all() and (b.numpy() < 1).all()
    assert c.numpy().min() >= 0 and c.numpy().max() < 5
    assert sorted(d.tolist()) == list(range(10))
    assert fg.randn_like(a).shape == a.shape and fg.rand_like(b).dtype == fg.float64


def test_attributes_and_conversions():
    x = fg.arange(6).reshape(2, 3).float()
    assert x.shape == (2, 3) and x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3
    assert x.dim() == 2 and x.ndim == 2 and x.numel() == 6 and x.dtype == fg.float32
    assert x.device == "cpu" and x[1, 2].item() == 5.0 and x.tolist() == [[0, 1, 2], [3, 4, 5]]
    assert x.double().dtype == fg.float64 and x.long().dtype == fg.int64
    assert x.bool().dtype == fg.bool and x.int().dtype == fg.int32
    assert x.to(fg.float64).dtype == fg.float64 and x.to("cpu") is x
    assert x.to(dtype=fg.float64, device="cpu").dtype == fg.float64
    y = x.clone()
    y.add_(1)
    assert x[0, 0].item() == 0.0
    assert x.T.contiguous().is_contiguous()
    w = fg.ones(2, requires_grad=True)
    assert w.detach().requires_grad is False and w.is_leaf
    assert (w * 2).is_leaf is False
    with pytest.raises(fg.GraphError, match="detach"):
        w.numpy()
    assert isinstance(x.numpy(), np.ndarray)
    assert "tensor(" in repr(w) and "requires_grad=True" in repr(w)
    assert "grad_fn" in repr(w * 2)
    assert float(fg.tensor(2.5)) == 2.5 and int(fg.tensor(3)) == 3 and len(x) == 2


def test_dtype_promotion_matches_torch(torch):
    pairs = [
        (lambda m: m.ones(2) + m.ones(2, dtype=m.float64)),
        (lambda m: m.ones(2) * m.tensor(2.0, dtype=m.float64)),
        (lambda m: m.ones(2, dtype=m.int64) + m.ones(2)),
        (lambda m: m.ones(2, dtype=m.int64) * 2.5),
        (lambda m: m.ones(2, dtype=m.int64) / 2),
        (lambda m: m.ones(2, dtype=m.int64) // 2),
        (lambda m: m.ones(2, dtype=m.int32) + 1),
        (lambda m: m.ones(2) * 3),
        (lambda m: m.tensor([True, False]) + 1),
        (lambda m: m.ones(2, dtype=m.float64) * np.float64(2.0)),
        (lambda m: m.ones(2) ** 2),
        (lambda m: (m.ones(2) > 0).sum()),
        (lambda m: m.tensor([1, 2]).sum()),
    ]
    for f in pairs:
        a, b = f(fg), f(torch)
        assert str(a.dtype) == str(b.dtype).replace("torch.", ""), (f, a.dtype, b.dtype)
        np.testing.assert_allclose(a.numpy(), b.numpy())


def test_float32_stays_float32_through_maths():
    x = fg.randn(3, 4, requires_grad=True)
    y = (x * np.float64(0.5) + 1 / np.sqrt(4.0)).tanh().softmax(-1).log().mean()
    assert y.dtype == fg.float32
    y.backward()
    assert x.grad.dtype == fg.float32


def test_max_min_with_dim_return_values_and_indices(torch):
    data = np.random.default_rng(0).standard_normal((3, 5))
    v, i = fg.tensor(data).max(dim=1)
    tv, ti = torch.tensor(data).max(dim=1)
    np.testing.assert_allclose(v.numpy(), tv.numpy())
    assert i.tolist() == ti.tolist()
    values, indices = fg.tensor(data).min(0, keepdim=True)
    assert values.shape == (1, 5) and indices.shape == (1, 5)


def test_module_level_functions():
    x = fg.tensor([[1.0, -2.0], [3.0, 4.0]])
    assert fg.sum(x).item() == 6.0 and fg.exp(fg.zeros(1)).item() == 1.0
    assert fg.max(x).item() == 4.0 and fg.abs(x).min().item() == 1.0
    assert fg.where(x > 0, x, fg.zeros_like(x)).sum().item() == 8.0
    assert fg.clamp(x, min=0).sum().item() == 8.0
    assert fg.is_tensor(x) and fg.numel(x) == 4
    a, b = fg.broadcast_tensors(fg.ones(3, 1), fg.ones(4))
    assert a.shape == b.shape == (3, 4)


def test_split_chunk_like_torch(torch):
    for f in [lambda m, x: [t.shape for t in x.split(2, dim=1)],
              lambda m, x: [t.shape for t in x.chunk(3, dim=1)],
              lambda m, x: [t.shape for t in x.chunk(2)]]:
        a = f(fg, fg.ones(3, 7))
        b = f(torch, torch.ones(3, 7))
        assert [tuple(s) for s in a] == [tuple(s) for s in b]


@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # torch's
def test_array_protocol_copies_shares_and_refuses_like_torch(torch):
    """NumPy 2's ``__array__(dtype, copy)``: np.array copies, np.asarray shares, a tensor that
    requires grad refuses (as torch does: RuntimeError)."""
    data = np.arange(3.0, dtype=np.float32)
    for lib in (fg, torch):
        t = lib.tensor(data)
        a = np.array(t)
        a[0] = 100.0
        assert t.tolist() == [0.0, 1.0, 2.0]  # np.array copies
        b = np.asarray(t)
        b[1] = 50.0
        assert t.tolist() == [0.0, 50.0, 2.0]  # np.asarray shares memory (CPU)
        assert np.asarray(t, dtype=np.float64).dtype == np.float64
        assert not np.shares_memory(np.array(t, copy=True), b)
        g = lib.tensor(data, requires_grad=True)
        for conv in (np.array, np.asarray, lambda x: np.array(x, dtype=np.float64),
                     lambda x: np.asarray(x, dtype=np.float64), lambda x: np.add(x, 1)):
            with pytest.raises(RuntimeError, match="requires grad"):
                conv(g)
        assert np.array(g.detach()).tolist() == [0.0, 1.0, 2.0]
    t = fg.tensor(data)
    c = np.array(t, copy=False)  # flowgrad honours copy=False (torch's lacks the keyword)
    assert np.shares_memory(c, t._data)
    with pytest.raises(ValueError, match="copy"):
        np.array(t, dtype=np.float64, copy=False)


def test_removed_hook_handle_cannot_remove_a_later_hook():
    x = fg.ones(3, requires_grad=True)
    calls = []
    ha = x.register_hook(lambda g: calls.append("A"))
    hb = x.register_hook(lambda g: calls.append("B"))
    ha.remove()
    hc = x.register_hook(lambda g: calls.append("C"))
    ha.remove()  # stale: must not touch C
    hb.remove()
    hb.remove()
    hd = x.register_hook(lambda g: calls.append("D"))
    hb.remove()  # B was the newest when removed: its id must not be reused by D
    (x * 2).sum().backward()
    assert calls == ["C", "D"]
    assert len({ha.id, hb.id, hc.id, hd.id}) == 4 and ha.id < hb.id < hc.id < hd.id
    hc.remove(), hd.remove()
    calls.clear()
    y = fg.ones(2, requires_grad=True)
    h = y.register_hook(lambda g: calls.append("only"))
    h.remove()
    h2 = y.register_hook(lambda g: calls.append("again"))
    h.remove()  # with every hook gone, the next id must still be new
    (y * 1).sum().backward()
    assert calls == ["again"] and h2.id != h.id


@pytest.mark.parametrize("values,dtype", [
    ([1.0, float("nan"), 2.0, 2.0, 1.0], "float32"),
    ([0, 1, 2, 2, 0, 255], "uint8"),
    ([True, False, True, False], "bool"),
    ([3, -1, 3, 0, -1], "int64"),
])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_matches_torch_stable_sort_on_every_dtype(values, dtype, descending):
    """Descending sorts keep ties in order and put NaN first, on unsigned and bool too."""
    import torch

    a = np.array(values, dtype=dtype)
    got = fg.tensor(a).sort(descending=descending)
    want = torch.tensor(a).sort(descending=descending, stable=True)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    np.testing.assert_array_equal(got.values.numpy(), want.values.numpy())


def test_topk_largest_puts_nan_first_and_refuses_bool():
    import torch

    x = [1.0, float("nan"), 2.0, 0.5]
    got, want = fg.tensor(x).topk(2), torch.tensor(x).topk(2)
    np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    with pytest.raises(RuntimeError, match="bool"):
        fg.tensor([True, False]).topk(1)


def test_type_names_and_legacy_conversions(torch):
    """t.type() gives the legacy type's name (PyTorch's, under this library's prefix); a name,
    a legacy type or a dtype converts, as in PyTorch."""
    for dtype in ("float32", "float64", "float16", "int64", "int32", "int16", "int8", "uint8",
                  "bool"):
        ours = fg.zeros(2, dtype=getattr(fg, dtype)).type()
        theirs = torch.zeros(2, dtype=getattr(torch, dtype)).type()
        assert ours == theirs.replace("torch.", "flowgrad."), (ours, theirs)
    t = fg.ones(2)
    assert t.type("flowgrad.DoubleTensor").dtype == fg.float64
    assert t.type("torch.LongTensor").dtype == fg.int64  # a script's own names still read
    assert t.type(fg.IntTensor).type() == "flowgrad.IntTensor"
    assert t.type(fg.float16).dtype == fg.float16
    with pytest.raises(ValueError, match="invalid type 'torch.FooTensor'"):
        t.type("torch.FooTensor")
