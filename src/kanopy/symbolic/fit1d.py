"""Fitting y ~ c * f(a * x + b) + d for one candidate f, on samples of one edge (or any 1-D data).

1. A vectorised grid over the nonlinear parameters (only those the candidate's symmetries
   leave: see library.py), scoring each point by R^2 with c and d solved in closed form.
2. Levenberg-Marquardt on all of (a, b, c, d) from the best grid points, to machine precision:
   an edge that *is* sin(3x + 1) comes out with R^2 = 1 - 1e-16, not 1 - 1e-5.
Candidates whose f(a x + b) is not finite on the data are rejected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..levenberg import minimize_residual
from . import library
from .library import CONSTANT, EXP, GENERAL, HOMOGENEOUS, LINEAR, LOG

_SEARCH_POINTS = 400  # samples used by the grid search (the polish uses all)


@dataclass
class Fit1D:
    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: int

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.a, self.b, self.c, self.d)

    @property
    def relative_error(self) -> float:
        """sqrt(1 - R^2): the RMS residual relative to the data's standard deviation."""
        return math.sqrt(max(1.0 - self.r2, 0.0))


def fit(name: str, x: torch.Tensor, y: torch.Tensor) -> Fit1D | None:
    """Best c * f(a x + b) + d for candidate `name`; None if it cannot be evaluated on x."""
    fits = fit_all(x, y, [name], polish_top=1)
    return fits[0] if fits else None


