"""fg.optim.lr_scheduler against torch.optim.lr_scheduler: the same lr (and momentum / beta1)
sequence over 30 steps, float for float; ReduceLROnPlateau on a given loss sequence; state_dict
round trips."""

import copy
import math
import warnings

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.optim as optim

STEPS = 30


class _Factor:
    """A callable object (its __dict__ is saved by LambdaLR.state_dict, as in torch)."""

    def __init__(self, rate):
        self.rate = rate

    def __call__(self, epoch):
        return self.rate ** epoch


# name, optimizer ("SGD" or "Adam"), builder(lib, opt) -> scheduler
CASES = [
    ("StepLR", "SGD", lambda S, o: S.StepLR(o, step_size=7, gamma=0.5)),
    ("MultiStepLR", "SGD", lambda S, o: S.MultiStepLR(o, milestones=[3, 10, 10, 21], gamma=0.3)),
    ("ExponentialLR", "SGD", lambda S, o: S.ExponentialLR(o, gamma=0.9)),
    ("CosineAnnealingLR", "SGD", lambda S, o: S.CosineAnnealingLR(o, T_max=10, eta_min=1e-3)),
    ("CosineAnnealingLR-long", "Adam", lambda S, o: S.CosineAnnealingLR(o, T_max=40)),
    ("LambdaLR", "SGD", lambda S, o: S.LambdaLR(o, lr_lambda=lambda e: 1.0 / (1 + e))),
    ("LambdaLR-list", "SGD",
     lambda S, o: S.LambdaLR(o, lr_lambda=[lambda e: 0.9 ** e, lambda e: 1 + e % 3])),
    ("MultiplicativeLR", "SGD", lambda S, o: S.MultiplicativeLR(o, lr_lambda=lambda e: 0.95)),
    ("ConstantLR", "SGD", lambda S, o: S.ConstantLR(o, factor=0.25, total_iters=4)),
    ("LinearLR", "SGD", lambda S, o: S.LinearLR(o, start_factor=0.1, total_iters=8)),
    ("LinearLR-decay", "Adam",
     lambda S, o: S.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=20)),
    ("PolynomialLR", "SGD", lambda S, o: S.PolynomialLR(o, total_iters=12, power=2.0)),
    ("CosineAnnealingWarmRestarts", "SGD",
     lambda S, o: S.CosineAnnealingWarmRestarts(o, T_0=4, T_mult=2, eta_min=1e-4)),
    ("OneCycleLR-cos", "SGD", lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS)),
    ("OneCycleLR-linear-3phase", "SGD",
     lambda S, o: S.OneCycleLR(o, max_lr=[0.5, 0.2], total_steps=STEPS, anneal_strategy="linear",
                               three_phase=True, pct_start=0.25)),
    ("OneCycleLR-adam-betas", "Adam",
     lambda S, o: S.OneCycleLR(o, max_lr=0.01, epochs=3, steps_per_epoch=10, div_factor=10.0,
                               final_div_factor=100.0, base_momentum=0.8, max_momentum=0.9)),
    ("OneCycleLR-no-momentum", "SGD",
     lambda S, o: S.OneCycleLR(o, max_lr=0.5, total_steps=STEPS, cycle_momentum=False)),
    ("CyclicLR-triangular", "SGD",
     lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4)),
    ("CyclicLR-triangular2-asymmetric", "SGD",
     lambda S, o: S.CyclicLR(o, base_lr=[0.01, 0.001], max_lr=[0.1, 0.05], step_size_up=3,
                             step_size_down=5, mode="triangular2", base_momentum=0.7)),
    ("CyclicLR-exp_range-adam", "Adam",
     lambda S, o: S.CyclicLR(o, base_lr=0.001, max_lr=0.01, step_size_up=5, mode="exp_range",
                             gamma=0.97)),
    ("CyclicLR-scale_fn-iterations", "SGD",
     lambda S, o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=6,
                             scale_fn=lambda x: 1 / (1 + 0.1 * x), scale_mode="iterations",
                             cycle_momentum=False)),
    ("SequentialLR-warmup-cosine", "SGD",
     lambda S, o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.01, total_iters=5),
                                     S.CosineAnnealingLR(o, T_max=25)], milestones=[5])),
    ("SequentialLR-three", "SGD",
     lambda S, o: S.SequentialLR(o, [S.ConstantLR(o, factor=0.5, total_iters=3),
                                     S.ExponentialLR(o, gamma=0.9),
                                     S.StepLR(o, step_size=4)], milestones=[4, 12])),
    ("ChainedScheduler", "SGD",
     lambda S, o: S.ChainedScheduler([S.ExponentialLR(o, gamma=0.95),
                                      S.LinearLR(o, start_factor=0.2, total_iters=6)])),
]


