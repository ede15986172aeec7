"""The damping loop of the small Levenberg-Marquardt fits of symbolic/ (edge fits, sums of
terms, formula constants): one accepted step, or none."""

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
