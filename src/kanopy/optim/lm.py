"""Levenberg-Marquardt on the residuals of a flat parameter vector."""

from __future__ import annotations

import math

import torch

from .. import blas


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
        self.damping = self.initial_damping
        self.nu = 2.0

    def step(self, objective) -> float:
        if self.method == "lstsq":
            return self._lstsq_step(objective)
        theta = objective.theta
        loss, A, g = objective.normal_equations()  # r.r, J^T J (P, P), J^T r (P,)
        diag = A.diagonal().clone()
        diag.clamp_(min=float(diag.max()) * 1e-12 + torch.finfo(A.dtype).tiny)
        theta0 = theta.clone()
        for _ in range(self.max_tries):
            delta = _damped_solve(A, g, diag * self.damping)
            if delta is None:
                self.damping *= self.nu
                self.nu *= 2
                continue
            predicted = -float(2 * delta.dot(g) + delta.dot(A @ delta))
            torch.add(theta0, delta, out=theta)
            new_loss = objective.sum_of_squares()
            actual = loss - new_loss
            if math.isfinite(new_loss) and actual > 0 and predicted > 0:
                rho = actual / predicted
                self.damping *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                self.nu = 2.0
                return new_loss
            self.damping *= self.nu
            self.nu *= 2
        theta.copy_(theta0)
        return loss

    def _lstsq_step(self, objective) -> float:
        """The same damped step, min |J delta + r|^2 + damping |D delta|^2 by least squares."""
        theta = objective.theta
        r, J = objective.residuals_jacobian()  # (M,), (M, P)
        loss = float(r.dot(r))
        scale = J.norm(dim=0)  # (P,): Marquardt's scaling, the square root of diag(J^T J)
        scale.clamp_(min=float(scale.max()) * 1e-6 + torch.finfo(J.dtype).tiny)
        g = J.T @ r
        theta0 = theta.clone()
        for _ in range(self.max_tries):
            stacked = torch.cat([J, torch.diag(scale * self.damping**0.5)])
            rhs = torch.cat([-r, r.new_zeros(J.shape[1])])
            with blas.sequential():
                delta = torch.linalg.lstsq(stacked, rhs.unsqueeze(1), driver="gelsd").solution.squeeze(1)
            Jd = J @ delta
            predicted = -float(2 * delta.dot(g) + Jd.dot(Jd))
            torch.add(theta0, delta, out=theta)
            new_loss = objective.sum_of_squares()
            actual = loss - new_loss
            if math.isfinite(new_loss) and actual > 0 and predicted > 0:
                rho = actual / predicted
                self.damping *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
                self.nu = 2.0
                return new_loss
            self.damping *= self.nu
            self.nu *= 2
        theta.copy_(theta0)
        return loss

    def state_dict(self) -> dict:
        return {"damping": self.damping, "nu": self.nu}

    def load_state_dict(self, state: dict) -> None:
        self.damping, self.nu = float(state["damping"]), float(state["nu"])


def _damped_solve(A, g, damping_diag):
    """Solve (A + diag(damping)) delta = -g by Cholesky; None if not positive definite.
    Single-threaded: MKL's threaded Cholesky rounds differently for each number of threads
    (from a few hundred parameters on), which would make a fit depend on the machine; it
    costs P^3/3 against the P^2 x samples of J^T J, which keeps its threads."""
    M = A.clone()
    M.diagonal().add_(damping_diag)
    with blas.sequential():
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            return None
        return torch.cholesky_solve(-g.unsqueeze(1), L).squeeze(1)
