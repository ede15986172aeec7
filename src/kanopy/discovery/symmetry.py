"""Variables that enter only through one combination: a monomial prod x_k^p_k of positive
variables (m g x / (kb T), omega_0 / omega), or the difference, product or ratio of a pair
(cos(theta1 - theta2)). Replacing them by the combination leaves a problem with fewer
variables, which every later stage (templates, separation, the polynomial fallback) handles
better.

Monomials show in the log-derivatives x_k d log f / d x_k (by central differences on a
surrogate): for f = F(prod x_k^p_k) they stand in the fixed ratio p_k : p_l at every point.

For pairs, the test moves both variables so that the combination stays fixed, on a surrogate
of the data, and compares the change with that of moving one variable alone: for the combination
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
    xi, xj = problem.variables[i], problem.variables[j]
    positive = bool(xi.is_positive and xj.is_positive) if kind != "difference" else None
    return replaced(problem, [i, j], lambda X: combine(kind, X[:, i], X[:, j]), combine(kind, xi, xj), positive, index)


def replaced(problem, columns, values, u_expr, positive, index: int):
    """The problem with the variables `columns` replaced by one new variable u (first), whose
    values are values(X) and whose expression is u_expr: (problem, u, u_expr)."""
    from .problem import Problem

    def transform(X):
        keep = [k for k in range(X.shape[1]) if k not in columns]
        return torch.cat([values(X)[:, None], X[:, keep]], dim=1)

    u = sympy.Symbol(f"u_{index}", real=True, positive=positive)
    variables = [u] + [v for k, v in enumerate(problem.variables) if k not in columns]
    sub = Problem(transform(problem.Xtr), problem.ytr, transform(problem.Xval), problem.yval, variables,
                  problem.seed, problem.search, depth=problem.depth, noise=problem.noise)
    sub.reductions = problem.reductions + 1
    return sub, u, u_expr


# ------------------------------------------------------------------ monomials
SIMPLE_EXPONENTS = sorted({sympy.Rational(a, b) for b in (1, 2, 3) for a in range(-4 * b, 4 * b + 1) if a})


def log_derivatives(oracle, X, step: float = 1e-4):
    """x_i d log|f| / d x_i at the rows of X (N, n), by central differences on the oracle."""
    n = X.shape[1]
    lo, hi = X.min(dim=0).values, X.max(dim=0).values
    h = step * (hi - lo).clamp_min(1e-12)
    batch = [X]
    for i in range(n):
        for sign in (1.0, -1.0):
            moved = X.clone()
            moved[:, i] += sign * h[i]
            batch.append(moved)
    values = oracle(torch.cat(batch)).reshape(2 * n + 1, X.shape[0])
    f0 = values[0]
    grads = torch.stack([(values[1 + 2 * i] - values[2 + 2 * i]) / (2 * h[i]) for i in range(n)], dim=1)
    return X * grads / f0[:, None]


def monomial_groups(problem, spread_limit: float = 0.05):
    """[(members, exponents)]: sets of positive variables that f sees only through one
    monomial prod x_k^p_k (then x_k d log f / d x_k are in the fixed ratio p_k : p_l at every
    point), exponents rounded to simple fractions, largest group first."""
    X = problem.Xtr
    positive = [bool((X[:, k] > 0).all() and (problem.Xval[:, k] > 0).all()) for k in range(problem.n)]
    if sum(positive) < 2:
        return []
    g = torch.Generator().manual_seed(problem.seed + 5)
    rows = X[torch.randperm(X.shape[0], generator=g)[:256]]
    L = log_derivatives(problem.oracle, rows)
    if not torch.isfinite(L).all():
        return []
    n = problem.n
    strength = L.abs().median(dim=0).values
    ratio = torch.full((n, n), math.nan, dtype=X.dtype)
    for i, j in itertools.permutations(range(n), 2):
        if not (positive[i] and positive[j]) or strength[j] <= 0 or strength[i] <= 0:
            continue
        use = L[:, j].abs() > 0.2 * strength[j]
        if int(use.sum()) < 20:
            continue
        r = L[use, i] / L[use, j]
        centre = r.median()
        spread = float((r - centre).abs().median() / centre.abs().clamp_min(1e-300))
        if spread <= spread_limit:
            ratio[i, j] = centre
    linked = torch.isfinite(ratio) & torch.isfinite(ratio.T)
    groups = []
    seen = set()
    for start in sorted(range(n), key=lambda k: -float(strength[k])):
        if start in seen or not positive[start]:
            continue
        members = [start] + [k for k in range(n) if k != start and k not in seen and bool(linked[k, start])]
        if len(members) < 2:
            continue
        exponents = [sympy.Integer(1)]
        for k in members[1:]:
            value = float(ratio[k, start])
            nearest = min(SIMPLE_EXPONENTS, key=lambda q: abs(float(q) - value))
            exponents.append(nearest if abs(float(nearest) - value) <= 0.06 else None)
        keep = [(m, e) for m, e in zip(members, exponents) if e is not None]
        if len(keep) >= 2:
            seen.update(m for m, _ in keep)
            groups.append(([m for m, _ in keep], [e for _, e in keep]))
    return sorted(groups, key=lambda grp: -len(grp[0]))


def reduced_monomial(problem, members, exponents, index: int):
    """The problem with the members replaced by u = prod x_k^p_k."""
    powers = [float(e) for e in exponents]

    def values(X):
        out = torch.ones_like(X[:, 0])
        for k, p in zip(members, powers):
            out = out * X[:, k] ** p
        return out

    u_expr = sympy.Mul(*[problem.variables[k] ** e for k, e in zip(members, exponents)])
    return replaced(problem, members, values, u_expr, True, index)


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
