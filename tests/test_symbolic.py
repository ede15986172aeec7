"""Symbolic library, per-edge fitting, symbolic edges, formulas and their exports."""

import math

import numpy as np
import pytest
import sympy
import torch
from conftest import uniform_samples

import kanopy
from kanopy.symbolic import constants, fit1d, formula, library


def test_library_has_at_least_25_consistent_candidates():
    assert len(library.LIBRARY) >= 25
    x = torch.linspace(0.1, 0.9, 7, dtype=torch.float64)
    u = sympy.Symbol("u")
    for name, cand in library.LIBRARY.items():
        reference = sympy.lambdify(u, cand.sympy_fn(u), "numpy")(x.numpy())
        np.testing.assert_allclose(cand.torch_fn(x).numpy(), np.broadcast_to(reference, (7,)), rtol=1e-12,
                                   err_msg=name)


def test_users_can_register_functions():
    library.register("cube_root", lambda x: torch.sign(x) * x.abs() ** (1 / 3),
                     lambda x: sympy.sign(x) * sympy.Abs(x) ** sympy.Rational(1, 3), 3)
    try:
        x = torch.linspace(-2, 2, 400, dtype=torch.float64)
        fit = fit1d.fit("cube_root", x, 2 * torch.sign(x - 0.5) * (x - 0.5).abs() ** (1 / 3) + 1)
        assert 1 - fit.r2 < 1e-20
    finally:
        del library.LIBRARY["cube_root"]


@pytest.mark.parametrize("name,make", [
    ("sin", lambda x: 1.3 * torch.sin(2.7 * x + 0.4) - 0.2),
    ("x^2", lambda x: 0.7 * (x - 0.3) ** 2 + 1),
    ("exp", lambda x: 2 * torch.exp(-1.5 * x) + 0.1),
    ("log", lambda x: 0.5 * torch.log(x + 1.5)),
    ("1/x", lambda x: 3 / (x + 1.7)),
    ("gaussian", lambda x: torch.exp(-((2 * x - 0.3) ** 2))),
    ("arcsin", lambda x: torch.asin(0.8 * x)),
])
def test_edge_fit_recovers_the_function_to_machine_precision(name, make):
    x = torch.linspace(-1, 1, 500, dtype=torch.float64)
    fits = fit1d.fit_all(x, make(x), list(library.LIBRARY))
    best = [f for f in fits if f.name == name][0]
    assert 1 - best.r2 < 1e-24  # relative error ~1e-12 or better
    assert fits[0].r2 >= best.r2


def test_symbolic_edges_train_and_give_the_formula_in_original_units():
    X = uniform_samples(800, 2, seed=0, lo=1.0, hi=3.0)
    y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2 / 4)
    model = kanopy.KAN([2, 1, 1], grid=5, seed=0)
    with torch.no_grad():  # data units differ from the grid's: the input map folds into the formula
        model.in_shift.fill_(2.0)
    for grid in (5, 10, 20):
        model.refine(grid)
        model.fit(X, y, steps=25, optimizer="lm", progress=False)
    assert [f.name for f in model.suggest_symbolic(0, 0, 0, top=2)][0] in ("sin", "cos")
    model.fix_symbolic(0, 0, 0, "sin")
    model.fix_symbolic(0, 1, 0, "x^2")
    model.fix_symbolic(1, 0, 0, "exp")
    history = model.fit(X, y, steps=10, optimizer="lm", update_grid=False, progress=False)
    assert history.train_rmse[-1] < 1e-12  # the affine parameters of symbolic edges train
    expr = model.symbolic_formula(var_names=["a", "b"])[0]
    a, b = sorted(expr.free_symbols, key=str)
    truth = sympy.exp(sympy.sin(sympy.pi * a) + b**2 / 4)
    assert sympy.simplify(expr - truth) == 0
    f = formula.to_numpy(expr, [a, b])
    np.testing.assert_allclose(f(X.numpy()), y[:, 0].numpy(), rtol=1e-12)
    g = formula.to_torch(expr, [a, b])
    np.testing.assert_allclose(g(X[:, 0], X[:, 1]).numpy(), y[:, 0].numpy(), rtol=1e-12)
    assert "sin" in formula.to_latex(expr)


def test_symbolic_models_round_trip_through_files(tmp_path):
    model = kanopy.KAN([2, 2, 1], grid=4, seed=1)
    X = uniform_samples(300, 2, seed=1)
    model.fit(X, X[:, :1] ** 2 + torch.sin(X[:, 1:]), steps=3, progress=False)
    model.fix_symbolic(0, 1, 0, "sin")
    model.save(tmp_path / "m.kan")
    loaded = kanopy.load(tmp_path / "m.kan")
    assert loaded.layers[0].symbolic.names == model.layers[0].symbolic.names
    with torch.no_grad():
        assert torch.equal(loaded(X), model(X))


def test_formula_refuses_numeric_edges_with_a_clear_message():
    model = kanopy.KAN([2, 1], grid=3)
    with pytest.raises(ValueError, match="not symbolic yet"):
        model.symbolic_formula()


def test_rounding_constants_keeps_the_error():
    x = sympy.Symbol("x", positive=True)
    X = uniform_samples(200, 1, seed=3, lo=0.5, hi=2.0)
    y = 3 * torch.sin(math.pi * X[:, 0]) + 1 / 3
    noisy = sympy.Float(3.0000000001) * sympy.sin(sympy.Float(3.1415926536) * x) + sympy.Float(0.33333333)
    rounded, err = constants.round_constants(noisy, [x], X, y)
    assert sympy.simplify(rounded - (3 * sympy.sin(sympy.pi * x) + sympy.Rational(1, 3))) == 0
    assert err < 1e-13


def test_constant_fits_are_charged_to_a_budget_and_stop_when_it_is_spent():
    from kanopy.discovery.budget import CONSTANTS_ITERATION_COST, Budget

    x = sympy.Symbol("x", positive=True)
    X = uniform_samples(200, 1, seed=3, lo=0.5, hi=2.0)
    y = 3 * torch.sin(math.pi * X[:, 0]) + 1 / 3
    start = sympy.Float(2.9) * sympy.sin(sympy.Float(3.1) * x) + sympy.Float(0.3)
    ample = Budget(10**6)
    fitted, err = constants.fit_constants(start, [x], X, y, budget=ample)
    assert err < 1e-12
    fixed, per = CONSTANTS_ITERATION_COST
    iterations = ample.used / (fixed + per * 200 * 3)  # each iteration: 200 samples, 3 constants
    assert 1 <= round(iterations) <= 100 and iterations == pytest.approx(round(iterations), rel=1e-12)
    spent = Budget(1.0)
    spent.spend(1.0)  # used up before the first iteration
    unchanged, err0 = constants.fit_constants(start, [x], X, y, budget=spent)
    assert sorted(map(float, unchanged.atoms(sympy.Float))) == sorted(map(float, start.atoms(sympy.Float)))
    assert err0 > 1e-3 and spent.used == 1.0
    kept, _ = constants.round_constants(fitted, [x], X, y, budget=spent)  # no work left to round with
    assert len(kept.atoms(sympy.Float)) == 3
    rounded, _ = constants.round_constants(fitted, [x], X, y)
    assert sympy.simplify(rounded - (3 * sympy.sin(sympy.pi * x) + sympy.Rational(1, 3))) == 0
