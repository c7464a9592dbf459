"""Convolutional and conditional GANs for small single-channel images (lecture: "Convolutional
GANs"; "Generative Adversarial Networks").

- ``DCGANGenerator`` / ``DCGANDiscriminator``: Radford, Metz & Chintala (2016, arXiv 1511.06434),
  "Architecture guidelines for stable Deep Convolutional GANs": no pooling (strided convolutions
  in the discriminator, fractionally strided, i.e. transposed, convolutions in the generator),
  batch normalisation in both except the generator's output layer and the discriminator's input
  layer, no fully connected hidden layers (the generator's first layer projects z and reshapes
  it, the discriminator's last flattens into one logit), ReLU in the generator with a tanh
  output (images scaled to [-1, 1]), LeakyReLU of slope 0.2 in the discriminator, weights from
  N(0, 0.02) (batch-norm gains from N(1, 0.02), as the authors' code Newmu/dcgan_code), trained
  with Adam(lr 2e-4, beta1 0.5): :func:`dcgan_optimizers`. Kernels 5x5 with stride 2 and
  padding 2 as in that code: 28x28 images go 7 -> 14 -> 28, 32x32 images 4 -> 8 -> 16 -> 32.
- Conditional variants (``num_classes``): the one-hot label is concatenated to z, to the input
  of every (transposed) convolution as constant feature maps and to the discriminator's
  flattened features, as in the authors' conditional MNIST DCGAN (``mnist/train_cond_dcgan.py``)
  after Mirza & Osindero (2014).
- ``ConditionalMLPGenerator`` / ``ConditionalMLPDiscriminator``: Mirza & Osindero, "Conditional
  Generative Adversarial Nets" (2014, arXiv 1411.1784), section 4.1: z (100, uniform) -> 200
  ReLU and y (one-hot) -> 1000 ReLU, joined into 1200 ReLU, then 784 sigmoid; the
  discriminator maps x to maxout 240 units x 5 pieces and y to maxout 50 x 5, joined into
  maxout 240 x 4, then one sigmoid unit (here a logit); dropout 0.5 in both.

Every model here returns logits (discriminators, shape (N,)) or images (generators, shape
(N, C, H, W)); ``output_range`` names the generator's pixel range, (-1, 1) or (0, 1).
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn
from ..errors import ShapeError

__all__ = ["DCGANGenerator", "DCGANDiscriminator", "ConditionalMLPGenerator",
           "ConditionalMLPDiscriminator", "dcgan_init_", "dcgan_optimizers", "check_labels"]

KERNEL, STRIDE, PADDING = 5, 2, 2
START = {28: 7, 32: 4}  # the generator's first feature-map size for each image size
UPSAMPLINGS = {28: 2, 32: 3}


def check_labels(labels, num_classes: int | None, where: str):
    """``labels`` as an int64 array of class indices in 0..num_classes-1, or a clear error: a
    conditional model called without labels, an unconditional one with labels, or a label
    outside the classes (Mirza & Osindero condition on one-hot class vectors)."""
    if num_classes is None:
        if labels is not None:
            raise ValueError(f"{where}: labels were given to an unconditional model "
                             "(build it with num_classes=... to condition on the class)")
        return None
    if labels is None:
        raise ValueError(f"{where}: a conditional model (num_classes={num_classes}) needs the "
                         "class labels")
    values = labels.numpy() if isinstance(labels, fg.Tensor) else np.asarray(labels)
    if values.ndim != 1 or not (np.issubdtype(values.dtype, np.integer) or values.size == 0):
        raise ValueError(f"{where}: labels must be a 1-D integer array of class indices, got "
                         f"dtype {values.dtype} and shape {values.shape}")
    bad = values[(values < 0) | (values >= num_classes)]
    if bad.size:
        raise ValueError(f"{where}: labels must lie in 0..{num_classes - 1} (num_classes="
                         f"{num_classes}); got {sorted(set(bad.tolist()))[:10]}")
    return values.astype(np.int64)


def _one_hot(labels: np.ndarray, num_classes: int, dtype) -> fg.Tensor:
    out = np.zeros((len(labels), num_classes), dtype=np.dtype(str(dtype).split(".")[-1]))
    out[np.arange(len(labels)), labels] = 1
    return fg.from_numpy(out)


def _with_label_maps(h, y):
    """Concatenate the one-hot ``y`` (N, K) to ``h`` (N, C, H, W) as K constant feature maps
    (Newmu/dcgan_code's ``conv_cond_concat``)."""
    n, _, height, width = h.shape
    return fg.cat([h, y.reshape(n, y.shape[1], 1, 1).expand(n, y.shape[1], height, width)], 1)


def dcgan_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Radford et al.'s initialisation: every (transposed) convolution and linear weight from
    N(0, std), batch-norm gains from N(1, std), all biases zero."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def dcgan_optimizers(generator: nn.Module, discriminator: nn.Module, lr: float = 2e-4,
                     beta1: float = 0.5):
    """Separate Adam optimizers for G and D with Radford et al.'s settings (lr 2e-4, beta1 0.5:
    "leaving the momentum term at 0.9 resulted in training oscillation and instability")."""
    return (fg.optim.Adam(generator.parameters(), lr=lr, betas=(beta1, 0.999)),
            fg.optim.Adam(discriminator.parameters(), lr=lr, betas=(beta1, 0.999)))


