"""Snapping edges to symbolic functions: suggest candidates, fix one, or snap all.

An edge's samples are the layer inputs the model sees for sample inputs X (by default the
model's ``samples``, a subset of the data it was last fitted on) and the edge's current
activation there. Candidates are ranked by

    score = log10(max(sqrt(1 - R^2), floor)) + weight_simple * complexity

so one unit of complexity must buy a ``10 ** weight_simple`` times smaller relative error, and
errors below ``floor`` (the numeric noise of a spline fit) buy nothing.
"""

from __future__ import annotations

import math

import torch

from . import fit1d, library

DEFAULT_FLOOR = 1e-10


def edge_samples(model, l: int, i: int, j: int, X=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, activations) of edge i -> j of layer l on sample inputs X."""
    X = model.sample_inputs(X)
    with torch.no_grad():
        inputs = model.layer_inputs(X)[l]
        edges = model.layers[l].edge_values(inputs)
    return inputs[:, i], edges[:, i, j]


def score(fit: fit1d.Fit1D, weight_simple: float, floor: float = DEFAULT_FLOOR) -> float:
    return math.log10(max(fit.relative_error, floor)) + weight_simple * fit.complexity


def suggest(model, l, i, j, top: int = 5, names=None, X=None, weight_simple: float = 1.0,
            floor: float = DEFAULT_FLOOR) -> list[fit1d.Fit1D]:
    """The `top` best candidates for edge (l, i, j), best first."""
    _check_edge(model, l, i, j)
    x, y = edge_samples(model, l, i, j, X)
    fits = fit1d.fit_all(x, y, list(names or library.LIBRARY))
    fits.sort(key=lambda f: (score(f, weight_simple, floor), f.complexity))
    return fits[:top]


def fix(model, l, i, j, name: str, X=None, fit: bool = True) -> fit1d.Fit1D | None:
    """Make edge (l, i, j) the symbolic function `name`, its affine parameters fitted to the
    edge's current activation (or a = c = 1, b = d = 0 when fit is False)."""
    _check_edge(model, l, i, j)
    library.get(name)
    result = None
    params = (1.0, 0.0, 1.0, 0.0)
    if fit:
        x, y = edge_samples(model, l, i, j, X)
        result = fit1d.fit(name, x, y)
        if result is None:
            raise ValueError(f"{name!r} cannot be evaluated on the inputs of edge ({l}, {i}, {j})")
        params = result.params
    model.layers[l].symbolic.set(i, j, name, params)
    model.fit_state = None
    return result


def unfix(model, l, i, j) -> None:
    _check_edge(model, l, i, j)
    model.layers[l].symbolic.clear(i, j)
    model.fit_state = None


def auto(model, r2_threshold: float = 0.99, weight_simple: float = 1.0, names=None, X=None,
         floor: float = DEFAULT_FLOOR) -> dict:
    """Snap every active numeric edge to its best candidate when that reaches R^2 >=
    r2_threshold; others stay numeric. Returns {(l, i, j): Fit1D or None}."""
    chosen = {}
    for l, layer in enumerate(model.layers):
        for i in range(layer.in_dim):
            for j in range(layer.out_dim):
                if layer.mask[i, j] == 0 or layer.symbolic.names[i][j] is not None:
                    continue
                best = suggest(model, l, i, j, top=1, names=names, X=X, weight_simple=weight_simple, floor=floor)
                if best and best[0].r2 >= r2_threshold:
                    layer.symbolic.set(i, j, best[0].name, best[0].params)
                    chosen[(l, i, j)] = best[0]
                else:
                    chosen[(l, i, j)] = None
    model.fit_state = None
    return chosen


def snap_every_edge(model, X=None, layers=None, names=None, window: float = 10.0, budget=None) -> dict:
    """Snap every active numeric edge (of `layers`, default all) to the simplest candidate
    within `window` of its best fit: what a formula needs. Returns {(l, i, j): Fit1D}.
    With `budget` (a kanopy.discovery.budget.Budget) the fits are charged to it, and
    OutOfWork is raised before an edge once it is spent."""
    chosen = {}
    for l in (range(len(model.layers)) if layers is None else layers):
        layer = model.layers[l]
        for i in range(layer.in_dim):
            for j in range(layer.out_dim):
                if layer.mask[i, j] == 0 or layer.symbolic.names[i][j] is not None:
                    continue
                if budget is not None:
                    budget.check()
                x, y = edge_samples(model, l, i, j, X)
                best = fit1d.choose(fit1d.fit_all(x, y, list(names or library.LIBRARY), budget=budget), window)
                if best is None:
                    raise ValueError(f"no candidate function fits edge ({l}, {i}, {j})")
                layer.symbolic.set(i, j, best.name, best.params)
                chosen[(l, i, j)] = best
    model.fit_state = None
    return chosen




def _check_edge(model, l, i, j):
    if not 0 <= l < len(model.layers):
        raise ValueError(f"layer {l} does not exist (the model has {len(model.layers)} layers)")
    layer = model.layers[l]
    if not (0 <= i < layer.in_dim and 0 <= j < layer.out_dim):
        raise ValueError(f"edge ({i}, {j}) does not exist in layer {l} ({layer.in_dim} -> {layer.out_dim})")
