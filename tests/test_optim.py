"""fg.optim against torch.optim: the same parameters and the same gradient sequence give the same
parameters and state after k steps (float32 and float64); state_dict round trips resume bit for
bit; zero_grad; dtypes; and a tiny regression that SGD and Adam actually fit."""

import copy
import warnings

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.optim as optim
from flowgrad import backend

SHAPES = [(3, 4), (5,), (2, 3, 2), (4,)]
K = 10

# name, kwargs (shared by both libraries), param-group layout
CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(lr=0.05, momentum=0.8, dampening=0.3)),
    ("SGD", dict(lr=0.1, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.1, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.05, maximize=True)),
    ("Adam", dict(lr=0.01, maximize=True)),
    ("Adam", dict(lr=0.01, betas=(0.3, 0.9))),  # lerp weight >= 0.5: torch's second formula
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, maximize=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.9)),
    ("RMSprop", dict(lr=0.01, centered=True)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.3, centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.1, initial_accumulator_value=0.5)),
    ("Adagrad", dict(lr=0.1, eps=1e-6, maximize=True)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-4, weight_decay=0.1)),
    ("Adadelta", dict(lr=0.5, maximize=True)),
    ("Adamax", dict(lr=0.01)),
    ("Adamax", dict(lr=0.01, betas=(0.3, 0.9), weight_decay=0.1, maximize=True)),
    ("NAdam", dict(lr=0.01)),
    ("NAdam", dict(lr=0.01, momentum_decay=0.05, weight_decay=0.1)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
    ("RAdam", dict(lr=0.01)),  # rho_t > 5 from step 6: both branches within K = 10 steps
    ("RAdam", dict(lr=0.01, betas=(0.8, 0.9), weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True)),
]

SCALAR_STATE = ("step", "mu_product")  # Python floats here, float32 0-d tensors in torch
TOL = {"float32": dict(rtol=2e-5, atol=2e-6), "float64": dict(rtol=1e-12, atol=1e-13)}


def _case_id(case):
    name, kw = case
    return name + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


def _data(dtype, k=K, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(k)]
    return init, grads


def _fg_params(init):
    return [fg.tensor(a.copy(), dtype=a.dtype.name, requires_grad=True) for a in init]


def _groups(params, grouped):
    if not grouped:
        return params
    return [{"params": params[:2], "lr": 0.003}, {"params": params[2:]}]


def _run_fg(opt, params, grads, skip=None, steps=None):
    for gs in (grads if steps is None else grads[steps[0]:steps[1]]):
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = None if i == skip else fg.tensor(g.copy(), dtype=g.dtype.name)
        opt.step()


