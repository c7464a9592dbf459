"""Every layer of flowgrad.nn against torch.nn: same constructor call, torch's state_dict loaded
into flowgrad, then forward outputs, input gradients and parameter gradients under a random
upstream gradient, in float32 and float64; batch-norm running statistics; default
initialisation statistics; error messages; and a small MLP that overfits a tiny batch."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import backend, nn
from flowgrad.errors import ShapeError

TOL = {"float32": dict(atol=2e-5, rtol=2e-4), "float64": dict(atol=1e-10, rtol=1e-8)}


@dataclass
class Case:
    name: str
    make: object                   # make(nn) -> module, for nn = torch.nn or flowgrad.nn
    shapes: tuple = ((4, 5),)      # float inputs (they require grad)
    ints: tuple = ()               # integer inputs: (shape, high) -> after the float inputs
    low: float = -2.0
    high: float = 2.0
    avoid: float = 0.0             # keep |x - k| >= avoid for the kinks k
    kinks: tuple = (0.0,)
    train: bool = True
    extra: dict = field(default_factory=dict)
    consts: object = None          # consts(rng) -> float arrays passed after inputs, no grad
    tol64: dict | None = None      # float64 tolerance where torch itself rounds to float32


def _avoid(a, case):
    for k in case.kinks:
        d = a - k
        a = np.where(np.abs(d) < case.avoid, k + np.sign(d + 1e-12) * case.avoid, a)
    return a


ACT = dict(shapes=((3, 7),), avoid=1e-2)
CASES = [
    Case("linear", lambda nn: nn.Linear(5, 3)),
    Case("linear_3d_nobias", lambda nn: nn.Linear(5, 3, bias=False), shapes=((2, 4, 5),)),
    Case("bilinear", lambda nn: nn.Bilinear(3, 4, 2), shapes=((5, 3), (5, 4))),
    Case("bilinear_nobias", lambda nn: nn.Bilinear(3, 4, 2, bias=False),
         shapes=((2, 5, 3), (2, 5, 4))),
    Case("identity", lambda nn: nn.Identity(7, foo=1), shapes=((3, 4),)),
    Case("flatten", lambda nn: nn.Flatten(), shapes=((2, 3, 4, 5),)),
    Case("flatten_0_1", lambda nn: nn.Flatten(0, 1), shapes=((2, 3, 4),)),
    Case("unflatten", lambda nn: nn.Unflatten(1, (2, 3)), shapes=((4, 6, 2),)),
    # activations
    Case("relu", lambda nn: nn.ReLU(), **ACT),
    Case("relu6", lambda nn: nn.ReLU6(), shapes=((3, 7),), low=-3, high=8, avoid=1e-2,
         kinks=(0.0, 6.0)),
    Case("leaky_relu", lambda nn: nn.LeakyReLU(0.2), **ACT),
    Case("prelu", lambda nn: nn.PReLU(), **ACT),
    Case("prelu_channels", lambda nn: nn.PReLU(3, init=0.1), shapes=((2, 3, 4),), avoid=1e-2),
    Case("elu", lambda nn: nn.ELU(alpha=0.7), **ACT),
    Case("celu", lambda nn: nn.CELU(alpha=1.5), **ACT),
    Case("selu", lambda nn: nn.SELU(), **ACT),
    Case("gelu", lambda nn: nn.GELU(), **ACT),
    Case("gelu_tanh", lambda nn: nn.GELU(approximate="tanh"), **ACT),
    Case("silu", lambda nn: nn.SiLU(), **ACT),
    Case("mish", lambda nn: nn.Mish(), **ACT),
    Case("softplus", lambda nn: nn.Softplus(beta=2.0, threshold=3.0), shapes=((3, 7),),
         avoid=1e-2, kinks=(1.5,)),
    Case("sigmoid", lambda nn: nn.Sigmoid(), **ACT),
    Case("tanh", lambda nn: nn.Tanh(), **ACT),
    Case("logsigmoid", lambda nn: nn.LogSigmoid(), **ACT),
    Case("hardtanh", lambda nn: nn.Hardtanh(-0.5, 1.5), shapes=((3, 7),), avoid=1e-2,
         kinks=(-0.5, 1.5)),
    Case("hardsigmoid", lambda nn: nn.Hardsigmoid(), shapes=((3, 7),), low=-4, high=4,
         avoid=1e-2, kinks=(-3.0, 3.0), tol64=dict(atol=1e-10, rtol=1e-7)),
    Case("hardswish", lambda nn: nn.Hardswish(), shapes=((3, 7),), low=-4, high=4, avoid=1e-2,
         kinks=(-3.0, 3.0)),
    Case("softsign", lambda nn: nn.Softsign(), **ACT),
    Case("tanhshrink", lambda nn: nn.Tanhshrink(), **ACT),
    Case("softshrink", lambda nn: nn.Softshrink(0.3), shapes=((3, 7),), avoid=1e-2,
         kinks=(-0.3, 0.3)),
    Case("hardshrink", lambda nn: nn.Hardshrink(0.3), shapes=((3, 7),), avoid=1e-2,
         kinks=(-0.3, 0.3)),
    Case("threshold", lambda nn: nn.Threshold(0.1, 20.0), shapes=((3, 7),), avoid=1e-2,
         kinks=(0.1,)),
    Case("glu", lambda nn: nn.GLU(dim=1), shapes=((3, 8),)),
    Case("softmax", lambda nn: nn.Softmax(dim=1), shapes=((3, 7),)),
    Case("softmin", lambda nn: nn.Softmin(dim=0), shapes=((3, 7),)),
    Case("log_softmax", lambda nn: nn.LogSoftmax(dim=-1), shapes=((2, 3, 7),)),
    # convolutions
    Case("conv1d", lambda nn: nn.Conv1d(3, 4, 3, stride=2, padding=1), shapes=((2, 3, 9),)),
    Case("conv1d_same_dil_groups", lambda nn: nn.Conv1d(4, 6, 3, padding="same", dilation=2,
                                                        groups=2, bias=False),
         shapes=((2, 4, 10),)),
    Case("conv1d_reflect", lambda nn: nn.Conv1d(3, 4, 3, padding=2, padding_mode="reflect"),
         shapes=((2, 3, 8),)),
    Case("conv1d_unbatched", lambda nn: nn.Conv1d(3, 2, 2), shapes=((3, 6),)),
    Case("conv2d", lambda nn: nn.Conv2d(3, 4, 3), shapes=((2, 3, 7, 6),)),
    Case("conv2d_full", lambda nn: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 0),
                                             dilation=(1, 2), groups=2),
         shapes=((2, 4, 9, 8),)),
    Case("conv2d_same_reflect", lambda nn: nn.Conv2d(3, 4, 3, padding="same",
                                                     padding_mode="reflect"),
         shapes=((2, 3, 6, 5),)),
    Case("conv2d_circular", lambda nn: nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
         shapes=((2, 2, 5, 5),)),
    Case("conv2d_replicate", lambda nn: nn.Conv2d(2, 3, (3, 5), padding=(1, 2),
                                                  padding_mode="replicate"),
         shapes=((2, 2, 5, 6),)),
    Case("conv2d_valid_unbatched", lambda nn: nn.Conv2d(3, 2, 2, padding="valid", bias=False),
         shapes=((3, 5, 5),)),
    Case("conv_transpose1d", lambda nn: nn.ConvTranspose1d(3, 4, 3, stride=2, padding=1,
                                                           output_padding=1),
         shapes=((2, 3, 5),)),
    Case("conv_transpose2d", lambda nn: nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                           output_padding=1, groups=2),
         shapes=((2, 4, 4, 5),)),
    Case("conv_transpose2d_dilation", lambda nn: nn.ConvTranspose2d(3, 2, (2, 3), bias=False,
                                                                    dilation=2),
         shapes=((2, 3, 4, 4),)),
    Case("conv_transpose2d_output_size", lambda nn: nn.ConvTranspose2d(3, 2, 3, stride=2),
         shapes=((2, 3, 4, 4),), extra=dict(output_size=(10, 9))),
    # pooling
    Case("max_pool1d", lambda nn: nn.MaxPool1d(3, stride=2, padding=1), shapes=((2, 3, 9),)),
    Case("max_pool2d", lambda nn: nn.MaxPool2d(2), shapes=((2, 3, 6, 6),)),
    Case("max_pool2d_full", lambda nn: nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
         shapes=((2, 3, 7, 8),)),
    Case("max_pool2d_indices", lambda nn: nn.MaxPool2d(2, return_indices=True),
         shapes=((2, 3, 6, 4),)),
    Case("avg_pool1d", lambda nn: nn.AvgPool1d(3, stride=2, padding=1), shapes=((2, 3, 9),)),
    Case("avg_pool2d", lambda nn: nn.AvgPool2d(3, stride=2, padding=1,
                                               count_include_pad=False),
         shapes=((2, 3, 7, 8),)),
    Case("avg_pool2d_divisor", lambda nn: nn.AvgPool2d(2, divisor_override=3),
         shapes=((2, 3, 6, 6),)),
    Case("adaptive_avg_pool1d", lambda nn: nn.AdaptiveAvgPool1d(4), shapes=((2, 3, 10),)),
    Case("adaptive_avg_pool2d", lambda nn: nn.AdaptiveAvgPool2d((3, 5)), shapes=((2, 3, 7, 9),)),
    Case("adaptive_avg_pool2d_none", lambda nn: nn.AdaptiveAvgPool2d((None, 2)),
         shapes=((2, 3, 5, 6),)),
    Case("global_avg_pool", lambda nn: nn.AdaptiveAvgPool2d(1), shapes=((2, 3, 5, 6),)),
    # normalisation
    Case("batch_norm1d", lambda nn: nn.BatchNorm1d(5), shapes=((8, 5),)),
    Case("batch_norm1d_3d", lambda nn: nn.BatchNorm1d(5, momentum=None), shapes=((4, 5, 6),)),
    Case("batch_norm1d_no_affine", lambda nn: nn.BatchNorm1d(5, affine=False),
         shapes=((8, 5),)),
    Case("batch_norm1d_no_bias", lambda nn: nn.BatchNorm1d(5, bias=False), shapes=((8, 5),)),
    Case("batch_norm1d_eval", lambda nn: nn.BatchNorm1d(5), shapes=((8, 5),), train=False),
    Case("batch_norm2d", lambda nn: nn.BatchNorm2d(3), shapes=((4, 3, 5, 5),)),
    Case("batch_norm2d_untracked", lambda nn: nn.BatchNorm2d(3, track_running_stats=False),
         shapes=((4, 3, 5, 5),), train=False),
    Case("batch_norm3d", lambda nn: nn.BatchNorm3d(2), shapes=((3, 2, 3, 4, 2),)),
    Case("instance_norm1d", lambda nn: nn.InstanceNorm1d(3, affine=True), shapes=((2, 3, 7),)),
    Case("instance_norm2d_tracked", lambda nn: nn.InstanceNorm2d(3, track_running_stats=True),
         shapes=((2, 3, 4, 5),)),
    Case("instance_norm2d_unbatched", lambda nn: nn.InstanceNorm2d(3), shapes=((3, 4, 5),)),
    Case("layer_norm", lambda nn: nn.LayerNorm(6), shapes=((3, 6),)),
    Case("layer_norm_2d", lambda nn: nn.LayerNorm((4, 6), eps=1e-3), shapes=((2, 3, 4, 6),)),
    Case("layer_norm_no_affine", lambda nn: nn.LayerNorm(6, elementwise_affine=False),
         shapes=((3, 6),)),
    Case("layer_norm_no_bias", lambda nn: nn.LayerNorm(6, bias=False), shapes=((3, 6),)),
    Case("group_norm", lambda nn: nn.GroupNorm(2, 6), shapes=((3, 6, 4, 4),)),
    Case("group_norm_no_affine", lambda nn: nn.GroupNorm(3, 6, affine=False),
         shapes=((3, 6, 5),)),
    Case("rms_norm", lambda nn: nn.RMSNorm(6), shapes=((3, 6),)),
    Case("rms_norm_eps", lambda nn: nn.RMSNorm((2, 6), eps=1e-3), shapes=((3, 2, 6),)),
    # dropout (p=0 and eval mode: deterministic)
    Case("dropout_p0", lambda nn: nn.Dropout(p=0.0), shapes=((3, 7),)),
    Case("dropout_eval", lambda nn: nn.Dropout(p=0.5), shapes=((3, 7),), train=False),
    Case("dropout2d_eval", lambda nn: nn.Dropout2d(p=0.5), shapes=((2, 3, 4, 4),), train=False),
    # embedding
    Case("embedding", lambda nn: nn.Embedding(10, 4), shapes=(), ints=(((3, 5), 10),)),
    Case("embedding_padding", lambda nn: nn.Embedding(10, 4, padding_idx=0), shapes=(),
         ints=(((4, 6), 10),)),
    Case("embedding_max_norm", lambda nn: nn.Embedding(10, 4, max_norm=1.0), shapes=(),
         ints=(((3, 5), 10),)),
    Case("embedding_freq", lambda nn: nn.Embedding(6, 3, scale_grad_by_freq=True), shapes=(),
         ints=(((4, 5), 6),)),
    # padding
    Case("zero_pad2d", lambda nn: nn.ZeroPad2d((1, 2, 0, 1)), shapes=((2, 3, 4, 4),)),
    Case("constant_pad1d", lambda nn: nn.ConstantPad1d(2, 1.5), shapes=((2, 3, 4),)),
    Case("constant_pad3d", lambda nn: nn.ConstantPad3d((1, 0, 0, 1, 2, 0), -1.0),
         shapes=((1, 2, 3, 3, 3),)),
    Case("reflection_pad1d", lambda nn: nn.ReflectionPad1d((2, 1)), shapes=((2, 3, 5),)),
    Case("reflection_pad2d", lambda nn: nn.ReflectionPad2d(1), shapes=((2, 3, 4, 4),)),
    Case("replication_pad2d", lambda nn: nn.ReplicationPad2d((0, 2, 1, 1)),
         shapes=((2, 3, 4, 4),)),
    Case("replication_pad3d", lambda nn: nn.ReplicationPad3d(1), shapes=((1, 2, 3, 3, 3),)),
    Case("circular_pad1d", lambda nn: nn.CircularPad1d((1, 2)), shapes=((2, 3, 5),)),
    Case("circular_pad2d", lambda nn: nn.CircularPad2d(1), shapes=((3, 4, 4),)),
    # losses
    Case("mse_loss", lambda nn: nn.MSELoss(), shapes=((4, 3),),
         consts=lambda rng: [rng.standard_normal((4, 3))]),
    Case("l1_loss_sum", lambda nn: nn.L1Loss(reduction="sum"), shapes=((4, 3),),
         consts=lambda rng: [rng.standard_normal((4, 3))]),
    Case("cross_entropy", lambda nn: nn.CrossEntropyLoss(label_smoothing=0.1),
         shapes=((5, 4),), ints=(((5,), 4),)),
    Case("nll_loss", lambda nn: nn.NLLLoss(ignore_index=1), shapes=((5, 4),),
         ints=(((5,), 4),)),
    Case("bce_with_logits", lambda nn: nn.BCEWithLogitsLoss(), shapes=((4, 3),),
         consts=lambda rng: [rng.uniform(0, 1, (4, 3))]),
    Case("bce", lambda nn: nn.BCELoss(), shapes=((4, 3),), low=0.05, high=0.95,
         consts=lambda rng: [rng.uniform(0, 1, (4, 3))]),
    Case("smooth_l1", lambda nn: nn.SmoothL1Loss(beta=0.5), shapes=((4, 3),),
         consts=lambda rng: [rng.standard_normal((4, 3))]),
    Case("huber", lambda nn: nn.HuberLoss(delta=0.5), shapes=((4, 3),),
         consts=lambda rng: [rng.standard_normal((4, 3))]),
    Case("kl_div", lambda nn: nn.KLDivLoss(reduction="batchmean"), shapes=((4, 3),),
         consts=lambda rng: [rng.uniform(0.1, 1, (4, 3))]),
    Case("gaussian_nll", lambda nn: nn.GaussianNLLLoss(), shapes=((4, 3),),
         consts=lambda rng: [rng.standard_normal((4, 3)), rng.uniform(0.5, 2, (4, 3))]),
]


def _build(torch, case: Case, dtype: str):
    """The torch layer and the flowgrad layer holding torch's state, both in ``dtype``."""
    torch.manual_seed(0)
    tl = case.make(torch.nn).to(getattr(torch, dtype))
    fl = case.make(nn).to(getattr(fg, dtype))
    result = fl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    assert result.missing_keys == [] and result.unexpected_keys == []
    if not case.train:
        tl.eval()
        fl.eval()
    return tl, fl


