"""LeNet-5 as LeCun, Bottou, Bengio & Haffner (1998) define it ("Gradient-based learning applied
to document recognition", section II.B and Table I), with one stated change: the output layer.

    input 32x32 (MNIST's 28x28 padded by 2)
    C1  6 maps 28x28, 5x5 convolution                                    156 parameters
    S2  6 maps 14x14, 2x2 sum * trainable coefficient + trainable bias     12 parameters
    C3  16 maps 10x10, 5x5 convolution over the S2 maps of Table I      1,516 parameters
    S4  16 maps 5x5, like S2                                               32 parameters
    C5  120 maps 1x1, 5x5 convolution fully connected to S4            48,120 parameters
    F6  84 units                                                       10,164 parameters
    out 10 units: the paper's Euclidean RBF units with fixed +-1 codes are replaced here by a
        linear layer 84 -> 10 trained with softmax cross-entropy             850 parameters

Every layer up to F6 is followed by the paper's squashing function f(a) = 1.7159 tanh(2a/3)
(S2 and S4 too: "the result is passed through a sigmoidal function"). The input is scaled as
in the paper: background (white) -0.1, foreground (black) 1.175. Initialisation, F the unit's
fan-in, biases 0: ``init="paper"`` is the paper's appendix, uniform in [-2.4/F, 2.4/F]; it was
made for its second-order (diagonal Levenberg-Marquardt) training, and under plain SGD the
signal shrinks layer by layer (the standard deviation of the logits at initialisation is about
1e-4) so that nothing learns. ``init="lecun"`` (the default) is LeCun, Bottou, Orr & Mueller's
"Efficient BackProp" (1998) rule for this squashing function: uniform with standard deviation
F^-1/2, i.e. in [-sqrt(3/F), sqrt(3/F)].
"""

from __future__ import annotations

import numpy as np

import flowgrad as fg

from .. import nn

A, S = 1.7159, 2.0 / 3.0

# Table I: for each of the 16 C3 maps, the S2 maps (0..5) it is connected to.
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)


def c3_connections() -> np.ndarray:
    """Table I as a (16, 6) 0/1 array: entry [j, i] is 1 when C3 map j sees S2 map i."""
    table = np.zeros((16, 6), np.float32)
    for j, maps in enumerate(C3_TABLE):
        table[j, list(maps)] = 1.0
    return table


class ScaledTanh(nn.Module):
    """f(a) = 1.7159 tanh(2a/3): f(+-1) = +-1, the paper's squashing function."""

    def forward(self, x):
        return (x * S).tanh() * A


class Subsampling(nn.Module):
    """S2/S4: the sum of each non-overlapping 2x2 block, times a trainable coefficient, plus a
    trainable bias, one pair per map (the squashing function follows as its own module)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(fg.empty(channels).uniform_(-0.5, 0.5))  # reset by LeNet5
        self.bias = nn.Parameter(fg.zeros(channels))

    def forward(self, x):
        s = nn.functional.avg_pool2d(x, 2) * 4.0
        return s * self.weight.reshape(1, -1, 1, 1) + self.bias.reshape(1, -1, 1, 1)


class MaskedConv2d(nn.Conv2d):
    """A Conv2d whose weight is multiplied by a fixed 0/1 connection mask (C3's Table I): the
    masked entries are zero at initialisation, contribute nothing and get zero gradient."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int,
                 connections: np.ndarray) -> None:
        super().__init__(in_channels, out_channels, kernel_size)
        mask = np.broadcast_to(connections[:, :, None, None],
                               (out_channels, in_channels, kernel_size, kernel_size))
        self.register_buffer("mask", fg.from_numpy(np.ascontiguousarray(mask, np.float32)),
                             persistent=False)
        with fg.no_grad():
            self.weight.mul_(self.mask)

    def num_trainable(self) -> int:
        """Trainable parameters: the connected weights and the biases."""
        return int(self.mask.numpy().sum()) + (self.bias.numel() if self.bias is not None else 0)

    def forward(self, x):
        return nn.functional.conv2d(x, self.weight * self.mask, self.bias)


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998), RBF output replaced by a linear layer (see the module doc).

    Args: x (B, 1, 28, 28) or (B, 1, 32, 32) or (B, 784), pixels in [0, 1] (1 = ink).
    Returns: (B, 10) logits.
    """

    def __init__(self, classes: int = 10, scale_input: bool = True, init: str = "lecun") -> None:
        super().__init__()
        if init not in ("lecun", "paper"):
            raise ValueError(f"LeNet5: init must be 'lecun' or 'paper', got {init!r}")
        self.scale_input, self.init = scale_input, init
        self.c1 = nn.Conv2d(1, 6, 5)
        self.s2 = Subsampling(6)
        self.c3 = MaskedConv2d(6, 16, 5, c3_connections())
        self.s4 = Subsampling(16)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, classes)
        self.act = ScaledTanh()
        self.reset_parameters()

    def _bound(self, fan_in: int) -> float:
        return 2.4 / fan_in if self.init == "paper" else (3.0 / fan_in) ** 0.5

    @fg.no_grad()
    def reset_parameters(self) -> None:
        """Uniform in [-b(F), b(F)], F the fan-in of the unit (C3: of each map's own
        connections; S2/S4: 4), b = 2.4/F (init="paper") or sqrt(3/F) (init="lecun");
        biases 0."""
        for layer in (self.c1, self.c5, self.f6, self.output):
            fan_in = int(np.prod(layer.weight.shape[1:]))
            layer.weight.uniform_(-self._bound(fan_in), self._bound(fan_in))
            layer.bias.zero_()
        for layer in (self.s2, self.s4):
            layer.weight.uniform_(-self._bound(4), self._bound(4))
            layer.bias.zero_()
        w = np.empty(self.c3.weight.shape, np.float32)
        for j, maps in enumerate(C3_TABLE):
            bound = self._bound(len(maps) * 25)
            w[j] = fg.empty(w[j].shape).uniform_(-bound, bound).numpy()
        self.c3.weight.copy_(fg.from_numpy(w) * self.c3.mask)
        self.c3.bias.zero_()

    def num_trainable(self) -> int:
        """Trainable parameters counted as the paper does (C3's masked weights excluded)."""
        total = sum(p.numel() for p in self.parameters())
        return total - self.c3.weight.numel() + int(self.c3.mask.numpy().sum())

    def features(self, x):
        """Every layer's output, in order: a list of (name, tensor)."""
        if x.ndim == 2:
            x = x.reshape(-1, 1, 28, 28)
        if x.shape[-1] == 28:
            x = nn.functional.pad(x, (2, 2, 2, 2))
        if self.scale_input:
            x = x * 1.275 - 0.1  # background -0.1, ink 1.175 (section II.B)
        out = [("input", x)]
        h = self.act(self.c1(x))
        out.append(("c1", h))
        h = self.act(self.s2(h))
        out.append(("s2", h))
        h = self.act(self.c3(h))
        out.append(("c3", h))
        h = self.act(self.s4(h))
        out.append(("s4", h))
        h = self.act(self.c5(h))
        out.append(("c5", h))
        h = self.act(self.f6(h.flatten(1)))
        out.append(("f6", h))
        out.append(("output", self.output(h)))
        return out

    def forward(self, x):
        return self.features(x)[-1][1]
