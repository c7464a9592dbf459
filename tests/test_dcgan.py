"""DCGAN (Radford et al. 2016) and conditional GAN (Mirza & Osindero 2014) models: shapes, the
forward and every gradient against equivalent PyTorch modules with the same weights (loaded
through state_dict, both ways), the label errors, and a tiny conditional model that learns."""

import numpy as np
import pytest
import torch

import flowgrad as fg
from flowgrad.models.dcgan import (
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
    dcgan_optimizers,
)

tnn = torch.nn


# --- the same models in PyTorch (the oracle): same parameter names, same computation ----------

def _maps(h, y):
    return torch.cat([h, y[:, :, None, None].expand(-1, -1, *h.shape[2:])], 1)


class TorchGenerator(tnn.Module):
    def __init__(self, latent, channels, size, base, classes):
        super().__init__()
        c = classes or 0
        ups = {28: 2, 32: 3}[size]
        widths = [base * 2 ** (ups - 1 - i) for i in range(ups)]
        self.start, self.widths, self.classes = {28: 7, 32: 4}[size], widths, classes
        self.project = tnn.Linear(latent + c, widths[0] * self.start ** 2, bias=False)
        self.project_norm = tnn.BatchNorm1d(widths[0] * self.start ** 2)
        self.ups = tnn.ModuleList([tnn.ConvTranspose2d(a + c, b, 5, 2, 2, output_padding=1,
                                                       bias=False)
                                   for a, b in zip(widths[:-1], widths[1:])])
        self.norms = tnn.ModuleList([tnn.BatchNorm2d(w) for w in widths[1:]])
        self.out = tnn.ConvTranspose2d(widths[-1] + c, channels, 5, 2, 2, output_padding=1)

    def forward(self, z, labels=None):
        y = None
        if self.classes:
            y = tnn.functional.one_hot(labels, self.classes).to(z.dtype)
            z = torch.cat([z, y], 1)
        h = torch.relu(self.project_norm(self.project(z)))
        h = h.reshape(len(h), self.widths[0], self.start, self.start)
        for up, norm in zip(self.ups, self.norms):
            h = torch.relu(norm(up(h if y is None else _maps(h, y))))
        return torch.tanh(self.out(h if y is None else _maps(h, y)))


class TorchDiscriminator(tnn.Module):
    def __init__(self, channels, size, base, classes):
        super().__init__()
        c = classes or 0
        downs = {28: 2, 32: 3}[size]
        widths = [base * 2 ** i for i in range(downs)]
        self.classes = classes
        self.first = tnn.Conv2d(channels + c, widths[0], 5, 2, 2)
        self.downs = tnn.ModuleList([tnn.Conv2d(a + c, b, 5, 2, 2, bias=False)
                                     for a, b in zip(widths[:-1], widths[1:])])
        self.norms = tnn.ModuleList([tnn.BatchNorm2d(w) for w in widths[1:]])
        self.out = tnn.Linear(widths[-1] * {28: 7, 32: 4}[size] ** 2 + c, 1)

    def forward(self, x, labels=None):
        act = tnn.functional.leaky_relu
        y = None
        if self.classes:
            y = tnn.functional.one_hot(labels, self.classes).to(x.dtype)
            x = _maps(x, y)
        h = act(self.first(x), 0.2)
        for down, norm in zip(self.downs, self.norms):
            h = act(norm(down(h if y is None else _maps(h, y))), 0.2)
        h = h.flatten(1)
        if y is not None:
            h = torch.cat([h, y], 1)
        return self.out(h).reshape(-1)


class TorchMaxout(tnn.Module):
    def __init__(self, n_in, n_out, pieces):
        super().__init__()
        self.n_out, self.pieces = n_out, pieces
        self.weight = tnn.Parameter(torch.empty(n_out * pieces, n_in))
        self.bias = tnn.Parameter(torch.empty(n_out * pieces))

    def forward(self, x):
        z = tnn.functional.linear(x, self.weight, self.bias)
        return z.reshape(*x.shape[:-1], self.n_out, self.pieces).max(-1).values


class TorchCondMLPGenerator(tnn.Module):
    def __init__(self, latent, classes, zh, yh, hidden, pixels):
        super().__init__()
        self.classes = classes
        self.z_map, self.y_map = tnn.Linear(latent, zh), tnn.Linear(classes, yh)
        self.joint, self.out = tnn.Linear(zh + yh, hidden), tnn.Linear(hidden, pixels)

    def forward(self, z, labels):
        y = tnn.functional.one_hot(labels, self.classes).to(z.dtype)
        h = torch.cat([torch.relu(self.z_map(z)), torch.relu(self.y_map(y))], 1)
        return torch.sigmoid(self.out(torch.relu(self.joint(h)))).reshape(len(z), 1, 6, 6)