def _optimizers(torch, kind):
    a = fg.tensor(np.ones(3), requires_grad=True)
    b = fg.tensor(np.ones(2), requires_grad=True)
    ta = torch.ones(3, dtype=torch.float64, requires_grad=True)
    tb = torch.ones(2, dtype=torch.float64, requires_grad=True)
    if kind == "SGD":
        fo = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1, momentum=0.9)
        to = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.01}], lr=0.1,
                             momentum=0.9)
    else:
        fo = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.003)
        to = torch.optim.Adam([{"params": [ta]}, {"params": [tb], "lr": 0.01}], lr=0.003)
    return fo, to


def _trace(opt, sched, steps, metric=None):
    """lrs (and momentum/beta1) per step; optimizer.step() before scheduler.step()."""
    out = []
    for i in range(steps):
        groups = opt.param_groups
        out.append((list(sched.get_last_lr()), [g["lr"] for g in groups],
                    [g.get("momentum", g.get("betas", (None,))[0]) for g in groups]))
        opt.step()
        if metric is None:
            sched.step()
        else:
            sched.step(metric[i])
    out.append((list(sched.get_last_lr()), [g["lr"] for g in opt.param_groups], None))
    return out


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_sequence_matches_torch(torch, case):
    _, kind, build = case
    fo, to = _optimizers(torch, kind)
    fs, ts = build(optim.lr_scheduler, fo), build(torch.optim.lr_scheduler, to)
    ours, theirs = _trace(fo, fs, STEPS), _trace(to, ts, STEPS)
    assert ours == theirs  # exact: the same float arithmetic in the same order


LOSSES = [1.0, 0.9, 0.91, 0.905, 0.9, 0.92, 0.89, 0.8, 0.8, 0.8001, 0.81, 0.82, 0.83, 0.7,
          0.7, 0.7, 0.7, 0.7, 0.7, 0.7, 0.6, 0.65, 0.66, 0.67, 0.68, 0.69, 0.7, 0.71, 0.72, 0.73,
          0.74, 0.75, 0.76, 0.77, 0.78, 0.79]


@pytest.mark.parametrize("kw", [
    dict(),
    dict(patience=2, factor=0.5),
    dict(patience=1, factor=0.5, cooldown=2, min_lr=0.004),
    dict(patience=1, threshold=0.05, threshold_mode="abs"),
    dict(patience=0, threshold=0.02, threshold_mode="rel", min_lr=[1e-3, 5e-3]),
    dict(mode="max", patience=1, factor=0.7),
    dict(mode="max", patience=2, threshold=0.01, threshold_mode="abs", cooldown=1),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
def test_reduce_lr_on_plateau_matches_torch(torch, kw):
    fo, to = _optimizers(torch, "SGD")
    fs = optim.lr_scheduler.ReduceLROnPlateau(fo, **kw)
    ts = torch.optim.lr_scheduler.ReduceLROnPlateau(to, **kw)
    ours, theirs = _trace(fo, fs, len(LOSSES), LOSSES), _trace(to, ts, len(LOSSES), LOSSES)
    assert ours == theirs
    lrs = [lr[1][0] for lr in ours]
    assert lrs[-1] < lrs[0]
    assert fs.num_bad_epochs == ts.num_bad_epochs and fs.best == ts.best


def test_reduce_lr_on_plateau_accepts_tensor_metric():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    for _ in range(3):
        sched.step(fg.tensor(2.0))
    assert opt.param_groups[0]["lr"] == 0.25


def _resume(kind, build, steps, split, metric=None):
    a = fg.tensor(np.ones(3), requires_grad=True)
    b = fg.tensor(np.ones(2), requires_grad=True)

    def make():
        if kind == "SGD":
            return optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.1,
                             momentum=0.9)
        return optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.01}], lr=0.003)

    opt = make()
    sched = build(optim.lr_scheduler, opt)
    straight = _trace(opt, sched, steps, metric)

    opt = make()
    sched = build(optim.lr_scheduler, opt)
    first = _trace(opt, sched, split, metric)
    opt_sd, sched_sd = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    opt2 = make()
    sched2 = build(optim.lr_scheduler, opt2)  # build, then load optimizer, then scheduler
    opt2.load_state_dict(opt_sd)
    sched2.load_state_dict(sched_sd)
    rest = _trace(opt2, sched2, steps - split, None if metric is None else metric[split:])
    return straight, first[:-1] + rest


