"""Multilayer perceptrons (lecture: "Multilayer network as universal approximator",
"Deep Nets and Backprop")."""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
               "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}


@dataclass
class MLPConfig:
    sizes: tuple = (784, 800, 800, 10)  # input, hidden..., output
    activation: str = "relu"           # relu | tanh | sigmoid | gelu | leaky_relu | elu
    dropout: float = 0.0               # after each hidden layer (Srivastava et al. 2014)


class MLP(nn.Module):
    """Affine layers with a non-linearity between them; logits out.

    Args: x (B, sizes[0]). Returns: (B, sizes[-1]) logits.
    """

    def __init__(self, config: MLPConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = config = config or MLPConfig(**kwargs)
        layers = []
        pairs = list(zip(config.sizes, config.sizes[1:]))
        for i, (a, b) in enumerate(pairs):
            layers.append(nn.Linear(a, b))
            if i < len(pairs) - 1:
                layers.append(ACTIVATIONS[config.activation]())
                if config.dropout:
                    layers.append(nn.Dropout(config.dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x.flatten(1))


class ResidualMLP(nn.Module):
    """MNIST-1D's official MLP: h = relu(W1 x); h = h + relu(W2 h); logits = W3 h
    (Greydanus 2020)."""

    def __init__(self, input_size: int = 40, hidden: int = 100, classes: int = 10) -> None:
        super().__init__()
        self.linear1 = nn.Linear(input_size, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, classes)

    def forward(self, x):
        h = self.linear1(x).relu()
        h = h + self.linear2(h).relu()
        return self.linear3(h)
