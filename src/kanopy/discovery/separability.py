"""Separability of a function into independent groups of variables, tested on a surrogate.

f is a product across groups A | B when f(a, b) f(a', b') = f(a, b') f(a', b) for all points,
and a sum when f(a, b) + f(a', b') = f(a, b') + f(a', b). Both are checked for every pair of
variables on a KAN surrogate of the data (the data alone cannot be evaluated at mixed
points); variables that interact are joined, and the connected groups become sub-problems
whose data comes from the surrogate with the other variables held at typical values.
"""

from __future__ import annotations

import torch

from . import templates

SUB_TRAIN, SUB_VAL = 1000, 300


def surrogate(problem):
    """A general KAN fitted to the problem's data: (oracle, relative validation error)."""
    n = problem.n
    model = templates.new_kan(problem, [n, min(2 * n + 1, 15), 1], problem.Xtr, problem.ytr)
    for grid in (3, 5, 10):
        if problem.clock.left() <= 0:
            break
        if grid != model.grid:
            model.refine(grid)
        model.fit(problem.Xtr, problem.ytr[:, None], steps=40, optimizer="lbfgs", progress=False)

    def oracle(X):
        with torch.no_grad():
            return model(X)[:, 0]

    error = float(torch.sqrt(torch.mean((oracle(problem.Xval) - problem.yval) ** 2))) / problem.scale
    return oracle, error


def interactions(oracle, X, seed: int, points: int = 64):
    """(product discrepancy, sum discrepancy), each (n, n): how much each pair of variables
    fails the product / sum identity, as a median over random points of the data's box."""
    n = X.shape[1]
    lo, hi = X.min(dim=0).values, X.max(dim=0).values
    g = torch.Generator().manual_seed(seed)
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    batches = []
    for i, j in pairs:
        base = lo + (hi - lo) * torch.rand(points, n, generator=g, dtype=X.dtype)
        alt = lo + (hi - lo) * torch.rand(points, n, generator=g, dtype=X.dtype)
        f10, f01, f11 = base.clone(), base.clone(), base.clone()
        f10[:, i] = alt[:, i]
        f01[:, j] = alt[:, j]
        f11[:, i], f11[:, j] = alt[:, i], alt[:, j]
        batches += [base, f10, f01, f11]
    values = oracle(torch.cat(batches)).reshape(len(pairs), 4, points)
    f00, f10, f01, f11 = values.unbind(1)
    scale = values.std().clamp_min(1e-300)
    prod = (f00 * f11 - f10 * f01).abs() / ((f00 * f11).abs() + (f10 * f01).abs()).clamp_min(1e-300)
    add = (f00 + f11 - f10 - f01).abs() / scale
    mul_disc = torch.zeros(n, n, dtype=X.dtype)
    add_disc = torch.zeros(n, n, dtype=X.dtype)
    for k, (i, j) in enumerate(pairs):
        mul_disc[i, j] = mul_disc[j, i] = prod[k].median()
        add_disc[i, j] = add_disc[j, i] = add[k].median()
    return mul_disc, add_disc


def groups(oracle, X, noise: float, seed: int):
    """("product" or "sum", groups of variable indices) for the finest separation found,
    or ("none", [all variables])."""
    n = X.shape[1]
    mul_disc, add_disc = interactions(oracle, X, seed)
    threshold = min(max(30 * noise, 1e-4), 0.05)
    for mode, disc in (("product", mul_disc), ("sum", add_disc)):
        comps = _components(disc > threshold)
        if len(comps) >= 2:
            return mode, comps
    return "none", [list(range(n))]


def _components(adjacent: torch.Tensor) -> list[list[int]]:
    n = adjacent.shape[0]
    seen, comps = set(), []
    for start in range(n):
        if start in seen:
            continue
        stack, comp = [start], []
        seen.add(start)
        while stack:
            i = stack.pop()
            comp.append(i)
            for j in range(n):
                if adjacent[i, j] and j not in seen:
                    seen.add(j)
                    stack.append(j)
        comps.append(sorted(comp))
    return comps


def sub_problem(problem, group: list[int], noise: float, mode: str = "sum"):
    """The function of the variables in `group` with the others held fixed, sampled from the
    surrogate. The others sit at their medians for a sum; for a product at a sample where |y|
    is large (at the medians another factor may vanish, leaving only noise)."""
    from .search import Problem

    X = problem.Xtr
    if mode == "product":
        y = problem.ytr.abs()
        reference = X[int(torch.argsort(y)[int(0.9 * (len(y) - 1))])]
    else:
        reference = X.median(dim=0).values
    lo, hi = X.min(dim=0).values[group], X.max(dim=0).values[group]
    g = torch.Generator().manual_seed(problem.seed + 17 * (problem.depth + 1) + sum(group))

    def embed(Xg):
        full = reference.repeat(Xg.shape[0], 1)
        full[:, group] = Xg
        return full

    def oracle(Xg):
        return problem.oracle(embed(Xg))

    Xg = lo + (hi - lo) * torch.rand(SUB_TRAIN + SUB_VAL, len(group), generator=g, dtype=X.dtype)
    y = oracle(Xg)
    sub = Problem(Xg[:SUB_TRAIN], y[:SUB_TRAIN], Xg[SUB_TRAIN:], y[SUB_TRAIN:],
                  [problem.variables[i] for i in group], problem.seed, problem.clock, depth=problem.depth + 1,
                  oracle=oracle, oracle_noise=noise)
    sub.noise = noise * problem.scale / max(sub.scale, 1e-300)  # the same absolute error
    return sub


def assemble(parts, mode: str, problem):
    """C * prod(parts) or sum(parts) + C, with C fitted by least squares on the problem."""
    import sympy

    from ..symbolic import formula

    combined = sympy.Mul(*parts) if mode == "product" else sympy.Add(*parts)
    values = formula.to_torch(combined, problem.variables)(problem.Xtr)
    values = torch.as_tensor(values, dtype=problem.Xtr.dtype).expand_as(problem.ytr)
    y = problem.ytr
    if mode == "product":
        c = float((y * values).sum() / (values * values).sum().clamp_min(1e-300))
        return sympy.Float(c, 17) * combined
    return combined + sympy.Float(float((y - values).mean()), 17)
