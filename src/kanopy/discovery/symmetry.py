"""Two variables that enter only through one combination: f depends on x_i - x_j, x_i * x_j
or x_i / x_j (as cos(theta1 - theta2), sin(omega * t), (omega_0 / omega)^2). Replacing the
pair by the combination leaves a problem with one variable fewer, which every later stage
(templates, separation, the polynomial fallback) handles better.

The test moves both variables so that the combination stays fixed, on a surrogate of the
data, and compares the change with that of moving one variable alone: for the combination
that f really depends on, the first change is only the surrogate's error. A reduction is
kept only when a surrogate fitted to the reduced variables is as accurate as the full one,
so a wrong reduction (the reduced data are then no function at all) is never followed.
"""

from __future__ import annotations

import copy
import itertools
import math

import sympy
import torch

KINDS = ("difference", "product", "ratio")
POINTS = 96


def combine(kind: str, a, b):
    """The combination of two values, tensors or sympy expressions."""
    return a - b if kind == "difference" else a * b if kind == "product" else a / b


def invariance(oracle, X, i: int, j: int, kind: str, seed: int) -> float:
    """RMS change of f when x_i, x_j move with their combination fixed, over the RMS change
    when x_i alone makes the same move; inf when the move does not fit in the data's box."""
    lo, hi = X.min(dim=0).values, X.max(dim=0).values
    g = torch.Generator().manual_seed(seed + 31 * i + j)
    base = lo + (hi - lo) * torch.rand(POINTS, X.shape[1], generator=g, dtype=X.dtype)
    if kind == "difference":  # x_i + d, x_j + d
        d = 0.25 * float(min(hi[i] - lo[i], hi[j] - lo[j]))
        if d <= 0:
            return math.inf
        base[:, i] = lo[i] + (hi[i] - d - lo[i]) * (base[:, i] - lo[i]) / (hi[i] - lo[i])
        base[:, j] = lo[j] + (hi[j] - d - lo[j]) * (base[:, j] - lo[j]) / (hi[j] - lo[j])
        both, alone = base.clone(), base.clone()
        both[:, i] += d
        both[:, j] += d
        alone[:, i] += d
    else:  # x_i * s with x_j / s (product) or x_j * s (ratio)
        if float(lo[i]) <= 0 or float(lo[j]) <= 0:
            return math.inf
        s = min(float(hi[i] / lo[i]), float(hi[j] / lo[j])) ** 0.25
        if s <= 1.0 + 1e-6:
            return math.inf
        log_lo, log_hi = lo.log(), hi.log()
        u = torch.rand(POINTS, 2, generator=g, dtype=X.dtype)
        ls = math.log(s)
        base[:, i] = (log_lo[i] + (log_hi[i] - ls - log_lo[i]) * u[:, 0]).exp()
        if kind == "product":  # x_j / s must stay above lo_j
            base[:, j] = (log_lo[j] + ls + (log_hi[j] - ls - log_lo[j]) * u[:, 1]).exp()
        else:
            base[:, j] = (log_lo[j] + (log_hi[j] - ls - log_lo[j]) * u[:, 1]).exp()
        both, alone = base.clone(), base.clone()
        both[:, i] *= s
        both[:, j] = both[:, j] / s if kind == "product" else both[:, j] * s
        alone[:, i] *= s
    f0, f_both, f_alone = oracle(torch.cat([base, both, alone])).reshape(3, POINTS).unbind(0)
    moved = float(torch.sqrt(torch.mean((f_alone - f0) ** 2)))
    kept = float(torch.sqrt(torch.mean((f_both - f0) ** 2)))
    return kept / moved if moved > 0 else math.inf


def candidates(problem, noise: float, limit: float = 0.05):
    """[(score, i, j, kind)] of the pairs whose combination looks invariant on the surrogate,
    most invariant first."""
    found = []
    for i, j in itertools.combinations(range(problem.n), 2):
        for kind in KINDS:
            for a, b in ((i, j), (j, i)) if kind == "ratio" else ((i, j),):
                score = invariance(problem.oracle, problem.Xtr, a, b, kind, problem.seed)
                if score <= limit:
                    found.append((score, a, b, kind))
    return sorted(found)


def reduced(problem, i: int, j: int, kind: str, index: int):
    """The problem in the variables with x_i, x_j replaced by u = combine(x_i, x_j), and u's
    sympy expression in the original variables."""
    from .search import Problem

    def transform(X):
        u = combine(kind, X[:, i], X[:, j])
        keep = [k for k in range(X.shape[1]) if k not in (i, j)]
        return torch.cat([u[:, None], X[:, keep]], dim=1)

    xi, xj = problem.variables[i], problem.variables[j]
    u_expr = combine(kind, xi, xj)
    positive = bool(xi.is_positive and xj.is_positive) if kind != "difference" else None
    u = sympy.Symbol(f"u_{index}", real=True, positive=positive)
    variables = [u] + [v for k, v in enumerate(problem.variables) if k not in (i, j)]
    sub = Problem(transform(problem.Xtr), problem.ytr, transform(problem.Xval), problem.yval, variables,
                  problem.seed, problem.clock, depth=problem.depth, noise=problem.noise)
    sub.reductions = problem.reductions + 1
    return sub, u, u_expr


def substitute(front, u, u_expr):
    """The reduced problem's candidates back in the original variables."""
    from ..symbolic import formula

    out = []
    for cand in front:
        cand = copy.copy(cand)
        cand.expr = cand.expr.xreplace({u: u_expr})
        cand.complexity = formula.complexity(cand.expr)
        out.append(cand)
    return out