class TorchCondMLPDiscriminator(tnn.Module):
    def __init__(self, classes, pixels, xu, xp, yu, yp, ju, jp):
        super().__init__()
        self.classes = classes
        self.x_map, self.y_map = TorchMaxout(pixels, xu, xp), TorchMaxout(classes, yu, yp)
        self.joint, self.out = TorchMaxout(xu + yu, ju, jp), tnn.Linear(ju, 1)

    def forward(self, x, labels):
        y = tnn.functional.one_hot(labels, self.classes).to(x.dtype)
        h = torch.cat([self.x_map(x.flatten(1)), self.y_map(y)], 1)
        return self.out(self.joint(h)).reshape(-1)


# --- helpers ------------------------------------------------------------------------------------

def _to_torch(model, torch_model):
    """Load flowgrad's state_dict into the torch model (keys must match exactly)."""
    state = {k: torch.from_numpy(np.array(v.detach().numpy())) for k, v in model.state_dict().items()}
    missing = set(torch_model.state_dict()) ^ set(state)
    assert not missing, missing
    torch_model.load_state_dict(state)


def _compare(fg_model, t_model, fg_inputs, t_inputs, rtol=2e-4, atol=2e-5):
    """Forward in training mode (batch statistics), a weighted sum of the output backward;
    outputs, every parameter gradient and the batch-norm running statistics must agree."""
    out = fg_model(*fg_inputs)
    t_out = t_model(*t_inputs)
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=rtol, atol=atol)
    w = np.random.default_rng(1).normal(size=tuple(out.shape)).astype(np.float32)
    (out * fg.from_numpy(w)).sum().backward()
    (t_out * torch.from_numpy(w)).sum().backward()
    t_params = dict(t_model.named_parameters())
    names = [name for name, _ in fg_model.named_parameters()]
    assert sorted(names) == sorted(t_params)
    for name, p in fg_model.named_parameters():
        assert p.grad is not None, name
        assert p.grad.dtype == fg.float32, name
        g, tg = p.grad.numpy(), t_params[name].grad.numpy()
        scale = max(1e-6, np.abs(tg).max())
        np.testing.assert_allclose(g / scale, tg / scale, rtol=rtol, atol=5e-5, err_msg=name)
    t_state = t_model.state_dict()
    for name, value in fg_model.state_dict().items():
        if "running" in name:
            np.testing.assert_allclose(value.detach().numpy(), t_state[name].numpy(), rtol=1e-4,
                                       atol=1e-6, err_msg=name)
    return out


# --- shapes and initialisation -------------------------------------------------------------------

@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("classes", [None, 10])
def test_shapes(size, classes):
    g = DCGANGenerator(12, 1, size, base_width=4, num_classes=classes)
    d = DCGANDiscriminator(1, size, base_width=4, num_classes=classes)
    labels = None if classes is None else np.arange(3) % classes
    x = g(fg.randn(3, 12), labels)
    assert tuple(x.shape) == (3, 1, size, size) and x.dtype == fg.float32
    assert np.abs(x.detach().numpy()).max() <= 1.0
    assert tuple(d(x, labels).shape) == (3,)


def test_initialisation_follows_radford_et_al():
    fg.manual_seed(0)
    g = DCGANGenerator(100, 1, 28, base_width=64)
    w = g.project.weight.detach().numpy()
    assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001
    gain = g.project_norm.weight.detach().numpy()
    assert abs(gain.mean() - 1) < 0.002 and abs(gain.std() - 0.02) < 0.002
    assert np.all(g.out.bias.detach().numpy() == 0)
    assert g.ups[0].bias is None  # batch norm follows: no bias
    opt_g, opt_d = dcgan_optimizers(g, DCGANDiscriminator())
    assert opt_g.param_groups[0]["lr"] == 2e-4 and opt_g.param_groups[0]["betas"][0] == 0.5


# --- against PyTorch --------------------------------------------------------------------------------

