"""PyTorch's calling forms (constructors, factories, Size, format, devices) run in flowgrad and in
torch (a CPU build, the oracle) side by side: shapes, dtypes, values, reprs and raised types."""

import pickle

import numpy as np
import pytest

import flowgrad as fg

torch = pytest.importorskip("torch")


def both(make):
    """make(module) for flowgrad and torch: (result, None) or (None, exception type)."""
    out = []
    for m in (fg, torch):
        try:
            out.append((make(m), None))
        except Exception as e:  # the type is what is compared
            out.append((None, e))
    return out


def same_tensor(f, t):
    assert tuple(f.shape) == tuple(t.shape)
    assert str(f.dtype) == str(t.dtype).replace("torch.", "")
    np.testing.assert_array_equal(np.asarray(f.detach()), t.detach().numpy())


def check(make, values=True):
    (f, fe), (t, te) = both(make)
    if te is not None:
        assert fe is not None, f"torch raised {te!r}, flowgrad returned {f!r}"
        assert isinstance(fe, type(te)), f"flowgrad raised {fe!r}, torch {te!r}"
        return None, None
    assert fe is None, f"flowgrad raised {fe!r}, torch returned {t!r}"
    if isinstance(t, torch.Tensor):
        if values:
            same_tensor(f, t)
        else:
            assert tuple(f.shape) == tuple(t.shape)
            assert str(f.dtype) == str(t.dtype).replace("torch.", "")
    else:
        assert f == t
    return f, t


LEGACY = [
    lambda m: m.Tensor(16, 8).shape,
    lambda m: m.Tensor([1, 2]),
    lambda m: m.Tensor(np.array([1, 2])),
    lambda m: m.Tensor(np.array([1.0, 2.0])),
    lambda m: m.Tensor(),
    lambda m: m.Tensor(size=(2, 3)).shape,
    lambda m: m.Tensor((2, 3)),
    lambda m: m.Tensor(m.Size([2, 3])).shape,
    lambda m: m.Tensor(m.tensor([1, 2])),
    lambda m: m.Tensor(np.int64(3)).shape,
    lambda m: m.Tensor(0),
    lambda m: m.Tensor(np.array(3.0)),
    lambda m: m.Tensor([[1, 2], [3, 4]]),
    lambda m: m.Tensor(range(3)),
    lambda m: m.Tensor(2.5),
    lambda m: m.Tensor(True),
    lambda m: m.Tensor("ab"),
    lambda m: m.Tensor(-1),
    lambda m: m.Tensor([1.0], requires_grad=True),
    lambda m: m.Tensor([1.0], dtype=m.float64),
    lambda m: m.Tensor(2, size=(3,)),
    lambda m: m.Tensor(2, device="cpu").shape,
    lambda m: m.FloatTensor(2, 3).shape,
    lambda m: m.FloatTensor([1, 2]),
    lambda m: m.FloatTensor(np.array([1.0, 2.0])),
    lambda m: m.FloatTensor(),
    lambda m: m.DoubleTensor([1]),
    lambda m: m.LongTensor([1.7, 2]),
    lambda m: m.LongTensor(3).dtype,
    lambda m: m.IntTensor([1]),
    lambda m: m.BoolTensor([1, 0]),
    lambda m: m.ByteTensor([1, 0]),
    lambda m: m.FloatTensor(m.tensor([1, 2])),
    lambda m: m.LongTensor(m.tensor([1.0])),
]


@pytest.mark.parametrize("make", LEGACY)
def test_legacy_constructors(make):
    (f, fe), (t, te) = both(make)
    if isinstance(t, torch.Size) or isinstance(f, fg.Size):
        assert tuple(f) == tuple(t)
        assert repr(f) == repr(t).replace("torch", "flowgrad")
    elif isinstance(t, torch.dtype):
        assert str(f) == str(t).replace("torch.", "")
    else:
        check(make)


