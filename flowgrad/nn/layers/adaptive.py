"""Adaptive softmax (Grave et al. 2017, "Efficient softmax approximation for GPUs", arXiv
1609.04309) with PyTorch's ``nn.AdaptiveLogSoftmaxWithLoss`` arguments, parameter names,
outputs and errors.

The frequent words (the shortlist, ids below ``cutoffs[0]``) and one entry per rarer cluster share
the head softmax; a word of cluster i has log p = log p_head(cluster i) + log p_i(word), where
cluster i's softmax sees the input through a projection of size in_features // div_value^(i+1).
The distribution is normalised exactly, so perplexity is exp of the mean of ``-output``, and most
tokens (those in the shortlist) never touch the rare words' weights: the output layer of a
language model with a large vocabulary costs a fraction of the full softmax (lecture:
"Neural Language Models").
"""

from __future__ import annotations

from collections import namedtuple

from ... import backend
from ...tensor import Tensor
from ...tensor_functions import cat
from .. import functional as F
from ..containers import ModuleList, Sequential
from ..module import Module
from .linear import Linear

__all__ = ["AdaptiveLogSoftmaxWithLoss"]

_ASMoutput = namedtuple("_ASMoutput", ["output", "loss"])


class AdaptiveLogSoftmaxWithLoss(Module):
    """Adaptive softmax as ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

    Args: in_features, n_classes, cutoffs (increasing class ids in [1, n_classes - 1]),
    div_value (4.0), head_bias (False), device, dtype.
    forward(input (B, in_features) or (in_features,), target (B,) or ()) ->
    ``_ASMoutput(output, loss)``: each target's log-probability and the mean negative one.
    ``log_prob(input)`` gives all (B, n_classes) log-probabilities, ``predict(input)`` PyTorch's
    prediction (the head's argmax when it is a shortlist word, else the full argmax).

    Example:
        >>> asm = nn.AdaptiveLogSoftmaxWithLoss(200, 33278, cutoffs=[2000, 10000])
        >>> out, loss = asm(hidden.reshape(-1, 200), targets.reshape(-1))
    """

    def __init__(self, in_features: int, n_classes: int, cutoffs, div_value: float = 4.0,
                 head_bias: bool = False, device=None, dtype=None) -> None:
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError("cutoffs should be a sequence of unique, positive integers sorted "
                             "in an increasing order, where each value is between 1 and "
                             "n_classes-1")
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = [int(c) for c in cutoffs] + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        kw = {"device": device, "dtype": dtype}
        self.head = Linear(in_features, self.head_size, bias=head_bias, **kw)
        self.tail = ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(Sequential(Linear(in_features, hsz, bias=False, **kw),
                                        Linear(hsz, osz, bias=False, **kw)))

    def reset_parameters(self) -> None:
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        name = type(self).__name__
        if target_.dim() == 1:
            if input_.size(0) != target_.size(0):
                raise RuntimeError(f"{name}: Input and target should have the same size in the "
                                   f"batch dimension (input {tuple(input_.shape)}, target "
                                   f"{tuple(target_.shape)})")
            if input_.dim() != 2:
                raise RuntimeError(f"{name}: 1D target tensor expects 2D input tensors, but "
                                   f"found inputs with size {tuple(input_.shape)}")
        elif target_.dim() == 0:
            if input_.dim() != 1:
                raise RuntimeError(f"{name}: 0D target tensor expects 1D input tensors, but "
                                   f"found inputs with size {tuple(input_.shape)}")
        else:
            raise RuntimeError(f"{name}: 0D or 1D target tensor expected, multi-target not "
                               f"supported (target {tuple(target_.shape)})")
        if target_.is_floating_point():
            raise RuntimeError(f"{name}: expected an integer target (class ids), got "
                               f"{target_.dtype}")
        batched = target_.dim() > 0
        input = input_ if batched else input_.unsqueeze(0)
        t = (target_ if batched else target_.unsqueeze(0))._data
        xp = backend.get_array_module(t)
        if t.size and (int(t.min()) < 0 or int(t.max()) >= self.n_classes):
            raise RuntimeError(f"{name}: Target values should be in [0, {self.n_classes - 1}], but "
                               f"values in range [{int(t.min())}, {int(t.max())}] were found. ")
        head_index = t.astype(xp.int64, copy=True)
        clusters = []  # (rows, their log-probability within the cluster)
        for i in range(self.n_clusters):
            low, high = self.cutoffs[i], self.cutoffs[i + 1]
            rows = xp.nonzero((t >= low) & (t < high))[0]
            if rows.size == 0:
                continue
            head_index[rows] = self.shortlist_size + i
            rows_t = Tensor._wrap(rows, None, False)
            logp = F.log_softmax(self.tail[i](input.index_select(0, rows_t)), dim=1)
            local = logp.gather(1, Tensor._wrap((t[rows] - low)[:, None], None, False))
            clusters.append((rows_t, local.squeeze(1)))
        head_logprob = F.log_softmax(self.head(input), dim=1)
        output = head_logprob.gather(1, Tensor._wrap(head_index[:, None], None, False)).squeeze(1)
        for rows_t, local in clusters:  # each row is in one cluster: one addition per row
            output = output.index_add(0, rows_t, local)
        loss = (-output).mean()
        return _ASMoutput(output if batched else output.squeeze(0), loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        head_logprob = F.log_softmax(head_output, dim=1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i in range(self.n_clusters):
            cluster_logprob = F.log_softmax(self.tail[i](input), dim=1)
            parts.append(cluster_logprob
                         + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return cat(parts, dim=1)

    def _check_2d(self, input: Tensor, what: str) -> None:
        if input.dim() != 2:
            raise IndexError(f"{type(self).__name__}.{what}: expected input of shape "
                             f"(batch, {self.in_features}), got {tuple(input.shape)}")

    def log_prob(self, input: Tensor) -> Tensor:
        """Log-probabilities of every class, (B, n_classes)."""
        self._check_2d(input, "log_prob")
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        """PyTorch's prediction: the head's argmax where it is a shortlist word, the argmax of
        the full distribution elsewhere."""
        self._check_2d(input, "predict")
        head_output = self.head(input)
        output = head_output.argmax(dim=1)
        rare = output._data >= self.shortlist_size
        if not bool(rare.any()):
            return output
        if bool(rare.all()):
            return self._get_full_log_prob(input, head_output).argmax(dim=1)
        xp = backend.get_array_module(rare)
        rows = Tensor._wrap(xp.nonzero(rare)[0], None, False)
        full = self._get_full_log_prob(input.index_select(0, rows),
                                       head_output.index_select(0, rows))
        result = output._data.copy()
        result[rare] = full.argmax(dim=1)._data
        return Tensor._wrap(result, None, False)
