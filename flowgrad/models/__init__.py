"""The model zoo, one file per family (nanoGPT style: a Config dataclass, modules top-down)."""

from .cnn import ConvNet1d, ConvNetConfig, LeNetLike, ModernCNN
from .lenet import LeNet5
from .mlp import MLP, MLPConfig, ResidualMLP
from .ngram import InterpolatedNGram, KneserNey
from .nplm import NPLM, NPLMConfig
from .sequence import (
    ConditionalGenerator,
    MultiTimescaleRNN,
    RNNLanguageModel,
    SequenceClassifier,
    SequenceTagger,
)

__all__ = ["MLP", "MLPConfig", "ResidualMLP", "LeNet5", "ModernCNN", "LeNetLike",
           "ConvNetConfig", "ConvNet1d"]
__all__ += ["NPLM", "NPLMConfig"]
__all__ += ["InterpolatedNGram", "KneserNey"]
__all__ += ["SequenceClassifier", "SequenceTagger", "ConditionalGenerator", "RNNLanguageModel",
            "MultiTimescaleRNN"]
