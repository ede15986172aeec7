"""The last resort of discover: least-squares polynomials, which are never exact for
transcendental laws but are close on a bounded box, so that discover always has an accurate
(if long) formula to offer when no structure fits.

Two families, each with its degree chosen on the validation data:
* y as a polynomial in the standardised variables (x - mean) / std;
* for one-signed y and positive variables, log|y| as a polynomial in log x (power laws and
  their corrections: degree 1 is exactly c * prod x_i^p_i).
"""

from __future__ import annotations

import itertools
import math

import sympy
import torch

MAX_DEGREE = 10  # the validation data choose; the term count bounds it for many variables


def candidates(problem) -> list[tuple[sympy.Expr, float]]:
    """[(expression, validation RMSE)] for each family that applies."""
    found = []
    X, y, Xv, yv = problem.Xtr, problem.ytr, problem.Xval, problem.yval
    found.append(_best_polynomial(problem, X, y, Xv, yv, log=False))
    sign = 1.0 if bool((y > 0).all()) else -1.0 if bool((y < 0).all()) else 0.0
    if sign and bool((X > 0).all()) and bool((Xv > 0).all()):
        found.append(_best_polynomial(problem, X, y * sign, Xv, yv * sign, log=True, sign=sign))
    return [f for f in found if f is not None]


def _best_polynomial(problem, X, y, Xv, yv, log: bool, sign: float = 1.0):
    inputs, inputs_val = (X.log(), Xv.log()) if log else (X, Xv)
    target = y.log() if log else y
    mean, std = inputs.mean(dim=0), inputs.std(dim=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    Z, Zv = (inputs - mean) / std, (inputs_val - mean) / std
    n_terms_max = min(500, X.shape[0] // 3)
    best = None
    for degree in range(1, MAX_DEGREE + 1):
        if problem.clock.left() <= 0:
            break
        powers = _powers(X.shape[1], degree)
        if len(powers) > n_terms_max:
            break
        F, Fv = _features(Z, powers), _features(Zv, powers)
        coef = torch.linalg.lstsq(F, target[:, None], driver="gelsd").solution[:, 0]
        pred = Fv @ coef
        if log:
            pred = pred.clamp(max=700).exp()
        rmse = float(torch.sqrt(torch.mean((pred - yv) ** 2)))
        if math.isfinite(rmse) and (best is None or rmse < best[0]):
            best = (rmse, powers, coef)
    if best is None:
        return None
    rmse, powers, coef = best
    variables = problem.variables
    z = [((sympy.log(v) if log else v) - _num(m)) / _num(s) for v, m, s in zip(variables, mean, std)]
    poly = sum(_num(c) * sympy.Mul(*[zi**p for zi, p in zip(z, power) if p]) for c, power in zip(coef, powers))
    expr = sign * sympy.exp(poly) if log else poly
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


def _features(Z: torch.Tensor, powers) -> torch.Tensor:
    """(N, terms): every monomial of the columns of Z."""
    columns = []
    for power in powers:
        col = torch.ones_like(Z[:, 0])
        for j, p in enumerate(power):
            if p:
                col = col * Z[:, j] ** p
        columns.append(col)
    return torch.stack(columns, dim=1)


def _num(value) -> sympy.Float:
    return sympy.Float(float(value), 17)
