"""discover: from data to an exact formula. Equivalence is checked numerically on fresh
points (<= 1e-9 relative) and the formula's size is bounded."""

import math

import numpy as np
import pytest
import sympy
import torch

import kanopy
from kanopy.symbolic.formula import complexity, operations


def check(result, truth, ranges, seed=7, tolerance=1e-9, extra_ops=3):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, 2000) for lo, hi in ranges])
    y = truth(*X.T)
    error = np.sqrt(np.mean((result(X) - y) ** 2)) / np.std(y)
    assert error <= tolerance, (str(result.expr), error)
    return error


def data(truth, ranges, n, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    return X, truth(*X.T)


def test_the_demo_function_in_few_operations():
    truth = lambda x, y: np.exp(np.sin(np.pi * x) + y**2)  # noqa: E731
    X, y = data(truth, [(-1, 1), (-1, 1)], 3000)
    result = kanopy.discover(X, y, var_names=["x", "y"], budget_s=60)
    assert result.rmse <= 1e-10 and result.exact
    check(result, truth, [(-1, 1), (-1, 1)])
    x_, y_ = sympy.symbols("x y")
    assert operations(result.expr) <= operations(sympy.exp(sympy.sin(sympy.pi * x_) + y_**2)) + 2
    assert result.pareto[0].expr == result.expr


def test_product_of_two_variables():
    truth = lambda x, y: x * y  # noqa: E731
    ranges = [(-2, 2), (-2, 2)]
    result = kanopy.discover(*data(truth, ranges, 1000), var_names=["x", "y"], budget_s=60)
    check(result, truth, ranges)
    assert complexity(result.expr) <= 5


@pytest.mark.parametrize("truth,size", [
    (lambda x: np.sin(3 * x) + x**2, 12),
    (lambda x: np.exp(-(x**2)), 8),
])
def test_smooth_one_dimensional_functions(truth, size):
    ranges = [(-1, 1)]
    result = kanopy.discover(*data(truth, ranges, 1000), var_names=["x"], budget_s=60)
    check(result, truth, ranges)
    assert complexity(result.expr) <= size


def test_four_variable_composition():
    truth = lambda a, b, c, d: np.exp(np.sin(a**2 + b**2) + np.sin(c**2 + d**2))  # noqa: E731
    ranges = [(-1, 1)] * 4
    result = kanopy.discover(*data(truth, ranges, 3000), var_names=["x1", "x2", "x3", "x4"], budget_s=60)
    check(result, truth, ranges)
    assert complexity(result.expr) <= 30


def test_bad_input():
    with pytest.raises(ValueError, match="at least 20 samples"):
        kanopy.discover(np.ones((5, 2)), np.ones(5))
    with pytest.raises(ValueError, match="var_names"):
        kanopy.discover(np.random.rand(30, 2), np.random.rand(30), var_names=["a"])
    with pytest.raises(ValueError, match="NaN"):
        X = np.random.rand(30, 2)
        X[3, 1] = math.nan
        kanopy.discover(X, np.random.rand(30))


def _problem(truth, ranges, n=1500, seed=0):
    from kanopy.discovery.search import Clock, Problem
    from kanopy.symbolic.formula import symbols_for

    rng = np.random.default_rng(seed)
    X = torch.tensor(np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges]))
    y = torch.tensor(truth(*X.numpy().T))
    cut = int(0.75 * n)
    names = [f"x{i + 1}" for i in range(len(ranges))]
    return Problem(X[:cut], y[:cut], X[cut:], y[cut:], symbols_for(names), seed, Clock(30, verbose=False))


def test_the_polynomial_fallback_is_close_and_exact_for_power_laws():
    from kanopy.discovery import polynomial

    def relative(problem, expr):
        f = sympy.lambdify(problem.variables, expr, "numpy")
        pred = f(*problem.Xval.numpy().T)
        return float(np.sqrt(np.mean((pred - problem.yval.numpy()) ** 2)) / problem.yval.std())

    smooth = _problem(lambda a, b: np.exp(0.5 * a) * np.cos(b) + a * b / (3 + a), [(-1, 1), (-1, 1)])
    [(expr, rmse)] = polynomial.candidates(smooth)  # x changes sign: no log-log family
    assert relative(smooth, expr) < 1e-4 and rmse == pytest.approx(relative(smooth, expr) * float(smooth.yval.std()))
    power = _problem(lambda a, b: 3 * a**1.5 / b, [(1, 3), (1, 3)])
    fits = polynomial.candidates(power)
    assert len(fits) == 2 and min(relative(power, e) for e, _ in fits) < 1e-10