def _run(m, layer, case: Case, dtype: str, device: str = "cpu"):
    """Forward, then backward of (out * w).sum() with a fixed random w; returns arrays."""
    rng = np.random.default_rng(0)
    floats = []
    for s in case.shapes:
        floats.append(_avoid(rng.uniform(case.low, case.high, size=s), case).astype(dtype))
    ints = [rng.integers(0, high, size=s) for s, high in case.ints]
    consts = [c.astype(dtype) for c in case.consts(rng)] if case.consts else []
    xs = [m.tensor(a, requires_grad=True, device=device) for a in floats]
    args = xs + [m.tensor(a, device=device) for a in ints + consts]
    out = layer(*args, **case.extra)
    outs = list(out) if isinstance(out, tuple) else [out]
    wrng = np.random.default_rng(1)
    total = None
    for o in outs:
        if o.requires_grad:
            w = m.tensor(wrng.standard_normal(tuple(o.shape)).astype(dtype), device=device)
            term = (o * w).sum()
            total = term if total is None else total + term
    if total is not None:
        total.backward()

    def host(t):
        return None if t is None else np.array(t.detach().cpu().numpy())

    arrays = [host(o) for o in outs]
    grads = [host(x.grad) for x in xs]
    pgrads = {k: host(p.grad) for k, p in layer.named_parameters()}
    state = {k: host(v) for k, v in layer.state_dict().items()}
    return arrays, [str(o.dtype).replace("torch.", "") for o in outs], grads, pgrads, state


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_layer_matches_torch(torch, case, dtype):
    tl, fl = _build(torch, case, dtype)
    assert repr(fl) == repr(tl)
    assert [k for k, _ in fl.named_parameters()] == [k for k, _ in tl.named_parameters()]
    t_out, t_dt, t_g, t_pg, t_state = _run(torch, tl, case, dtype)
    f_out, f_dt, f_g, f_pg, f_state = _run(fg, fl, case, dtype)
    tol = case.tol64 if dtype == "float64" and case.tol64 else TOL[dtype]
    assert f_dt == t_dt
    for a, b in zip(f_out, t_out):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, **tol, err_msg=f"{case.name}: forward")
    for i, (a, b) in enumerate(zip(f_g, t_g)):
        assert (a is None) == (b is None), f"{case.name}: grad of input {i}"
        if a is not None:
            np.testing.assert_allclose(a, b, **tol, err_msg=f"{case.name}: grad of input {i}")
    assert f_pg.keys() == t_pg.keys()
    for k in t_pg:
        assert (f_pg[k] is None) == (t_pg[k] is None), f"{case.name}: grad of {k}"
        if t_pg[k] is not None:
            np.testing.assert_allclose(f_pg[k], t_pg[k], **tol, err_msg=f"{case.name}: {k}.grad")
    assert list(f_state) == list(t_state)
    for k in t_state:  # running statistics, num_batches_tracked, renormalised embeddings
        assert f_state[k].dtype == t_state[k].dtype, k
        np.testing.assert_allclose(f_state[k], t_state[k], **tol, err_msg=f"{case.name}: {k}")