@pytest.mark.parametrize("size,classes", [(28, 10), (32, None)])
def test_generator_and_discriminator_match_torch(size, classes):
    fg.manual_seed(0)
    torch.manual_seed(0)
    latent, base, n = 6, 4, 5
    g = DCGANGenerator(latent, 1, size, base_width=base, num_classes=classes)
    d = DCGANDiscriminator(1, size, base_width=base, num_classes=classes)
    tg, td = TorchGenerator(latent, 1, size, base, classes), TorchDiscriminator(1, size, base,
                                                                                classes)
    _to_torch(g, tg)
    _to_torch(d, td)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, latent)).astype(np.float32)
    labels = rng.integers(0, classes, n) if classes else None
    fg_in = (fg.from_numpy(z),) + ((labels,) if classes else ())
    t_in = (torch.from_numpy(z),) + ((torch.from_numpy(labels),) if classes else ())
    images = _compare(g, tg, fg_in, t_in)
    # the discriminator on real-looking images, same weights, every gradient (input included)
    x = np.tanh(rng.normal(size=tuple(images.shape))).astype(np.float32)
    fx = fg.from_numpy(x).requires_grad_()
    tx = torch.from_numpy(x).requires_grad_()
    _compare(d, td, (fx,) + fg_in[1:], (tx,) + t_in[1:])
    np.testing.assert_allclose(fx.grad.numpy(), tx.grad.numpy(), rtol=2e-4, atol=2e-6)
    # eval mode (running statistics) agrees too
    g.eval()
    tg.eval()
    np.testing.assert_allclose(g(*fg_in).detach().numpy(), tg(*t_in).detach().numpy(), rtol=2e-4,
                               atol=2e-5)


def test_state_dict_from_torch_loads_into_flowgrad():
    torch.manual_seed(3)
    td = TorchDiscriminator(1, 28, 4, 10)
    d = DCGANDiscriminator(1, 28, base_width=4, num_classes=10)
    d.load_state_dict({k: fg.from_numpy(v.detach().numpy().copy())
                       for k, v in td.state_dict().items()})
    x = np.random.default_rng(0).normal(size=(4, 1, 28, 28)).astype(np.float32)
    labels = np.array([0, 3, 9, 3])
    d.eval()
    td.eval()
    np.testing.assert_allclose(d(fg.from_numpy(x), labels).detach().numpy(),
                               td(torch.from_numpy(x), torch.from_numpy(labels)).detach()
                               .numpy(), rtol=1e-4, atol=1e-5)


def test_conditional_mlp_models_match_torch():
    fg.manual_seed(0)
    sizes = dict(z_hidden=7, y_hidden=9, hidden=11)
    g = ConditionalMLPGenerator(5, 4, image_shape=(1, 6, 6), dropout=0.0, **sizes)
    d = ConditionalMLPDiscriminator(4, (1, 6, 6), x_units=8, x_pieces=5, y_units=3,
                                    y_pieces=5, joint_units=6, joint_pieces=4, dropout=0.0)
    tg = TorchCondMLPGenerator(5, 4, 7, 9, 11, 36)
    td = TorchCondMLPDiscriminator(4, 36, 8, 5, 3, 5, 6, 4)
    _to_torch(g, tg)
    _to_torch(d, td)
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 1, size=(5, 5)).astype(np.float32)
    labels = np.array([0, 1, 2, 3, 1])
    out = g(fg.from_numpy(z), labels)
    assert tuple(out.shape) == (5, 1, 6, 6)
    t_out = tg(torch.from_numpy(z), torch.from_numpy(labels))
    np.testing.assert_allclose(out.detach().numpy(), t_out.detach().numpy(), rtol=1e-5,
                               atol=1e-6)
    _compare(g, tg, (fg.from_numpy(z), labels), (torch.from_numpy(z), torch.from_numpy(labels)))
    x = rng.uniform(size=(5, 1, 6, 6)).astype(np.float32)
    _compare(d, td, (fg.from_numpy(x), labels), (torch.from_numpy(x), torch.from_numpy(labels)))


def test_paper_sizes_of_the_conditional_mlp_gan():
    g, d = ConditionalMLPGenerator(), ConditionalMLPDiscriminator()
    assert (g.z_map.out_features, g.y_map.out_features, g.joint.out_features) == (200, 1000, 1200)
    assert g.out.out_features == 784
    assert (d.x_map.out_features, d.x_map.pieces, d.y_map.out_features, d.y_map.pieces,
            d.joint.out_features, d.joint.pieces) == (240, 5, 50, 5, 240, 4)


# --- bad input: clear errors, before any training -------------------------------------------------

