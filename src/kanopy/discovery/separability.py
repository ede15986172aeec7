"""Separability of a function into independent groups of variables, tested on a surrogate.

f is a product across groups A | B when f(a, b) f(a', b') = f(a, b') f(a', b) for all points,
and a sum when f(a, b) + f(a', b') = f(a, b') + f(a', b). Both are checked for every pair of
variables on a KAN surrogate of the data (the data alone cannot be evaluated at mixed
points); variables that interact are joined, and the connected groups become sub-problems
whose data comes from the surrogate with the other variables held at typical values.
"""

from __future__ import annotations

import copy
import math

import torch

from . import templates

SUB_TRAIN, SUB_VAL = 1000, 300


def surrogate(problem):
    """A general KAN fitted to the problem's data: (model, oracle, relative validation error).
    Grids are refined while the validation error falls: past that the fit only memorises
    the training samples (a fine grid on few samples), and the best grid is kept."""
    n = problem.n
    hidden = min(2 * n + 1, 15)
    model = templates.new_kan(problem, [n, hidden, 1], problem.Xtr, problem.ytr)
    best, best_error = None, math.inf
    for grid in (3, 5, 10, 20):
        if problem.clock.left() <= 0:
            break
        if grid != model.grid:
            model.refine(grid)
        # Levenberg-Marquardt while the Jacobian stays small, LBFGS beyond
        small = (n + 1) * hidden * (grid + 5) <= 1500
        model.fit(problem.Xtr, problem.ytr[:, None], steps=30 if small else 40, optimizer="lm" if small else "lbfgs",
                  progress=False, callback=lambda step, h: (small and templates._stalled(step, h))
                  or problem.clock.left() <= 0)
        error = _relative_error(model, problem)
        if not error < best_error:
            break
        best, best_error = copy.deepcopy(model), error
    model = best if best is not None else model

    def oracle(X):
        with torch.no_grad():
            return model(X)[:, 0]

    return model, oracle, _relative_error(model, problem)


def _relative_error(model, problem) -> float:
    with torch.no_grad():
        error = float(torch.sqrt(torch.mean((model(problem.Xval)[:, 0] - problem.yval) ** 2))) / problem.scale
    return error if math.isfinite(error) else math.inf


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


def groups(problem, noise: float):
    """("product" or "sum", groups of variable indices) for the finest separation that the
    surrogate confirms on held-out data, or ("none", [all variables]).

    Pairs whose discrepancy exceeds a threshold are joined; the resulting partition is then
    checked as a whole (the separable reconstruction from the surrogate must match the
    validation data), and while it fails the two most interacting groups are merged."""
    oracle, X = problem.oracle, problem.Xtr
    n = X.shape[1]
    if noise > 2e-3:  # a rough surrogate cannot tell weak interactions from its own error
        return "none", [list(range(n))]
    mul_disc, add_disc = interactions(oracle, X, problem.seed)
    threshold = min(max(10 * noise, 1e-4), 0.05)
    for mode, disc in (("product", mul_disc), ("sum", add_disc)):
        parts = _components(disc > threshold)
        while len(parts) >= 2:
            # the reconstruction combines m + 1 surrogate values, and a product amplifies
            # their errors where factors are small: hence the margin over the noise
            error = reconstruction_error(problem, parts, mode)
            if error <= 20 * (len(parts) + 1) ** 0.5 * noise + 1e-5:
                return mode, parts
            parts = _merge_closest(parts, disc)
    return "none", [list(range(n))]


def reference_point(problem, mode: str) -> torch.Tensor:
    """Where the other variables are held: medians for a sum; for a product a sample where
    |y| is large (at the medians another factor may vanish, leaving only noise)."""
    X = problem.Xtr
    if mode == "product":
        y = problem.ytr.abs()
        return X[int(torch.argsort(y)[int(0.9 * (len(y) - 1))])]
    return X.median(dim=0).values


def reconstruction_error(problem, parts, mode: str) -> float:
    """Relative RMSE on the validation data of the separable reconstruction from the
    surrogate: prod_g f(x_g, ref) / f(ref)^(m-1) or sum_g f(x_g, ref) - (m-1) f(ref)."""
    ref = reference_point(problem, mode)
    X = problem.Xval
    f_ref = problem.oracle(ref[None, :])[0]
    total = None
    for group in parts:
        mixed = ref.repeat(X.shape[0], 1)
        mixed[:, group] = X[:, group]
        value = problem.oracle(mixed)
        if total is None:
            total = value
        elif mode == "product":
            total = total * value / f_ref
        else:
            total = total + value - f_ref
    return float(torch.sqrt(torch.mean((total - problem.yval) ** 2))) / problem.scale


def _merge_closest(parts, disc):
    best, pair = -1.0, (0, 1)
    for a in range(len(parts)):
        for b in range(a + 1, len(parts)):
            value = float(disc[parts[a]][:, parts[b]].max())
            if value > best:
                best, pair = value, (a, b)
    a, b = pair
    merged = sorted(parts[a] + parts[b])
    return [p for k, p in enumerate(parts) if k not in pair] + [merged]


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
    """The function of the variables in `group` with the others held at the reference point,
    sampled from the surrogate."""
    from .search import Problem

    X = problem.Xtr
    reference = reference_point(problem, mode)
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
