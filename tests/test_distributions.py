"""flowgrad.distributions against torch.distributions: values, shapes, every parameter's
gradient (float32 and float64), sampling statistics, rsample gradients, KL and validation."""

from __future__ import annotations

import numpy as np
import pytest

import flowgrad as fg
from flowgrad import distributions as D

TOL = {np.float32: dict(rtol=2e-5, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-10)}


def _pos(rng, shape, lo=0.3, hi=2.0):
    return rng.uniform(lo, hi, shape)


def _params_normal(rng):
    return {"loc": rng.standard_normal((3, 4)), "scale": _pos(rng, (4,))}


def _params_probs(rng):
    return {"probs": rng.uniform(0.05, 0.95, (3, 4))}


def _params_logits(rng):
    return {"logits": 2 * rng.standard_normal((3, 4))}


def _params_cat_probs(rng):
    return {"probs": _pos(rng, (3, 5), 0.05, 1.0)}


def _params_cat_logits(rng):
    return {"logits": 2 * rng.standard_normal((3, 5))}


def _params_uniform(rng):
    low = rng.standard_normal((3,))
    return {"low": low, "high": low + _pos(rng, (3,), 0.5, 2.0)}


# name -> (params, make(lib, **params), value(rng, params) as numpy, has cdf/icdf)
CASES = {
    "normal": (_params_normal, lambda L, loc, scale: L.Normal(loc, scale),
               lambda rng, p: rng.standard_normal((2, 3, 4)), True),
    "normal_number_scale": (lambda rng: {"loc": rng.standard_normal((5,))},
                            lambda L, loc: L.Normal(loc, 0.7),
                            lambda rng, p: rng.standard_normal((5,)), True),
    "bernoulli_probs": (_params_probs, lambda L, probs: L.Bernoulli(probs=probs),
                        lambda rng, p: rng.integers(0, 2, (3, 4)).astype(float), False),
    "bernoulli_logits": (_params_logits, lambda L, logits: L.Bernoulli(logits=logits),
                         lambda rng, p: rng.integers(0, 2, (2, 3, 4)).astype(float), False),
    "categorical_probs": (_params_cat_probs, lambda L, probs: L.Categorical(probs=probs),
                          lambda rng, p: rng.integers(0, 5, (2, 3)), False),
    "categorical_logits": (_params_cat_logits, lambda L, logits: L.Categorical(logits=logits),
                           lambda rng, p: rng.integers(0, 5, (3,)), False),
    "uniform": (_params_uniform, lambda L, low, high: L.Uniform(low, high),
                lambda rng, p: p["low"] + rng.uniform(0, 1, (4, 1, 3)) * (p["high"] - p["low"]),
                True),
    "independent_normal": (lambda rng: {"loc": rng.standard_normal((3, 4)),
                                        "scale": _pos(rng, (3, 4))},
                           lambda L, loc, scale: L.Independent(L.Normal(loc, scale), 1),
                           lambda rng, p: rng.standard_normal((2, 3, 4)), False),
    "independent_bernoulli": (lambda rng: {"logits": rng.standard_normal((2, 3, 4))},
                              lambda L, logits: L.Independent(L.Bernoulli(logits=logits), 2),
                              lambda rng, p: rng.integers(0, 2, (2, 3, 4)).astype(float),
                              False),
}


def _both(torch, params, dtype):
    fgp = {k: fg.tensor(v.astype(dtype), requires_grad=True) for k, v in params.items()}
    thp = {k: torch.tensor(v.astype(dtype), requires_grad=True) for k, v in params.items()}
    return fgp, thp


def _value(torch, v, dtype):
    if np.issubdtype(v.dtype, np.integer):
        return fg.tensor(v.astype(np.int64)), torch.tensor(v.astype(np.int64))
    return fg.tensor(v.astype(dtype)), torch.tensor(v.astype(dtype))


def _close(a, b, dtype, what):
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy()
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs torch {b.shape}"
    np.testing.assert_allclose(a, b, equal_nan=True, err_msg=what, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(CASES))
