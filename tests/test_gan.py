"""GAN losses against PyTorch's BCE-with-logits compositions, the GANTrainer (learning a 1-D
Gaussian, exact resume, failure signs, shape checks) and Goodfellow et al.'s MNIST pair."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad import nn
from flowgrad.errors import ShapeError
from flowgrad.generative import GANTrainer, discriminator_loss, generator_loss, save_image_grid
from flowgrad.models.gan import GoodfellowMNISTDiscriminator, GoodfellowMNISTGenerator
from flowgrad.utils.data import DataLoader, TensorDataset

TF = torch.nn.functional


def _torch_d_loss(real, fake):
    return (TF.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + TF.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))


def _torch_g_loss(fake, kind):
    if kind == "minimax":  # mean log(1 - sigmoid(l))
        return torch.log1p(-torch.sigmoid(fake)).mean()
    return -torch.log(torch.sigmoid(fake)).mean()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_discriminator_loss_matches_torch(dtype, shape):
    rng = np.random.default_rng(0)
    a, b = (rng.normal(0, 3, shape).astype(dtype) for _ in range(2))
    ra, fa = fg.tensor(a, requires_grad=True), fg.tensor(b, requires_grad=True)
    rt, ft = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    loss, expected = discriminator_loss(ra, fa), _torch_d_loss(rt, ft)
    loss.backward()
    expected.backward()
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=tol, atol=tol)
    np.testing.assert_allclose(ra.grad.numpy(), rt.grad.numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(fa.grad.numpy(), ft.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["minimax", "nonsaturating"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_generator_loss_matches_torch(kind, dtype):
    a = np.random.default_rng(1).normal(0, 3, (9, 1)).astype(dtype)
    x, xt = fg.tensor(a, requires_grad=True), torch.tensor(a, requires_grad=True)
    loss, expected = generator_loss(x, kind), _torch_g_loss(xt, kind)
    loss.backward()
    expected.backward()
    tol = 1e-12 if dtype == "float64" else 1e-5
    np.testing.assert_allclose(loss.item(), expected.item(), rtol=tol, atol=tol)
    np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=tol, atol=tol)


def test_losses_are_stable_at_extreme_logits_and_saturation_differs():
    big = fg.tensor([-200.0, 200.0], dtype=fg.float64, requires_grad=True)
    for value in (discriminator_loss(big, big), generator_loss(big, "minimax"),
                  generator_loss(big, "nonsaturating")):
        assert np.isfinite(value.item())
    # a confident discriminator (D(G(z)) ~ 0): the minimax gradient vanishes, the other does not
    low = fg.tensor([-10.0], dtype=fg.float64, requires_grad=True)
    generator_loss(low, "minimax").backward()
    minimax_grad = abs(low.grad.item())
    low.grad = None
    generator_loss(low, "nonsaturating").backward()
    assert minimax_grad < 1e-4 < abs(low.grad.item())


def test_loss_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown kind"):
        generator_loss(fg.zeros(3), "wasserstein")
    with pytest.raises(ShapeError, match=r"\(N,\) or \(N, 1\)"):
        discriminator_loss(fg.zeros(3, 2), fg.zeros(3))


# --- the trainer --------------------------------------------------------------------------------

def _gaussian_loader(n=1024, batch=128, mean=3.0, std=0.5, seed=0):
    x = np.random.default_rng(seed).normal(mean, std, (n, 1)).astype(np.float32)
    return DataLoader(TensorDataset(fg.from_numpy(x)), batch_size=batch, shuffle=True)


def _pair(seed=0, dropout=0.0):
    fg.manual_seed(seed)
    g = nn.Sequential(nn.Linear(4, 1))
    d = nn.Sequential(nn.Dropout(dropout), nn.Linear(1, 16), nn.Tanh(), nn.Linear(16, 1))
    return g, d


def _trainer(g, d, lr=0.02, **kwargs):
    return GANTrainer(g, d, fg.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999)),
                      fg.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999)), latent_dim=4,
                      **kwargs)


def test_a_tiny_gan_learns_a_gaussians_mean_and_spread():
    g, d = _pair(0)
    trainer = _trainer(g, d)
    before = trainer.sample(4000).numpy()
    history = trainer.fit(_gaussian_loader(), epochs=60, progress=False)
    after = trainer.sample(4000).numpy()
    assert abs(before.mean() - 3.0) > 2.0
    assert abs(after.mean() - 3.0) < 0.25, after.mean()
    assert 0.25 < after.std() < 1.0, after.std()
    assert len(history) == 60 and {"d_loss", "g_loss", "d_real_accuracy",
                                    "d_fake_accuracy"} <= set(history.last)


def _params(*modules):
    return [p.detach().numpy().copy() for m in modules for p in m.parameters()]


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    g, d = _pair(5, dropout=0.2)
    fg.manual_seed(11)
    full = _trainer(g, d, d_steps=2, checkpoint=False)
    full.fit(_gaussian_loader(n=512), epochs=3, progress=False)
    expected = _params(g, d)

    g1, d1 = _pair(5, dropout=0.2)
    fg.manual_seed(11)
    first = _trainer(g1, d1, d_steps=2, out=tmp_path, sample_every=1)
    first.fit(_gaussian_loader(n=512), epochs=1, progress=False)
    assert (tmp_path / "gan_last.safetensors").exists()
    assert (tmp_path / "samples_epoch001.png").exists()

    g2, d2 = _pair(99, dropout=0.2)  # other weights, other random stream: all restored
    fg.manual_seed(12345)
    second = _trainer(g2, d2, d_steps=2, out=tmp_path)
    history = second.fit(_gaussian_loader(n=512), epochs=3, resume=True, progress=False)
    assert len(history) == 3 and second.step == 12 and second.g_steps == 6
    for a, b in zip(_params(g2, d2), expected):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(history["d_loss"], full.history["d_loss"])


def test_shape_mismatch_is_reported_before_training():
    fg.manual_seed(0)
    g = nn.Linear(4, 3)  # three values per sample, the data has one
    d = nn.Sequential(nn.Linear(1, 8), nn.Tanh(), nn.Linear(8, 1))
    trainer = _trainer(g, d)
    before = _params(g, d)
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(1,\)"):
        trainer.fit(_gaussian_loader(), epochs=1, progress=False)
    for a, b in zip(_params(g, d), before):
        np.testing.assert_array_equal(a, b)
    g2, d2 = nn.Linear(4, 1), nn.Linear(1, 3)  # three logits per example
    with pytest.raises(ShapeError, match=r"\(N,\) or \(N, 1\)"):
        _trainer(g2, d2).fit(_gaussian_loader(), epochs=1, progress=False)


class _CondG(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.lin = nn.Embedding(3, 2), nn.Linear(6, 1)

    def forward(self, z, labels):
        return self.lin(fg.cat([z, self.embed(labels)], dim=1))


class _CondD(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed, self.lin = nn.Embedding(3, 2), nn.Linear(3, 1)

    def forward(self, x, labels):
        return self.lin(fg.cat([x, self.embed(labels)], dim=1))


def test_conditional_labels_outside_the_classes_are_rejected():
    x = fg.randn(8, 1)
    loader = DataLoader(TensorDataset(x, fg.from_numpy(np.array([0] * 7 + [5]))), batch_size=4)
    trainer = _trainer(_CondG(), _CondD(), conditional=True, num_classes=3)
    with pytest.raises(ValueError, match=r"0\.\.2.*5"):
        trainer.fit(loader, epochs=1, progress=False)
    good = DataLoader(TensorDataset(x, fg.from_numpy(np.arange(8) % 3)), batch_size=4)
    trainer.fit(good, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"0\.\.2.*-1"):
        trainer.sample(2, labels=[0, -1])
    assert tuple(trainer.sample(3, labels=[0, 1, 2]).shape) == (3, 1)


def test_bad_options_are_rejected():
    g, d = _pair()
    with pytest.raises(ValueError, match="unknown loss"):
        _trainer(g, d, loss="hinge")
    with pytest.raises(ValueError, match="d_steps"):
        _trainer(g, d, d_steps=0)
    with pytest.raises(ValueError, match="unknown update"):
        _trainer(g, d, update="together")
    with pytest.raises(ValueError, match="d_steps must be 1"):
        _trainer(g, d, update="simultaneous", d_steps=2)
    with pytest.raises(ValueError, match="noise_scale"):
        _trainer(g, d, noise_scale=0)


def test_simultaneous_step_gives_each_network_the_gradient_of_its_own_loss():
    """One forward pass; D's update follows d_loss alone and G's the generator's loss on the
    same logits (Goodfellow et al.'s AdversaryCost2), checked against PyTorch's autograd."""
    g, d = _pair(3)
    tg, td = torch.nn.Linear(4, 1).double(), torch.nn.Sequential(
        torch.nn.Linear(1, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()
    tg.load_state_dict({k.split(".", 1)[1]: torch.from_numpy(v.numpy().astype(np.float64))
                        for k, v in g.state_dict().items()})
    td.load_state_dict({f"{int(k[0]) - 1}{k[1:]}": torch.from_numpy(v.numpy().astype(np.float64))
                        for k, v in d.state_dict().items()})
    z = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    x = np.random.default_rng(1).normal(3.0, 0.5, (8, 1)).astype(np.float32)
    trainer = GANTrainer(g, d, fg.optim.SGD(g.parameters(), lr=0.1),
                         fg.optim.SGD(d.parameters(), lr=0.1), latent_dim=4,
                         update="simultaneous", d_loss_weight=0.5,
                         noise=lambda n, k: fg.from_numpy(z[:n]))
    trainer.simultaneous_step(fg.from_numpy(x))
    fake = tg(torch.from_numpy(z).double())
    real_l, fake_l = td(torch.from_numpy(x).double()), td(fake)
    d_loss = 0.5 * _torch_d_loss(real_l.reshape(-1), fake_l.reshape(-1))
    g_loss = _torch_g_loss(fake_l.reshape(-1), "nonsaturating")
    gd = torch.autograd.grad(d_loss, list(td.parameters()), retain_graph=True)
    gg = torch.autograd.grad(g_loss, list(tg.parameters()))
    for p, tp, grad in zip(list(g.parameters()) + list(d.parameters()),
                           list(tg.parameters()) + list(td.parameters()), gg + gd):
        np.testing.assert_allclose(p.detach().numpy(), (tp - 0.1 * grad).detach().numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_simultaneous_updates_learn_a_gaussian_and_scaled_uniform_noise():
    g, d = _pair(0)
    trainer = _trainer(g, d, update="simultaneous", noise="uniform", noise_scale=3 ** 0.5)
    z = trainer.draw_noise(20_000).numpy()
    assert abs(z.max() - 3 ** 0.5) < 0.01 and abs(z.min() + 3 ** 0.5) < 0.01
    assert abs(z.var() - 1.0) < 0.03
    trainer.fit(_gaussian_loader(), epochs=60, progress=False)
    after = trainer.sample(4000).numpy()
    assert abs(after.mean() - 3.0) < 0.25, after.mean()
    assert trainer.step == trainer.g_steps == 60 * 8


def test_a_winning_discriminator_is_reported():
    g, d = _pair(0)
    trainer = GANTrainer(g, d, fg.optim.SGD(g.parameters(), lr=0.0),
                         fg.optim.Adam(d.parameters(), lr=0.05), latent_dim=4, patience=2)
    history = trainer.fit(_gaussian_loader(mean=8.0, std=0.1), epochs=5, progress=False)
    assert history.last["d_real_accuracy"] == 1.0 and history.last["d_fake_accuracy"] == 1.0
    assert any("100%" in s for _, s in trainer.failure_signs)
    assert "100%" in history.last["failure_signs"]


def test_mode_collapse_is_reported_on_a_ring():
    metrics = pytest.importorskip("flowgrad.generative.metrics")
    centres = np.array([[2 * np.cos(a), 2 * np.sin(a)] for a in np.arange(8) * np.pi / 4])
    x = metrics.ring_of_gaussians(1024, rng=np.random.default_rng(0))
    loader = DataLoader(TensorDataset(fg.from_numpy(np.asarray(x, dtype=np.float32))),
                        batch_size=256, shuffle=True)
    fg.manual_seed(0)
    g = nn.Linear(4, 2)
    with fg.no_grad():
        g.weight.mul_(0.0)
        g.bias.copy_(fg.tensor([2.0, 0.0]))  # every sample on one mode
    d = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1))
    trainer = GANTrainer(g, d, fg.optim.SGD(g.parameters(), lr=0.0),
                         fg.optim.SGD(d.parameters(), lr=0.01), latent_dim=4,
                         mode_centres=centres, mode_std=0.02, coverage_samples=2000, patience=2)
    history = trainer.fit(loader, epochs=2, progress=False)
    assert history.last["modes_covered"] == 1
    assert "mode collapse" in history.last["failure_signs"]


def test_save_image_grid_writes_a_png(tmp_path):
    from matplotlib.image import imread

    path = save_image_grid(np.random.default_rng(0).random((10, 784)), tmp_path / "g.png",
                           nrow=5)
    image = imread(path)
    assert image.shape[:2] == (2 * 30 + 2, 5 * 30 + 2)
    with pytest.raises(ShapeError, match="not square"):
        save_image_grid(np.zeros((2, 10)), tmp_path / "bad.png")


# --- Goodfellow et al.'s MNIST pair -------------------------------------------------------------

def test_goodfellow_mnist_pair_matches_the_paper_code():
    fg.manual_seed(0)
    bias = np.linspace(-3, 3, 784).astype(np.float32)
    g = GoodfellowMNISTGenerator(output_bias=bias)
    d = GoodfellowMNISTDiscriminator()
    sizes = [tuple(p.shape) for p in g.parameters()]
    assert sizes == [(1200, 100), (1200,), (1200, 1200), (1200,), (784, 1200), (784,)]
    assert [tuple(p.shape) for p in d.parameters()] == [(1200, 784), (1200,), (1200, 240),
                                                         (1200,), (1, 240), (1,)]
    assert np.abs(g.net[0].weight.detach().numpy()).max() <= 0.05
    assert np.abs(d.net[1].weight.detach().numpy()).max() <= 0.005
    np.testing.assert_array_equal(g.net[4].bias.detach().numpy(), bias)
    assert [m.p for m in d.net if isinstance(m, nn.Dropout)] == pytest.approx([0.2, 0.5, 0.5])
    out = g(fg.randn(5, 100)).detach()
    assert tuple(out.shape) == (5, 784) and 0 < out.numpy().min() and out.numpy().max() < 1
    d.eval()
    assert tuple(d(out).shape) == (5,)
    with pytest.raises(ValueError, match="784"):
        GoodfellowMNISTGenerator(output_bias=np.zeros(10))


def test_packed_discriminator_sees_groups_of_samples_and_learns():
    """PacGAN: D takes pack samples concatenated along the features, all real or all fake."""
    fg.manual_seed(3)
    g = nn.Sequential(nn.Linear(4, 1))
    seen = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))

        def forward(self, x):
            seen.append(tuple(x.shape))
            return self.net(x)

    trainer = _trainer(g, Probe(), pack=2)
    trainer.fit(_gaussian_loader(), epochs=40, progress=False)
    assert seen[0] == (2, 2) and all(s[1] == 2 for s in seen)
    after = trainer.sample(4000).numpy()
    assert abs(after.mean() - 3.0) < 0.3, after.mean()
    with pytest.raises(ShapeError, match="cannot be packed in groups of pack=2"):
        trainer.discriminator_step(fg.zeros(5, 1))
    with pytest.raises(ValueError, match="pack"):
        _trainer(*_pair(), pack=0)
    with pytest.raises(ValueError, match="not supported for conditional"):
        _trainer(*_pair(), pack=2, conditional=True)