@pytest.mark.gpu
@pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_layer_on_gpu_matches_cpu(case):
    fg.manual_seed(0)
    cpu = case.make(nn).double()
    gpu = copy.deepcopy(cpu).to("cuda")
    assert all(p.device.startswith("cuda") for p in gpu.parameters())
    if not case.train:
        cpu.eval()
        gpu.eval()
    want = _run(fg, cpu, case, "float64")
    got = _run(fg, gpu, case, "float64", device="cuda")
    tol = dict(atol=1e-9, rtol=1e-7)
    for a, b in zip(got[0] + got[2], want[0] + want[2]):
        assert (a is None) == (b is None)
        if a is not None:
            np.testing.assert_allclose(a, b, **tol, err_msg=case.name)
    for part in (3, 4):  # parameter gradients, state_dict
        assert got[part].keys() == want[part].keys()
        for k in want[part]:
            if want[part][k] is not None:
                np.testing.assert_allclose(got[part][k], want[part][k], **tol, err_msg=k)


# --- batch norm over several steps ------------------------------------------------------------

@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("kind", ["1d", "2d"])
def test_batch_norm_running_stats_over_steps(torch, kind, momentum):
    shape = (6, 4) if kind == "1d" else (5, 4, 3, 3)
    make = (lambda nn: nn.BatchNorm1d(4, momentum=momentum)) if kind == "1d" else \
        (lambda nn: nn.BatchNorm2d(4, momentum=momentum))
    torch.manual_seed(0)
    tl, fl = make(torch.nn).double(), make(nn).double()
    fl.load_state_dict({k: v.numpy() for k, v in tl.state_dict().items()})
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.normal(2.0, 3.0, size=shape)
        tl(torch.tensor(x, requires_grad=True)).square().sum().backward()
        fl(fg.tensor(x, requires_grad=True)).square().sum().backward()
        with torch.no_grad():  # a plain SGD step on the affine parameters in both
            for p in tl.parameters():
                p -= 0.1 * p.grad
                p.grad = None
        with fg.no_grad():
            for p in fl.parameters():
                p.sub_(p.grad, alpha=0.1)
                p.grad = None
    for k, v in tl.state_dict().items():
        np.testing.assert_allclose(fl.state_dict()[k].numpy(), v.numpy(), rtol=1e-10, atol=1e-9,
                                   err_msg=k)
    assert fl.num_batches_tracked.item() == 5 and fl.num_batches_tracked.dtype == np.int64
    tl.eval()
    fl.eval()
    x = rng.normal(2.0, 3.0, size=shape)
    np.testing.assert_allclose(fl(fg.tensor(x)).detach().numpy(),
                               tl(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-9)
    fl.reset_running_stats()
    assert fl.num_batches_tracked.item() == 0
    np.testing.assert_array_equal(fl.running_var.numpy(), np.ones(4))


def test_batch_norm_eval_without_running_stats_uses_batch_stats():
    bn = nn.BatchNorm1d(3, track_running_stats=False).eval()
    x = fg.randn(10, 3) * 4 + 2
    y = bn(x).detach().numpy()
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-5)
    assert bn.running_mean is None and "running_mean" not in bn.state_dict()


