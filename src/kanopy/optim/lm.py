"""Levenberg-Marquardt on the residuals of a flat parameter vector (the loop itself is
:mod:`kanopy.levenberg`'s, shared with the symbolic fits)."""

from __future__ import annotations

import torch

from ..levenberg import Damping, damped_step


class LevenbergMarquardt:
    """Damped Gauss-Newton on the residuals, with Marquardt's diagonal scaling and
    Nielsen's damping update. The loss is the residuals' sum of squares (the objective scales
    them so that it is, e.g., the mean squared error). For small models (up to a few thousand parameters), where
    it reaches far lower error than first-order methods."""

    name = "lm"

    def __init__(self, damping: float = 1e-3, max_tries: int = 12):
        self.initial_damping = damping
        self.max_tries = max_tries
        self.reset()

    def reset(self) -> None:
        self._damping = Damping(self.initial_damping)

    @property
    def damping(self) -> float:
        """The current damping mu."""
        return self._damping.mu

    def step(self, objective) -> float:
        theta = objective.theta
        loss, A, g = objective.normal_equations()  # r.r, J^T J (P, P), J^T r (P,)
        theta0 = theta.clone()

        def trial(delta):
            torch.add(theta0, delta, out=theta)
            return objective.sum_of_squares(), None

        delta, result = damped_step(A, g, loss, trial, self._damping, self.max_tries)
        if delta is None:
            theta.copy_(theta0)
            return loss
        return result[0]

    def state_dict(self) -> dict:
        return {"damping": self._damping.mu, "nu": self._damping.nu}

    def load_state_dict(self, state: dict) -> None:
        self._damping = Damping(float(state["damping"]), float(state["nu"]))
