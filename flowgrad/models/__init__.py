"""The model zoo, one file per family (nanoGPT style: a Config dataclass, modules top-down)."""

from .cnn import ConvNet1d, ConvNetConfig, LeNetLike, ModernCNN
from .dcgan import (
    ConditionalMLPDiscriminator,
    ConditionalMLPGenerator,
    DCGANDiscriminator,
    DCGANGenerator,
)
from .gan import GoodfellowMNISTDiscriminator, GoodfellowMNISTGenerator
from .lenet import LeNet5
from .memory import NTM, LSTMBaseline, NTMConfig
from .mlp import MLP, MLPConfig, ResidualMLP
from .ngram import InterpolatedNGram, KneserNey
from .nplm import NPLM, NPLMConfig
from .seq2seq import AttentionSeq2Seq, RNNEncoderDecoder, Seq2SeqConfig
from .sequence import (
    ConditionalGenerator,
    MultiTimescaleRNN,
    RNNLanguageModel,
    SequenceClassifier,
    SequenceTagger,
)
from .syntactic_attention import SyntacticAttentionConfig, SyntacticAttentionSeq2Seq  # noqa: F401

__all__ = ["MLP", "MLPConfig", "ResidualMLP", "LeNet5", "ModernCNN", "LeNetLike",
           "ConvNetConfig", "ConvNet1d"]
__all__ += ["NPLM", "NPLMConfig"]
__all__ += ["InterpolatedNGram", "KneserNey"]
__all__ += ["SequenceClassifier", "SequenceTagger", "ConditionalGenerator", "RNNLanguageModel",
            "MultiTimescaleRNN"]
__all__ += ["AttentionSeq2Seq", "RNNEncoderDecoder", "Seq2SeqConfig"]
__all__ += ["NTM", "NTMConfig", "LSTMBaseline"]
__all__ += ["GoodfellowMNISTGenerator", "GoodfellowMNISTDiscriminator"]
__all__ += ["DCGANGenerator", "DCGANDiscriminator", "ConditionalMLPGenerator",
            "ConditionalMLPDiscriminator"]
