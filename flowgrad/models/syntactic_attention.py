"""Syntactic Attention (Russin, Jo, O'Reilly & Bengio 2019, "Compositional generalization in a
deep seq2seq model by separating syntax and semantics", arXiv:1904.09708; lecture:
"Systematic generalisation"), for SCAN.

Two streams read the source words w_j. The semantic stream is a bare embedding, m_j = M w_j,
with no context at all. The syntactic stream is recurrent and decides *where* to attend: the
attention weights come from it alone, while the output at step i is computed from the
semantic embeddings only,

    e_ij = s_i . h_j,  alpha_ij = softmax_j(e_ij),
    logits_i = W (sum_j alpha_ij m_j) + b,                      (the semantic context only)
    c_i = sum_j alpha_ij h_j,  s_(i+1) = LSTM(c_i, state_i)     (the syntactic context only).

The decoder LSTM's only input is the syntactic context c_i: the previous output token is never
fed back, so ``tgt_in`` only sets the number of steps and ``step`` ignores ``prev_tokens``.

Architecture and settings as in the authors' code (github.com/jlrussin/syntactic_attention,
``SyntacticAttention.py`` and ``train_test.py``, initial commit c1ed95b of 2019-05-23; names
there: m_hidden_dim, x_hidden_dim):

- semantic embedding m_j: 120 (``semantic_size``);
- syntactic stream, ``syntax_size`` X = 200: embedding x_j of X/2 = 100; a bidirectional LSTM
  of X/2 per direction whose output at word j is replaced by its context only, the forward
  state of j-1 and the backward state of j+1 (labelled eq. 2 of the paper in that code); the
  start and end slots get learned vectors instead; a second bidirectional LSTM of X per
  direction gives h_j (2X = 400);
- the first query s_0 = relu(W_0 [h_fwd_n; h_bwd_n] + b_0) from the second LSTM's final
  states; the decoder LSTM (400 -> 400) starts from zeros and its hidden state is the next
  query; attention is a plain dot product (no projection);
- source and target carry <SOS>/<EOS> tokens: the <EOS> action is produced by attending to the
  source's end slot (here added by the model when ``add_boundaries``);
- dropout 0.5 on both embeddings (the only dropout); one-layer LSTMs; PyTorch's default
  initialisation (the start and end vectors N(0, 1), as embedding rows);
- training: Adam, lr 0.001, gradient norm clipped at 5.0, batch size 1, 200,000 updates of
  the mean token NLL (the <EOS> target included); the last 20% of the training file (unshuffled)
  is held out for validation; every 5 epochs train/validation/test exact-match accuracy is
  recorded and the weights with the best validation accuracy are kept. The accuracy decodes
  as many steps as the true output has; since no output is fed back, this equals greedy
  decoding stopped at the first <EOS>.

The paper's Table 1 gives the exact-match test accuracy on the SCAN splits simple, length,
add-primitive turn-left and add-primitive jump (mean and standard deviation over runs).

A consequence of that code's eq. 2 which the paper does not discuss: a one-word source reads
its word's syntactic embedding nowhere (the word's own slot holds its neighbours' states, which
are the start and end slots' inputs alone, and those slots are replaced by learned vectors), so
that embedding gets no gradient from it. On SCAN add-jump, where "jump" is seen alone only, its
syntactic vector keeps its initial random draw for the whole training; whether the trained
syntactic stream treats that vector like the other verbs' in a new command is left to the seed,
which fits the large spread over seeds of the add-jump accuracy in results/scan.md.

This implementation differs from that code only where padding is concerned (the code assumes
batch size 1): the recurrent layers run on packed sequences, the end slot sits at each
sequence's own length, and attention never reaches padding. So a source gives the same
outputs alone or inside a padded batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import creation, nn
from ..errors import ShapeError
from ..nn import init
from ..nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from ..tensor import Tensor, as_tensor, where
from ..tensor_functions import cat, stack

BOS, EOS = 1, 2


@dataclass
class SyntacticAttentionConfig:
    src_vocab: int = 16         # SCAN: 13 words + PAD, BOS, EOS
    tgt_vocab: int = 9          # SCAN: 6 actions + PAD, BOS, EOS
    semantic_size: int = 120    # m_j (m_hidden_dim)
    syntax_size: int = 200      # X (x_hidden_dim): embedding X/2, LSTMs X/2 and X per direction
    dropout: float = 0.5        # on both embeddings
    add_boundaries: bool = True  # wrap each source as [BOS, words, EOS] before encoding
    bos: int = BOS
    eos: int = EOS


@dataclass(frozen=True)
class SyntacticAttentionTraining:
    """The training protocol of the authors' ``train_test.py`` (defaults, initial commit)."""
    optimizer: str = "Adam"
    lr: float = 1e-3
    clip_grad_norm: float = 5.0
    batch_size: int = 1
    updates: int = 200_000
    validation_fraction: float = 0.2   # the last 20% of the training file
    evaluate_every_epochs: int = 5     # keep the weights with the best validation accuracy