def _check_size(image_size: int, name: str) -> None:
    if image_size not in START:
        raise ValueError(f"{name}: image_size must be 28 or 32, got {image_size!r}")


class DCGANGenerator(nn.Module):
    """z (N, latent_dim) [and labels (N,)] -> images (N, channels, image_size, image_size) in
    [-1, 1]. Widths halve at each upsampling and end at ``base_width`` before the output layer
    (28x28: 2b x 7 x 7 -> b x 14 x 14 -> C x 28 x 28; 32x32: 4b x 4 x 4 -> 2b -> b -> C)."""

    output_range = (-1.0, 1.0)

    def __init__(self, latent_dim: int = 100, channels: int = 1, image_size: int = 28,
                 base_width: int = 64, num_classes: int | None = None) -> None:
        super().__init__()
        _check_size(image_size, "DCGANGenerator")
        self.latent_dim, self.channels, self.image_size = latent_dim, channels, image_size
        self.num_classes = num_classes
        cond = num_classes or 0
        ups = UPSAMPLINGS[image_size]
        widths = [base_width * 2 ** (ups - 1 - i) for i in range(ups)]  # e.g. [2b, b]
        self.start = START[image_size]
        self.project = nn.Linear(latent_dim + cond, widths[0] * self.start ** 2, bias=False)
        self.project_norm = nn.BatchNorm1d(widths[0] * self.start ** 2)
        self.ups = nn.ModuleList(
            [nn.ConvTranspose2d(w + cond, w_out, KERNEL, STRIDE, PADDING, output_padding=1,
                                bias=False) for w, w_out in zip(widths[:-1], widths[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm2d(w) for w in widths[1:]])
        self.out = nn.ConvTranspose2d(widths[-1] + cond, channels, KERNEL, STRIDE, PADDING,
                                      output_padding=1)
        self.widths = widths
        dcgan_init_(self)

    def forward(self, z, labels=None):
        ys = check_labels(labels, self.num_classes, "DCGANGenerator")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ShapeError(f"DCGANGenerator: z must have shape (N, {self.latent_dim}), got "
                             f"{tuple(z.shape)}")
        y = None
        if ys is not None:
            if len(ys) != z.shape[0]:
                raise ShapeError(f"DCGANGenerator: {len(ys)} labels for {z.shape[0]} latent "
                                 "vectors")
            y = _one_hot(ys, self.num_classes, z.dtype)
            z = fg.cat([z, y], 1)
        h = self.project_norm(self.project(z)).relu()
        h = h.reshape(h.shape[0], self.widths[0], self.start, self.start)
        for up, norm in zip(self.ups, self.norms):
            h = norm(up(h if y is None else _with_label_maps(h, y))).relu()
        return self.out(h if y is None else _with_label_maps(h, y)).tanh()


class DCGANDiscriminator(nn.Module):
    """images (N, channels, image_size, image_size) [and labels (N,)] -> logits (N,). Strided
    5x5 convolutions double the width from ``base_width`` (28x28: C -> b x 14 x 14 -> 2b x 7 x
    7; 32x32: C -> b -> 2b -> 4b x 4 x 4), no batch norm on the first, LeakyReLU 0.2, then one
    linear unit on the flattened features."""

    def __init__(self, channels: int = 1, image_size: int = 28, base_width: int = 64,
                 num_classes: int | None = None, negative_slope: float = 0.2) -> None:
        super().__init__()
        _check_size(image_size, "DCGANDiscriminator")
        self.channels, self.image_size, self.num_classes = channels, image_size, num_classes
        cond = num_classes or 0
        downs = UPSAMPLINGS[image_size]
        widths = [base_width * 2 ** i for i in range(downs)]  # e.g. [b, 2b]
        self.first = nn.Conv2d(channels + cond, widths[0], KERNEL, STRIDE, PADDING)
        self.downs = nn.ModuleList(
            [nn.Conv2d(w + cond, w_out, KERNEL, STRIDE, PADDING, bias=False)
             for w, w_out in zip(widths[:-1], widths[1:])])
        self.norms = nn.ModuleList([nn.BatchNorm2d(w) for w in widths[1:]])
        self.act = nn.LeakyReLU(negative_slope)
        self.out = nn.Linear(widths[-1] * START[image_size] ** 2 + cond, 1)
        dcgan_init_(self)

    def forward(self, x, labels=None):
        ys = check_labels(labels, self.num_classes, "DCGANDiscriminator")
        expected = (self.channels, self.image_size, self.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ShapeError(f"DCGANDiscriminator: images must have shape (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]}), got {tuple(x.shape)}")
        y = None
        if ys is not None:
            if len(ys) != x.shape[0]:
                raise ShapeError(f"DCGANDiscriminator: {len(ys)} labels for {x.shape[0]} "
                                 "images")
            y = _one_hot(ys, self.num_classes, x.dtype)
            x = _with_label_maps(x, y)
        h = self.act(self.first(x))
        for down, norm in zip(self.downs, self.norms):
            h = self.act(norm(down(h if y is None else _with_label_maps(h, y))))
        h = h.reshape(h.shape[0], -1)
        if y is not None:
            h = fg.cat([h, y], 1)
        return self.out(h).reshape(-1)


class ConditionalMLPGenerator(nn.Module):
    """Mirza & Osindero (2014) section 4.1: z -> ``z_hidden`` ReLU, one-hot y -> ``y_hidden``
    ReLU, concatenated -> ``hidden`` ReLU (dropout) -> ``out_features`` sigmoid, reshaped to
    ``image_shape``. Weights start as PyTorch's nn.Linear."""

    output_range = (0.0, 1.0)

    def __init__(self, latent_dim: int = 100, num_classes: int = 10, z_hidden: int = 200,
                 y_hidden: int = 1000, hidden: int = 1200, image_shape=(1, 28, 28),
                 dropout: float = 0.5) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.image_shape = tuple(image_shape)
        self.z_map = nn.Linear(latent_dim, z_hidden)
        self.y_map = nn.Linear(num_classes, y_hidden)
        self.joint = nn.Linear(z_hidden + y_hidden, hidden)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, int(np.prod(self.image_shape)))

    def forward(self, z, labels=None):
        ys = check_labels(labels, self.num_classes, "ConditionalMLPGenerator")
        if z.ndim != 2 or z.shape[1] != self.latent_dim or len(ys) != z.shape[0]:
            raise ShapeError(f"ConditionalMLPGenerator: z must have shape (N, "
                             f"{self.latent_dim}) with N labels; got z {tuple(z.shape)} and "
                             f"{len(ys)} labels")
        y = _one_hot(ys, self.num_classes, z.dtype)
        h = fg.cat([self.z_map(z).relu(), self.y_map(y).relu()], 1)
        h = self.drop(self.joint(h).relu())
        return self.out(h).sigmoid().reshape(z.shape[0], *self.image_shape)


class ConditionalMLPDiscriminator(nn.Module):
    """Mirza & Osindero (2014) section 4.1: x -> maxout 240 x 5, one-hot y -> maxout 50 x 5,
    concatenated (dropout) -> maxout 240 x 4 (dropout) -> one logit (the paper's sigmoid unit,
    applied in the loss)."""

    def __init__(self, num_classes: int = 10, image_shape=(1, 28, 28), x_units: int = 240,
                 x_pieces: int = 5, y_units: int = 50, y_pieces: int = 5,
                 joint_units: int = 240, joint_pieces: int = 4, dropout: float = 0.5) -> None:
        super().__init__()
        self.num_classes, self.image_shape = num_classes, tuple(image_shape)
        self.x_map = nn.Maxout(int(np.prod(self.image_shape)), x_units, x_pieces)
        self.y_map = nn.Maxout(num_classes, y_units, y_pieces)
        self.joint = nn.Maxout(x_units + y_units, joint_units, joint_pieces)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(joint_units, 1)

    def forward(self, x, labels=None):
        ys = check_labels(labels, self.num_classes, "ConditionalMLPDiscriminator")
        if tuple(x.shape[1:]) != self.image_shape or len(ys) != x.shape[0]:
            raise ShapeError(f"ConditionalMLPDiscriminator: images must have shape (N, "
                             f"{', '.join(map(str, self.image_shape))}) with N labels; got "
                             f"{tuple(x.shape)} and {len(ys)} labels")
        y = _one_hot(ys, self.num_classes, x.dtype)
        h = fg.cat([self.x_map(x.reshape(x.shape[0], -1)), self.y_map(y)], 1)
        h = self.drop(self.joint(self.drop(h)))
        return self.out(h).reshape(-1)
