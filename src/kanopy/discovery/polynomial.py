"""The last resort of discover: least-squares polynomials, which are never exact for
transcendental laws but are close on a bounded box, so that discover always has an accurate
(if long) formula to offer when no structure fits.

Two families, each with its degree and ridge damping chosen on the validation data:
* y as a polynomial in the variables;
* for one-signed y, log|y| as a polynomial in the variables, each positive variable entering
  through its logarithm or as it is, whichever the validation data prefer (degree 1 in
  logarithms is exactly c * prod x_i^p_i; a factor 1/epsilon wants log epsilon, while
  cos(alpha) with alpha from 0 wants alpha itself).
The basis is Chebyshev polynomials of each variable mapped to [-1, 1] (well conditioned at
high degree), and a small ridge keeps the fit tame where the samples are sparse.
"""

from __future__ import annotations

import itertools
import math

import sympy
import torch

MAX_DEGREE = 20  # the validation data choose; the term count bounds it for many variables
RIDGES = (0.0, 1e-10, 1e-7, 1e-4)  # relative to the mean squared feature


def candidates(problem) -> list[tuple[sympy.Expr, float]]:
    """[(expression, validation RMSE)] for each family that applies."""
    found = []
    X, y = problem.Xtr, problem.ytr
    n = X.shape[1]
    found.append(_best_polynomial(problem, [False] * n, log_y=False))
    sign = 1.0 if bool((y > 0).all()) else -1.0 if bool((y < 0).all()) else 0.0
    if sign and bool((problem.yval * sign > 0).all()):
        positive = [bool((X[:, i] > 0).all() and (problem.Xval[:, i] > 0).all()) for i in range(n)]
        logs = _choose_logs(problem, positive, sign)
        found.append(_best_polynomial(problem, logs, log_y=True, sign=sign))
    return [f for f in found if f is not None]


def _choose_logs(problem, positive, sign, degree: int = 2) -> list[bool]:
    """Which positive variables enter log|y| through their logarithm: all first, then each
    switched back to itself when that lowers the validation error of a low-degree fit."""
    logs = list(positive)
    error = _fit(problem, logs, True, sign, degree)[0]
    for i, is_positive in enumerate(positive):
        if not is_positive or problem.budget.exhausted():
            continue
        trial = logs.copy()
        trial[i] = False
        trial_error = _fit(problem, trial, True, sign, degree)[0]
        if trial_error < error:
            logs, error = trial, trial_error
    return logs


def _inputs(X, logs):
    return torch.stack([X[:, i].log() if log else X[:, i] for i, log in enumerate(logs)], dim=1)


def _fit(problem, logs, log_y, sign, degree, ridges=(0.0,)):
    """(validation RMSE, powers, coefficients, lo, width) of the best of the polynomials of
    this degree, one per ridge damping (all on the same features), each charged to the
    problem's budget; the dampings after the first are skipped once it is spent."""
    A, Av = _inputs(problem.Xtr, logs), _inputs(problem.Xval, logs)
    lo, hi = A.min(dim=0).values, A.max(dim=0).values
    width = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    Z, Zv = 2 * (A - lo) / width - 1, 2 * (Av - lo) / width - 1
    target = (problem.ytr * sign).log() if log_y else problem.ytr
    powers = _powers(A.shape[1], degree)
    F, Fv = _features(Z, powers, degree), _features(Zv, powers, degree)
    best = None
    for ridge in ridges:
        if best is not None and problem.budget.exhausted():
            break
        problem.budget.least_squares(F.shape[0], F.shape[1])
        if ridge > 0:  # damped least squares as an augmented system
            # mean of F^2 by columns first: a whole-tensor sum is split by the thread count
            damp = math.sqrt(ridge * float((F * F).sum(dim=0).sum()) / F.shape[1])
            F_aug = torch.cat([F, damp * torch.eye(F.shape[1], dtype=F.dtype)])
            t_aug = torch.cat([target, torch.zeros(F.shape[1], dtype=F.dtype)])
            coef = torch.linalg.lstsq(F_aug, t_aug[:, None], driver="gelsd").solution[:, 0]
        else:
            coef = torch.linalg.lstsq(F, target[:, None], driver="gelsd").solution[:, 0]
        pred = Fv @ coef
        if log_y:
            pred = sign * pred.clamp(max=700).exp()
        rmse = float(torch.sqrt(torch.mean((pred - problem.yval) ** 2)))
        rmse = rmse if math.isfinite(rmse) else math.inf
        if best is None or rmse < best[0]:
            best = (rmse, powers, coef, lo, width)
    return best


def _best_polynomial(problem, logs, log_y: bool, sign: float = 1.0):
    n = problem.Xtr.shape[1]
    n_terms_max = min(500, problem.Xtr.shape[0] // 3)
    best, best_degree = None, 0
    for degree in range(1, MAX_DEGREE + 1):
        if len(_powers(n, degree)) > n_terms_max or degree > best_degree + 3:  # 3 degrees without gain
            break
        if problem.budget.exhausted():
            break
        fit = _fit(problem, logs, log_y, sign, degree, RIDGES)
        if best is None or fit[0] < best[0]:
            best, best_degree = fit, degree
    if best is None or not math.isfinite(best[0]):
        return None
    rmse, powers, coef, lo, width = best
    z = [2 * ((sympy.log(v) if log else v) - _num(a)) / _num(w) - 1
         for v, log, a, w in zip(problem.variables, logs, lo, width)]
    poly = sum(_num(c) * sympy.Mul(*[sympy.chebyshevt(p, zi) for zi, p in zip(z, power) if p])
               for c, power in zip(coef, powers))
    expr = sign * sympy.exp(poly) if log_y else poly
    return expr, rmse


def _powers(n: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of all monomials of total degree <= degree in n variables."""
    out = []
    for d in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(n), d):
            power = [0] * n
            for j in combo:
                power[j] += 1
            out.append(tuple(power))
    return out


def _features(Z: torch.Tensor, powers, degree: int) -> torch.Tensor:
    """(N, terms): for each exponent tuple p, prod_j T_{p_j}(Z[:, j]) (Chebyshev T)."""
    T = [torch.ones_like(Z), Z]
    for _ in range(2, degree + 1):
        T.append(2 * Z * T[-1] - T[-2])
    columns = []
    for power in powers:
        col = torch.ones_like(Z[:, 0])
        for j, p in enumerate(power):
            if p:
                col = col * T[p][:, j]
        columns.append(col)
    return torch.stack(columns, dim=1)


def _num(value) -> sympy.Float:
    return sympy.Float(float(value), 17)