def _run_torch(torch, opt, params, grads, skip=None):
    for gs in grads:
        for i, (p, g) in enumerate(zip(params, gs)):
            p.grad = None if i == skip else torch.from_numpy(g.copy())
        opt.step()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("grouped", [False, True], ids=["one-group", "two-groups"])
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_matches_torch(torch, case, grouped, dtype):
    name, kw = case
    init, grads = _data(dtype)
    skip = 3  # the last parameter never gets a gradient: skipped, no state
    fp = _fg_params(init)
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    fo = getattr(optim, name)(_groups(fp, grouped), **kw)
    to = getattr(torch.optim, name)(_groups(tp, grouped), **kw)
    _run_fg(fo, fp, grads, skip=skip)
    _run_torch(torch, to, tp, grads, skip=skip)
    for i, (p, q) in enumerate(zip(fp, tp)):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), **TOL[dtype],
                                   err_msg=f"{name} {kw} param {i}")
    np.testing.assert_array_equal(fp[skip].detach().numpy(), init[skip])
    # state: same keys, same values, same dtypes as the parameter
    for i, (p, q) in enumerate(zip(fp, tp)):
        fs, ts = fo.state.get(p, {}), to.state.get(q, {})
        assert set(fs) == set(ts), (i, set(fs), set(ts))
        for key, tv in ts.items():
            fv = fs[key]
            if key in SCALAR_STATE:
                assert float(fv) == float(tv)
            else:
                assert fv.dtype == np.dtype(dtype)
                np.testing.assert_allclose(fv.numpy(), tv.numpy(), **TOL[dtype],
                                           err_msg=f"{name} state {key}")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_format_matches_torch(torch, case):
    name, kw = case
    init, grads = _data("float64", k=3)
    fp, tp = _fg_params(init), [torch.tensor(a.copy(), requires_grad=True) for a in init]
    fo = getattr(optim, name)(_groups(fp, True), **kw)
    to = getattr(torch.optim, name)(_groups(tp, True), **kw)
    _run_fg(fo, fp, grads, skip=1)
    _run_torch(torch, to, tp, grads, skip=1)
    fsd, tsd = fo.state_dict(), to.state_dict()
    assert list(fsd["state"]) == list(tsd["state"])
    for idx, tstate in tsd["state"].items():
        assert set(fsd["state"][idx]) == set(tstate)
        for key, tv in tstate.items():
            fv = fsd["state"][idx][key]
            assert isinstance(fv, fg.Tensor)
            if key in SCALAR_STATE:  # a float32 0-d tensor, as in torch
                assert fv.shape == () and fv.dtype == np.float32 and fv.item() == tv.item()
            else:
                np.testing.assert_allclose(fv.numpy(), tv.numpy(), rtol=1e-12)
    assert len(fsd["param_groups"]) == len(tsd["param_groups"])
    for fg_group, t_group in zip(fsd["param_groups"], tsd["param_groups"]):
        assert set(fg_group) <= set(t_group), set(fg_group) - set(t_group)
        for key, value in fg_group.items():
            assert value == t_group[key], key


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_state_dict_resume_is_bit_identical(case):
    name, kw = case
    init, grads = _data("float32")
    straight = _fg_params(init)
    opt = getattr(optim, name)(_groups(straight, True), **kw)
    _run_fg(opt, straight, grads, skip=3)

    resumed = _fg_params(init)
    first = getattr(optim, name)(_groups(resumed, True), **kw)
    _run_fg(first, resumed, grads, skip=3, steps=(0, 5))
    saved = copy.deepcopy(first.state_dict())
    saved_params = [p.detach().numpy().copy() for p in resumed]
    del first
    again = _fg_params(saved_params)
    fresh = getattr(optim, name)(_groups(again, True), **kw)
    fresh.load_state_dict(saved)
    _run_fg(fresh, again, grads, skip=3, steps=(5, 10))
    for p, q in zip(straight, again):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    for p, q in zip(straight, again):
        for key, value in opt.state.get(p, {}).items():
            other = fresh.state[q][key]
            if key in SCALAR_STATE:
                assert value == other
            else:
                np.testing.assert_array_equal(value.numpy(), other.numpy())
                assert other.dtype == np.float32


def test_load_state_dict_deep_copies_and_casts():
    init, grads = _data("float64", k=2)
    fp = _fg_params(init)
    opt = optim.Adam(fp, lr=0.01)
    _run_fg(opt, fp, grads)
    sd = opt.state_dict()
    fp32 = _fg_params([a.astype(np.float32) for a in init])
    opt32 = optim.Adam(fp32, lr=0.5)
    opt32.load_state_dict(sd)
    assert opt32.param_groups[0]["lr"] == 0.01
    assert opt32.param_groups[0]["params"][0] is fp32[0]
    m = opt32.state[fp32[0]]["exp_avg"]
    assert m.dtype == np.float32
    assert not np.shares_memory(m._data, opt.state[fp[0]]["exp_avg"]._data)
    assert opt32.state[fp32[0]]["step"] == 2.0
    # NumPy arrays (as read back from an .npz checkpoint) load too, and string keys
    raw = {"state": {str(k): {n: (v.numpy() if isinstance(v, fg.Tensor) else v)
                              for n, v in s.items()} for k, s in sd["state"].items()},
           "param_groups": sd["param_groups"]}
    opt32.load_state_dict(raw)
    np.testing.assert_allclose(opt32.state[fp32[1]]["exp_avg_sq"].numpy(),
                               opt.state[fp[1]]["exp_avg_sq"].numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="parameter groups"):
        optim.Adam(_groups(_fg_params(init), True)).load_state_dict(sd)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop", "Adagrad"])
