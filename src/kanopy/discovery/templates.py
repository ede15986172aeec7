"""KAN structures that discover tries on a Problem. Each trains a KAN of its shape with
Levenberg-Marquardt over a grid schedule, snaps every edge to its best library function and
returns the formula (its constants are refined afterwards by the search)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy
import torch

from ..model import KAN
from ..symbolic import formula, snap

GRIDS = (3, 5, 10, 20)
STEPS = 25


@dataclass(frozen=True)
class Template:
    name: str
    run: Callable
    applies: Callable = lambda problem: True


def new_kan(problem, width, X, target, mult_arity=2):
    """A KAN whose input and output maps standardise this data (folded into formulas)."""
    model = KAN(width, grid=GRIDS[0], k=3, seed=problem.seed, mult_arity=mult_arity, grid_eps=1.0)
    lo, hi = X.min(dim=0).values, X.max(dim=0).values
    with torch.no_grad():
        model.in_shift.copy_((hi + lo) / 2)
        model.in_scale.copy_(torch.where(hi > lo, (hi - lo) / 2, torch.ones_like(hi)))
        model.out_shift.fill_(float(target.mean()))
        model.out_scale.fill_(float(target.std()) or 1.0)
    return model


def _stalled(step, history) -> bool:
    """Stop a fit once three steps gained less than 0.1%."""
    rmse = history.train_rmse
    return len(rmse) >= 4 and rmse[-1] > (1 - 1e-3) * rmse[-4]


def train(problem, model, X, target, grids=GRIDS, steps=STEPS):
    for grid in grids:
        if problem.clock.left() <= 0:
            break
        if grid != model.grid:
            model.refine(grid)
        model.fit(X, target[:, None], steps=steps, optimizer="lm", progress=False, callback=_stalled)
    return model


def snap_all(model, weight_simple: float = 1.0):
    """Every active edge to its best candidate (a formula needs them all)."""
    for l, layer in enumerate(model.layers):
        for i in range(layer.in_dim):
            for j in range(layer.out_dim):
                if layer.mask[i, j] != 0 and layer.symbolic.names[i][j] is None:
                    best = snap.suggest(model, l, i, j, top=1, weight_simple=weight_simple, floor=1e-8)
                    if not best:
                        raise ValueError(f"no candidate fits edge ({l}, {i}, {j})")
                    layer.symbolic.set(i, j, best[0].name, best[0].params)
    return model


def expression(problem, model):
    return formula.model_expressions(model, variables=problem.variables)[0]


def additive(problem):
    """y = sum_i phi_i(x_i): KAN [n, 1]."""
    model = train(problem, new_kan(problem, [problem.n, 1], problem.Xtr, problem.ytr), problem.Xtr, problem.ytr)
    snap_all(model)
    return [(expression(problem, model), model)]


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
    snap_all(model)
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
    snap_all(model)
    return [(expression(problem, model), model)]


def composition(problem):
    """y = Phi(sum_i phi_i(x_i)): KAN [n, 1, 1]."""
    model = new_kan(problem, [problem.n, 1, 1], problem.Xtr, problem.ytr)
    train(problem, model, problem.Xtr, problem.ytr)
    snap_all(model)
    return [(expression(problem, model), model)]


# tried before looking for separable structure, and after it
QUICK = [
    ("multiplicative", Template("multiplicative", multiplicative, one_sign)),
    ("additive", Template("additive", additive)),
]
MORE = [
    ("product", Template("product", product, lambda problem: problem.n >= 2)),
    ("composition", Template("composition", composition)),
]