# --- dropout ------------------------------------------------------------------------------------

def test_dropout_training_statistics_and_eval_identity():
    fg.manual_seed(0)
    d = nn.Dropout(p=0.3)
    x = fg.ones(200, 500)
    y = d(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    d.eval()
    assert d(x) is x
    fg.manual_seed(5)
    a = nn.Dropout(0.5)(x).numpy()
    fg.manual_seed(5)
    b = nn.Dropout(0.5)(x).numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="between 0 and 1, but got 1.5"):
        nn.Dropout(1.5)


def test_dropout2d_drops_whole_channels():
    fg.manual_seed(0)
    y = nn.Dropout2d(p=0.5)(fg.ones(8, 16, 3, 3)).numpy()
    per_channel = y.reshape(8, 16, 9)
    assert np.all((per_channel == 0).all(-1) | (per_channel == 2).all(-1))


# --- embedding ----------------------------------------------------------------------------------

def test_embedding_padding_row_gets_no_gradient_and_from_pretrained():
    emb = nn.Embedding(5, 3, padding_idx=-1)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.detach().numpy()[4], 0)
    emb(fg.tensor([[4, 1, 4]])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.numpy()[4], 0)
    np.testing.assert_array_equal(emb.weight.grad.numpy()[1], 1)
    w = fg.randn(6, 2)
    pre = nn.Embedding.from_pretrained(w)
    assert pre.weight._data is w._data and not pre.weight.requires_grad
    assert nn.Embedding.from_pretrained(np.zeros((3, 2)), freeze=False).weight.requires_grad
    with pytest.raises(ValueError, match="2-D"):
        nn.Embedding.from_pretrained(fg.zeros(3))


