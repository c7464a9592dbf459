"""Recurrent encoder-decoders (lecture: "Attention for translation"; the SCAN experiments of
"Systematic generalization"), their decoding, and attention heatmaps.

- ``RNNEncoderDecoder`` ("RNNencdec"; Cho et al. 2014, Sutskever et al. 2014, the seq2seq of
  Lake & Baroni 2018): the encoder's final state initialises the decoder, no attention.
- ``AttentionSeq2Seq`` ("RNNsearch"; Bahdanau, Cho & Bengio, ICLR 2015, appendix A): a
  bidirectional encoder, a decoder reading [E y_{i-1}; c_i], the context c_i from additive
  attention with the previous decoder state as query, and a deep output with maxout.

Every model follows one protocol, batch first, tokens PAD = 0, BOS = 1, EOS = 2:

    model(src, src_lengths, tgt_in) -> logits (B, T, V)            # teacher forcing
    model.start(src, src_lengths) -> state                          # encode once
    model.step(state, prev_tokens (B,)) -> (log_probs (B, V), state, attn (B, S) or None)
    model.reorder_state(state, index) -> state                      # select/duplicate rows

and ``greedy_decode``, ``beam_search``, ``sequence_log_prob`` work on any model that does.
``src``, ``tgt_in`` may be int64 Tensors or NumPy arrays; ``src_lengths`` a list, array or
Tensor. The encoder packs the sources (``pack_padded_sequence``), so padding never enters the
recurrence, and attention masks the padded positions: an example gives the same output alone or
padded inside a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from ..tensor import Tensor, as_tensor
from ..tensor_functions import cat, stack
from .sequence import CELLS, RECURRENT, length_mask

__all__ = ["AttentionSeq2Seq", "RNNEncoder", "RNNEncoderDecoder", "Seq2SeqConfig",
           "Seq2SeqState", "beam_search", "greedy_decode", "save_attention_heatmap",
           "sequence_log_prob", "sequence_loss"]

PAD, BOS, EOS = 0, 1, 2


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 16
    tgt_vocab_size: int = 9
    embed_dim: int = 64
    hidden_size: int = 128            # encoder (per direction) and decoder state size
    cell: str = "gru"                 # gru | lstm | rnn
    num_layers: int = 1               # encoder and decoder layers
    dropout: float = 0.0              # on embeddings, between layers, before the output
    bidirectional: bool | None = None  # encoder; None: False for RNNencdec, True for RNNsearch
    attention_dim: int | None = None  # n' of Bahdanau et al. (None: hidden_size)
    padding_idx: int = PAD


@dataclass
class Seq2SeqState:
    """Decoder state: per-layer hidden (and LSTM cell) states (B, H), and for attention the
    encoder outputs (B, S, Dk), their projection U h_j (B, S, n') and the source mask (B, S)."""

    hidden: list
    cell: list | None = None
    memory: Tensor | None = None
    keys: Tensor | None = None
    mask: Tensor | None = None

    def index_select(self, index: Tensor) -> Seq2SeqState:
        def pick(t):
            return None if t is None else t.index_select(0, index)
        return Seq2SeqState([h.index_select(0, index) for h in self.hidden],
                            None if self.cell is None else [c.index_select(0, index)
                                                            for c in self.cell],
                            pick(self.memory), pick(self.keys), pick(self.mask))


def _ints(values) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _device(model):
    param = next(iter(model.parameters()), None)
    return None if param is None else param.device


def _tokens(x, device) -> Tensor:
    return x.long() if isinstance(x, Tensor) else as_tensor(np.asarray(x, dtype=np.int64),
                                                            device=device)


class RNNEncoder(nn.Module):
    """Embedding -> GRU/LSTM/RNN over the packed sources. forward(src (B, S), lengths) ->
    (outputs (B, S, D*H) zero at padding, h_n (L*D, B, H), c_n or None, mask (B, S))."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, cell: str = "gru",
                 num_layers: int = 1, dropout: float = 0.0, bidirectional: bool = False,
                 padding_idx: int = PAD) -> None:
        super().__init__()
        if cell not in RECURRENT:
            raise ValueError(f"RNNEncoder: unknown cell {cell!r}; expected one of "
                             f"{', '.join(RECURRENT)}")
        self.cell, self.num_layers, self.bidirectional = cell, num_layers, bidirectional
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=padding_idx)
        self.drop = nn.Dropout(dropout)
        self.rnn = RECURRENT[cell](embed_dim, hidden_size, num_layers=num_layers,
                                   batch_first=True, bidirectional=bidirectional,
                                   dropout=dropout if num_layers > 1 else 0.0)

    def forward(self, src, src_lengths):
        src = _tokens(src, self.embedding.weight.device)
        lengths = _ints(src_lengths)
        if src.ndim != 2 or lengths.size != src.shape[0]:
            raise ValueError(f"RNNEncoder: expected src of shape (batch, source length) and one "
                             f"length per row, got src {tuple(src.shape)} and {lengths.size} "
                             f"lengths")
        steps = src.shape[1]
        mask = length_mask(lengths, steps, device=src.device)
        packed = pack_padded_sequence(self.drop(self.embedding(src)), lengths,
                                      batch_first=True, enforce_sorted=False)
        out, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=steps)
        h_n, c_n = final if self.cell == "lstm" else (final, None)
        return outputs, h_n, c_n, mask


class _Seq2SeqBase(nn.Module):
    """Encoder, target embedding, decoder cells and the shared decoding loop."""

    default_bidirectional = False

    def __init__(self, config: Seq2SeqConfig | None, kwargs: dict) -> None:
        super().__init__()
        c = config or Seq2SeqConfig(**kwargs)
        if config is not None and kwargs:
            c = replace(config, **kwargs)
        if c.bidirectional is None:
            c = replace(c, bidirectional=self.default_bidirectional)
        if c.cell not in CELLS:
            raise ValueError(f"{type(self).__name__}: unknown cell {c.cell!r}; expected one of "
                             f"{', '.join(CELLS)}")
        self.config = c
        self.directions = 2 if c.bidirectional else 1
        self.encoder = RNNEncoder(c.src_vocab_size, c.embed_dim, c.hidden_size, c.cell,
                                  c.num_layers, c.dropout, c.bidirectional, c.padding_idx)
        self.embedding = nn.Embedding(c.tgt_vocab_size, c.embed_dim, padding_idx=c.padding_idx)
        self.drop = nn.Dropout(c.dropout)

    def _make_cells(self, first_input: int) -> nn.ModuleList:
        c = self.config
        return nn.ModuleList([CELLS[c.cell](first_input if k == 0 else c.hidden_size,
                                            c.hidden_size) for k in range(c.num_layers)])

    def _layer_states(self, final: Tensor) -> list:
        """Per decoder layer, the encoder's final states (B, D*H): [forward; backward]."""
        lay = final.reshape(self.config.num_layers, self.directions, final.shape[1],
                            final.shape[2])
        return [cat([lay[k, d] for d in range(self.directions)], dim=1)
                for k in range(self.config.num_layers)]

    def _run_cells(self, state: Seq2SeqState, x: Tensor) -> Seq2SeqState:
        lstm = self.config.cell == "lstm"
        hidden, cells = [], [] if lstm else None
        for k, cell in enumerate(self.cells):
            if lstm:
                h, cs = cell(x, (state.hidden[k], state.cell[k]))
                cells.append(cs)
            else:
                h = cell(x, state.hidden[k])
            hidden.append(h)
            x = self.drop(h) if k < len(self.cells) - 1 else h
        return Seq2SeqState(hidden, cells, state.memory, state.keys, state.mask)

    def _decode(self, state: Seq2SeqState, emb: Tensor):
        raise NotImplementedError

    def forward(self, src, src_lengths, tgt_in, feed_own=None) -> Tensor:
        """Teacher forcing: logits (B, T, V) for the targets after each tgt_in token.

        ``feed_own`` (optional bool (B,)): the rows that read back their own most probable
        previous token instead of tgt_in's from the second step on (Lake & Baroni 2018
        trained half of the sequences this way); no gradient flows through that choice."""
        state = self.start(src, src_lengths)
        device = self.embedding.weight.device
        tgt_in = _tokens(tgt_in, device)
        batch = state.hidden[0].shape[0]
        if tgt_in.ndim != 2 or tgt_in.shape[0] != batch:
            raise ValueError(f"{type(self).__name__}: expected tgt_in of shape "
                             f"({batch}, target length), got {tuple(tgt_in.shape)}")
        own = None
        if feed_own is not None:
            own = np.asarray(feed_own.detach().cpu().numpy() if isinstance(feed_own, Tensor)
                             else feed_own)
            if own.dtype != bool or own.shape != (batch,):
                raise ValueError(f"{type(self).__name__}: feed_own must be a bool array of "
                                 f"shape ({batch},), got {own.dtype} {own.shape}")
            if not own.any():
                own = None
        emb = self.drop(self.embedding(tgt_in))
        given = tgt_in.detach().cpu().numpy() if own is not None else None
        logits = []
        for t in range(tgt_in.shape[1]):
            if own is None or t == 0:
                x = emb[:, t]
            else:
                mine = logits[-1].detach().cpu().numpy().argmax(-1)
                x = self.drop(self.embedding(as_tensor(np.where(own, mine, given[:, t]),
                                                       device=device)))
            out, state, _ = self._decode(state, x)
            logits.append(out)
        return stack(logits, dim=1)

    def step(self, state: Seq2SeqState, prev_tokens):
        """One decoder step: (log_probs (B, V), new state, attention (B, S) or None)."""
        prev = _tokens(prev_tokens, self.embedding.weight.device)
        logits, state, attn = self._decode(state, self.drop(self.embedding(prev)))
        return logits.log_softmax(-1), state, attn

    def reorder_state(self, state: Seq2SeqState, index) -> Seq2SeqState:
        """The state of rows ``index`` (select, reorder or duplicate batch rows)."""
        index = _tokens(np.asarray(_ints(index)), self.embedding.weight.device)
        return state.index_select(index)


class RNNEncoderDecoder(_Seq2SeqBase):
    """RNNencdec: encoder -> final state -> decoder, no attention (Cho et al. 2014; Sutskever,
    Vinyals & Le 2014). Layer k of the decoder starts from layer k's final encoder state; with a
    bidirectional encoder, from tanh(W [forward; backward]) (``bridge``). The decoder is a
    stack of ``cells`` reading E y_{i-1}; ``out`` maps the top state to the logits."""

    default_bidirectional = False

    def __init__(self, config: Seq2SeqConfig | None = None, **kwargs) -> None:
        super().__init__(config, kwargs)
        c = self.config
        self.cells = self._make_cells(c.embed_dim)
        d = self.directions
        self.bridge = nn.Linear(d * c.hidden_size, c.hidden_size) if d == 2 else None
        self.cell_bridge = (nn.Linear(d * c.hidden_size, c.hidden_size)
                            if d == 2 and c.cell == "lstm" else None)
        self.out = nn.Linear(c.hidden_size, c.tgt_vocab_size)

    def start(self, src, src_lengths) -> Seq2SeqState:
        _, h_n, c_n, _ = self.encoder(src, src_lengths)
        hidden = self._layer_states(h_n)
        cells = None if c_n is None else self._layer_states(c_n)
        if self.bridge is not None:
            hidden = [self.bridge(h).tanh() for h in hidden]
            if cells is not None:
                cells = [self.cell_bridge(cs) for cs in cells]
        return Seq2SeqState(hidden, cells)

    def _decode(self, state: Seq2SeqState, emb: Tensor):
        state = self._run_cells(state, emb)
        return self.out(self.drop(state.hidden[-1])), state, None


class AttentionSeq2Seq(_Seq2SeqBase):
    """RNNsearch (Bahdanau, Cho & Bengio 2015, appendix A.1.2 and A.2.2), any cell type:

    - encoder: bidirectional by default, annotations h_j = [forward h_j; backward h_j];
    - s_0 = tanh(W_s backward h_1) (``bridge``; the LSTM cell state: ``cell_bridge``, no tanh);
    - e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), c_i = sum_j alpha_ij h_j (``attention``, with
      U_a h_j computed once per source in ``start``; s_{i-1} is the top layer's state);
    - s_i = f(s_{i-1}, [E y_{i-1}; c_i]) (``cells``; the paper's gated unit is the GRU);
    - deep output: t_i = maxout_2(W [s_i; c_i; E y_{i-1}]) (``readout``), logits = W_o t_i
      (``out``). The paper writes s_{i-1} in t_i; the new state s_i is used here, as in most
      implementations of the model.
    """

    default_bidirectional = True

    def __init__(self, config: Seq2SeqConfig | None = None, **kwargs) -> None:
        super().__init__(config, kwargs)
        c = self.config
        memory = self.directions * c.hidden_size
        self.attention = nn.AdditiveAttention(c.hidden_size, memory,
                                              c.attention_dim or c.hidden_size)
        self.cells = self._make_cells(c.embed_dim + memory)
        self.bridge = nn.Linear(c.hidden_size, c.hidden_size)
        self.cell_bridge = nn.Linear(c.hidden_size, c.hidden_size) if c.cell == "lstm" else None
        self.readout = nn.Linear(c.hidden_size + memory + c.embed_dim, 2 * c.hidden_size)
        self.out = nn.Linear(c.hidden_size, c.tgt_vocab_size)

    def _initial(self, final: Tensor) -> list:
        """Per layer, the backward direction's final state (the forward one when not
        bidirectional): the summary of the whole source that s_0 is made from."""
        c = self.config
        lay = final.reshape(c.num_layers, self.directions, final.shape[1], final.shape[2])
        return [lay[k, self.directions - 1] for k in range(c.num_layers)]

    def start(self, src, src_lengths) -> Seq2SeqState:
        memory, h_n, c_n, mask = self.encoder(src, src_lengths)
        hidden = [self.bridge(h).tanh() for h in self._initial(h_n)]
        cells = None if c_n is None else [self.cell_bridge(cs) for cs in self._initial(c_n)]
        return Seq2SeqState(hidden, cells, memory, self.attention.project_keys(memory), mask)

    def _decode(self, state: Seq2SeqState, emb: Tensor):
        context, weights = self.attention(state.hidden[-1], state.memory, mask=state.mask,
                                          projected_keys=state.keys)
        state = self._run_cells(state, cat([emb, context], dim=1))
        t = self.readout(cat([state.hidden[-1], context, emb], dim=1))
        t = t.reshape(t.shape[0], -1, 2).amax(-1)  # maxout over pairs (Goodfellow et al. 2013)
        return self.out(self.drop(t)), state, weights


# --- losses and scores --------------------------------------------------------------------------

def sequence_loss(logits: Tensor, tgt_out, pad: int = PAD) -> Tensor:
    """Mean cross-entropy over the non-padding target tokens (teacher forcing)."""
    tgt_out = _tokens(tgt_out, logits.device)
    if tuple(tgt_out.shape) != tuple(logits.shape[:2]):
        raise ValueError(f"sequence_loss: logits {tuple(logits.shape)} and targets "
                         f"{tuple(tgt_out.shape)} differ in (batch, time)")
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                           ignore_index=pad)


