"""Optimizers over one flat parameter vector.

Each optimizer works on an *objective* (the protocol of :mod:`kanopy.objectives`) that owns
``theta`` (1-D tensor, updated in place) and offers ``evaluate() -> (loss, grad)``;
Levenberg-Marquardt needs ``normal_equations() -> (r.r, JᵀJ, Jᵀr)`` and
``sum_of_squares() -> r.r`` instead. Their state is plain tensors and
numbers (``state_dict``), so it travels inside a model file and a resumed fit continues
exactly where it stopped.

One ``step`` follows pykan's meaning of a step: for LBFGS up to ``max_iter`` iterations
(each a strong-Wolfe line search), for Adam one update, for LM one accepted damped
Gauss-Newton update (trying a few damping values if needed).
"""

from .adam import Adam
from .lbfgs import LBFGS
from .lm import LevenbergMarquardt

OPTIMIZERS = {"lbfgs": LBFGS, "adam": Adam, "lm": LevenbergMarquardt}

__all__ = ["Adam", "LBFGS", "LevenbergMarquardt", "OPTIMIZERS"]