def test_legacy_tensor_is_zeroed_float_and_makes_a_parameter():
    w = fg.nn.Parameter(fg.Tensor(4, 3))
    assert w.shape == (4, 3) and w.dtype == fg.float32 and w.requires_grad
    assert not fg.Tensor(2).requires_grad and np.all(fg.Tensor(2, 2).numpy() == 0)
    a = fg.zeros(2)
    assert np.shares_memory(fg.Tensor(a)._data, a._data)


def test_legacy_types_isinstance_and_repr():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor",
                 "ByteTensor"):
        F, T = getattr(fg, name), getattr(torch, name)
        assert repr(F) == repr(T).replace("torch", "flowgrad")
        assert str(F.dtype) == str(T.dtype).replace("torch.", "")
        for dt in ("float32", "float64", "int64", "int32", "bool", "uint8"):
            assert isinstance(fg.zeros(2, dtype=getattr(fg, dt if dt != "bool" else "bool")),
                              F) == isinstance(torch.zeros(2, dtype=getattr(torch, dt)), T)
        assert not isinstance(3, F) and not issubclass(fg.Tensor, F)
    assert isinstance(fg.nn.Parameter(fg.zeros(2)), fg.FloatTensor)
    assert fg.zeros(2).type(fg.LongTensor).dtype == fg.int64


FACTORIES = [
    lambda m: m.zeros(2, 3), lambda m: m.zeros((2, 3)), lambda m: m.zeros([2, 3]),
    lambda m: m.zeros(size=(2, 3)), lambda m: m.ones(size=[2]), lambda m: m.zeros(m.Size([2, 3])),
    lambda m: m.zeros(()), lambda m: m.zeros(), lambda m: m.zeros(2.0), lambda m: m.zeros(-1),
    lambda m: m.zeros(np.int64(2)), lambda m: m.zeros(m.tensor(2)), lambda m: m.zeros((2,), 3),
    lambda m: m.ones(2, dtype=m.bool), lambda m: m.ones(2, 3, dtype=m.float64),
    lambda m: m.zeros(2, layout=m.strided), lambda m: m.zeros(2, pin_memory=False),
    lambda m: m.zeros(2, device="cpu"), lambda m: m.zeros(2, device=m.device("cpu")),
    lambda m: m.zeros(2, dtype=m.long, requires_grad=True),
    lambda m: m.zeros(2, memory_format=m.contiguous_format),
    lambda m: m.empty(2, 3, memory_format=m.contiguous_format).shape,
    lambda m: m.empty(size=(2,)).shape, lambda m: m.empty(2, generator=None),
    lambda m: m.full((2, 3), 1.5), lambda m: m.full((2,), 1), lambda m: m.full([2], True),
    lambda m: m.full(size=(2,), fill_value=1.0), lambda m: m.full((2,), 7, dtype=m.float64),
    lambda m: m.eye(2, 3),
    lambda m: m.randn(2, dtype=m.long), lambda m: m.rand(2, dtype=m.long),
    lambda m: m.randn(2, size=(3,)), lambda m: m.rand((2,), (3,)),
    lambda m: m.randint(10, 3), lambda m: m.randint(10), lambda m: m.randint(10.5, (2,)),
    lambda m: m.randint(5, 2, (2,)), lambda m: m.randint(2, (3,), low=0),
    lambda m: m.zeros_like(m.ones(2), memory_format=m.preserve_format),
    lambda m: m.zeros_like(m.ones(2), layout=m.strided), lambda m: m.ones_like(m.ones(2, 3)),
    lambda m: m.full_like(m.ones(2, dtype=m.long), 2.7),
    lambda m: m.full_like(m.ones(2), 3.0, layout=m.strided, memory_format=m.preserve_format),
    lambda m: m.empty_like(m.ones(2, dtype=m.long)).dtype,
    lambda m: m.randn_like(m.ones(2, dtype=m.long)),
]


