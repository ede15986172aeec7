"""Separability of a function into independent groups of variables, tested on a surrogate.

f is a product across groups A | B when f(a, b) f(a', b') = f(a, b') f(a', b) for all points,
and a sum when f(a, b) + f(a', b') = f(a, b') + f(a', b). Both are checked for every pair of
variables on a KAN surrogate of the data (the data alone cannot be evaluated at mixed
points); variables that interact are joined, and the connected groups become sub-problems
whose data comes from the surrogate with the other variables held at typical values.
"""

from __future__ import annotations

import math

import torch

from ..schedule import refine_and_fit
from . import templates

SUB_TRAIN, SUB_VAL = 1000, 300
GRIDS = (3, 5, 10, 20)  # the surrogate's grids, refined while the validation error falls


def surrogate(problem, log: bool = False):
    """A general KAN fitted to the problem's data: (model, oracle, relative validation error).
    With `log` (one-signed y) it is fitted to log|y| and the oracle returns s exp(model):
    products are sums there, which a KAN fits more closely. Grids are refined while the
    validation error falls: past that the fit only memorises the training samples (a fine
    grid on few samples), and the best grid is kept."""
    n = problem.n
    hidden = min(2 * n + 1, 15)
    sign = 1.0 if float(problem.ytr[0]) > 0 else -1.0
    target = (problem.ytr * sign).log() if log else problem.ytr
    model = templates.new_kan(problem, [n, hidden, 1], problem.Xtr, target)

    def predict(fitted, X):
        with torch.no_grad():
            out = fitted(X)[:, 0]
        return sign * out.clamp(max=700).exp() if log else out

    def error(fitted) -> float:
        value = float(torch.sqrt(torch.mean((predict(fitted, problem.Xval) - problem.yval) ** 2))) / problem.scale
        return value if math.isfinite(value) else math.inf

    # Levenberg-Marquardt while the Jacobian stays small, LBFGS beyond
    small = {grid: (n + 1) * hidden * (grid + 5) <= 1500 for grid in GRIDS}
    optimizer = {grid: "lm" if small[grid] else "lbfgs" for grid in GRIDS}

    def stalled(grid, step, history):
        return small[grid] and templates._stalled(step, history)

    model = refine_and_fit(model, problem.Xtr, target[:, None], GRIDS, [30 if small[g] else 40 for g in GRIDS],
                           [optimizer[g] for g in GRIDS], before=lambda grid: not problem.budget.exhausted(),
                           callback=templates.charged(problem, model, problem.Xtr.shape[0], optimizer.get, stalled),
                           score=error, patience=1, progress=False).model

    def oracle(X):
        return predict(model, X)

    if log:  # its pointwise relative error, what the product tests compare against
        ratio = oracle(problem.Xval) / problem.yval - 1
        oracle.relative_noise = float(torch.sqrt(torch.mean(ratio * ratio)))
    return model, oracle, error(model)


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
    validation data), and while it fails the two most interacting groups are merged.
    A surrogate of log|y| is judged by its pointwise relative error for products."""
    oracle, X = problem.oracle, problem.Xtr
    n = X.shape[1]
    relative = getattr(oracle, "relative_noise", None)
    discrepancies = None
    for mode in ("product", "sum"):
        level = relative if mode == "product" and relative is not None else noise
        if level > 1e-2:  # a rough surrogate cannot tell weak interactions from its own error
            continue
        if discrepancies is None:
            discrepancies = dict(zip(("product", "sum"), interactions(oracle, X, problem.seed)))
        disc = discrepancies[mode]
        margin = 20 if level <= 2e-3 else 5  # a rougher surrogate gets a tighter check
        threshold = min(max(10 * level, 1e-4), 0.05)
        parts = _components(disc > threshold)
        while len(parts) >= 2:
            # the reconstruction combines m + 1 surrogate values, and a product amplifies
            # their errors where factors are small: hence the margin over the noise
            error = reconstruction_error(problem, parts, mode, relative=level is relative)
            if error <= margin * (len(parts) + 1) ** 0.5 * level + 1e-5:
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


def reconstruction_error(problem, parts, mode: str, relative: bool = False) -> float:
    """RMSE on the validation data, relative to std(y) (or with `relative` RMS of the
    pointwise relative error), of the separable reconstruction from the surrogate:
    prod_g f(x_g, ref) / f(ref)^(m-1) or sum_g f(x_g, ref) - (m-1) f(ref)."""
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
    if relative:
        return float(torch.sqrt(torch.mean((total / problem.yval - 1) ** 2)))
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
    from .problem import Problem

    reference = reference_point(problem, mode)
    g = torch.Generator().manual_seed(problem.seed + 17 * (problem.depth + 1) + sum(group))

    def embed(Xg):
        full = reference.repeat(Xg.shape[0], 1)
        full[:, group] = Xg
        return full

    def oracle(Xg):
        return problem.oracle(embed(Xg))

    oracle.relative_noise = getattr(problem.oracle, "relative_noise", None)  # pointwise: unchanged
    # the group's values as they occur in the data (a combination such as q / epsilon is far
    # from uniform, and the surrogate is only accurate where the data are)
    Xg = torch.cat([problem.Xtr[:, group], problem.Xval[:, group]])
    Xg = Xg[torch.randperm(Xg.shape[0], generator=g)[:SUB_TRAIN + SUB_VAL]]
    n_train = int(Xg.shape[0] * SUB_TRAIN / (SUB_TRAIN + SUB_VAL))
    y = oracle(Xg)
    sub = Problem(Xg[:n_train], y[:n_train], Xg[n_train:], y[n_train:],
                  [problem.variables[i] for i in group], problem.seed, problem.search, depth=problem.depth + 1,
                  oracle=oracle, oracle_noise=noise)
    relative = getattr(problem.oracle, "relative_noise", None)
    if mode == "product" and relative is not None:  # the same relative error
        sub.noise = relative * float(torch.sqrt(torch.mean(y * y))) / max(sub.scale, 1e-300)
    else:
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
