"""The model zoo, one file per family (nanoGPT style: a Config dataclass, modules top-down)."""

from .cnn import ConvNet1d, ConvNetConfig, LeNetLike, ModernCNN
from .lenet import LeNet5
from .mlp import MLP, MLPConfig, ResidualMLP

__all__ = ["MLP", "MLPConfig", "ResidualMLP", "LeNet5", "ModernCNN", "LeNetLike",
           "ConvNetConfig", "ConvNet1d"]
