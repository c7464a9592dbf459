"""Modular recurrent mechanisms (lecture: System 2 slides): Recurrent Independent Mechanisms
(Goyal et al. 2019), the shared global workspace (Goyal et al. 2021), and their building blocks:
block-diagonal recurrent cells, input and communication attention with a hard top-k."""

from .attention import CommunicationAttention, InputAttention, blocked_grad, topk_mask
from .blocks import BlockGRUCell, BlockLSTMCell
from .inspect import activation_map, attention_heatmap, ball_following_score
from .meta_attention import MetaAttentionLearner, split_parameters
from .relational_memory import RelationalMemory
from .rims import RIM, RIMCell
from .scoff import SCOFF, SchemaAttention, SCOFFCell, gumbel_softmax
from .workspace import SharedWorkspace

__all__ = ["CommunicationAttention", "InputAttention", "blocked_grad", "topk_mask",
           "BlockGRUCell", "BlockLSTMCell", "activation_map", "attention_heatmap",
           "ball_following_score", "MetaAttentionLearner", "split_parameters",
           "RelationalMemory", "RIM", "RIMCell",
           "SCOFF", "SchemaAttention", "SCOFFCell", "gumbel_softmax", "SharedWorkspace"]