class _EvalMode:
    """Switch a model to eval mode (no dropout) for decoding, then back."""

    def __init__(self, model) -> None:
        self.model, self.was = model, model.training

    def __enter__(self):
        self.model.eval()
        self.grad = no_grad()
        self.grad.__enter__()

    def __exit__(self, *exc):
        self.grad.__exit__(*exc)
        self.model.train(self.was)


def _pad_targets(sequences, bos: int, eos: int, pad: int = PAD):
    n = len(sequences)
    longest = max(len(s) for s in sequences) + 1
    tgt_in = np.full((n, longest), pad, dtype=np.int64)
    tgt_out = tgt_in.copy()
    for i, s in enumerate(sequences):
        s = list(s)
        tgt_in[i, :len(s) + 1] = [bos] + s
        tgt_out[i, :len(s) + 1] = s + [eos]
    return tgt_in, tgt_out


def sequence_log_prob(model, src, src_lengths, sequences, bos: int = BOS,
                      eos: int = EOS) -> np.ndarray:
    """log P(sequence + <eos> | source) of each sequence (teacher forcing, eval mode), (B,)."""
    tgt_in, tgt_out = _pad_targets(sequences, bos, eos)
    with _EvalMode(model):
        logp = model(src, src_lengths, tgt_in).log_softmax(-1).detach().cpu().numpy()
    picked = np.take_along_axis(logp, tgt_out[..., None], axis=-1)[..., 0]
    return np.where(tgt_in != PAD, picked, 0.0).sum(axis=1)


