"""Regularizers Ω(θ) (lecture: "Iterative training by SGD") and annealed noise injection
(lecture: "Injecting Noise", "Continuation Methods"): values and gradients of the penalties,
L2 + SGD = weight decay, noise statistics following the schedule, reproducibility under
fg.manual_seed, exact restore of perturbed weights, state_dict resume."""

import math

import numpy as np
import pytest

import flowgrad as fg
import flowgrad.optim as optim
from flowgrad.optim import GradientNoise, NoiseSchedule, WeightNoise


def _params(dtype="float64", seed=0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((3, 4)), np.array([0.0, -1.5, 2.0]), rng.standard_normal(5)]
    return [fg.tensor(a.astype(dtype), dtype=dtype, requires_grad=True) for a in arrays]


@pytest.mark.parametrize("penalty,ref,grad", [
    (optim.l2_penalty, lambda a: np.sum(a * a), lambda a: 2 * a),
    (optim.l1_penalty, lambda a: np.sum(np.abs(a)), np.sign),
], ids=["l2", "l1"])
def test_penalty_value_and_gradient(torch, penalty, ref, grad):
    ps = _params()
    out = penalty(ps)
    assert out.shape == () and out.requires_grad
    np.testing.assert_allclose(out.item(), sum(ref(p.detach().numpy()) for p in ps), rtol=1e-12)
    out.backward()
    for p in ps:
        np.testing.assert_allclose(p.grad.numpy(), grad(p.detach().numpy()), rtol=1e-12)
    tps = [torch.tensor(p.detach().numpy(), requires_grad=True) for p in ps]
    tout = sum((t * t).sum() for t in tps) if penalty is optim.l2_penalty else \
        sum(t.abs().sum() for t in tps)
    tout.backward()
    np.testing.assert_allclose(out.item(), tout.item(), rtol=1e-12)
    for p, t in zip(ps, tps):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)


def test_penalty_float32_and_inputs():
    ps = _params("float32")
    assert optim.l2_penalty(ps).dtype == np.float32
    assert optim.l1_penalty(ps[0]).dtype == np.float32  # a single tensor
    opt = optim.SGD(ps, lr=0.1)
    np.testing.assert_allclose(optim.l2_penalty(opt.param_groups).item(),
                               optim.l2_penalty(ps).item(), rtol=1e-6)  # param groups
    assert optim.l2_penalty([]).item() == 0.0


@pytest.mark.parametrize("kw", [dict(), dict(momentum=0.9), dict(momentum=0.9, nesterov=True)],
                         ids=["plain", "momentum", "nesterov"])
def test_l2_penalty_with_sgd_equals_weight_decay(kw):
    """L = loss + λ/2·Ω₂(θ) with SGD is the update of SGD(weight_decay=λ) on the loss."""
    lam = 0.1
    rng = np.random.default_rng(1)
    X = fg.tensor(rng.standard_normal((16, 4)))
    y = fg.tensor(rng.standard_normal((16, 1)))
    w0 = rng.standard_normal((4, 1))
    w_pen = fg.tensor(w0.copy(), requires_grad=True)
    w_wd = fg.tensor(w0.copy(), requires_grad=True)
    opt_pen = optim.SGD([w_pen], lr=0.05, **kw)
    opt_wd = optim.SGD([w_wd], lr=0.05, weight_decay=lam, **kw)
    for _ in range(10):
        for w, opt, pen in ((w_pen, opt_pen, True), (w_wd, opt_wd, False)):
            opt.zero_grad()
            loss = ((X @ w - y) ** 2).mean()
            if pen:
                loss = loss + lam / 2 * optim.l2_penalty([w])
            loss.backward()
            opt.step()
    np.testing.assert_allclose(w_pen.detach().numpy(), w_wd.detach().numpy(), rtol=1e-12,
                               atol=1e-14)
    assert not np.allclose(w_pen.detach().numpy(), w0)


def test_l1_penalty_drives_small_weights_to_zero():
    w = fg.tensor([0.02, -0.01, 3.0], requires_grad=True)
    opt = optim.SGD([w], lr=0.001)
    for _ in range(30):
        opt.zero_grad()
        optim.l1_penalty([w]).backward()
        opt.step()
    assert abs(w[0].item()) <= 1e-3 + 1e-9 and abs(w[1].item()) <= 1e-3 + 1e-9
    assert w[2].item() == pytest.approx(3.0 - 30 * 0.001)  # a constant pull of lr·sign(θ)