def fit_all(x: torch.Tensor, y: torch.Tensor, names, polish_top: int = 8, budget=None) -> list[Fit1D]:
    """Fits of every candidate in `names`, best R^2 first. All get the grid search; the
    `polish_top` best by grid R^2 (and any within a factor 100 of the best's residual) are
    polished by Levenberg-Marquardt, first on a subsample and then on all points. The work
    is charged to `budget` (a kanopy.discovery.budget.Budget) when given."""
    if budget is not None:
        budget.edge_fits(len(names))
    x = x.detach().reshape(-1).to(torch.float64)
    y = y.detach().reshape(-1).to(torch.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    xs, ys = _subsample(x, y)
    results, pending = [], []
    for name in names:
        cand = library.get(name)
        if cand.search == CONSTANT:
            results.append(Fit1D(name, 1.0, 0.0, 0.0, float(y.mean()), 0.0 if sst > 0 else 1.0, cand.complexity))
        elif cand.search == LINEAR:
            c, d, sse = _linear(x, y)
            results.append(Fit1D(name, 1.0, 0.0, c, d, _r2(sse, sst), cand.complexity))
        else:
            starts = _grid_starts(cand, xs, ys)
            if starts:
                pending.append((starts[0][2], cand, starts))
    pending.sort(key=lambda item: -item[0])
    best_grid = pending[0][0] if pending else 0.0
    coarse = []  # (R^2 on the subsample, cand, params)
    for rank, (grid_r2, cand, starts) in enumerate(pending):
        if rank >= polish_top and (1 - grid_r2) > 100 * (1 - best_grid):
            continue
        for a, b, _ in starts:
            params = _polish(cand, xs, ys, a, b, iterations=15)
            if params is not None:
                sse = float(((_model(cand, xs, params) - ys) ** 2).sum())
                if math.isfinite(sse):
                    coarse.append((_r2(sse, float(((ys - ys.mean()) ** 2).sum())), cand, params))
    coarse.sort(key=lambda item: -item[0])
    best_coarse = coarse[0][0] if coarse else 0.0
    done = set()
    for rank, (r2, cand, params) in enumerate(coarse):
        # the few best go on to all points; the rest keep their subsample fit
        if cand.name in done:
            continue
        done.add(cand.name)
        if rank < 4 or (1 - r2) <= 1e3 * (1 - best_coarse):
            params = _polish(cand, x, y, params[0], params[1], iterations=25) or params
        sse = float(((_model(cand, x, params) - y) ** 2).sum())
        if math.isfinite(sse) and not _cancelling(params[3], y):
            results.append(Fit1D(cand.name, *params, _r2(sse, sst), cand.complexity))
    results.sort(key=lambda f: -f.r2)
    return results


def _cancelling(d: float, y: torch.Tensor) -> bool:
    """A fit whose offset d is orders of magnitude beyond the data cancels c f(a x + b)
    against d: f is only used through its Taylor polynomial (e.g. x^2 as
    -15300 sin(0.01 x + pi/2) + 15299). Such a fit is not the function it names."""
    return abs(d) > 1e3 * (float(y.mean().abs()) + float(y.std()) + 1e-300)


def _subsample(x, y):
    if x.numel() <= _SEARCH_POINTS:
        return x, y
    order = x.argsort()
    idx = torch.linspace(0, x.numel() - 1, _SEARCH_POINTS).round().long()
    return x[order][idx], y[order][idx]


def _r2(sse: float, sst: float) -> float:
    if sst <= 0:
        return 1.0 if sse <= 1e-30 else 0.0
    return 1.0 - sse / sst


def _linear(f: torch.Tensor, y: torch.Tensor):
    """Least squares y ~ c f + d: (c, d, sse)."""
    fm, ym = f.mean(), y.mean()
    var = ((f - fm) ** 2).sum()
    c = float(((f - fm) * (y - ym)).sum() / var) if var > 0 else 0.0
    d = float(ym - c * fm)
    return c, d, float(((c * f + d - y) ** 2).sum())


def _model(cand, x, params):
    a, b, c, d = params
    return c * cand.torch_fn(a * x + b) + d


def _grid_starts(cand, x, y, keep: int = 2):
    """The `keep` best (a, b, R^2) of a grid, scored by R^2 of the closed-form (c, d)."""
    lo, hi = float(x.min()), float(x.max())
    span = max(hi - lo, 1e-12)
    if cand.search in (HOMOGENEOUS, LOG):  # u = s (x - p): singular point p, direction s
        q = torch.logspace(-3, 2, 30, dtype=torch.float64)
        p = torch.cat([lo - span * q, hi + span * q, torch.linspace(lo, hi, 21, dtype=torch.float64)])
        a = torch.cat([torch.ones_like(p), -torch.ones_like(p)])
        b = -a * torch.cat([p, p])
    elif cand.search == EXP:  # u = a x
        scale = torch.logspace(-2, math.log10(40), 40, dtype=torch.float64) / span
        a = torch.cat([scale, -scale])
        b = torch.zeros_like(a)
    else:  # GENERAL: u = alpha (x - centre) / half_span + beta
        centre, half = (lo + hi) / 2, span / 2
        alpha = torch.logspace(-2, 1.5, 36, dtype=torch.float64)
        alpha = torch.cat([alpha, -alpha])
        beta = torch.linspace(-math.pi, math.pi, 25, dtype=torch.float64)
        alpha, beta = (t.reshape(-1) for t in torch.meshgrid(alpha, beta, indexing="ij"))
        a = alpha / half
        b = beta - a * centre
    with torch.no_grad():
        F = cand.torch_fn(a[:, None] * x[None, :] + b[:, None])  # (grid, N)
    finite = torch.isfinite(F).all(dim=1)
    if not finite.any():
        return []
    F = torch.where(finite[:, None], F, torch.zeros_like(F))
    Fc = F - F.mean(dim=1, keepdim=True)
    yc = y - y.mean()
    num = (Fc @ yc) ** 2
    den = (Fc**2).sum(dim=1) * (yc**2).sum()
    r2 = torch.where(finite & (den > 0), num / den.clamp_min(1e-300), torch.full_like(num, -1.0))
    order = torch.argsort(r2, descending=True)[:keep]
    return [(float(a[i]), float(b[i]), float(r2[i])) for i in order if r2[i] >= 0]


def _value_and_slope(cand, u: torch.Tensor):
    """f(u) and f'(u) (elementwise) by one autograd pass."""
    with torch.enable_grad():
        u = u.detach().requires_grad_()
        f = cand.torch_fn(u)
        (slope,) = torch.autograd.grad(f.sum(), u, allow_unused=True)
    return f.detach(), (slope if slope is not None else torch.zeros_like(u))


def _polish(cand, x, y, a, b, iterations: int = 40):
    """Levenberg-Marquardt on (a, b, c, d) (a fixed for homogeneous/log, b for exp, which
    the symmetry makes redundant), from (a, b) and the closed-form (c, d)."""
    with torch.no_grad():
        f = cand.torch_fn(a * x + b)
    if not torch.isfinite(f).all():
        return None
    c, d, _ = _linear(f, y)
    free = {HOMOGENEOUS: [1, 2, 3], LOG: [1, 2, 3], EXP: [0, 2, 3], GENERAL: [0, 1, 2, 3]}[cand.search]
    start = torch.tensor([a, b, c, d], dtype=torch.float64)
    ones = torch.ones_like(x)
    last = {}  # f(u) and f'(u) at the last point evaluated: the Jacobian there needs them

    def full(t):
        values = start.clone()
        values[free] = t
        return values

    def residual(t):
        a, b, c, d = full(t)
        f, slope = _value_and_slope(cand, a * x + b)
        last.update(t=t, f=f, slope=slope)
        return c * f + d - y

    def jacobian(t):
        if "t" not in last or not torch.equal(last["t"], t):
            residual(t)
        # d r / d (a, b, c, d) = (c f'(u) x, c f'(u), f(u), 1)
        c, slope = full(t)[2], last["slope"]
        columns = [c * slope * x, c * slope, last["f"], ones]
        return torch.stack([columns[i] for i in free], dim=1)  # (N, p)

    theta = start[free]
    r = residual(theta)
    if not math.isfinite(float(r @ r)):
        return None
    theta, _ = minimize_residual(residual, theta, r, 1e-3, iterations, tries=8, jacobian=jacobian, tolerance=1e-14)
    return tuple(float(v) for v in full(theta))


@dataclass
class SumFit:
    """y ~ sum_t c_t f_t(a_t x + b_t) + d: one or more library terms on the same input."""

    terms: list[Fit1D]  # each with its own (a, b, c); d of the first holds the constant
    r2: float

    @property
    def complexity(self) -> int:
        return sum(t.complexity for t in self.terms) + len(self.terms) - 1

    @property
    def relative_error(self) -> float:
        return math.sqrt(max(1.0 - self.r2, 0.0))

    def sympy(self, u):
        """The fitted function of the sympy expression u."""
        import sympy

        total = sympy.Float(sum(t.d for t in self.terms), 17)
        for t in self.terms:
            f = library.get(t.name).sympy_fn
            total += sympy.Float(t.c, 17) * f(sympy.Float(t.a, 17) * u + sympy.Float(t.b, 17))
        return total


def choose(fits, window: float = 10.0):
    """The simplest candidate whose relative error is within `window` times the best one's.
    The constant "0" only wins for a flat edge: in a formula every edge's shape matters, and a
    complexity penalty large enough to matter here would trade shape for simplicity."""
    if not fits:
        return None
    flat = [f for f in fits if f.name == "0" and f.r2 >= 1.0]
    if flat:
        return flat[0]
    fits = [f for f in fits if f.name != "0"]
    if not fits:
        return None
    best = min(f.relative_error for f in fits)
    # near-exact fits (errors set by the spline's accuracy): any within the window is as good
    # and the simplest wins; otherwise the error matters and only near-ties go to the simpler
    window = window if best <= 1e-4 else 1.5
    near = [f for f in fits if f.relative_error <= window * max(best, 1e-9)]
    return min(near, key=lambda f: (f.complexity, f.relative_error))


def fit_sum(x: torch.Tensor, y: torch.Tensor, names, max_terms: int = 2, window: float = 10.0,
            good_enough: float = 1e-7, starts: int = 12, budget=None) -> SumFit | None:
    """The simplest good one-term fit, or, when none reaches `good_enough` relative error, a
    sum of terms: starting from each of the `starts` best single terms, the next term is
    fitted to what the previous ones leave, then all are polished together by
    Levenberg-Marquardt; the best sum wins. (The best single term alone is often a compromise
    between the true ones: for sin(3x) + x^2 a slow sine that mimics x^2.) The candidate
    fits are charged to `budget` when given."""
    x = x.detach().reshape(-1).to(torch.float64)
    y = y.detach().reshape(-1).to(torch.float64)
    sst = float(((y - y.mean()) ** 2).sum())
    singles = [f for f in fit_all(x, y, names, budget=budget) if f.name != "0"]
    first = choose(fit_all(x, y, names, budget=budget) if not singles else singles, window)
    if first is None:
        return None
    best = SumFit([first], first.r2)
    if max_terms < 2 or best.relative_error <= good_enough:
        return best
    names = [n for n in names if n != "0"]
    seen = set()
    # the best single terms, simplest first (a polynomial part is the commonest companion)
    for start in sorted(sorted(singles, key=lambda f: -f.r2)[:starts], key=lambda f: (f.complexity, -f.r2)):
        if start.name in seen:
            continue
        seen.add(start.name)
        terms = [start]
        while len(terms) < max_terms:
            extra = choose(fit_all(x, y - _sum_model(terms, x), names, budget=budget), window)
            if extra is None:
                break
            terms = _polish_sum(terms + [extra], x, y)
        r2 = _r2(float(((_sum_model(terms, x) - y) ** 2).sum()), sst)
        candidate = SumFit(list(terms), r2)
        if candidate.relative_error < 0.1 * best.relative_error or (
                len(best.terms) > 1 and candidate.relative_error < best.relative_error):
            best = candidate
        if best.relative_error <= good_enough:
            break
    return best


def _sum_model(terms, x):
    return sum(t.c * library.get(t.name).torch_fn(t.a * x + t.b) + t.d for t in terms)


def _polish_sum(terms, x, y, iterations: int = 60):
    """Levenberg-Marquardt on every (a, b, c) and one shared d of a sum of terms."""
    cands = [library.get(t.name) for t in terms]
    theta = torch.tensor([v for t in terms for v in (t.a, t.b, t.c)] + [sum(t.d for t in terms)],
                         dtype=torch.float64)

    def residual(th):
        total = th[-1].expand_as(x)
        for k, cand in enumerate(cands):
            a, b, c = th[3 * k], th[3 * k + 1], th[3 * k + 2]
            total = total + c * cand.torch_fn(a * x + b)
        return total - y

    theta, _ = minimize_residual(residual, theta, residual(theta), 1e-4, iterations, tries=8)
    out = []
    for k, t in enumerate(terms):
        a, b, c = (float(v) for v in theta[3 * k: 3 * k + 3])
        out.append(Fit1D(t.name, a, b, c, float(theta[-1]) if k == 0 else 0.0, t.r2, t.complexity))
    return out