def test_torch_state_dict_loads_and_continues(torch, name):
    """Weights and optimizer state move from torch to flowgrad: 5 steps in torch, then 5 more in
    both from torch's state_dict (tensors as NumPy arrays) give the same parameters."""
    kw = {"SGD": dict(lr=0.1, momentum=0.9), "Adam": dict(lr=0.01, amsgrad=True),
          "RMSprop": dict(lr=0.01, centered=True, momentum=0.5),
          "Adagrad": dict(lr=0.1, lr_decay=0.01)}[name]
    init, grads = _data("float64")
    tp = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    to = getattr(torch.optim, name)(tp, **kw)
    _run_torch(torch, to, tp, grads[:5])
    tsd = to.state_dict()
    sd = {"state": {k: {n: (v.numpy() if torch.is_tensor(v) else v) for n, v in s.items()}
                    for k, s in tsd["state"].items()},
          "param_groups": copy.deepcopy(tsd["param_groups"])}
    fp = _fg_params([p.detach().numpy() for p in tp])
    fo = getattr(optim, name)(fp, **kw)
    fo.load_state_dict(sd)
    _run_torch(torch, to, tp, grads[5:])
    _run_fg(fo, fp, grads, steps=(5, 10))
    for p, q in zip(fp, tp):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-12)


def test_zero_grad():
    p = fg.tensor([1.0, 2.0], requires_grad=True)
    q = fg.tensor([3.0], requires_grad=True)
    opt = optim.SGD([p, q], lr=0.1)
    (p.sum() * 3 + q.sum()).backward()
    g = p.grad
    opt.zero_grad(set_to_none=False)
    assert p.grad is g and np.all(p.grad.numpy() == 0) and np.all(q.grad.numpy() == 0)
    opt.zero_grad()
    assert p.grad is None and q.grad is None
    opt.step()  # nothing has a gradient: nothing moves
    np.testing.assert_array_equal(p.detach().numpy(), [1.0, 2.0])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"])
def test_float32_stays_float32_and_in_place(name):
    kw = {"SGD": dict(lr=0.1, momentum=0.9, weight_decay=0.1),
          "RMSprop": dict(centered=True, momentum=0.9)}.get(name, {})
    p = fg.randn(4, 3, requires_grad=True)
    assert p.dtype == np.float32
    arr = p._data
    version = p._version
    opt = getattr(optim, name)([p], **kw)
    for _ in range(3):
        p.grad = fg.randn(4, 3)
        opt.step()
    assert p._data is arr and p.dtype == np.float32  # updated in place, no upcast
    assert p._version == version + 3
    for key, value in opt.state[p].items():
        if key not in SCALAR_STATE:
            assert value.dtype == np.float32, key