def test_values_and_gradients_match_torch(torch, name, dtype):
    make_params, make, make_value, has_cdf = CASES[name]
    rng = np.random.default_rng(1)
    params = make_params(rng)
    fgp, thp = _both(torch, params, dtype)
    fd, td = make(D, **fgp), make(torch.distributions, **thp)
    assert fd.batch_shape == tuple(td.batch_shape)
    assert fd.event_shape == tuple(td.event_shape)
    assert fd.has_rsample == td.has_rsample
    fv, tv = _value(torch, make_value(rng, params), dtype)
    flp, tlp = fd.log_prob(fv), td.log_prob(tv)
    fent, tent = fd.entropy(), td.entropy()
    _close(flp, tlp, dtype, "log_prob")
    _close(fent, tent, dtype, "entropy")
    assert flp.dtype == fent.dtype == (fg.float32 if dtype is np.float32 else fg.float64)
    for attr in ("mean", "variance", "stddev", "mode"):
        _close(getattr(fd, attr), getattr(td, attr), dtype, attr)
    (flp.sum() + fent.sum()).backward()
    (tlp.sum() + tent.sum()).backward()
    for k in params:
        _close(fgp[k].grad, thp[k].grad, dtype, f"d/d{k} of log_prob + entropy")
    if has_cdf:
        fgp, thp = _both(torch, params, dtype)
        fd, td = make(D, **fgp), make(torch.distributions, **thp)
        fv, tv = _value(torch, make_value(rng, params), dtype)
        q = rng.uniform(0.02, 0.98, tuple(fv.shape))
        fq, tq = _value(torch, q, dtype)
        fc, tc = fd.cdf(fv), td.cdf(tv)
        fi, ti = fd.icdf(fq), td.icdf(tq)
        _close(fc, tc, dtype, "cdf")
        _close(fi, ti, dtype, "icdf")
        (fc.sum() + fi.sum()).backward()
        (tc.sum() + ti.sum()).backward()
        for k in params:
            _close(fgp[k].grad, thp[k].grad, dtype, f"d/d{k} of cdf + icdf")


@pytest.mark.parametrize("name", list(CASES))
def test_expand_and_sample_shapes(torch, name):
    make_params, make, make_value, _ = CASES[name]
    rng = np.random.default_rng(2)
    params = make_params(rng)
    fgp, thp = _both(torch, params, np.float64)
    fd, td = make(D, **fgp), make(torch.distributions, **thp)
    new_batch = (2,) + tuple(td.batch_shape)
    fe, te = fd.expand(new_batch), td.expand(new_batch)
    assert type(fe) is type(fd)
    assert fe.batch_shape == tuple(te.batch_shape) and fe.event_shape == tuple(te.event_shape)
    fv, tv = _value(torch, make_value(rng, params), np.float64)
    _close(fe.log_prob(fv), te.log_prob(tv), np.float64, "expanded log_prob")
    for shape in [(), (5,), (2, 3)]:
        s = fd.sample(shape)
        assert s.shape == tuple(td.sample(shape).shape)
        assert not s.requires_grad
        assert fe.sample(shape).shape == tuple(te.sample(shape).shape)
    assert fd.sample(4).shape == tuple(td.sample((4,)).shape)
    if td.has_rsample:
        r = fd.rsample((3,))
        assert r.shape == tuple(td.rsample((3,)).shape) and r.requires_grad