@pytest.mark.parametrize("make", FACTORIES)
def test_factories(make):
    (f, _), (t, _) = both(make)
    if isinstance(t, torch.dtype):
        assert str(f) == str(t).replace("torch.", "")
    elif isinstance(t, torch.Size):
        assert f == tuple(t)
    else:
        check(make, values=not (isinstance(t, torch.Tensor) and "empty" in repr(make.__code__)))


RANDOM = [
    lambda m: m.rand(2, 3), lambda m: m.randn((2, 3)), lambda m: m.rand(size=(2,)),
    lambda m: m.randn(2, 3, generator=m.Generator().manual_seed(0)),
    lambda m: m.rand(2, generator=m.Generator().manual_seed(0), dtype=m.float64),
    lambda m: m.randint(10, (3,)), lambda m: m.randint(2, 10, (3,)),
    lambda m: m.randint(10, size=(3,)), lambda m: m.randint(low=2, high=10, size=(3,)),
    lambda m: m.randint(high=10, size=(3,)), lambda m: m.randint(0, 10, [2]),
    lambda m: m.randint(10, m.Size([2])), lambda m: m.randint(10, (3,), dtype=m.float32),
    lambda m: m.randint(10, (3,), generator=m.Generator().manual_seed(0)),
    lambda m: m.randperm(4, generator=m.Generator().manual_seed(0)),
    lambda m: m.rand_like(m.ones(2), generator=m.Generator().manual_seed(1)),
    lambda m: m.randn_like(m.ones(2, 3, dtype=m.float64)),
    lambda m: m.randint_like(m.ones(2), 10), lambda m: m.randint_like(m.ones(2), 3, 10),
]


@pytest.mark.parametrize("make", RANDOM)
def test_random_factories(make):
    check(make, values=False)


def test_random_factories_ranges_and_generator_reproducibility():
    r = fg.randint(2, 10, (1000,))
    assert r.min().item() >= 2 and r.max().item() < 10
    assert fg.randint(10, (3,), dtype=fg.float32, requires_grad=True).requires_grad
    a = fg.randn(3, generator=fg.Generator().manual_seed(5))
    b = fg.randn(3, generator=fg.Generator().manual_seed(5))
    assert fg.equal(a, b)


def test_out_is_refused_clearly():
    for make in (lambda: fg.zeros(2, out=fg.empty(2)), lambda: fg.full((2,), 1.0, out=fg.empty(2)),
                 lambda: fg.randn(2, out=fg.empty(2))):
        with pytest.raises(TypeError, match="out="):
            make()


def test_size():
    x, tx = fg.zeros(2, 3), torch.zeros(2, 3)
    for get in (lambda t: t.shape, lambda t: t.size(), lambda t: t.shape[1:],
                lambda t: t.shape + (4,), lambda t: (4,) + t.shape, lambda t: t.shape * 2,
                lambda t: t[0].shape):
        f, t = get(x), get(tx)
        assert type(f) is fg.Size and repr(f) == repr(t).replace("torch", "flowgrad")
        assert str(f) == str(t).replace("torch", "flowgrad") and f == tuple(t)
    assert x.shape == (2, 3) and x.shape != [2, 3] and hash(x.shape) == hash((2, 3))
    assert {(2, 3): 1}[x.shape] == 1 and isinstance(x.shape, tuple)
    assert x.shape.numel() == 6 and x.size(1) == 3 and x.size(-1) == 3 and type(x.size(0)) is int
    assert x.shape[0] == 2 and type(x.shape[0]) is int
    with pytest.raises(IndexError):
        x.size(2)
    assert repr(fg.Size()) == repr(torch.Size()).replace("torch", "flowgrad")
    assert fg.Size(i for i in (1, 2)) == (1, 2) and fg.Size([fg.tensor(2)]) == (2,)
    with pytest.raises(TypeError):
        fg.Size([2.0])
    assert pickle.loads(pickle.dumps(x.shape)) == (2, 3)
    assert type(pickle.loads(pickle.dumps(x.shape))) is fg.Size