# --- default initialisation ---------------------------------------------------------------------

def _stats(a):
    a = np.asarray(a, dtype=np.float64).ravel()
    return a.min(), a.max(), a.mean(), a.std()


@pytest.mark.parametrize("make,fan_in", [
    (lambda nn: nn.Linear(400, 300), 400),
    (lambda nn: nn.Conv2d(16, 32, 3), 144),
    (lambda nn: nn.Conv1d(12, 40, 5, groups=4), 15),
    (lambda nn: nn.ConvTranspose2d(16, 8, 3, groups=2), 36),
], ids=["linear", "conv2d", "conv1d_groups", "conv_transpose2d"])
def test_default_init_is_torchs_uniform_bound(torch, make, fan_in):
    fg.manual_seed(0)
    torch.manual_seed(0)
    fl, tl = make(nn), make(torch.nn)
    bound = 1 / math.sqrt(fan_in)
    for name in ("weight", "bias"):
        lo, hi, mean, std = _stats(getattr(fl, name).detach().numpy())
        tlo, thi, _, tstd = _stats(getattr(tl, name).detach().numpy())
        assert -bound <= lo and hi <= bound, name
        assert tlo >= -bound and thi <= bound
        n = getattr(fl, name).numel()
        assert abs(std - bound / math.sqrt(3)) < 5 * bound / math.sqrt(n) + 0.02 * bound, name
        assert abs(std - tstd) < 6 * bound / math.sqrt(n) + 0.03 * bound, name
        assert abs(mean) < 5 * bound / math.sqrt(n), name


