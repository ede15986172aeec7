"""Levenberg-Marquardt, the one damped Gauss-Newton loop of kanopy.

For residuals r(theta), with A = JᵀJ, g = Jᵀr and loss = r·r, a step solves
(A + mu diag(A)) delta = -g (Marquardt's scaling) and is accepted when it lowers the loss;
mu follows Nielsen's update (:class:`Damping`): after an accepted step it is scaled by
max(1/3, 1 - (2 rho - 1)^3), rho the actual over the predicted reduction, after a rejected
one it is multiplied by nu, which doubles at each rejection in a row.

:func:`damped_step` (one accepted step, trying damping values) is the network optimizer's
step (``optim.lm``, over a model's flat parameter vector); :func:`minimize_residual` (the
whole iteration, Jacobians by forward-mode autodiff or given) serves the formula constants
(``symbolic/constants``), the 1-D library fits and the sums of library terms
(``symbolic/fit1d``). The symbolic fits had their own loop, with mu multiplied by a constant
after a rejection and divided by one after an acceptance; with Nielsen's rule they find the
same formulas (tests/integration/test_discover.py's problems and the reproduction problem:
the same expressions and RMSE, 2% more or less work), while that rule in the network
optimizer moves the demo's final RMSE (see the commit that merged the two).
"""

from __future__ import annotations

import math

import torch

from . import blas


class Damping:
    """The damping mu of Marquardt-scaled Levenberg-Marquardt, with Nielsen's update.

    Parameters
    ----------
    mu : float, default 1e-3
        The initial damping.
    nu : float, default 2.0
        The factor mu is multiplied by at the next rejection.
    """

    def __init__(self, mu: float = 1e-3, nu: float = 2.0):
        self.mu, self.nu = float(mu), float(nu)

    def accepted(self, rho: float) -> None:
        """After an accepted step whose actual reduction is rho times the predicted one."""
        self.mu *= max(1 / 3, 1 - (2 * rho - 1) ** 3)
        self.nu = 2.0

    def rejected(self) -> None:
        """After a rejected step (or a matrix that is not positive definite)."""
        self.mu = max(self.mu * self.nu, 1e-300)  # a mu shrunk to 0 could never grow again
        self.nu *= 2


def damped_step(A, g, loss: float, trial, damping: Damping, tries: int):
    """One accepted Levenberg-Marquardt step, trying up to `tries` damping values.

    A (P, P) = JᵀJ, g (P,) = Jᵀr, loss = r·r at the current point; ``trial(delta)`` returns
    (loss at the current point + delta, anything the caller wants back). Returns (delta,
    trial's result) for the first step that lowers the loss (finite, and predicted to fall),
    or (None, None) when none of the `tries` did; `damping` is updated either way.
    """
    diag = A.diagonal().clone()
    diag.clamp_(min=float(diag.max()) * 1e-12 + torch.finfo(A.dtype).tiny)
    for _ in range(tries):
        delta = solve(A, g, diag * damping.mu)
        if delta is None:
            damping.rejected()
            continue
        predicted = -float(2 * delta.dot(g) + delta.dot(A @ delta))
        result = trial(delta)
        actual = loss - result[0]
        if math.isfinite(result[0]) and actual > 0 and predicted > 0:
            damping.accepted(actual / predicted)
            return delta, result
        damping.rejected()
    return None, None


def solve(A, g, damping_diag):
    """Solve (A + diag(damping_diag)) delta = -g by Cholesky; None if not positive definite
    (or not finite). Single-threaded: MKL's threaded Cholesky rounds differently for each
    number of threads (from a few hundred parameters on), which would make a fit depend on
    the machine; it costs P^3/3 against the P^2 x samples of JᵀJ, which keeps its threads."""
    M = A.clone()
    M.diagonal().add_(damping_diag)
    with blas.sequential():
        L, info = torch.linalg.cholesky_ex(M)
        if int(info) != 0:
            return None
        delta = torch.cholesky_solve(-g.unsqueeze(1), L).squeeze(1)
    return delta if bool(torch.isfinite(delta).all()) else None


def minimize_residual(residual, theta, r, damping: float, iterations: int, tries: int = 12, budget=None,
                      jacobian=None, jacobian_errors: tuple = (), tolerance: float = 1e-15):
    """Levenberg-Marquardt on residual(theta) (N,) from theta, whose residual r is given, with
    Jacobians ``jacobian(theta)`` (N, parameters) (default: by forward-mode autodiff) and
    `damping` the initial mu. Stops at `iterations`,
    when `budget` (a kanopy.discovery.budget.Budget, charged for each iteration) is
    exhausted, when no damping lowers the loss, when the loss stops falling (relative gain
    <= `tolerance`), or when the Jacobian raises one of `jacobian_errors`. Returns (theta,
    sum of squared residuals)."""
    mu = Damping(damping)
    loss = float(r @ r)
    for _ in range(iterations):
        if not math.isfinite(loss):
            break
        if budget is not None:
            if budget.exhausted():
                break
            budget.constants_iteration(r.numel(), theta.numel())
        try:
            J = torch.func.jacfwd(residual)(theta) if jacobian is None else jacobian(theta)  # (N, parameters)
        except jacobian_errors:  # an expression torch cannot differentiate: keep what we have
            break
        A, g = J.T @ J, J.T @ r
        if not (torch.isfinite(A).all() and torch.isfinite(g).all()):
            break

        def trial(step, theta=theta):  # called within this iteration
            with torch.no_grad():
                r_new = residual(theta + step)
            return float(r_new @ r_new), r_new

        step, result = damped_step(A, g, loss, trial, mu, tries)
        if step is None:
            break
        new_loss, r = result
        converged = loss - new_loss <= tolerance * loss
        theta, loss = theta + step, new_loss
        if converged:
            break
    return theta, loss
