"""A decoder-only causal transformer language model (lecture: "Self-Attention & Transformers";
Vaswani et al. 2017 with the decoder-only, pre-LayerNorm arrangement of GPT-2, Radford et al.
2019).

P(x_1..x_T) = prod_t P(x_t | x_<t) as for the generative RNN, but x_<t is read by causal
self-attention over a window of ``block_size`` tokens instead of a carried state:

    token embedding + learned position embedding -> dropout
    -> num_layers x nn.TransformerEncoderLayer(norm_first=True, activation="gelu")
       under a causal mask -> LayerNorm -> linear to the vocabulary (optionally tied), or an
       adaptive softmax (Grave et al. 2017, ``nn.AdaptiveLogSoftmaxWithLoss``) for large
       vocabularies (``softmax="adaptive"``: the word ids must be sorted by frequency).

forward(tokens (B, T)) -> logits (B, T, V), T <= block_size (with the adaptive softmax: its
normalised log-probabilities, which softmax and cross-entropy treat as logits);
``token_log_prob(tokens, targets)`` -> (B, T) log P(target), without the (B, T, V) scores when
the softmax is adaptive. ``generate`` runs it free with the sampling strategies of
``RNNLanguageModel`` (greedy, temperature, top-k).
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import nn
from ..autograd.grad_mode import no_grad
from ..creation import arange
from ..nn import functional as F
from ..tensor import Tensor
from ..tensor_functions import cat
from .sequence import _make_generator, prefix_batch, sample_logits


@dataclass
class TransformerLMConfig:
    vocab_size: int = 10000
    block_size: int = 128       # the longest context (positions learned)
    d_model: int = 256
    nhead: int = 4
    num_layers: int = 4
    dim_feedforward: int = 1024
    dropout: float = 0.1        # embeddings, attention weights, residual branches
    tie_weights: bool = True    # head.weight is tok_emb.weight (Press & Wolf 2017)
    softmax: str = "full"       # or "adaptive" (Grave et al. 2017)
    cutoffs: tuple = (2000, 10000)  # the adaptive softmax's cluster bounds
    div_value: float = 4.0      # each tail cluster's projection is this much narrower


class TransformerLanguageModel(nn.Module):
    """GPT-style causal transformer LM; state_dict keys ``tok_emb``, ``pos_emb``,
    ``layers.<i>.self_attn...`` (PyTorch's TransformerEncoderLayer), ``norm``, ``head``."""

    def __init__(self, config: TransformerLMConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or TransformerLMConfig(**kwargs)
        if c.d_model % c.nhead:
            raise ValueError(f"TransformerLanguageModel: d_model {c.d_model} is not divisible "
                             f"by nhead {c.nhead}")
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.block_size, c.d_model)
        self.drop = nn.Dropout(c.dropout)
        self.layers = nn.ModuleList([
            nn.TransformerEncoderLayer(c.d_model, c.nhead, c.dim_feedforward, c.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(c.num_layers)])
        self.norm = nn.LayerNorm(c.d_model)
        if c.softmax == "full":
            self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        elif c.softmax == "adaptive":
            if c.tie_weights:
                raise ValueError("TransformerLanguageModel: tie_weights=True needs the full "
                                 "softmax; the adaptive softmax's clusters have their own "
                                 "projections (pass tie_weights=False)")
            self.head = nn.AdaptiveLogSoftmaxWithLoss(c.d_model, c.vocab_size, list(c.cutoffs),
                                                      div_value=c.div_value)
        else:
            raise ValueError(f"TransformerLanguageModel: softmax must be 'full' or 'adaptive', "
                             f"got {c.softmax!r}")
        self._init_weights()
        if c.tie_weights:
            self.head.weight = self.tok_emb.weight

    def _init_weights(self) -> None:
        """N(0, 0.02) embeddings and linear weights, zero biases (GPT-2's initialisation);
        the residual output projections scaled by 1/sqrt(2 * num_layers)."""
        std = 0.02
        with no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                elif "norm" in name:
                    p.fill_(1.0)
                elif name.endswith(("out_proj.weight", "linear2.weight")):
                    p.normal_(0.0, std / (2 * self.config.num_layers) ** 0.5)
                else:
                    p.normal_(0.0, std)

    def features(self, tokens: Tensor) -> Tensor:
        """(B, T) token ids -> (B, T, d_model): the final LayerNorm's output, which the head
        reads."""
        if tokens.ndim != 2:
            raise ValueError(f"TransformerLanguageModel: expected token ids of shape "
                             f"(batch, time), got {tuple(tokens.shape)}")
        t = tokens.shape[1]
        if t > self.config.block_size:
            raise ValueError(f"TransformerLanguageModel: sequence of {t} tokens is longer than "
                             f"block_size {self.config.block_size}")
        pos = arange(t, device=tokens.device)
        x = self.drop(self.tok_emb(tokens) + self.pos_emb(pos))
        mask = nn.Transformer.generate_square_subsequent_mask(t, device=tokens.device,
                                                               dtype=x.dtype)
        for layer in self.layers:
            x = layer(x, src_mask=mask, is_causal=True)
        return self.norm(x)

    def forward(self, tokens: Tensor) -> Tensor:
        h = self.features(tokens)
        if self.config.softmax == "full":
            return self.head(h)
        b, t, d = h.shape
        return self.head.log_prob(h.reshape(b * t, d)).reshape(b, t, -1)

    def token_log_prob(self, tokens: Tensor, targets: Tensor) -> Tensor:
        """log P(targets[b, t] | tokens[b, :t + 1]) for every position, (B, T)."""
        if tuple(targets.shape) != tuple(tokens.shape):
            raise ValueError(f"TransformerLanguageModel.token_log_prob: targets of shape "
                             f"{tuple(targets.shape)}, expected the tokens' {tuple(tokens.shape)}")
        h = self.features(tokens)
        b, t, d = h.shape
        if self.config.softmax == "adaptive":
            return self.head(h.reshape(b * t, d), targets.reshape(-1)).output.reshape(b, t)
        logp = self.head(h).log_softmax(-1)
        return logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)

    def loss(self, tokens: Tensor) -> Tensor:
        """Mean next-token NLL of tokens[:, 1:] given tokens[:, :-1] (teacher forcing)."""
        return self.next_token_loss(tokens[:, :-1], tokens[:, 1:])

    def next_token_loss(self, inputs: Tensor, targets: Tensor) -> Tensor:
        """Mean NLL of ``targets`` (B, T) given ``inputs`` (B, T), one position ahead."""
        if self.config.softmax == "adaptive":
            return -self.token_log_prob(inputs, targets).mean()
        logits = self(inputs)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))

    @no_grad()
    def generate(self, prefix, max_new_tokens: int, strategy: str = "greedy",
                 temperature: float = 1.0, top_k: int | None = None, generator=None,
                 seed: int | None = None) -> Tensor:
        """Read ``prefix`` (P,) or (B, P) and append ``max_new_tokens`` tokens drawn one at a
        time, each from the last ``block_size`` tokens. Returns (P + N,) or (B, P + N)."""
        prefix, single = prefix_batch(prefix, self.tok_emb.weight.device)
        was = self.training
        self.eval()
        generator = _make_generator(generator, seed, prefix.device)
        tokens = prefix
        for _ in range(max_new_tokens):
            logits = self(tokens[:, -self.config.block_size:])[:, -1]
            nxt = sample_logits(logits, strategy, temperature, top_k, generator)
            tokens = cat([tokens, nxt.unsqueeze(1)], dim=1)
        self.train(was)
        return tokens[0] if single else tokens
