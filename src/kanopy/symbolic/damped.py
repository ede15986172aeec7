"""The small Levenberg-Marquardt fits of symbolic/ (edge fits, sums of terms, formula
constants): the damping loop (one accepted step, or none), and the whole iteration for a
residual that torch.func can differentiate."""

from __future__ import annotations

import math

import torch


def damped_step(A, g, mu, loss, trial, tries: int, grow: float, shrink: float, mu_floor: float):
    """Solve (A + mu diag(A)) step = -g with mu growing by `grow` until trial(step), which
    returns (new loss, anything), lowers `loss`. Returns (step, trial result, new mu): the
    accepted step and mu / shrink (at least mu_floor), or (None, None, mu) after `tries`."""
    diag = A.diagonal().clamp_min(1e-30)
    for _ in range(tries):
        step, info = torch.linalg.solve_ex(A + mu * torch.diag(diag), -g)
        if int(info) == 0 and torch.isfinite(step).all():
            result = trial(step)
            if math.isfinite(result[0]) and result[0] < loss:
                return step, result, max(mu / shrink, mu_floor)
        mu *= grow
    return None, None, mu


def minimize_residual(residual, theta, r, mu: float, iterations: int, tries: int, grow: float, shrink: float,
                      budget=None, jacobian_errors: tuple = ()):
    """Levenberg-Marquardt on residual(theta) (N,) from theta, whose residual r is given, with
    Jacobians by forward-mode autodiff. Stops at `iterations`, when `budget` (a
    kanopy.discovery.budget.Budget, charged for each iteration) is exhausted, when no damping
    lowers the loss, when the loss stops falling (relative gain <= 1e-15), or when the
    Jacobian raises one of `jacobian_errors`. Returns (theta, sum of squared residuals)."""
    loss = float(r @ r)
    for _ in range(iterations):
        if not math.isfinite(loss):
            break
        if budget is not None:
            if budget.exhausted():
                break
            budget.constants_iteration(r.numel(), theta.numel())
        try:
            J = torch.func.jacfwd(residual)(theta)  # (N, parameters)
        except jacobian_errors:  # an expression torch cannot differentiate: keep what we have
            break
        A, g = J.T @ J, J.T @ r
        if not (torch.isfinite(A).all() and torch.isfinite(g).all()):
            break

        def trial(step, theta=theta):  # called within this iteration
            with torch.no_grad():
                r_new = residual(theta + step)
            return float(r_new @ r_new), r_new

        step, result, mu = damped_step(A, g, mu, loss, trial, tries=tries, grow=grow, shrink=shrink, mu_floor=1e-15)
        if step is None:
            break
        new_loss, r = result
        converged = loss - new_loss <= 1e-15 * loss
        theta, loss = theta + step, new_loss
        if converged:
            break
    return theta, loss