# --- decoding -----------------------------------------------------------------------------------

def greedy_decode(model, src, src_lengths, max_len: int, bos: int = BOS, eos: int = EOS,
                  return_attention: bool = False):
    """The most probable token at each step until <eos> or ``max_len`` tokens, batched, in eval
    mode. Returns the token lists (no <bos>/<eos>); with ``return_attention`` also, per example,
    the (output tokens, source length) attention weights (None for a model without)."""
    lengths = _ints(src_lengths)
    batch = lengths.size
    device = _device(model)
    tokens = np.full((batch, max_len), eos, dtype=np.int64)
    out_len = np.full(batch, max_len, dtype=np.int64)
    finished = np.zeros(batch, dtype=bool)
    attn = []
    with _EvalMode(model):
        state = model.start(src, lengths)
        prev = np.full(batch, bos, dtype=np.int64)
        for t in range(max_len):
            log_probs, state, weights = model.step(state, as_tensor(prev, device=device))
            nxt = log_probs.detach().cpu().numpy().argmax(-1).astype(np.int64)
            nxt[finished] = eos
            tokens[:, t] = nxt
            if weights is not None:
                attn.append(weights.detach().cpu().numpy())
            newly = ~finished & (nxt == eos)
            out_len[newly] = t
            finished |= newly
            if finished.all():
                break
            prev = nxt
    seqs = [tokens[b, :out_len[b]].tolist() for b in range(batch)]
    if not return_attention:
        return seqs
    if not attn:
        return seqs, [None] * batch
    attn = np.stack(attn, axis=1)  # (B, steps, S)
    return seqs, [attn[b, :out_len[b], :lengths[b]] for b in range(batch)]


