"""The numeric constants of a formula: fit them to data, and round them to simple values
(0, integers, small fractions, multiples of pi, ...) where that does not hurt the error.

Fitting is Levenberg-Marquardt over the expression's Float atoms, in float64, with the
Jacobian by forward-mode autodiff through a torch version of the expression: when the
structure is right the constants come out to machine precision. The expression is compiled
once (``Constants``); rounding then fixes constants one at a time and refits the others.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy
import torch

from ..levenberg import minimize_residual
from .formula import _TORCH_FUNCS


def float_constants(expr: sympy.Expr) -> list[sympy.Float]:
    """The Float atoms of expr, largest magnitude first (deterministic order)."""
    return sorted(expr.atoms(sympy.Float), key=lambda f: (-abs(float(f)), float(f)))


def rmse_of(expr, variables, X: torch.Tensor, y: torch.Tensor) -> float:
    f = sympy.lambdify(variables, expr, [_TORCH_FUNCS, "math"])
    with torch.no_grad():
        try:
            pred = f(*[X[:, i] for i in range(X.shape[1])])
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError, OverflowError):
            return math.inf
        pred = torch.as_tensor(pred).real.to(X.dtype).expand_as(y)
        value = float(torch.sqrt(torch.mean((pred - y) ** 2)))
    return value if math.isfinite(value) else math.inf


class Constants:
    """An expression with its Float constants as parameters p_0..p_{P-1}, compiled to torch."""

    def __init__(self, expr, variables):
        self.floats = float_constants(expr)
        self.params = sympy.symbols(f"p_0:{len(self.floats)}") if self.floats else ()
        self.template = expr.xreplace(dict(zip(self.floats, self.params)))
        self.function = sympy.lambdify(list(variables) + list(self.params), self.template, [_TORCH_FUNCS, "math"])
        self.values = torch.tensor([float(v) for v in self.floats], dtype=torch.float64)

    def predict(self, X, theta):
        out = self.function(*[X[:, i] for i in range(X.shape[1])], *theta.unbind())
        out = torch.as_tensor(out)
        return (out.real if out.is_complex() else out).to(X.dtype)

    def fit(self, X, y, theta=None, free=None, iterations: int = 100, budget=None):
        """(theta, RMSE): Levenberg-Marquardt over the free entries of theta (stopping early
        when `budget`, a kanopy.discovery.budget.Budget charged for each iteration, is spent)."""
        theta = (self.values if theta is None else theta).clone()
        free = torch.ones(len(theta), dtype=torch.bool) if free is None else free
        index = torch.nonzero(free).flatten()

        def residual(sub):
            full = theta.clone()
            full[index] = sub
            return self.predict(X, full).expand_as(y) - y

        try:
            with torch.no_grad():
                r = residual(theta[index])
        except (ValueError, TypeError, RuntimeError, ZeroDivisionError, OverflowError):
            return theta, math.inf
        loss = float(r @ r)
        if not math.isfinite(loss) or index.numel() == 0:
            return theta, math.sqrt(loss / y.numel()) if math.isfinite(loss) else math.inf
        # damping from 1e-6 up to 1e-6 * 2^78 ~ 3e17 in a step's 12 tries: far starts need short, gradient-like steps
        sub, loss = minimize_residual(residual, theta[index], r, 1e-6, iterations, tries=12,
                                      budget=budget, jacobian_errors=(Exception,))
        theta = theta.clone()
        theta[index] = sub
        return theta, math.sqrt(loss / y.numel())

    def expression(self, theta, exact: dict | None = None):
        """The expression with theta (and exact values for the indices in `exact`)."""
        exact = exact or {}
        values = {p: exact.get(k, sympy.Float(float(theta[k]), 17)) for k, p in enumerate(self.params)}
        return self.template.xreplace(values)


def fit_constants(expr, variables, X: torch.Tensor, y: torch.Tensor, iterations: int = 100, budget=None):
    """(expr with its Float constants refitted, RMSE on (X, y)). X (N, n), y (N,). The fit
    stops early when `budget` (charged for its work) is spent."""
    if not expr.atoms(sympy.Float):
        return expr, rmse_of(expr, variables, X, y)
    consts = Constants(expr, variables)
    theta, err = consts.fit(X, y, iterations=iterations, budget=budget)
    return (consts.expression(theta), err) if math.isfinite(err) else (expr, math.inf)


def simple_values(value: float, max_denominator: int = 12) -> list[sympy.Expr]:
    """Simple closed forms near value, simplest first: 0, integers, small fractions,
    fractions times pi, 1/pi, sqrt(2), e..."""
    out: list[sympy.Expr] = []

    def add(candidate):
        if candidate not in out:
            out.append(candidate)

    add(sympy.Integer(0))
    if abs(value) < 1e-300 or not math.isfinite(value):
        return out
    add(sympy.Integer(1 if value > 0 else -1))
    add(sympy.Integer(round(value)))
    frac = Fraction(value).limit_denominator(max_denominator)
    add(sympy.Rational(frac.numerator, frac.denominator))
    bases = (sympy.pi, 1 / sympy.pi, sympy.sqrt(2), sympy.sqrt(3), sympy.E, sympy.pi**2, 1 / sympy.pi**2,
             sympy.sqrt(sympy.pi), 1 / sympy.sqrt(sympy.pi), sympy.sqrt(2 * sympy.pi), 1 / sympy.sqrt(2 * sympy.pi))
    for base in bases:
        ratio = Fraction(value / float(base)).limit_denominator(max_denominator)
        if ratio != 0:
            add(sympy.Rational(ratio.numerator, ratio.denominator) * base)
    return out


def round_constants(expr, variables, X, y, slack: float = 1e-6, floor: float = 1e-13, closeness: float = 1e-4,
                    budget=None):
    """Replace Float constants by simple values wherever, after refitting the other
    constants, the RMSE stays within (1 + slack) of the best so far, or below floor times
    the spread of y. Only values within `closeness` (relative) of a constant are tried: an
    approximate formula keeps its constants rather than drifting to odd "simple" ones
    (0 and +-1 are always tried: they remove terms and redundant scales). Stops trying
    once `budget` (charged for the refits) is spent. Returns (expr, RMSE)."""
    if not expr.atoms(sympy.Float):
        return expr, rmse_of(expr, variables, X, y)
    consts = Constants(expr, variables)
    theta, best = consts.fit(X, y, budget=budget)
    if not math.isfinite(best):
        return expr, math.inf
    scale = float(y.std()) if y.numel() > 1 else 1.0
    exact: dict[int, sympy.Expr] = {}
    for _ in range(2):  # a second pass catches constants freed up by the first
        changed = False
        order = sorted(set(range(len(theta))) - set(exact), key=lambda k: -abs(float(theta[k])))
        for k in order:
            if budget is not None and budget.exhausted():
                break
            limit = max(best * (1 + slack), floor * scale)
            value = float(theta[k])
            for candidate in simple_values(value):
                # 0 and +-1 always (they remove terms and redundant scales); others only nearby
                if candidate not in (0, 1, -1) and abs(float(candidate) - value) > closeness * max(1.0, abs(value)):
                    continue
                trial = theta.clone()
                trial[k] = float(candidate)
                free = torch.ones(len(theta), dtype=torch.bool)
                free[k] = False
                for fixed in exact:
                    free[fixed] = False
                trial, err = consts.fit(X, y, trial, free, budget=budget)
                if err <= limit:
                    theta, best, exact[k], changed = trial, err, candidate, True
                    break
        if not changed:
            break
    return consts.expression(theta, exact), best


def snap_floats(expr, tolerance: float = 1e-9):
    """Without data: replace each Float by a simple value within `tolerance` of it (relative,
    absolute below 1), e.g. 2.9999999999999998 -> 3, 1e-17 -> 0, 3.14159265358979 -> pi."""
    replacements = {}
    for const in expr.atoms(sympy.Float):
        value = float(const)
        for candidate in simple_values(value):
            if abs(float(candidate) - value) <= tolerance * max(1.0, abs(value)):
                replacements[const] = candidate
                break
    return expr.xreplace(replacements)