# --- noise -------------------------------------------------------------------------------------

def test_noise_schedule_kinds():
    s = NoiseSchedule(eta=0.3, gamma=0.55)
    assert s.variance(0) == 0.3 and s(9) == pytest.approx(0.3 / 10 ** 0.55)
    assert s.std(9) == pytest.approx(math.sqrt(0.3 / 10 ** 0.55))
    assert NoiseSchedule(1.0, 0.5, kind="exponential")(3) == 0.125
    lin = NoiseSchedule(1.0, kind="linear", total_steps=10, final=0.2)
    assert lin(0) == 1.0 and lin(5) == pytest.approx(0.6) and lin(50) == pytest.approx(0.2)
    cos = NoiseSchedule(1.0, kind="cosine", total_steps=10)
    assert cos(0) == 1.0 and cos(5) == pytest.approx(0.5) and cos(10) == pytest.approx(0.0)
    assert NoiseSchedule(0.5, kind="constant")(100) == 0.5
    vs = [s(t) for t in range(50)]
    assert all(a > b for a, b in zip(vs, vs[1:]))  # annealed: decreasing
    with pytest.raises(ValueError, match="total_steps"):
        NoiseSchedule(kind="linear")
    with pytest.raises(ValueError, match="kind"):
        NoiseSchedule(kind="quadratic")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_noise_variance_follows_schedule(dtype):
    n = 200_000
    p = fg.zeros(n, dtype=dtype, requires_grad=True)
    eta, gamma = 0.3, 0.55
    noise = GradientNoise([p], eta=eta, gamma=gamma)
    for t in range(6):
        p.grad = fg.zeros(n, dtype=dtype)
        expected = eta / (1 + t) ** gamma
        assert noise.variance == pytest.approx(expected)
        noise.step()
        g = p.grad.numpy()
        assert g.dtype == np.dtype(dtype)
        assert abs(g.mean()) < 5 * math.sqrt(expected / n)
        assert g.var() == pytest.approx(expected, rel=0.02)  # sd of the estimate ≈ 0.3%
    assert noise.t == 6
    noise.t = 999
    p.grad = fg.zeros(n, dtype=dtype)
    noise.step()
    assert p.grad.numpy().var() == pytest.approx(eta / 1000 ** gamma, rel=0.02)


def test_gradient_noise_adds_to_gradient_and_skips_missing():
    a = fg.tensor(np.zeros(1000), requires_grad=True)
    b = fg.tensor(np.zeros(10), requires_grad=True)
    a.grad = fg.tensor(np.full(1000, 5.0))
    noise = GradientNoise([a, b], eta=1e-4)
    noise.step()
    assert b.grad is None
    assert abs(a.grad.numpy().mean() - 5.0) < 0.01 and a.grad.numpy().std() > 0


def _draws(seed, steps=3):
    fg.manual_seed(seed)
    p = fg.zeros(50, requires_grad=True)
    noise = GradientNoise([p], eta=0.01)
    out = []
    for _ in range(steps):
        p.grad = fg.zeros(50)
        noise.step()
        out.append(p.grad.numpy().copy())
    return np.stack(out)


def test_gradient_noise_reproducible_under_manual_seed():
    np.testing.assert_array_equal(_draws(7), _draws(7))
    assert not np.array_equal(_draws(7), _draws(8))


def test_gradient_noise_state_dict_resume():
    p = fg.zeros(10, requires_grad=True)
    noise = GradientNoise([p], schedule=NoiseSchedule(0.5, 0.7))
    for _ in range(4):
        p.grad = fg.zeros(10)
        noise.step()
    sd = noise.state_dict()
    fresh = GradientNoise([p])
    fresh.load_state_dict(sd)
    assert fresh.t == 4 and fresh.variance == noise.variance == pytest.approx(0.5 / 5 ** 0.7)