def test_param_groups_and_add_param_group():
    a = fg.tensor([1.0], requires_grad=True)
    b = fg.tensor([2.0], requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.5
    assert opt.param_groups[1]["momentum"] == 0.9
    c = fg.tensor([3.0], requires_grad=True)
    opt.add_param_group({"params": [c], "lr": 1.0})
    for p in (a, b, c):
        p.grad = fg.tensor([1.0])
    opt.step()
    np.testing.assert_allclose([a.item(), b.item(), c.item()], [0.9, 1.5, 2.0])
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(a, lr=0.1)
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([a * 2], lr=0.1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([a], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([a], betas=(1.0, 0.9))
    with pytest.raises(TypeError, match="set"):
        optim.SGD([{"params": {a}}])


def test_step_closure_and_no_grad():
    w = fg.tensor([2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        assert fg.is_grad_enabled()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 4.0 and w.item() == 1.0
    assert fg.is_grad_enabled()


def test_named_parameters_and_repr():
    a = fg.tensor([1.0], requires_grad=True)
    opt = optim.Adam([("weight", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["weight"]
    assert opt.state_dict()["param_groups"][0]["param_names"] == ["weight"]
    assert "Adam (" in repr(opt) and "lr: 0.1" in repr(opt)


def test_step_after_optimizer_update_breaks_saved_graph():
    """The optimizer bumps each parameter's version like torch, so a backward through a graph
    that saved the old value fails loudly instead of using the updated weights."""
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    y = (w * w).sum()
    w.grad = fg.tensor([1.0, 1.0])
    opt.step()
    with pytest.raises(fg.GraphError, match="modified in place"):
        y.backward()


def _regression(seed=0, n=64):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    w_true = np.array([[1.5], [-2.0], [0.5]], np.float32)
    y = X @ w_true + 0.3 + 0.01 * rng.standard_normal((n, 1)).astype(np.float32)
    return fg.tensor(X), fg.tensor(y)


@pytest.mark.parametrize("name,kw,steps", [("SGD", dict(lr=0.1), 200),
                                           ("SGD", dict(lr=0.05, momentum=0.9), 200),
                                           ("Adam", dict(lr=0.05), 400)])
def test_fits_linear_regression(name, kw, steps):
    X, y = _regression()
    w = fg.zeros(3, 1, requires_grad=True)
    b = fg.zeros(1, requires_grad=True)
    opt = getattr(optim, name)([w, b], **kw)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = ((X @ w + b - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 1e-3 < losses[0]
    assert w.dtype == np.float32


def test_scheduler_warns_when_stepped_before_optimizer():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step"):
        sched.step()
    opt2 = optim.SGD([w], lr=0.1)
    sched2 = optim.lr_scheduler.StepLR(opt2, step_size=2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sched2.step()


gpu = pytest.mark.skipif(not backend.cuda_available(), reason="needs CuPy and CUDA")


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_gpu_matches_cpu(case):
    """The same update on CuPy arrays gives the NumPy result; state stays on the GPU."""
    name, kw = case
    init, grads = _data("float64")
    cpu, gpu_params = _fg_params(init), [p.cuda().detach().requires_grad_() for p in
                                         _fg_params(init)]
    oc = getattr(optim, name)(_groups(cpu, True), **kw)
    og = getattr(optim, name)(_groups(gpu_params, True), **kw)
    _run_fg(oc, cpu, grads, skip=3)
    for gs in grads:
        for i, (p, g) in enumerate(zip(gpu_params, gs)):
            p.grad = None if i == 3 else fg.tensor(g.copy(), dtype="float64").cuda()
        og.step()
    for p, q in zip(cpu, gpu_params):
        assert q.is_cuda
        np.testing.assert_allclose(q.detach().cpu().numpy(), p.detach().numpy(), rtol=1e-10,
                                   atol=1e-12)
    for q in gpu_params:
        for key, value in og.state.get(q, {}).items():
            if key not in SCALAR_STATE:
                assert value.is_cuda, key
    sd = copy.deepcopy(og.state_dict())
    cpu2 = _fg_params([q.detach().cpu().numpy() for q in gpu_params])
    o2 = getattr(optim, name)(_groups(cpu2, True), **kw)
    o2.load_state_dict(sd)  # GPU state onto CPU parameters
    for q in cpu2:
        for key, value in o2.state.get(q, {}).items():
            if key not in SCALAR_STATE:
                assert value.device == "cpu"


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta",
                                  "Adamax", "NAdam", "RAdam"])
def test_signature_and_group_keys_are_torchs(torch, name):
    """torch code runs unchanged: the same arguments (torch's implementation switches
    included) and the same param-group keys and values."""
    import inspect

    ours = inspect.signature(getattr(optim, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    assert list(ours) == list(theirs)
    for key, t in theirs.items():
        assert (ours[key].kind, repr(ours[key].default)) == (t.kind, repr(t.default)), key
    switches = {"foreach": False, "fused": None}
    switches = {k: v for k, v in switches.items() if k in theirs}
    fg_group = getattr(optim, name)([fg.nn.Parameter(fg.ones(2))], lr=0.1, **switches)
    t_group = getattr(torch.optim, name)([torch.nn.Parameter(torch.ones(2))], lr=0.1,
                                          **switches)
    fsd, tsd = fg_group.state_dict()["param_groups"][0], t_group.state_dict()["param_groups"][0]
    assert fsd == tsd
    with pytest.raises(ValueError, match=f"{name}: differentiable=True"):
        getattr(optim, name)([fg.nn.Parameter(fg.ones(2))], differentiable=True)


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", {"lr": 0.1, "momentum": 0.9}), ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"lr": 0.1}), ("AdamW", {"lr": 0.1, "amsgrad": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9, "centered": True}), ("Adagrad", {"lr": 0.1}),
    ("Adadelta", {}), ("Adamax", {}), ("NAdam", {}), ("RAdam", {}),
])
def test_optimizers_update_a_0d_parameter_like_torch(name, kwargs):
    """A scalar parameter (a 0-d tensor) keeps 0-d array state (NumPy turns 0-d results into
    scalars, which in-place updates cannot write into)."""
    import torch

    p = fg.nn.Parameter(fg.tensor(1.0))
    q = torch.nn.Parameter(torch.tensor(1.0))
    mine, theirs = getattr(fg.optim, name)([p], **kwargs), getattr(torch.optim, name)([q], **kwargs)
    for _ in range(3):
        for param, opt in ((p, mine), (q, theirs)):
            opt.zero_grad()
            (param * param).backward()
            opt.step()
    assert p.shape == ()
    np.testing.assert_allclose(p.item(), q.item(), rtol=1e-5, atol=1e-7)
