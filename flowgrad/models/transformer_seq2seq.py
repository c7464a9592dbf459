"""A transformer encoder–decoder for sequence-to-sequence tasks (lecture: "Self-Attention &
Transformers"; Vaswani et al. 2017, §3), following the seq2seq protocol of
``flowgrad.models.seq2seq`` so that ``greedy_decode`` and ``beam_search`` drive it.

Tokens are embedded (drawn N(0, 1/d_model) and scaled by sqrt(d_model), §3.4, so that they
have the scale of the positions), summed with sinusoidal positions (§3.5)
and read by ``nn.Transformer`` (PyTorch's layout and state_dict keys under ``transformer.``);
the decoder attends causally to its own prefix and to the whole source, with padding masked
on both sides; a linear layer gives the output logits. Token ids follow the convention
PAD=0, BOS=1, EOS=2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, as_tensor
from ..tensor_functions import cat

PAD = 0


@dataclass
class TransformerSeq2SeqConfig:
    src_vocab: int = 16
    tgt_vocab: int = 16
    d_model: int = 128
    nhead: int = 4
    num_encoder_layers: int = 2
    num_decoder_layers: int = 2
    dim_feedforward: int = 256
    dropout: float = 0.1
    max_len: int = 128          # the longest source or target the positions cover


class TransformerSeq2Seq(nn.Module):
    """forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, V); padding
    (id 0) in ``tgt_in`` is masked as a key, and positions past ``src_lengths`` in ``src``."""

    def __init__(self, config: TransformerSeq2SeqConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or TransformerSeq2SeqConfig(**kwargs)
        self.src_embed = nn.Embedding(c.src_vocab, c.d_model, padding_idx=PAD)
        self.tgt_embed = nn.Embedding(c.tgt_vocab, c.d_model, padding_idx=PAD)
        self.positions = nn.SinusoidalPositionalEncoding(c.d_model, dropout=c.dropout,
                                                         max_len=c.max_len, batch_first=True)
        self.transformer = nn.Transformer(c.d_model, c.nhead, c.num_encoder_layers,
                                          c.num_decoder_layers, c.dim_feedforward, c.dropout,
                                          batch_first=True)
        self.out = nn.Linear(c.d_model, c.tgt_vocab)
        with no_grad():  # N(0, 1/d_model): scaled by sqrt(d_model), unit scale like the positions
            for emb in (self.src_embed, self.tgt_embed):
                emb.weight.normal_(0.0, c.d_model ** -0.5)
                emb.weight[PAD] = 0.0

    def _embed(self, embedding: nn.Embedding, tokens: Tensor) -> Tensor:
        return self.positions(embedding(tokens) * math.sqrt(self.config.d_model))

    def _source_padding(self, src: Tensor, src_lengths) -> Tensor:
        lengths = np.asarray(as_tensor(src_lengths).cpu().numpy()).reshape(-1, 1)
        if lengths.shape[0] != src.shape[0]:
            raise ValueError(f"TransformerSeq2Seq: {lengths.shape[0]} src_lengths for a batch "
                             f"of {src.shape[0]} sources {tuple(src.shape)}")
        pad = np.arange(src.shape[1])[None, :] >= lengths
        return as_tensor(pad, device=src.device)

    def encode(self, src: Tensor, src_lengths) -> tuple[Tensor, Tensor]:
        """(memory (B, S, d_model), source key padding mask (B, S), True = padding)."""
        if src.ndim != 2:
            raise ValueError(f"TransformerSeq2Seq: expected src of shape (batch, time), got "
                             f"{tuple(src.shape)}")
        pad = self._source_padding(src, src_lengths)
        memory = self.transformer.encoder(self._embed(self.src_embed, src),
                                          src_key_padding_mask=pad)
        return memory, pad

    def decode(self, memory: Tensor, src_pad: Tensor, tgt_in: Tensor,
               last_only: bool = False) -> Tensor:
        """Logits (B, T, V) of every target position, or (B, V) of the last one."""
        t = tgt_in.shape[1]  # True = may not attend: the future (bool, as the padding masks)
        causal = as_tensor(np.triu(np.ones((t, t), dtype=bool), 1), device=tgt_in.device)
        h = self.transformer.decoder(self._embed(self.tgt_embed, tgt_in), memory,
                                     tgt_mask=causal, tgt_is_causal=True,
                                     tgt_key_padding_mask=tgt_in == PAD,
                                     memory_key_padding_mask=src_pad)
        return self.out(h[:, -1] if last_only else h)

    def forward(self, src: Tensor, src_lengths, tgt_in: Tensor) -> Tensor:
        memory, pad = self.encode(src, src_lengths)
        return self.decode(memory, pad, tgt_in)

    # --- the seq2seq protocol: one decoding step at a time -------------------------------------

    def start(self, src: Tensor, src_lengths) -> dict:
        memory, pad = self.encode(src, src_lengths)
        return {"memory": memory, "pad": pad, "prefix": None, "cache": None}

    def step(self, state: dict, prev_tokens: Tensor):
        """Append ``prev_tokens`` (B,) to the prefix and return the log-probabilities of the
        next token (B, V). Only the new position is computed: each decoder layer keeps the
        inputs of its self-attention for the positions before (a key/value cache; the
        causal mask makes the earlier positions independent of the later ones), so a step
        costs one position's feed-forward and cross-attention, not the whole prefix's.
        Attention maps are not returned (None)."""
        prev = prev_tokens.reshape(-1, 1).long()
        t = 0 if state["prefix"] is None else state["prefix"].shape[1]
        if t >= self.config.max_len:
            raise ValueError(f"TransformerSeq2Seq.step: the prefix already holds {t} tokens, "
                             f"the most the positions cover (max_len={self.config.max_len})")
        prefix = prev if state["prefix"] is None else cat([state["prefix"], prev], dim=1)
        x = self.tgt_embed(prev) * math.sqrt(self.config.d_model)
        x = self.positions.dropout(x + self.positions.pe[t:t + 1])
        memory, src_pad, key_pad = state["memory"], state["pad"], prefix == PAD
        cache = []
        for i, layer in enumerate(self.transformer.decoder.layers):
            attend = layer.norm1(x) if layer.norm_first else x
            keys = attend if state["cache"] is None else cat([state["cache"][i], attend], dim=1)
            cache.append(keys)
            a = layer.dropout1(layer.self_attn(attend, keys, keys, key_padding_mask=key_pad,
                                               need_weights=False)[0])
            if layer.norm_first:
                x = x + a
                x = x + layer._mha_block(layer.norm2(x), memory, None, src_pad)
                x = x + layer._ff_block(layer.norm3(x))
            else:
                x = layer.norm1(x + a)
                x = layer.norm2(x + layer._mha_block(x, memory, None, src_pad))
                x = layer.norm3(x + layer._ff_block(x))
        if self.transformer.decoder.norm is not None:
            x = self.transformer.decoder.norm(x)
        logits = self.out(x[:, 0])
        new = {"memory": memory, "pad": src_pad, "prefix": prefix, "cache": cache}
        return logits.log_softmax(-1), new, None

    def reorder_state(self, state: dict, index) -> dict:
        idx = as_tensor(np.asarray(index, dtype=np.int64), device=state["memory"].device)

        def pick(v):
            if v is None:
                return None
            return [c[idx] for c in v] if isinstance(v, list) else v[idx]

        return {k: pick(v) for k, v in state.items()}
