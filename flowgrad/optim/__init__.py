"""flowgrad.optim: update rules, learning-rate schedules, regularizers and noise injection
(lecture: "Iterative training by SGD", "Injecting Noise", "Continuation Methods"), with
torch.optim's names, arguments, update equations and ``state_dict`` format.

Example:
    >>> import flowgrad.optim as optim
    >>> opt = optim.Adam([w, b], lr=1e-3)
    >>> sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    >>> loss.backward(); opt.step(); opt.zero_grad(); sched.step()
"""

from __future__ import annotations

from . import lr_scheduler
from .adam import Adam, AdamW
from .adaptive import Adadelta, Adamax, NAdam, RAdam
from .lbfgs import LBFGS
from .noise import GradientNoise, NoiseSchedule, WeightNoise
from .optimizer import Optimizer, required
from .regularizers import l1_penalty, l2_penalty
from .rmsprop import Adagrad, RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "required", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta",
           "Adamax", "NAdam", "RAdam", "LBFGS", "lr_scheduler", "l1_penalty", "l2_penalty",
           "GradientNoise", "WeightNoise", "NoiseSchedule"]