def test_default_init_bilinear_embedding_norms_prelu(torch):
    fg.manual_seed(0)
    b = nn.Bilinear(20, 30, 40)
    assert np.abs(b.weight.detach().numpy()).max() <= 1 / math.sqrt(20)
    assert abs(b.weight.detach().numpy().std() - 1 / math.sqrt(20) / math.sqrt(3)) < 0.005
    emb = nn.Embedding(1000, 64, padding_idx=3)
    w = emb.weight.detach().numpy()
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01
    np.testing.assert_array_equal(w[3], 0)
    for layer in (nn.BatchNorm2d(7), nn.LayerNorm(7), nn.GroupNorm(1, 7)):
        np.testing.assert_array_equal(layer.weight.detach().numpy(), np.ones(7))
        np.testing.assert_array_equal(layer.bias.detach().numpy(), np.zeros(7))
    bn = nn.BatchNorm1d(7)
    np.testing.assert_array_equal(bn.running_mean.numpy(), np.zeros(7))
    np.testing.assert_array_equal(bn.running_var.numpy(), np.ones(7))
    assert bn.num_batches_tracked.shape == () and bn.num_batches_tracked.dtype == np.int64
    np.testing.assert_array_equal(nn.PReLU(3).weight.detach().numpy(), [0.25] * 3)
    for p in nn.Linear(3, 2).parameters():
        assert isinstance(p, nn.Parameter) and p.is_leaf and p.requires_grad
        assert p.dtype == np.float32