SCALARS = [
    lambda m: format(m.tensor(3.14159), ".2f"), lambda m: f"{m.tensor(3.14159):.4f}",
    lambda m: format(m.tensor(3.14159), ""), lambda m: f"{m.tensor(3.14159):e}",
    lambda m: format(m.tensor([1.0]), ".2f"), lambda m: f"{m.tensor(3):d}",
    lambda m: f"{m.tensor(3):5}", lambda m: f"{m.tensor(True)}",
    lambda m: f"{m.tensor(1.5, requires_grad=True):.2f}",
    lambda m: round(m.tensor(3.14159), 2), lambda m: round(m.tensor(3.5)),
    lambda m: int(m.tensor(3.7)), lambda m: int(m.tensor(-3.7)), lambda m: float(m.tensor(3)),
    lambda m: int(m.tensor([3.7])), lambda m: int(m.tensor([3.0, 4.0])),
    lambda m: float(m.tensor([3.0, 4.0])), lambda m: m.tensor(2.5).item(),
    lambda m: m.tensor([1.0, 2.0]).item(), lambda m: m.tensor([3]).item(),
    lambda m: m.tensor(True).item(), lambda m: m.tensor([]).item(),
]


@pytest.mark.parametrize("make", SCALARS)
def test_scalar_conversions_and_format(make):
    (f, _), (t, _) = both(make)
    check(make)
    assert type(f) is type(t)


def test_format_of_a_tensor_with_an_empty_spec_is_its_repr():
    assert format(fg.tensor([1.0]), "") == "tensor([1.])" == format(torch.tensor([1.0]), "")


DEVICES = [
    lambda m: m.device("cpu"), lambda m: m.device("cuda", 0), lambda m: m.device("cuda:0"),
    lambda m: m.device("cuda"), lambda m: m.device("cuda:1"), lambda m: m.device("cpu:0"),
    lambda m: m.device(m.device("cpu")), lambda m: m.device(type="cuda", index=1),
    lambda m: m.device("mps"), lambda m: m.device(0), lambda m: m.device("gpu"),
    lambda m: m.device("cuda:x"), lambda m: m.device("cuda:-1"), lambda m: m.device("cuda", -1),
    lambda m: m.device("cuda:0", 0),
]


@pytest.mark.parametrize("make", DEVICES)
def test_device_objects(make):
    (f, fe), (t, te) = both(make)
    if te is not None:
        assert isinstance(fe, type(te)), (fe, te)
        return
    assert repr(f) == repr(t) and str(f) == str(t)
    assert (f.type, f.index) == (t.type, t.index)
    assert pickle.loads(pickle.dumps(f)) == f


def test_device_equality_and_hash():
    assert fg.device("cpu") == fg.device("cpu") and fg.device("cuda:1") != fg.device("cuda")
    assert hash(fg.device("cpu")) == hash(fg.device("cpu"))
    # flowgrad's devices are also its strings (PyTorch: a device never equals a string)
    assert fg.device("cpu") == "cpu" and fg.zeros(1).device == "cpu"
    assert fg.device("cuda:0") == "cuda" == fg.device("cuda")
    assert {"cpu": 1}[fg.zeros(1).device] == 1


TENSOR_DEVICE = [
    lambda m: m.zeros(2).device, lambda m: str(m.zeros(2).device), lambda m: m.zeros(2).is_cuda,
    lambda m: m.zeros(2).is_cpu, lambda m: m.zeros(2).is_xpu, lambda m: m.zeros(2).is_mps,
    lambda m: m.zeros(2).is_meta, lambda m: m.zeros(2).get_device(),
    lambda m: m.zeros(2).cuda(), lambda m: m.zeros(2).to("cuda"),
    lambda m: m.zeros(2).to(m.device("cuda")), lambda m: m.zeros(2, device="cuda"),
    lambda m: m.tensor([1.0], device="cuda"), lambda m: m.zeros(2).to(0),
    lambda m: m.zeros(2).to("gpu"), lambda m: m.Tensor(2, device="cuda"),
    lambda m: m.zeros(2).to(m.float64), lambda m: m.zeros(2).to(m.zeros(1, dtype=m.int64)),
    lambda m: m.zeros(2).to("cpu", m.float64), lambda m: m.zeros(2).to(device="cpu", dtype=m.int32),
    lambda m: m.zeros(2).to("cpu", non_blocking=True), lambda m: m.zeros(2).cpu(),
    lambda m: m.zeros(2).to(memory_format=m.contiguous_format),
    lambda m: m.zeros(2).to("cpu", copy=True),
]