def test_scalar_parameters_and_dtypes(torch):
    for fd, td in [(D.Normal(0.0, 1.0), torch.distributions.Normal(0.0, 1.0)),
                   (D.Bernoulli(0.3), torch.distributions.Bernoulli(0.3)),
                   (D.Uniform(-1.0, 2.0), torch.distributions.Uniform(-1.0, 2.0))]:
        assert fd.batch_shape == tuple(td.batch_shape) == ()
        assert fd.mean.dtype == fg.float32
        assert fd.sample((3,)).shape == (3,)
    n = D.Normal(fg.zeros(3, dtype=fg.float64), 2.0)
    assert n.scale.dtype == fg.float64 and n.batch_shape == (3,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kl_divergence_matches_torch(torch, dtype):
    rng = np.random.default_rng(3)
    TD = torch.distributions
    pairs = [
        ({"a": rng.standard_normal((3, 2)), "b": _pos(rng, (3, 2)), "c": rng.standard_normal(2),
          "d": _pos(rng, (2,))},
         lambda L, a, b, c, d: (L.Normal(a, b), L.Normal(c, d))),
        ({"a": rng.uniform(0.05, 0.95, (4,)), "c": rng.standard_normal((4,))},
         lambda L, a, c: (L.Bernoulli(probs=a), L.Bernoulli(logits=c))),
        ({"a": _pos(rng, (3, 5)), "c": rng.standard_normal((5,))},
         lambda L, a, c: (L.Categorical(probs=a), L.Categorical(logits=c))),
        ({"a": np.array([0.0, -1.0, 0.2]), "b": np.array([1.0, 0.5, 0.4]),
          "c": np.array([-0.5, -2.0, 0.1]), "d": np.array([1.5, 0.6, 3.0])},
         lambda L, a, b, c, d: (L.Uniform(a, b), L.Uniform(c, d))),
        ({"a": rng.standard_normal((2, 3)), "b": _pos(rng, (2, 3)),
          "c": rng.standard_normal((2, 3)), "d": _pos(rng, (2, 3))},
         lambda L, a, b, c, d: (L.Independent(L.Normal(a, b), 2),
                                L.Independent(L.Normal(c, d), 2))),
    ]
    for params, make in pairs:
        fgp, thp = _both(torch, params, dtype)
        fk = D.kl_divergence(*make(D, **fgp))
        tk = TD.kl_divergence(*make(TD, **thp))
        _close(fk, tk, dtype, "kl")
        fk.sum().backward()
        tk.sum().backward()
        for k in params:
            _close(fgp[k].grad, thp[k].grad, dtype, f"d/d{k} of kl")


def test_kl_edge_cases_match_torch(torch):
    TD = torch.distributions
    p = np.array([0.0, 1.0, 0.3, 0.0, 1.0])
    q = np.array([0.5, 0.5, 0.0, 0.0, 1.0])
    fk = D.kl_divergence(D.Bernoulli(fg.tensor(p)), D.Bernoulli(fg.tensor(q)))
    tk = TD.kl_divergence(TD.Bernoulli(torch.tensor(p)), TD.Bernoulli(torch.tensor(q)))
    _close(fk, tk, np.float64, "bernoulli kl at 0 and 1")
    cp = np.array([[0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    cq = np.array([[0.5, 0.0, 0.5], [0.2, 0.8, 0.0]])
    fk = D.kl_divergence(D.Categorical(fg.tensor(cp)), D.Categorical(fg.tensor(cq)))
    tk = TD.kl_divergence(TD.Categorical(torch.tensor(cp)), TD.Categorical(torch.tensor(cq)))
    _close(fk, tk, np.float64, "categorical kl with zeros")
    fk = D.kl_divergence(D.Uniform(0.0, 2.0), D.Uniform(0.5, 3.0))
    assert fk.item() == np.inf == TD.kl_divergence(TD.Uniform(0.0, 2.0), TD.Uniform(0.5, 3.0))


def test_kl_unregistered_and_register_kl(torch):
    with pytest.raises(NotImplementedError):
        torch.distributions.kl_divergence(torch.distributions.Categorical(logits=torch.zeros(3)),
                                          torch.distributions.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError, match="Categorical.*Normal"):
        D.kl_divergence(D.Categorical(logits=fg.zeros(3)), D.Normal(0.0, 1.0))
    with pytest.raises(NotImplementedError):
        D.kl_divergence(D.Independent(D.Normal(fg.zeros(2, 3), 1.0), 1),
                        D.Independent(D.Normal(fg.zeros(2, 3), 1.0), 2))

    class MyNormal(D.Normal):
        pass

    # a subclass inherits the parent pair until a more specific one is registered
    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == pytest.approx(0.5)

    @D.register_kl(MyNormal, D.Normal)
    def _kl(p, q):
        return fg.tensor(42.0)

    assert D.kl_divergence(MyNormal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == 42.0
    assert D.kl_divergence(D.Normal(0.0, 1.0), D.Normal(1.0, 1.0)).item() == pytest.approx(0.5)
    with pytest.raises(TypeError):
        D.register_kl(int, D.Normal)


def test_sample_statistics_and_reproducibility():
    n = 40000
    loc, scale = np.array([1.0, -2.0]), np.array([0.5, 2.0])
    x = D.Normal(fg.tensor(loc), fg.tensor(scale)).sample((n,)).numpy()
    assert np.all(np.abs(x.mean(0) - loc) < 5 * scale / np.sqrt(n))
    assert np.all(np.abs(x.var(0) / scale**2 - 1) < 0.05)
    p = np.array([0.1, 0.5, 0.9])
    b = D.Bernoulli(fg.tensor(p)).sample((n,)).numpy()
    assert set(np.unique(b)) <= {0.0, 1.0}
    assert np.all(np.abs(b.mean(0) - p) < 5 * np.sqrt(p * (1 - p) / n))
    probs = np.array([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]])
    c = D.Categorical(fg.tensor(probs)).sample((n,)).numpy()
    assert c.dtype == np.int64 and c.shape == (n, 2)
    freq = np.stack([(c == k).mean(0) for k in range(4)], -1)
    assert np.all(np.abs(freq - probs) < 5 * np.sqrt(probs * (1 - probs) / n) + 1e-12)
    assert not np.any(c[:, 0] == 1)  # zero probability is never drawn
    low, high = np.array([-1.0, 2.0]), np.array([1.0, 5.0])
    u = D.Uniform(fg.tensor(low), fg.tensor(high)).sample((n,)).numpy()
    assert np.all((u >= low) & (u < high))
    assert np.all(np.abs(u.mean(0) - (low + high) / 2) < 5 * (high - low) / np.sqrt(12 * n))
    assert np.all(np.abs(u.var(0) / ((high - low) ** 2 / 12) - 1) < 0.05)
    for dist in [D.Normal(0.0, 1.0), D.Bernoulli(0.4), D.Categorical(fg.ones(5)),
                 D.Uniform(0.0, 1.0)]:
        fg.manual_seed(7)
        first = dist.sample((50,)).numpy()
        fg.manual_seed(7)
        np.testing.assert_array_equal(first, dist.sample((50,)).numpy())


def test_rsample_gradients():
    loc = fg.tensor(0.3, requires_grad=True)
    scale = fg.tensor(1.5, requires_grad=True)
    x = D.Normal(loc, scale).rsample((1000,))
    x.mean().backward()
    assert loc.grad.item() == pytest.approx(1.0)
    eps = (x.detach().numpy() - 0.3) / 1.5
    assert scale.grad.item() == pytest.approx(eps.mean(), rel=1e-5)
    low = fg.tensor([0.0, 1.0], requires_grad=True)
    high = fg.tensor([2.0, 4.0], requires_grad=True)
    y = D.Uniform(low, high).rsample((500,))
    y.sum().backward()
    u = (y.detach().numpy() - np.array([0.0, 1.0])) / np.array([2.0, 3.0])
    np.testing.assert_allclose(high.grad.numpy(), u.sum(0), rtol=1e-4)
    np.testing.assert_allclose(low.grad.numpy(), 500 - u.sum(0), rtol=1e-4)
    mu = fg.zeros(2, 3, requires_grad=True)
    D.Independent(D.Normal(mu, 1.0), 1).rsample((4,)).sum().backward()
    np.testing.assert_allclose(mu.grad.numpy(), np.full((2, 3), 4.0))
    with pytest.raises(NotImplementedError):
        D.Bernoulli(0.5).rsample()


def test_training_a_gaussian_by_maximum_likelihood():
    data = fg.tensor(np.random.default_rng(4).normal(3.0, 0.5, 400))
    loc = fg.zeros((), dtype=fg.float64, requires_grad=True)
    log_scale = fg.zeros((), dtype=fg.float64, requires_grad=True)
    opt = fg.optim.Adam([loc, log_scale], lr=0.05)
    for _ in range(300):
        loss = -D.Normal(loc, log_scale.exp()).log_prob(data).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loc.item() == pytest.approx(data.numpy().mean(), abs=0.02)
    assert np.exp(log_scale.item()) == pytest.approx(data.numpy().std(), rel=0.05)


BAD = [
    ("negative scale", lambda L, T: L.Normal(T([0.0, 1.0]), T([1.0, -1.0]))),
    ("zero scale", lambda L, T: L.Normal(0.0, T(0.0))),
    ("nan loc", lambda L, T: L.Normal(T([float("nan")]), 1.0)),
    ("probs above 1", lambda L, T: L.Bernoulli(probs=T([0.5, 1.2]))),
    ("probs below 0", lambda L, T: L.Bernoulli(probs=-0.1)),
    ("both probs and logits", lambda L, T: L.Bernoulli(probs=T([0.5]), logits=T([0.0]))),
    ("neither", lambda L, T: L.Categorical()),
    ("negative categorical probs", lambda L, T: L.Categorical(probs=T([-0.2, 0.3, 0.5]))),
    ("0-d categorical probs", lambda L, T: L.Categorical(probs=T(1.0))),
    ("low >= high", lambda L, T: L.Uniform(T([0.0, 1.0]), T([1.0, 1.0]))),
    ("too many reinterpreted dims", lambda L, T: L.Independent(L.Normal(T([0.0]), 1.0), 2)),
    ("bernoulli value 0.5", lambda L, T: L.Bernoulli(probs=T([0.3])).log_prob(T([0.5]))),
    ("categorical value K", lambda L, T: L.Categorical(logits=T([0.0, 0.0])).log_prob(T(2))),
    ("categorical value -1", lambda L, T: L.Categorical(logits=T([0.0, 0.0])).log_prob(T(-1))),
    ("uniform value outside", lambda L, T: L.Uniform(0.0, 1.0).log_prob(T(1.5))),
    ("uniform cdf outside", lambda L, T: L.Uniform(0.0, 1.0).cdf(T(-0.5))),
    ("normal value nan", lambda L, T: L.Normal(0.0, 1.0).log_prob(T(float("nan")))),
    ("value not a tensor", lambda L, T: L.Normal(0.0, 1.0).log_prob(0.5)),
    ("value not broadcastable", lambda L, T: L.Normal(T([0.0, 1.0]), 1.0).log_prob(T([0.0] * 3))),
    ("wrong event shape", lambda L, T: L.Independent(L.Normal(T([0.0, 1.0]), 1.0), 1)
     .log_prob(T([0.0] * 3))),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_validation_errors_match_torch(torch, case):
    _, build = case
    with pytest.raises(Exception) as expected:
        build(torch.distributions, torch.tensor)
    with pytest.raises(expected.type):
        build(D, fg.tensor)


def test_validation_messages_and_switch():
    with pytest.raises(ValueError, match=r"parameter scale .*GreaterThan\(lower_bound=0.0\)"):
        D.Normal(0.0, -1.0)
    with pytest.raises(ValueError, match=r"parameter probs .*Interval\(lower_bound=0.0, "
                                         r"upper_bound=1.0\)"):
        D.Bernoulli(probs=fg.tensor([1.5]))
    with pytest.raises(ValueError, match=r"within the support \(Boolean\(\)\)"):
        D.Bernoulli(probs=0.5).log_prob(fg.tensor(0.5))
    lp = D.Uniform(0.0, 1.0, validate_args=False).log_prob(fg.tensor([2.0, -1.0, 0.5]))
    assert lp.numpy().tolist() == [-np.inf, -np.inf, 0.0]
    D.Normal(0.0, -1.0, validate_args=False)
    D.Distribution.set_default_validate_args(False)
    try:
        D.Normal(0.0, -1.0)
    finally:
        D.Distribution.set_default_validate_args(True)
    with pytest.raises(ValueError):
        D.Normal(0.0, -1.0)


def test_constraints_and_supports_match_torch(torch):
    TD = torch.distributions
    C, TC = D.constraints, TD.constraints
    for ours, theirs in [(C.real, TC.real), (C.positive, TC.positive),
                         (C.unit_interval, TC.unit_interval), (C.boolean, TC.boolean),
                         (C.simplex, TC.simplex), (C.integer_interval(0, 2), TC.integer_interval(0, 2)),
                         (C.independent(C.real, 1), TC.independent(TC.real, 1))]:
        assert repr(ours) == repr(theirs)
        assert ours.event_dim == theirs.event_dim and ours.is_discrete == theirs.is_discrete
    x = np.array([[0.2, 0.8], [-0.1, 1.1], [0.5, 0.6]])
    for ours, theirs in [(C.simplex, TC.simplex), (C.unit_interval, TC.unit_interval),
                         (C.independent(C.positive, 1), TC.independent(TC.positive, 1))]:
        np.testing.assert_array_equal(ours.check(fg.tensor(x)).numpy(),
                                      theirs.check(torch.tensor(x)).numpy())
    assert repr(D.Categorical(logits=fg.zeros(3)).support) == \
        repr(TD.Categorical(logits=torch.zeros(3)).support)
    assert repr(D.Independent(D.Normal(fg.zeros(3), 1.0), 1).support) == \
        repr(TD.Independent(TD.Normal(torch.zeros(3), 1.0), 1).support)
    assert set(D.Normal(0.0, 1.0).arg_constraints) == {"loc", "scale"}
    assert set(D.Uniform(0.0, 1.0).arg_constraints) == {"low", "high"}
    assert repr(D.Normal(0.0, 1.0)) == "Normal(loc: 0.0, scale: 1.0)"
    assert fg.distributions is D


def test_enumerate_support_matches_torch(torch):
    TD = torch.distributions
    _close(D.Bernoulli(fg.tensor([0.3, 0.6])).enumerate_support(),
           TD.Bernoulli(torch.tensor([0.3, 0.6])).enumerate_support(), np.float32, "bernoulli")
    _close(D.Categorical(fg.ones(2, 3)).enumerate_support(expand=False),
           TD.Categorical(torch.ones(2, 3)).enumerate_support(expand=False), np.float32, "cat")