def test_labels_outside_the_classes_and_missing_labels_are_clear_errors():
    g = DCGANGenerator(4, 1, 28, base_width=2, num_classes=3)
    d = DCGANDiscriminator(1, 28, base_width=2, num_classes=3)
    z = fg.randn(2, 4)
    with pytest.raises(ValueError, match=r"0\.\.2 \(num_classes=3\); got \[3\]"):
        g(z, [0, 3])
    with pytest.raises(ValueError, match=r"got \[-1\]"):
        d(fg.randn(2, 1, 28, 28), np.array([-1, 2]))
    with pytest.raises(ValueError, match="needs the class labels"):
        g(z)
    with pytest.raises(ValueError, match="integer"):
        g(z, np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="unconditional"):
        DCGANGenerator(4, 1, 28, base_width=2)(z, [0, 1])
    with pytest.raises(ValueError, match="0..9"):
        ConditionalMLPGenerator()(fg.rand(1, 100), [10])
    with pytest.raises(ValueError, match="0..9"):
        ConditionalMLPDiscriminator()(fg.rand(1, 1, 28, 28), [12])


def test_shape_errors_name_the_shapes():
    with pytest.raises(ValueError, match="28 or 32"):
        DCGANGenerator(image_size=64)
    d = DCGANDiscriminator(1, 28, base_width=2)
    with pytest.raises(fg.errors.ShapeError, match=r"\(N, 1, 28, 28\), got \(2, 1, 32, 32\)"):
        d(fg.randn(2, 1, 32, 32))
    with pytest.raises(fg.errors.ShapeError, match=r"\(N, 5\)"):
        DCGANGenerator(5, 1, 28, base_width=2)(fg.randn(2, 4))


# --- behaviour: a tiny conditional DCGAN learns to draw each of two classes -------------------------

def _toy_images(labels, rng):
    """Class 0: a bright vertical bar in the left half; class 1: in the right half (28x28, in
    [-1, 1]), at a random column and with noise."""
    x = -np.ones((len(labels), 1, 28, 28), np.float32)
    for i, label in enumerate(labels):
        col = rng.integers(3, 11) + (14 if label else 0)
        x[i, 0, 4:24, col:col + 3] = 1.0
    return np.clip(x + 0.1 * rng.normal(size=x.shape), -1, 1).astype(np.float32)


def _halves(x):
    return x[:, 0, :, :14].mean((1, 2)), x[:, 0, :, 14:].mean((1, 2))


def test_tiny_conditional_dcgan_learns_to_separate_two_classes():
    fg.manual_seed(0)
    rng = np.random.default_rng(0)
    g = DCGANGenerator(8, 1, 28, base_width=4, num_classes=2)
    d = DCGANDiscriminator(1, 28, base_width=4, num_classes=2)
    opt_g, opt_d = dcgan_optimizers(g, d, lr=2e-3)
    bce = fg.nn.functional.binary_cross_entropy_with_logits
    n = 32
    for _ in range(120):
        labels = rng.integers(0, 2, n)
        real = fg.from_numpy(_toy_images(labels, rng))
        fake = g(fg.from_numpy(rng.uniform(-1, 1, (n, 8)).astype(np.float32)), labels)
        d_loss = (bce(d(real, labels), fg.ones(n)) + bce(d(fake.detach(), labels), fg.zeros(n)))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        g_loss = bce(d(fake, labels), fg.ones(n))  # the non-saturating generator loss
        opt_g.zero_grad()
        g_loss.backward()
        opt_g.step()
    g.eval()
    labels = np.repeat([0, 1], 50)
    with fg.no_grad():
        x = g(fg.from_numpy(rng.uniform(-1, 1, (100, 8)).astype(np.float32)), labels).numpy()
    left, right = _halves(x)
    correct = np.where(labels == 0, left > right, right > left)
    assert correct.mean() >= 0.9, correct.mean()


def test_gan_trainer_rejects_labels_outside_the_classes_before_training():
    """The trainer's dry batch runs the conditional models on one example: a dataset label
    outside the classes is a clear error and no weight has moved."""
    from flowgrad.generative import GANTrainer
    from flowgrad.utils.data import DataLoader, TensorDataset

    g = DCGANGenerator(4, 1, 28, base_width=2, num_classes=3)
    d = DCGANDiscriminator(1, 28, base_width=2, num_classes=3)
    before = {k: v.detach().numpy().copy() for k, v in g.state_dict().items()}
    x = fg.from_numpy(np.zeros((4, 1, 28, 28), np.float32))
    loader = DataLoader(TensorDataset(x, fg.from_numpy(np.array([3, 0, 1, 2]))), batch_size=2)
    trainer = GANTrainer(g, d, *dcgan_optimizers(g, d), latent_dim=4, conditional=True)
    with pytest.raises(ValueError, match="0..2"):
        trainer.fit(loader, 1, progress=False)
    assert all(np.array_equal(v.detach().numpy(), before[k]) for k, v in g.state_dict().items())
    assert trainer.step == 0