@pytest.mark.parametrize("make", TENSOR_DEVICE)
def test_tensor_devices(make):
    if fg.cuda.is_available():
        pytest.skip("compares with PyTorch's CPU build: this machine has a CUDA device")
    (f, fe), (t, te) = both(make)
    if te is not None:
        assert isinstance(fe, type(te)), (fe, te)
        return
    assert fe is None, fe
    if isinstance(t, torch.Tensor):
        same_tensor(f, t)
    elif isinstance(t, torch.device):
        assert repr(f) == repr(t)
    else:
        assert f == t and type(f) is type(t)


def test_to_returns_self_unless_copied():
    x = fg.zeros(2)
    assert x.to("cpu") is x and x.to(fg.device("cpu")) is x and x.cpu() is x
    assert x.to(fg.float32) is x and x.to("cpu", copy=True) is not x


QUERIES = [
    lambda m: m.cuda.is_available(), lambda m: m.cuda.device_count(),
    lambda m: m.cuda.current_device(), lambda m: m.cuda.get_device_name(),
    lambda m: m.cuda.get_device_name(0), lambda m: m.cuda.is_initialized(),
    lambda m: m.cuda.manual_seed(0), lambda m: m.cuda.manual_seed_all(0),
    lambda m: m.cuda.synchronize(), lambda m: m.cuda.empty_cache(),
    lambda m: m.cuda.memory_allocated(), lambda m: m.cuda.max_memory_allocated(),
    lambda m: m.cuda.get_device_properties(0), lambda m: m.cuda.is_bf16_supported(),
    lambda m: m.accelerator.is_available(), lambda m: m.accelerator.current_accelerator(),
    lambda m: m.accelerator.device_count(),
    lambda m: (m.backends.cudnn.benchmark, m.backends.cudnn.deterministic,
               m.backends.cudnn.enabled),
    lambda m: m.backends.cudnn.is_available(), lambda m: m.backends.cudnn.version(),
    lambda m: m.backends.mps.is_available(), lambda m: m.backends.mps.is_built(),
    lambda m: m.backends.cuda.is_built(), lambda m: m.backends.cuda.matmul.allow_tf32,
]


@pytest.mark.parametrize("make", QUERIES)
def test_cuda_and_backend_queries_on_a_cpu_only_machine(make):
    if fg.cuda.is_available():
        pytest.skip("compares with PyTorch's CPU build: this machine has a CUDA device")
    (f, fe), (t, te) = both(make)
    if te is not None:
        assert isinstance(fe, type(te)), (fe, te)
        return
    assert fe is None, fe
    assert f == t and type(f) is type(t)


def test_cuda_errors_name_cupy_and_are_device_errors():
    if fg.cuda.is_available():
        pytest.skip("needs a machine without a CUDA device")
    with pytest.raises(fg.DeviceError, match="CuPy"):
        fg.zeros(2).cuda()
    with pytest.raises(AssertionError, match="CuPy"):
        fg.cuda.current_device()


def test_cudnn_flags_are_settable():
    import flowgrad.backends.cudnn as cudnn

    old = cudnn.benchmark
    try:
        fg.backends.cudnn.benchmark = True
        fg.backends.cudnn.deterministic = True
        assert cudnn.benchmark is True and fg.backends.cudnn.deterministic
    finally:
        cudnn.benchmark, cudnn.deterministic = old, False
