"""Loss layers for large output vocabularies over ``nn.functional.sampled`` (lecture:
"Classifiers for modeling distributions"): NCE (Gutmann & Hyvärinen 2010; Mnih & Teh 2012) and
sampled softmax (Jean et al. 2015). The noise distribution is a buffer, so it follows ``to()``
and is saved in ``state_dict``; a learnable NCE normaliser log Z is a parameter."""

from __future__ import annotations

from ...tensor import Tensor
from ...utils.data.generator import as_generator
from .. import functional as F
from ..functional import sampled as S
from ..module import Module
from ..parameter import Parameter

__all__ = ["NCELoss", "SampledSoftmaxLoss"]


class _SampledLoss(Module):
    def __init__(self, noise, num_sampled: int, generator, reduction: str) -> None:
        super().__init__()
        noise = noise if isinstance(noise, Tensor) else S.unigram_noise(noise, 1.0)
        if noise.ndim != 1:
            raise ValueError(f"{type(self).__name__}: noise must be a 1-D distribution over the "
                             f"classes, got shape {tuple(noise.shape)}")
        if num_sampled < 1:
            raise ValueError(f"{type(self).__name__}: num_sampled must be >= 1, got "
                             f"{num_sampled}")
        self.register_buffer("noise", noise)
        self.num_sampled = num_sampled
        self.generator = as_generator(generator, type(self).__name__)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"num_classes={self.noise.shape[0]}, num_sampled={self.num_sampled}"


class NCELoss(_SampledLoss):
    """Noise-contrastive estimation of a softmax output layer (``F.nce_loss``).

    Args: noise (|V|,) probabilities (e.g. ``F.unigram_noise(counts, 0.75)``) or counts;
    num_sampled k; ``learn_log_z``: learn the normaliser log Z as a parameter (Gutmann &
    Hyvärinen's c) instead of fixing it at 0 (Mnih & Teh 2012's self-normalisation).
    forward(input (B, F), weight (|V|, F), bias (|V|,), target (B,)) -> loss.

    Example:
        >>> nce = nn.NCELoss(F.unigram_noise(counts), num_sampled=25, generator=0)
        >>> loss = nce(model.features(ctx), model.output.weight, model.output.bias, target)
    """

    def __init__(self, noise, num_sampled: int, *, learn_log_z: bool = False,
                 log_z: float = 0.0, remove_accidental_hits: bool = False, generator=None,
                 reduction: str = "mean") -> None:
        super().__init__(noise, num_sampled, generator, reduction)
        self.remove_accidental_hits = remove_accidental_hits
        if learn_log_z:
            self.log_z = Parameter(Tensor._wrap(
                self.noise.xp.asarray(log_z, dtype=self.noise.dtype), None, False))
        else:
            self.log_z = None
            self.fixed_log_z = float(log_z)

    def forward(self, input, weight, bias, target):
        log_z = self.log_z if self.log_z is not None else self.fixed_log_z
        return F.nce_loss(input, weight, bias, target, self.num_sampled, self.noise,
                          generator=self.generator, log_z=log_z,
                          remove_accidental_hits=self.remove_accidental_hits,
                          reduction=self.reduction)


class SampledSoftmaxLoss(_SampledLoss):
    """Sampled softmax with the logQ correction (``F.sampled_softmax_loss``).

    forward(input (B, F), weight (|V|, F), bias (|V|,), target (B,)) -> loss.
    """

    def __init__(self, noise, num_sampled: int, *, remove_accidental_hits: bool = True,
                 generator=None, reduction: str = "mean") -> None:
        super().__init__(noise, num_sampled, generator, reduction)
        self.remove_accidental_hits = remove_accidental_hits

    def forward(self, input, weight, bias, target):
        return F.sampled_softmax_loss(input, weight, bias, target, self.num_sampled, self.noise,
                                      generator=self.generator,
                                      remove_accidental_hits=self.remove_accidental_hits,
                                      reduction=self.reduction)