def test_gradient_noise_with_optimizer_trains():
    """Noisy gradients (annealed) still fit the regression: the annealing lets SGD settle."""
    rng = np.random.default_rng(0)
    X = fg.tensor(rng.standard_normal((64, 3)).astype(np.float32))
    y = X @ fg.tensor([[1.0], [-2.0], [0.5]])
    w = fg.zeros(3, 1, requires_grad=True)
    opt = optim.SGD([w], lr=0.1)
    noise = GradientNoise(opt, eta=0.3, gamma=0.55)  # an optimizer's params
    for _ in range(300):
        opt.zero_grad()
        loss = ((X @ w - y) ** 2).mean()
        loss.backward()
        noise.step()
        opt.step()
    assert loss.item() < 0.05


def test_weight_noise_perturbs_and_restores_exactly():
    fg.manual_seed(3)
    w = fg.randn(100_000, requires_grad=True)
    before = w.detach().numpy().copy()
    wn = WeightNoise([w], std=0.1, gamma=0.55)
    with wn:
        assert wn.perturbed
        delta = w.detach().numpy() - before
        assert delta.std() == pytest.approx(0.1, rel=0.02)
        loss = (w * w).sum()
        loss.backward()
    assert not wn.perturbed
    np.testing.assert_array_equal(w.detach().numpy(), before)  # bit for bit
    np.testing.assert_allclose(w.grad.numpy(), 2 * (before + delta), rtol=1e-5)  # at θ + ε
    assert wn.t == 1 and wn.std == pytest.approx(0.1 / 2 ** (0.55 / 2))
    assert w.dtype == np.float32


def test_weight_noise_gradient_is_unbiased_for_quadratic():
    """The smoothed objective's gradient: for C(θ) = Σθ², E_ε[∇C(θ + ε)] = ∇C(θ)."""
    w = fg.tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    wn = WeightNoise([w], std=0.5)
    grads = []
    for _ in range(4000):
        w.grad = None
        with wn:
            (w * w).sum().backward()
        grads.append(w.grad.numpy().copy())
    np.testing.assert_allclose(np.mean(grads, axis=0), [2.0, -4.0, 1.0], atol=0.06)


def test_weight_noise_errors():
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    wn = WeightNoise([w], std=0.1)
    wn.perturb()
    with pytest.raises(fg.GraphError, match="already perturbed"):
        wn.perturb()
    wn.restore()
    with pytest.raises(fg.GraphError, match="not perturbed"):
        wn.restore()
    opt = optim.SGD([w], lr=0.1)
    with pytest.raises(fg.GraphError, match="after leaving the block"):
        with wn:
            (w * w).sum().backward()
            opt.step()
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])
    with pytest.raises(ZeroDivisionError):  # an error inside the block still restores
        with wn:
            1 / 0
    np.testing.assert_array_equal(w.detach().numpy(), [1.0, 2.0])
    sd = wn.state_dict()
    other = WeightNoise([w])
    other.load_state_dict(sd)
    assert other.t == wn.t == 3 and other.std == wn.std


def test_weight_noise_restore_after_backward_only():
    """Restoring before backward would give the gradient at the wrong point: the version
    counter makes that an error."""
    w = fg.tensor([1.0, 2.0], requires_grad=True)
    wn = WeightNoise([w], std=0.1)
    with wn:
        loss = (w * w).sum()
    with pytest.raises(fg.GraphError, match="modified in place"):
        loss.backward()


@pytest.mark.gpu
@pytest.mark.skipif(not fg.backend.cuda_available(), reason="needs CuPy and CUDA")
def test_noise_on_gpu():
    """Noise is drawn on the device of each array, keeps its dtype, and restores exactly."""
    w = fg.randn(100_000).cuda().requires_grad_()
    w.grad = fg.zeros(100_000).cuda()
    noise = GradientNoise([w], eta=0.04, gamma=0.55)
    noise.step()
    assert w.grad.is_cuda and w.grad.dtype == np.float32
    assert w.grad.cpu().numpy().var() == pytest.approx(0.04, rel=0.03)
    before = w.detach().cpu().numpy().copy()
    with WeightNoise([w], std=0.1) as wn:
        assert wn.perturbed and w.is_cuda
        assert (w.detach().cpu().numpy() - before).std() == pytest.approx(0.1, rel=0.03)
    np.testing.assert_array_equal(w.detach().cpu().numpy(), before)
    assert optim.l2_penalty([w]).is_cuda
