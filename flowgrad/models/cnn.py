"""Convolutional networks (lecture: "Convolutional Nets"; LeCun et al. 1998)."""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn


@dataclass
class ConvNetConfig:
    in_channels: int = 1
    channels: tuple = (32, 64)   # two conv-ReLU-maxpool stages (3x3 convs, padding 1)
    hidden: int = 128            # the fully connected layer before the classifier
    classes: int = 10
    image_size: int = 28
    dropout: float = 0.25        # before the classifier


class ModernCNN(nn.Module):
    """A modern small CNN (not LeNet-5; that is flowgrad.models.LeNet5): two stages of 3x3
    convolution (padding 1), ReLU and 2x2 max-pooling, a ReLU fully connected layer, dropout,
    a linear classifier.

    Args: x (B, C, H, W). Returns: (B, classes) logits.
    """

    def __init__(self, config: ConvNetConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or ConvNetConfig(**kwargs)
        c1, c2 = c.channels
        side = c.image_size // 4
        self.features = nn.Sequential(  # (B, C, H, W) -> (B, c1, H/2, W/2) -> (B, c2, H/4, W/4)
            nn.Conv2d(c.in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * side * side, c.hidden), nn.ReLU(),
            nn.Dropout(c.dropout), nn.Linear(c.hidden, c.classes),
        )

    def forward(self, x):
        if x.ndim == 2:  # flat images
            side = self.config.image_size
            x = x.reshape(-1, self.config.in_channels, side, side)
        return self.classifier(self.features(x))


LeNetLike = ModernCNN  # the old name


class ConvNet1d(nn.Module):
    """MNIST-1D's official CNN: three stride-2 Conv1d layers and a linear classifier
    (Greydanus 2020). Args: x (B, 40). Returns: (B, 10) logits."""

    def __init__(self, channels: int = 25, length: int = 40, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        out = length
        for k in (5, 3, 3):
            out = (out + 2 - k) // 2 + 1
        self.linear = nn.Linear(channels * out, classes)

    def forward(self, x):
        h = x.reshape(x.shape[0], 1, x.shape[-1])
        h = self.conv1(h).relu()
        h = self.conv2(h).relu()
        h = self.conv3(h).relu()
        return self.linear(h.flatten(1))
