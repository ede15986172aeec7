"""Symmetry reductions and the polynomial fallback of discover, against exact oracles and
closed forms (fast: no KAN is trained here)."""

import math

import sympy
import torch

from kanopy.discovery import polynomial, symmetry
from kanopy.discovery.budget import Budget
from kanopy.discovery.search import Problem, Search


def problem_of(truth, ranges, names, n=1500, seed=0, oracle=True):
    g = torch.Generator().manual_seed(seed)
    lo = torch.tensor([a for a, _ in ranges], dtype=torch.float64)
    hi = torch.tensor([b for _, b in ranges], dtype=torch.float64)
    X = lo + (hi - lo) * torch.rand(n, len(ranges), generator=g, dtype=torch.float64)
    y = truth(X)
    variables = [sympy.Symbol(name, positive=True) for name in names]
    cut = int(0.8 * n)
    p = Problem(X[:cut], y[:cut], X[cut:], y[cut:], variables, seed, Search(Budget(10**6)))
    if oracle:
        p.oracle = truth  # the exact function stands in for the surrogate
    return p


def test_monomial_group_found_with_its_exponents():
    # n0 * exp(-m g x / (kb T)): m, g, x, kb, T enter only through m g x / (kb T)
    truth = lambda X: X[:, 0] * torch.exp(-X[:, 1] * X[:, 2] * X[:, 3] / (X[:, 4] * X[:, 5]))  # noqa: E731
    p = problem_of(truth, [(1, 5), (1, 2), (1, 2), (1, 2), (1, 5), (1, 5)], ["n0", "m", "g", "x", "kb", "T"])
    groups = symmetry.monomial_groups(p)
    assert groups, "no monomial found"
    members, exponents = groups[0]
    found = {str(p.variables[k]): e / exponents[members.index(1)] if 1 in members else e
             for k, e in zip(members, exponents)}
    assert found == {"m": 1, "g": 1, "x": 1, "kb": -1, "T": -1}
    sub, u, u_expr = symmetry.reduced_monomial(p, members, exponents, 1)
    assert sub.n == 2 and sub.reductions == 1
    # u = w or 1/w for w = m g x / (kb T), whichever variable led: the same function of (u, n0)
    e = float(exponents[members.index(1)])
    assert torch.allclose(sub.ytr, sub.Xtr[:, 1] * torch.exp(-sub.Xtr[:, 0] ** e))
    m, g, x, kb, T = (p.variables[k] for k in range(1, 6))
    assert sympy.simplify(u_expr ** int(e) - m * g * x / (kb * T)) == 0


def test_no_monomial_where_variables_interact_otherwise():
    truth = lambda X: X[:, 0] * X[:, 1] + X[:, 1] ** 2 * X[:, 2]  # noqa: E731
    p = problem_of(truth, [(1, 3), (1, 3), (1, 3)], ["a", "b", "c"])
    assert symmetry.monomial_groups(p) == []


def test_difference_invariance():
    truth = lambda X: X[:, 2] * torch.cos(X[:, 0] - X[:, 1])  # noqa: E731
    p = problem_of(truth, [(0, 6), (0, 6), (1, 5)], ["t1", "t2", "r"])
    assert symmetry.invariance(truth, p.Xtr, 0, 1, "difference", 0) < 1e-12
    assert symmetry.invariance(truth, p.Xtr, 0, 2, "difference", 0) > 0.1
    found = symmetry.candidates(p, noise=0.0)
    assert found[0][1:] == (0, 1, "difference")
    sub, u, u_expr = symmetry.reduced(p, 0, 1, "difference", 1)
    assert u_expr == p.variables[0] - p.variables[1]
    assert torch.allclose(sub.ytr, sub.Xtr[:, 1] * torch.cos(sub.Xtr[:, 0]))


def test_substitute_maps_back_to_original_variables():
    from kanopy.discovery.search import Candidate

    a, b = sympy.symbols("a b", positive=True)
    u = sympy.Symbol("u_1", positive=True)
    cand = Candidate(sympy.sin(u) + 1, 3, 0.0, "test")
    (back,) = symmetry.substitute([cand], u, a / b)
    assert back.expr == sympy.sin(a / b) + 1 and back.complexity > cand.complexity
    assert cand.expr == sympy.sin(u) + 1  # the original candidate is left alone


def test_polynomial_fallback_exact_on_a_polynomial():
    truth = lambda X: 1 + X[:, 0] - 2 * X[:, 0] * X[:, 1] ** 2 + 0.5 * X[:, 1] ** 3  # noqa: E731
    p = problem_of(truth, [(-2, 1), (0, 3)], ["a", "b"], oracle=False)
    (expr, rmse), *_ = polynomial.candidates(p)
    assert rmse <= 1e-9 * float(p.yval.std())
    a, b = p.variables
    reference = 1 + a - 2 * a * b**2 + sympy.Rational(1, 2) * b**3
    assert abs(float(sympy.expand(expr - reference).subs({a: 0.3, b: 1.7}))) < 1e-8


def test_logs_chosen_per_variable():
    # q / eps * (2 + cos alpha): log|y| wants log q, log eps, but alpha itself
    truth = lambda X: X[:, 0] / X[:, 1] * (2 + torch.cos(X[:, 2]))  # noqa: E731
    p = problem_of(truth, [(1, 5), (1, 5), (0.01, 2)], ["q", "eps", "alpha"], oracle=False)
    assert polynomial._choose_logs(p, [True, True, True], 1.0) == [True, True, False]
    fits = polynomial.candidates(p)
    best = min(rmse for _, rmse in fits) / float(p.yval.std())
    assert best < 1e-5 and math.isfinite(best)