@pytest.mark.parametrize("case", CASES, ids=lambda c: c[0])
def test_state_dict_round_trip(case):
    _, kind, build = case
    straight, resumed = _resume(kind, build, STEPS, 12)
    assert straight == resumed


def test_plateau_state_dict_round_trip():
    def build(S, o):
        return S.ReduceLROnPlateau(o, patience=1, factor=0.5, cooldown=1)
    straight, resumed = _resume("SGD", build, len(LOSSES), 11, LOSSES)
    assert straight == resumed


def test_lambda_state_dict_saves_callable_objects_only():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w, fg.tensor([2.0], requires_grad=True)], lr=1.0)
    factor = _Factor(0.5)
    sched = optim.lr_scheduler.LambdaLR(opt, [factor])
    sd = sched.state_dict()
    assert sd["lr_lambdas"] == [{"rate": 0.5}]
    factor.rate = 0.1
    sched.load_state_dict(sd)
    assert factor.rate == 0.5 and "lr_lambdas" in sd


def test_linear_warmup_helper_matches_torch_sequential(torch):
    fo, to = _optimizers(torch, "SGD")
    S, T = optim.lr_scheduler, torch.optim.lr_scheduler
    fs = S.linear_warmup(fo, 5, after=S.CosineAnnealingLR(fo, T_max=25), start_factor=0.01)
    tcos = T.CosineAnnealingLR(to, T_max=25)
    ts = T.SequentialLR(to, [T.LinearLR(to, start_factor=0.01, end_factor=1.0, total_iters=5),
                             tcos], milestones=[5])
    assert _trace(fo, fs, STEPS) == _trace(to, ts, STEPS)
    lrs = [x[1][0] for x in _trace(*_fresh_warmup(), 8)]
    assert lrs[0] == pytest.approx(0.1 * 0.01) and lrs[5] == pytest.approx(0.1)
    assert all(x < y for x, y in zip(lrs[:5], lrs[1:6]))


def _fresh_warmup():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    return opt, optim.lr_scheduler.linear_warmup(opt, 5, start_factor=0.01)


def test_closed_form_epoch_argument_matches_torch(torch):
    fo, to = _optimizers(torch, "SGD")
    fs = optim.lr_scheduler.CosineAnnealingLR(fo, T_max=10)
    ts = torch.optim.lr_scheduler.CosineAnnealingLR(to, T_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 7, 2):
            fo.step(), to.step()
            fs.step(epoch)
            ts.step(epoch)
            assert fs.get_last_lr() == ts.get_last_lr()


def test_one_cycle_errors_and_shape():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(1.0 / 25) and max(lrs) == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(1.0 / 25 / 1e4)
    with pytest.raises(ValueError, match="total_steps"):  # like torch: step total_steps + 1
        sched.step()
    with pytest.raises(ValueError, match="total_steps"):
        optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="momentum"):
        optim.lr_scheduler.OneCycleLR(optim.Adagrad([w]), max_lr=1.0, total_steps=5)
    with pytest.raises(TypeError, match="not a flowgrad Optimizer"):
        optim.lr_scheduler.StepLR(object(), step_size=1)


def test_cosine_reaches_eta_min():
    w = fg.tensor([1.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.001)
    for _ in range(10):
        opt.step()
        sched.step()
    assert math.isclose(sched.get_last_lr()[0], 0.001)