def beam_search(model, src, src_lengths, beam_size: int, max_len: int, bos: int = BOS,
                eos: int = EOS, length_penalty: float = 0.0, return_attention: bool = False,
                return_scores: bool = False):
    """Beam search (Sutskever et al. 2014; Bahdanau et al. 2015 use beam 12), batched over
    examples and beams, in eval mode.

    At each step every live hypothesis is extended by every token; of the 2k best extensions
    those ending in <eos> among the k best are finished, and the best k others stay alive.
    Hypotheses are ranked by log P / length^length_penalty (length counts <eos>; 0 ranks by
    the plain log-probability, 1 by the mean per token). An example stops as soon as no live
    hypothesis can still beat its best finished one (for any later length up to ``max_len``);
    at ``max_len`` the live hypotheses count as they are. With beam 1 and length_penalty 0 this
    is greedy decoding.

    Returns the best token list per example (no <bos>/<eos>); with ``return_attention`` and/or
    ``return_scores`` a tuple (tokens, attention per example, normalised scores (B,)) holding the
    requested parts in that order.
    """
    if beam_size < 1:
        raise ValueError(f"beam_search: beam_size must be >= 1, got {beam_size}")
    lengths = _ints(src_lengths)
    batch, k = lengths.size, beam_size
    device = _device(model)
    finished: list[list] = [[] for _ in range(batch)]  # (normalised, tokens, attention rows)
    done = np.zeros(batch, dtype=bool)

    def norm(score, length):
        return score / (length ** length_penalty) if length_penalty else score

    def bound(score, t):  # the best normalised score a live hypothesis can still reach
        if not length_penalty:
            return score
        return score / max((t + 1) ** length_penalty, max(max_len, t + 1) ** length_penalty)

    with _EvalMode(model):
        state = model.start(src, lengths)
        state = model.reorder_state(state, np.repeat(np.arange(batch), k))
        scores = np.full((batch, k), -np.inf)
        scores[:, 0] = 0.0
        hist = np.zeros((batch, k, 0), dtype=np.int64)
        attn_hist = None
        prev = np.full(batch * k, bos, dtype=np.int64)
        rows = np.arange(batch)[:, None]
        for t in range(max_len):
            log_probs, state, weights = model.step(state, as_tensor(prev, device=device))
            lp = log_probs.detach().cpu().numpy().astype(np.float64)
            vocab = lp.shape[-1]
            cand = (scores[:, :, None] + lp.reshape(batch, k, vocab)).reshape(batch, k * vocab)
            top = np.argsort(-cand, axis=1, kind="stable")[:, :2 * k]
            w = None
            if weights is not None and return_attention:
                w = weights.detach().cpu().numpy().reshape(batch, k, -1)
                if attn_hist is None:
                    attn_hist = np.zeros((batch, k, 0, w.shape[-1]))
            new_scores = np.full((batch, k), -np.inf)
            new_beam = np.zeros((batch, k), dtype=np.int64)
            new_tok = np.full((batch, k), eos, dtype=np.int64)
            for b in range(batch):
                if done[b]:
                    continue
                n = 0
                for rank, idx in enumerate(top[b]):
                    s = cand[b, idx]
                    if s == -np.inf:
                        break
                    beam, tok = divmod(int(idx), vocab)
                    if tok == eos:
                        if rank < k:
                            rows_b = None if attn_hist is None else attn_hist[b, beam]
                            finished[b].append((norm(s, t + 1), hist[b, beam].tolist(), rows_b))
                        continue
                    new_scores[b, n], new_beam[b, n], new_tok[b, n] = s, beam, tok
                    n += 1
                    if n == k:
                        break
                if finished[b]:
                    best = max(h[0] for h in finished[b])
                    if n == 0 or bound(new_scores[b, 0], t) <= best:
                        done[b] = True
            if done.all():
                break
            hist = np.concatenate([hist[rows, new_beam], new_tok[..., None]], axis=2)
            if attn_hist is not None:
                attn_hist = np.concatenate([attn_hist[rows, new_beam],
                                            w[rows, new_beam][:, :, None]], axis=2)
            scores = new_scores
            state = model.reorder_state(state, (rows * k + new_beam).reshape(-1))
            prev = new_tok.reshape(-1)
        for b in np.flatnonzero(~done):
            for j in range(k):
                if scores[b, j] > -np.inf:
                    rows_b = None if attn_hist is None else attn_hist[b, j]
                    finished[b].append((norm(scores[b, j], hist.shape[2]), hist[b, j].tolist(),
                                        rows_b))
    best = [max(f, key=lambda h: h[0]) for f in finished]
    seqs = [h[1] for h in best]
    if not (return_attention or return_scores):
        return seqs
    out: tuple = (seqs,)
    if return_attention:
        out += ([None if h[2] is None else h[2][:, :lengths[b]] for b, h in enumerate(best)],)
    if return_scores:
        out += (np.array([h[0] for h in best]),)
    return out


