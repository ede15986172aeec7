"""KAN structures that discover tries on a Problem. Each trains a KAN of its shape with
Levenberg-Marquardt over a grid schedule, snaps every edge to its best library function and
returns the formula (its constants are refined afterwards by the search)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch

from ..model import KAN
from ..schedule import refine_and_fit
from ..symbolic import fit1d, formula, library, snap

GRIDS = (3, 5, 10, 20)
STEPS = 60


@dataclass(frozen=True)
class Template:
    name: str
    run: Callable
    applies: Callable = lambda problem: True


def new_kan(problem, width, X, target, mult_arity=2):
    """A KAN whose input and output maps standardise this data (folded into formulas)."""
    model = KAN(width, grid=GRIDS[0], k=3, seed=problem.seed, mult_arity=mult_arity, grid_eps=1.0)
    return model.set_scaling(X, target)


def _stalled(step, history) -> bool:
    """Stop a fit once ten steps gained less than 1% (LM has slow phases before new drops)."""
    rmse = history.train_rmse
    return len(rmse) >= 11 and rmse[-1] > 0.99 * rmse[-11]


def charged(problem, model, samples: int, optimizer, stop=None):
    """A :func:`kanopy.schedule.refine_and_fit` callback that charges each step of a fit on
    `samples` rows to the problem's budget (``optimizer(grid)``: the optimizer at that grid)
    and ends the fit when the budget is spent or ``stop(grid, step, history)`` says so."""
    budget, parameters = problem.budget, {}

    def callback(grid, step, history):
        if grid not in parameters:  # counted once per grid: refining adds coefficients
            parameters[grid] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        budget.fit_step(optimizer(grid), samples, parameters[grid])
        return (stop is not None and stop(grid, step, history)) or budget.exhausted()

    return callback


def train(problem, model, X, target, grids=GRIDS, steps=STEPS, optimizer: str = "lm", stop=_stalled, **options):
    """Fit (X, target (N,)) along ``grids`` (``steps`` at each, a grid's fit ending early once
    ``stop(step, history)``), within the problem's budget: it is checked before each grid
    (OutOfWork when spent) and charged for every step. ``options`` go to ``model.fit``."""
    stops = None if stop is None else (lambda grid, step, history: stop(step, history))
    refine_and_fit(model, X, target[:, None], grids, steps, optimizer, before=lambda grid: problem.budget.check(),
                   callback=charged(problem, model, X.shape[0], lambda grid: optimizer, stops), progress=False,
                   **options)
    return model


def snap_all(problem, model):
    """Every active edge to its best candidate (a formula needs them all)."""
    snap.snap_every_edge(model, budget=problem.budget)
    return model


def expression(problem, model):
    return formula.model_expressions(model, variables=problem.variables)[0]


def additive(problem):
    """y = sum_i phi_i(x_i): KAN [n, 1]. With one variable the edge may be a sum of two
    library functions (sin(3x) + x^2)."""
    model = train(problem, new_kan(problem, [problem.n, 1], problem.Xtr, problem.ytr), problem.Xtr, problem.ytr)
    if problem.n == 1:
        return [(_univariate_sum(problem, model), model)]
    snap_all(problem, model)
    return [(expression(problem, model), model)]


def _univariate_sum(problem, model):
    """y = f(x) for one variable, as one or two library terms fitted on the edge."""
    problem.budget.check()
    x, y = snap.edge_samples(model, 0, 0, 0)
    # one term as close to the edge as the edge is to the data needs no second
    with torch.no_grad():
        spline_error = float(torch.sqrt(torch.mean((model(problem.Xtr)[:, 0] - problem.ytr) ** 2))) / problem.scale
    terms = fit1d.fit_sum(x, y, list(library.LIBRARY), good_enough=max(1e-7, problem.tolerance, 3 * spline_error),
                          budget=problem.budget)
    if terms is None:
        raise ValueError("no candidate fits the edge")
    u = (problem.variables[0] - _float(model.in_shift[0])) / _float(model.in_scale[0])
    edge = terms.sympy(u) + _float(model.layers[0].bias[0])
    return edge * _float(model.out_scale[0]) + _float(model.out_shift[0])


def _float(value):
    return sympy.Float(float(value), 17)


def one_sign(problem) -> bool:
    y = problem.ytr
    return bool((y > 0).all() or (y < 0).all())


def multiplicative(problem):
    """y = s exp(sum_i phi_i(x_i)): KAN [n, 1] on log|y| (products of powers and of
    one-variable factors)."""
    y = problem.ytr
    sign = 1.0 if float(y[0]) > 0 else -1.0
    z = torch.log(y.abs())
    model = train(problem, new_kan(problem, [problem.n, 1], problem.Xtr, z), problem.Xtr, z)
    snap_all(problem, model)
    return [(sign * sympy.exp(expression(problem, model)), model)]


def product(problem):
    """y = Phi(prod_i phi_i(x_i)): one multiplication node whose factor i sees input i only
    (handles products whose factors change sign, where logarithms cannot)."""
    n = problem.n
    model = new_kan(problem, [n, [0, 1], 1], problem.Xtr, problem.ytr, mult_arity=n)
    with torch.no_grad():  # factor i sees input i only, and starts near 1
        model.layers[0].mask.copy_(torch.eye(n, dtype=model.dtype))
        model.layers[0].bias.fill_(1.0)
        model.layers[0].bias.requires_grad_(True)
    train(problem, model, problem.Xtr, problem.ytr)
    snap_all(problem, model)
    return [(expression(problem, model), model)]


def composition(problem):
    """y = Psi(z), z = sum_i psi_i(x_i): KAN [n, 1, 1]. The outer edge is read two ways:
    Psi a library function of z, or Psi(z) = Phi(exp(z)) with Phi a library function of the
    product u = exp(z) = prod_i exp(psi_i(x_i)) (the inner edges then snap to logarithms):
    a function of a product of powers, such as 1/(1 - v/c)."""
    model = new_kan(problem, [problem.n, 1, 1], problem.Xtr, problem.ytr)
    train(problem, model, problem.Xtr, problem.ytr)
    outer = model.layers[1]
    X = model.samples
    with torch.no_grad():
        z = model.layer_inputs(X)[1][:, 0]
        psi = outer.edge_values(model.layer_inputs(X)[1])[:, 0, 0]
    found = []
    snap.snap_every_edge(model, layers=[0], budget=problem.budget)
    inner = model
    for read_as_product in (False, True):
        if problem.budget.exhausted():
            break
        argument = torch.exp(z) if read_as_product else z
        if not torch.isfinite(argument).all():
            continue
        best = fit1d.choose(fit1d.fit_all(argument, psi, list(library.LIBRARY), polish_top=6, budget=problem.budget))
        if best is None:
            continue
        z_expr = formula.node_expressions(inner, 1, variables=problem.variables)[0]
        arg = sympy.exp(z_expr) if read_as_product else z_expr
        a, b, c, d = (sympy.Float(v, 17) for v in best.params)
        phi = c * library.get(best.name).sympy_fn(a * arg + b) + d + sympy.Float(float(outer.bias[0]), 17)
        out = phi * sympy.Float(float(model.out_scale[0]), 17) + sympy.Float(float(model.out_shift[0]), 17)
        found.append((out, model))
    return found


def log_composition(problem):
    """y = s exp(Psi(sum_i psi_i(x_i))): the composition template on log|y|
    (exp(sin(x1^2 + x2^2)))."""
    y = problem.ytr
    sign = 1.0 if float(y[0]) > 0 else -1.0
    logged = copy.copy(problem)
    logged.ytr, logged.yval = torch.log(y.abs()), torch.log(problem.yval.abs())
    logged.scale = float(logged.ytr.std())
    return [(sign * sympy.exp(expr), model) for expr, model in composition(logged)]


# tried before looking for separable structure, and after it
QUICK = [
    ("multiplicative", Template("multiplicative", multiplicative, one_sign)),
    ("additive", Template("additive", additive)),
]
MORE = [
    ("product", Template("product", product, lambda problem: problem.n >= 2)),
    ("composition", Template("composition", composition)),
    ("log-composition", Template("log-composition", log_composition,
                                 lambda problem: one_sign(problem) and bool((problem.yval != 0).all()))),
]


COMPACT = ("x", "x^2", "x^3", "1/x", "1/x^2", "sqrt", "exp", "log", "sin", "tanh", "gaussian", "arctan")


def general(problem):
    """The fallback when no structure is exact: a general KAN [n, h, 1] (the surrogate when
    one was fitted), pruned to its important edges, every edge snapped to a compact library.
    Its formula is approximate but, with all constants refitted together, close."""
    from ..prune import prune

    base = problem.surrogate
    if base is None:
        n = problem.n
        base = new_kan(problem, [n, min(n + 1, 8), 1], problem.Xtr, problem.ytr)
        train(problem, base, problem.Xtr, problem.ytr, grids=(3, 5, 10), steps=30)
    model = prune(base, problem.Xtr, node_threshold=0.02, edge_threshold=0.02)
    train(problem, model, problem.Xtr, problem.ytr, grids=(model.grid,), steps=20,
          optimizer="lm" if _small(model) else "lbfgs", stop=None, update_grid=False)
    snap.snap_every_edge(model, names=COMPACT, budget=problem.budget)
    return [(expression(problem, model), model)]


def _small(model) -> bool:
    return sum(p.numel() for p in model.parameters() if p.requires_grad) <= 1500
