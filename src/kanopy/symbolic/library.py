"""Candidate functions for symbolic edges: each a torch function, a sympy function and a
complexity, plus what the affine fit c * f(a * x + b) + d needs to know about it.

Symmetries cut the search: for a *homogeneous* f (x^p, sqrt, 1/x...), f(a x + b) is a
multiple of f(+-x + b/|a|), so only b and the sign of a are searched; for log the scale of a
goes into d; for exp the shift b goes into c; only periodic and saturating functions need a
two-dimensional search over (a, b).

Users add their own with :func:`register`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

# how the inner affine map a * x + b is searched
LINEAR = "linear"  # f(x) = x: c and d only
HOMOGENEOUS = "homogeneous"  # a in {+1, -1}, search b
LOG = "log"  # a in {+1, -1}, search b (scale of a goes into d)
EXP = "exp"  # b = 0, search a (shift goes into c)
GENERAL = "general"  # search a and b
CONSTANT = "constant"  # f = 0: the edge is a constant d


@dataclass(frozen=True)
class Candidate:
    name: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    search: str = GENERAL
    domain: tuple[float, float] = (-math.inf, math.inf)  # where f is defined (open ends)


def _pow(p):
    return lambda x: x**p


def _safe_log(x):
    return torch.log(x)


LIBRARY: dict[str, Candidate] = {}


def register(name: str, torch_fn, sympy_fn, complexity: int, search: str = GENERAL,
             domain: tuple[float, float] = (-math.inf, math.inf)) -> Candidate:
    """Add a candidate (or replace one of the same name). torch_fn and sympy_fn must agree."""
    if search not in (LINEAR, HOMOGENEOUS, LOG, EXP, GENERAL, CONSTANT):
        raise ValueError(f"unknown search kind {search!r}")
    if not isinstance(complexity, int) or complexity < 0:
        raise ValueError(f"complexity must be a nonnegative integer, got {complexity!r}")
    candidate = Candidate(name, torch_fn, sympy_fn, complexity, search, domain)
    LIBRARY[name] = candidate
    return candidate


def get(name: str) -> Candidate:
    try:
        return LIBRARY[name]
    except KeyError:
        raise ValueError(f"unknown symbolic function {name!r}; known: {', '.join(sorted(LIBRARY))}") from None


_POS = (0.0, math.inf)
for _name, _torch, _sympy, _c, _search, _domain in [
    ("0", lambda x: torch.zeros_like(x), lambda x: sympy.Integer(0), 0, CONSTANT, None),
    ("x", lambda x: x, lambda x: x, 1, LINEAR, None),
    ("x^2", _pow(2), lambda x: x**2, 2, HOMOGENEOUS, None),
    ("x^3", _pow(3), lambda x: x**3, 3, HOMOGENEOUS, None),
    ("x^4", _pow(4), lambda x: x**4, 3, HOMOGENEOUS, None),
    ("x^5", _pow(5), lambda x: x**5, 4, HOMOGENEOUS, None),
    ("1/x", lambda x: 1 / x, lambda x: 1 / x, 2, HOMOGENEOUS, None),
    ("1/x^2", lambda x: x**-2, lambda x: x**-2, 3, HOMOGENEOUS, None),
    ("1/x^3", lambda x: x**-3, lambda x: x**-3, 4, HOMOGENEOUS, None),
    ("1/x^4", lambda x: x**-4, lambda x: x**-4, 4, HOMOGENEOUS, None),
    ("sqrt", torch.sqrt, sympy.sqrt, 2, HOMOGENEOUS, _POS),
    ("x^1.5", lambda x: x**1.5, lambda x: x ** sympy.Rational(3, 2), 3, HOMOGENEOUS, _POS),
    ("1/sqrt", torch.rsqrt, lambda x: 1 / sympy.sqrt(x), 3, HOMOGENEOUS, _POS),
    ("x^-1.5", lambda x: x**-1.5, lambda x: x ** sympy.Rational(-3, 2), 4, HOMOGENEOUS, _POS),
    ("exp", torch.exp, sympy.exp, 2, EXP, None),
    ("log", _safe_log, sympy.log, 2, LOG, _POS),
    ("sin", torch.sin, sympy.sin, 2, GENERAL, None),
    ("cos", torch.cos, sympy.cos, 2, GENERAL, None),
    ("tan", torch.tan, sympy.tan, 3, GENERAL, None),
    ("tanh", torch.tanh, sympy.tanh, 3, GENERAL, None),
    ("sigmoid", torch.sigmoid, lambda x: 1 / (1 + sympy.exp(-x)), 3, GENERAL, None),
    ("abs", torch.abs, sympy.Abs, 3, HOMOGENEOUS, None),
    ("sgn", torch.sign, sympy.sign, 3, HOMOGENEOUS, None),
    ("arcsin", torch.asin, sympy.asin, 4, GENERAL, (-1.0, 1.0)),
    ("arccos", torch.acos, sympy.acos, 4, GENERAL, (-1.0, 1.0)),
    ("arctan", torch.atan, sympy.atan, 4, GENERAL, None),
    ("arctanh", torch.atanh, sympy.atanh, 4, GENERAL, (-1.0, 1.0)),
    ("gaussian", lambda x: torch.exp(-x * x), lambda x: sympy.exp(-(x**2)), 3, GENERAL, None),
    ("sinh", torch.sinh, sympy.sinh, 3, GENERAL, None),
    ("cosh", torch.cosh, sympy.cosh, 3, GENERAL, None),
]:
    register(_name, _torch, _sympy, _c, _search, _domain or (-math.inf, math.inf))
