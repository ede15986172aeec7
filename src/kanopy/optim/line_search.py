"""Strong-Wolfe line search with cubic interpolation (Nocedal & Wright, Alg. 3.5/3.6)."""

from __future__ import annotations

import math

import torch

BRACKET_TOLERANCE = 1e-9


def strong_wolfe(objective, theta0, d, t, f0, g0, gtd0, c1=1e-4, c2=0.9, max_evals=25):
    """Line search along d from theta0 for a step t satisfying the strong Wolfe conditions
    (Nocedal & Wright, Alg. 3.5/3.6, cubic interpolation). Leaves objective.theta at the
    returned step. Returns (loss, grad, t, evaluations); t = 0 when no decrease was found."""
    theta = objective.theta

    def phi(step):
        torch.add(theta0, d, alpha=step, out=theta)
        f, g = objective.evaluate()
        return float(f), g, float(g.dot(d))

    best = (0.0, f0, g0)
    prev = (0.0, f0, g0, gtd0)
    n = 0
    bracket = None
    while n < max_evals:
        f, g, gtd = phi(t)
        n += 1
        if f < best[1]:
            best = (t, f, g)
        if not math.isfinite(f) or f > f0 + c1 * t * gtd0 or (n > 1 and f >= prev[1]):
            bracket = [prev, (t, f, g, gtd)]
            break
        if abs(gtd) <= -c2 * gtd0:
            return _finish(theta, theta0, d, t, f, g, n)
        if gtd >= 0:
            bracket = [(t, f, g, gtd), prev]
            break
        lo_bound, hi_bound = t + 0.01 * (t - prev[0]), t * 10
        t_next = _cubic_min(prev[0], prev[1], prev[3], t, f, gtd, lo_bound, hi_bound)
        prev = (t, f, g, gtd)
        t = t_next
    if bracket is not None:
        lo, hi = bracket
        # as torch's LBFGS (and so pykan's): stop zooming once the bracket moves the
        # parameters by less than 1e-9; more evaluations there only chase rounding
        while n < max_evals and abs(hi[0] - lo[0]) * float(d.abs().max()) >= BRACKET_TOLERANCE:
            a, b = min(lo[0], hi[0]), max(lo[0], hi[0])
            t = _cubic_min(lo[0], lo[1], lo[3], hi[0], hi[1], hi[3], a, b)
            if min(t - a, b - t) < 0.1 * (b - a):  # too close to an end: bisect
                t = (a + b) / 2
            f, g, gtd = phi(t)
            n += 1
            if f < best[1]:
                best = (t, f, g)
            if not math.isfinite(f) or f > f0 + c1 * t * gtd0 or f >= lo[1]:
                hi = (t, f, g, gtd)
            else:
                if abs(gtd) <= -c2 * gtd0:
                    return _finish(theta, theta0, d, t, f, g, n)
                if gtd * (hi[0] - lo[0]) >= 0:
                    hi = lo
                lo = (t, f, g, gtd)
    t, f, g = best
    return _finish(theta, theta0, d, t, f, g, n)


def _finish(theta, theta0, d, t, f, g, n):
    torch.add(theta0, d, alpha=t, out=theta)
    return f, g, t, n


def _cubic_min(x1, f1, g1, x2, f2, g2, lo, hi):
    """Minimiser of the cubic through (x1, f1, g1), (x2, f2, g2), clamped to [lo, hi]."""
    if x1 == x2:
        return (lo + hi) / 2
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if not math.isfinite(disc) or disc < 0:
        return (lo + hi) / 2
    d2 = math.copysign(math.sqrt(disc), x2 - x1)
    denom = g2 - g1 + 2 * d2
    if denom == 0:
        return (lo + hi) / 2
    x = x2 - (x2 - x1) * (g2 + d2 - d1) / denom
    return min(max(x, lo), hi) if math.isfinite(x) else (lo + hi) / 2
