"""Levenberg-Marquardt on the residuals of a flat parameter vector (the loop itself is
:mod:`kanopy.levenberg`'s, shared with the symbolic fits)."""

from __future__ import annotations

import math

import torch

from .. import blas
from ..levenberg import Damping, damped_step


class LevenbergMarquardt:
    """Damped Gauss-Newton on the residuals, with Marquardt's diagonal scaling and
    Nielsen's damping update. The loss is the residuals' sum of squares (the objective scales
    them so that it is, e.g., the mean squared error). For small models (up to a few thousand parameters), where
    it reaches far lower error than first-order methods."""

    name = "lm"

    def __init__(self, damping: float = 1e-3, max_tries: int = 12, method: str = "normal"):
        if method not in ("normal", "lstsq"):
            raise ValueError(f"method must be 'normal' (Cholesky of J^T J) or 'lstsq' (on J itself), got {method!r}")
        self.initial_damping = damping
        self.max_tries = max_tries
        # "lstsq" solves the damped step from J itself (QR/SVD), not from J^T J, whose condition
        # number is squared: for the ill-conditioned Jacobians of fine-grid PDE fits
        self.method = method
        self.reset()

    def reset(self) -> None:
        self._damping = Damping(self.initial_damping)

    @property
    def damping(self) -> float:
        """The current damping mu."""
        return self._damping.mu

    def step(self, objective) -> float:
        if self.method == "lstsq":
            return self._lstsq_step(objective)
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

    def _lstsq_step(self, objective) -> float:
        """The same damped step, min |J delta + r|^2 + mu |D delta|^2 by least squares (D:
        Marquardt's scaling, the column norms of J), with the same damping rule."""
        theta = objective.theta
        r, J = objective.residuals_jacobian()  # (M,), (M, P)
        loss = float(r.dot(r))
        scale = J.norm(dim=0)  # (P,): the square root of diag(J^T J)
        scale.clamp_(min=float(scale.max()) * 1e-6 + torch.finfo(J.dtype).tiny)
        g = J.T @ r
        theta0 = theta.clone()
        damping = self._damping
        for _ in range(self.max_tries):
            stacked = torch.cat([J, torch.diag(scale * damping.mu**0.5)])
            rhs = torch.cat([-r, r.new_zeros(J.shape[1])])
            with blas.sequential():
                delta = torch.linalg.lstsq(stacked, rhs.unsqueeze(1), driver="gelsd").solution.squeeze(1)
            Jd = J @ delta
            predicted = -float(2 * delta.dot(g) + Jd.dot(Jd))
            torch.add(theta0, delta, out=theta)
            new_loss = objective.sum_of_squares()
            actual = loss - new_loss
            if math.isfinite(new_loss) and actual > 0 and predicted > 0:
                damping.accepted(actual / predicted)
                return new_loss
            damping.rejected()
        theta.copy_(theta0)
        return loss

    def state_dict(self) -> dict:
        return {"damping": self._damping.mu, "nu": self._damping.nu}

    def load_state_dict(self, state: dict) -> None:
        self._damping = Damping(float(state["damping"]), float(state["nu"]))