# --- attention heatmaps -------------------------------------------------------------------------

def save_attention_heatmap(weights, src_tokens, tgt_tokens, path, title: str | None = None,
                           dpi: int = 100):
    """Write the (target, source) attention matrix as a PNG heatmap, source tokens along x and
    output tokens along y (the style of Bahdanau et al. 2015, figure 3). Returns the path."""
    from ..plotting import new_figure, save_figure

    w = weights.detach().cpu().numpy() if isinstance(weights, Tensor) else np.asarray(weights)
    src_tokens, tgt_tokens = [str(s) for s in src_tokens], [str(s) for s in tgt_tokens]
    if w.shape != (len(tgt_tokens), len(src_tokens)):
        raise ValueError(f"save_attention_heatmap: weights of shape {w.shape} do not match "
                         f"{len(tgt_tokens)} target and {len(src_tokens)} source tokens")
    fig, ax = new_figure(figsize=(1.0 + 0.45 * len(src_tokens), 1.0 + 0.3 * len(tgt_tokens)))
    image = ax.imshow(w, cmap="gray", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(src_tokens)), src_tokens, rotation=90)
    ax.set_yticks(range(len(tgt_tokens)), tgt_tokens)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax)
    return save_figure(fig, path, dpi=dpi, tight=True)