def test_init_is_seeded():
    fg.manual_seed(3)
    a = nn.Linear(5, 4).weight.detach().numpy()
    fg.manual_seed(3)
    b = nn.Linear(5, 4).weight.detach().numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, nn.Linear(5, 4).weight.detach().numpy())


def test_factory_kwargs_dtype():
    layer = nn.Linear(3, 2, dtype=fg.float64)
    assert layer.weight.dtype == np.float64 and layer.bias.dtype == np.float64
    bn = nn.BatchNorm1d(3, dtype=fg.float64)
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64


# --- errors -------------------------------------------------------------------------------------

def test_linear_wrong_features_names_layer_and_sizes():
    layer = nn.Linear(784, 10)
    msg = ("Linear(in_features=784, out_features=10): input has 100 features in its last "
           "dimension (shape (32, 100)), expected 784")
    with pytest.raises(ShapeError) as e:
        layer(fg.zeros(32, 100))
    assert str(e.value) == msg


def test_conv_and_norm_mismatch_messages():
    with pytest.raises(ShapeError, match=r"Conv2d\(3, 16, kernel_size=\(3, 3\), stride=\(1, 1\)\)"
                       r": input has 4 channels in dimension 1 \(shape \(8, 4, 32, 32\)\), "
                       r"expected in_channels=3"):
        nn.Conv2d(3, 16, 3)(fg.zeros(8, 4, 32, 32))
    with pytest.raises(ShapeError, match=r"Conv1d\(.*\): input has 2 channels in dimension 0"):
        nn.Conv1d(3, 4, 2)(fg.zeros(2, 10))
    with pytest.raises(ShapeError, match=r"ConvTranspose2d\(.*\): input has 5 channels"):
        nn.ConvTranspose2d(4, 2, 3)(fg.zeros(1, 5, 4, 4))
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(16, .*\): input has 8 channels in "
                       r"dimension 1 \(shape \(4, 8\)\), expected num_features=16"):
        nn.BatchNorm1d(16)(fg.zeros(4, 8))
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(.*\): expected 4D input \(got 3D"):
        nn.BatchNorm2d(3)(fg.zeros(4, 3, 5))
    with pytest.raises(ShapeError, match=r"LayerNorm\(\(10,\), .*\): input of shape \(4, 8\) "
                       r"does not end with normalized_shape \(10,\)"):
        nn.LayerNorm(10)(fg.zeros(4, 8))
    with pytest.raises(ShapeError, match=r"GroupNorm\(2, 6, .*\): input has 4 channels"):
        nn.GroupNorm(2, 6)(fg.zeros(3, 4, 5))
    with pytest.raises(ShapeError, match=r"Bilinear\(.*\): input2 has 5 features"):
        nn.Bilinear(3, 4, 2)(fg.zeros(2, 3), fg.zeros(2, 5))


def test_constructor_errors_like_torch():
    with pytest.raises(ValueError, match="in_channels .* divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="strided"):
        nn.Conv2d(3, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(3, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only 'zeros'"):
        nn.ConvTranspose2d(3, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="num_channels .* divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(5, 2, padding_idx=5)
    with pytest.raises(ValueError, match="valid sizes range"):
        nn.ConvTranspose2d(3, 2, 3, stride=2)(fg.zeros(1, 3, 4, 4), output_size=(20, 20))


# --- behaviour: a small MLP overfits a tiny batch -----------------------------------------------

def test_mlp_overfits_a_tiny_batch():
    fg.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(),
                          nn.Linear(32, 4))
    rng = np.random.default_rng(0)
    x = fg.tensor(rng.standard_normal((8, 6)).astype(np.float32))
    y = fg.tensor(rng.integers(0, 4, 8))
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(300):
        loss = loss_fn(model(x), y)
        first = first if first is not None else loss.item()
        model.zero_grad()
        loss.backward()
        with fg.no_grad():
            for p in model.parameters():
                p.sub_(p.grad, alpha=0.5)
    assert first > 1.0
    assert loss.item() < 1e-2, f"loss {loss.item():.4f} after 300 steps (from {first:.3f})"
    assert (model(x).argmax(dim=1).numpy() == y.numpy()).all()


def test_cnn_overfits_a_tiny_batch():
    fg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Dropout(0.0), nn.Linear(4 * 4 * 4, 3))
    rng = np.random.default_rng(1)
    x = fg.tensor(rng.standard_normal((6, 1, 8, 8)).astype(np.float32))
    y = fg.tensor(np.array([0, 1, 2, 0, 1, 2]))
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with fg.no_grad():
            for p in model.parameters():
                p.sub_(p.grad, alpha=0.2)
    assert loss.item() < 0.05