class SyntacticAttentionSeq2Seq(nn.Module):
    """The Syntactic Attention encoder-decoder, on the seq2seq protocol of
    ``flowgrad.models.seq2seq`` (batch first, PAD=0, BOS=1, EOS=2):

    - ``forward(src (B, S), src_lengths (B,), tgt_in (B, T)) -> logits (B, T, tgt_vocab)``;
    - ``start(src, src_lengths) -> state``; ``step(state, prev_tokens) -> (log_probs, state,
      attn (B, S))``; ``reorder_state(state, index) -> state``.

    Only ``tgt_in.shape[1]`` matters: the decoder never reads previous tokens.
    ``forward_with_attention`` also returns the attention over the encoded slots.
    """

    def __init__(self, config: SyntacticAttentionConfig | None = None, **kwargs) -> None:
        super().__init__()
        self.config = c = config or SyntacticAttentionConfig(**kwargs)
        if c.syntax_size % 2:
            raise ValueError(f"SyntacticAttentionSeq2Seq: syntax_size must be even (the "
                             f"embedding is syntax_size/2), got {c.syntax_size}")
        half, x = c.syntax_size // 2, c.syntax_size
        self.semantic_embedding = nn.Embedding(c.src_vocab, c.semantic_size)
        self.syntactic_embedding = nn.Embedding(c.src_vocab, half)
        self.dropout = nn.Dropout(c.dropout)
        self.syntax_context_rnn = nn.LSTM(half, half, batch_first=True, bidirectional=True)
        self.start_role = nn.Parameter(creation.empty(x))
        self.end_role = nn.Parameter(creation.empty(x))
        self.syntax_rnn = nn.LSTM(x, x, batch_first=True, bidirectional=True)
        self.init_query = nn.Linear(2 * x, 2 * x)
        self.decoder_cell = nn.LSTMCell(2 * x, 2 * x)
        self.out = nn.Linear(c.semantic_size, c.tgt_vocab)
        init.normal_(self.start_role)
        init.normal_(self.end_role)

    @classmethod
    def from_paper(cls, src_vocab: int = 16, tgt_vocab: int = 9) -> SyntacticAttentionSeq2Seq:
        """The authors' default hyperparameters (semantic 120, syntax 200, dropout 0.5)."""
        return cls(SyntacticAttentionConfig(src_vocab=src_vocab, tgt_vocab=tgt_vocab))

    # --- encoder ---------------------------------------------------------------------------------

    def _slots(self, src: Tensor, src_lengths) -> tuple[Tensor, np.ndarray]:
        """The encoded token slots (B, S') and their lengths: [BOS, words, EOS] per source
        when ``add_boundaries``, else the source itself."""
        name = type(self).__name__
        if src.ndim != 2:
            raise ShapeError(f"{name}: expected src of shape (batch, time), got "
                             f"{tuple(src.shape)}")
        lengths = np.asarray(as_tensor(src_lengths).cpu().numpy(), dtype=np.int64).reshape(-1)
        batch, steps = src.shape
        if lengths.size != batch:
            raise ShapeError(f"{name}: {lengths.size} src_lengths for a batch of {batch} "
                             f"sources {tuple(src.shape)}")
        shortest = 1 if self.config.add_boundaries else 2
        if lengths.min() < shortest or lengths.max() > steps:
            hint = "" if shortest == 1 else " (without add_boundaries, the first and last token "\
                "of each source are its boundary slots)"
            raise ValueError(f"{name}: src_lengths must be in {shortest}..{steps}, the padded "
                             f"length{hint}; got {lengths.tolist()}")
        if not self.config.add_boundaries:
            return src, lengths
        ids = np.asarray(src.detach().cpu().numpy(), dtype=np.int64)
        slots = np.zeros((batch, steps + 2), dtype=np.int64)
        slots[:, 0] = self.config.bos
        inside = np.arange(steps)[None, :] < lengths[:, None]
        slots[:, 1:steps + 1] = np.where(inside, ids, 0)
        slots[np.arange(batch), lengths + 1] = self.config.eos
        return as_tensor(slots, device=src.device), lengths + 2

    def encode(self, src: Tensor, src_lengths) -> dict:
        """Both streams of the source: ``keys`` h_j (B, S', 2X), ``values`` m_j (B, S',
        semantic_size), ``mask`` (B, S') True on real slots, ``query`` s_0 (B, 2X)."""
        slots, lengths = self._slots(src, src_lengths)
        batch, steps = slots.shape
        half = self.config.syntax_size // 2
        values = self.dropout(self.semantic_embedding(slots))
        x = self.dropout(self.syntactic_embedding(slots))
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        h1, _ = pad_packed_sequence(self.syntax_context_rnn(packed)[0], batch_first=True,
                                    total_length=steps)
        # context only: forward state of j-1 and backward state of j+1 (not word j itself)
        edge = creation.zeros((batch, 1, half), dtype=h1.dtype, device=h1.device)
        context = cat([cat([edge, h1[:, :-1, :half]], dim=1),
                       cat([h1[:, 1:, half:], edge], dim=1)], dim=2)
        t = np.arange(steps)[None, :, None]
        first = as_tensor(t == 0, device=slots.device)
        last = as_tensor(t == (lengths - 1)[:, None, None], device=slots.device)
        roles = where(first, self.start_role, where(last, self.end_role, context))
        packed = pack_padded_sequence(roles, lengths, batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.syntax_rnn(packed)
        keys, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        query = self.init_query(cat([h_n[0], h_n[1]], dim=1)).relu()
        mask = as_tensor(np.arange(steps)[None, :] < lengths[:, None], device=slots.device)
        return {"keys": keys, "values": values, "mask": mask, "query": query}

    # --- decoder ---------------------------------------------------------------------------------

    def _attend(self, keys: Tensor, mask: Tensor, query: Tensor) -> Tensor:
        """alpha (B, S') = softmax over the real slots of h_j . s_i."""
        scores = keys.bmm(query.unsqueeze(2)).squeeze(2)
        return scores.masked_fill(~mask, float("-inf")).softmax(-1)

    def _advance(self, keys: Tensor, alpha: Tensor, hidden) -> tuple:
        """The decoder LSTM on the syntactic context c_i; its new hidden state is the query."""
        context = alpha.unsqueeze(1).bmm(keys).squeeze(1)
        h, c = self.decoder_cell(context, hidden)
        return h, (h, c)

    def _zero_hidden(self, query: Tensor) -> tuple:
        zeros = creation.zeros(tuple(query.shape), dtype=query.dtype, device=query.device)
        return zeros, zeros

    def forward_with_attention(self, src: Tensor, src_lengths, steps: int
                               ) -> tuple[Tensor, Tensor]:
        """(logits (B, steps, tgt_vocab), attention (B, steps, S') over the encoded slots)."""
        enc = self.encode(src, src_lengths)
        keys, mask, query = enc["keys"], enc["mask"], enc["query"]
        hidden = self._zero_hidden(query)
        alphas = []
        for i in range(steps):
            alpha = self._attend(keys, mask, query)
            alphas.append(alpha)
            if i + 1 < steps:
                query, hidden = self._advance(keys, alpha, hidden)
        attention = stack(alphas, dim=1)
        return self.out(attention.bmm(enc["values"])), attention

    def forward(self, src: Tensor, src_lengths, tgt_in: Tensor) -> Tensor:
        if tgt_in.ndim != 2 or (src.ndim == 2 and tgt_in.shape[0] != src.shape[0]):
            raise ShapeError(f"{type(self).__name__}: expected tgt_in of shape ({src.shape[0]}, "
                             f"time) for src {tuple(src.shape)}, got {tuple(tgt_in.shape)}")
        return self.forward_with_attention(src, src_lengths, tgt_in.shape[1])[0]

    # --- incremental decoding (seq2seq protocol) -------------------------------------------------

    def start(self, src: Tensor, src_lengths) -> dict:
        state = self.encode(src, src_lengths)
        state["hidden"] = self._zero_hidden(state["query"])
        if self.config.add_boundaries:
            # word i sits in slot i + 1 and is real when slot i + 2 is (the end slot follows)
            state["words"] = as_tensor(state["mask"].detach().cpu().numpy()[:, 2:],
                                       device=src.device)
        return state

    def step(self, state: dict, prev_tokens: Tensor):  # noqa: ARG002 (protocol argument)
        """One output: (log_probs (B, tgt_vocab), state, attn (B, S)). ``prev_tokens`` is not
        used (the decoder's input is the syntactic context). With ``add_boundaries``, ``attn``
        covers the source words only: the weight on the two boundary slots is left out."""
        keys, alpha = state["keys"], self._attend(state["keys"], state["mask"], state["query"])
        log_probs = self.out(alpha.unsqueeze(1).bmm(state["values"]).squeeze(1)).log_softmax(-1)
        query, hidden = self._advance(keys, alpha, state["hidden"])
        new = dict(state, query=query, hidden=hidden)
        attn = alpha
        if self.config.add_boundaries:
            attn = alpha[:, 1:-1].masked_fill(~state["words"], 0.0)
        return log_probs, new, attn

    def reorder_state(self, state: dict, index) -> dict:
        """The state of the batch rows ``index`` (selected or repeated, e.g. for beams)."""
        if isinstance(index, Tensor):
            index = index.detach().cpu().numpy()
        index = as_tensor(np.asarray(index, dtype=np.int64).reshape(-1),
                          device=state["keys"].device)
        new = {k: v.index_select(0, index) for k, v in state.items() if k != "hidden"}
        new["hidden"] = tuple(v.index_select(0, index) for v in state["hidden"])
        return new

