"""Subcommands that turn data and models into formulas and pictures: discover, formula, plot.

Registered on the ``kanopy`` group with the conventions of cli_app.py (see its docstring)."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from . import data
from .cli_app import NAMES, UI, command, load_model, training_table


def _render(expr, variables, style: str, name: str = "y") -> str:
    """A formula as text, LaTeX or a Python (NumPy) function."""
    import sympy
    from sympy.printing.numpy import NumPyPrinter

    if style == "latex":
        return f"{sympy.latex(sympy.Symbol(name))} = {sympy.latex(expr)}"
    if style == "python":
        args = ", ".join(str(v) for v in variables)
        body = NumPyPrinter({"fully_qualified_modules": True}).doprint(expr)
        return f"import numpy\n\n\ndef {_identifier(name)}({args}):\n    return {body}"
    return f"{name} = {expr}"


def _identifier(name: str) -> str:
    text = "".join(c if c.isalnum() or c == "_" else "_" for c in str(name))
    return text if text and not text[0].isdigit() else f"f_{text}"


def _style(latex: bool, python: bool) -> str:
    if latex and python:
        raise click.UsageError("--latex and --python exclude each other")
    return "latex" if latex else "python" if python else "text"


@command()
@click.argument("data_file", metavar="DATA")
@click.option("--target", required=True, help="Column to explain.")
@click.option("--features", type=NAMES, help="Variables, e.g. x,y [default: all other columns].")
@click.option("--effort", type=click.FloatRange(min=0, min_open=True), metavar="UNITS",
              help="Work the search may do, in work units: the same result on every machine "
                   "(the default takes about a minute of one core on the hardest problems) [default: 100000].")
@click.option("--budget", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
              help="Also stop after this many seconds (the result then depends on the machine's speed) "
                   "[default: no time limit].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the data split and networks.")
@click.option("--latex", is_flag=True, help="Print the formula as LaTeX.")
@click.option("--python", is_flag=True, help="Print the formula as a Python (NumPy) function.")
def discover(ui: UI, data_file, target, features, effort, budget, seed, latex, python):
    """Find a closed-form formula for column --target of DATA from its other columns.

    Tries KAN structures cheapest first within --effort work units, snaps every edge to a
    library function, refits and rounds the constants, and prints the Pareto front of
    formulas (complexity against held-out error) and the chosen formula. The same DATA,
    --effort and --seed give the same formula on any machine; --budget SECONDS adds a
    wall-clock cap.
    """
    from .discovery import DEFAULT_EFFORT
    from .discovery import discover as run

    style = _style(latex, python)
    features, table = training_table(data_file, target, features)
    X, y = table[:, :-1], table[:, -1]
    result = run(X, y, var_names=features, effort=DEFAULT_EFFORT if effort is None else effort, budget_s=budget,
                 seed=seed, log=ui.note)
    front = Table(title=escape(f"{Path(data_file).name}: formulas for {target}"))
    for column in ("complexity", "val RMSE", "found by", "formula"):
        front.add_column(column, justify="right" if column != "formula" else "left")
    for cand in result.pareto:
        front.add_row(str(cand.complexity), f"{cand.rmse:.3g}", cand.source, escape(str(cand.expr)))
    ui.report(front)
    ui.result(_render(result.expr, result.variables, style, target))
    quality = "exact" if result.exact else f"relative {result.relative_rmse:.2g}"
    if result.limit == "time":
        ui.note(f"the --budget of {budget:g} s cut the search short: a larger --budget (or none) may find more, "
                "and the result depends on this machine's speed")
    ui.note(f"test RMSE {result.rmse:.3g} ({quality}), {result.work:.0f} work units, {result.seconds:.1f} s")


@command()
@click.argument("model_file", metavar="MODEL.kan")
@click.option("--data", "data_file", metavar="DATA",
              help="Samples (the model's feature columns; with its target column to refit) on which to "
                   "snap edges that are still numeric to library functions.")
@click.option("--features", type=NAMES, help="Feature columns of DATA [default: those the model was fitted on].")
@click.option("--latex", is_flag=True, help="Print LaTeX.")
@click.option("--python", is_flag=True, help="Print a Python (NumPy) function.")
@click.option("--out", type=click.Path(dir_okay=False), metavar="MODEL.kan", help="Save the snapped model here.")
def formula(ui: UI, model_file, data_file, features, latex, python, out):
    """Print the formula of MODEL.kan, in its variables' names and original units.

    Every active edge must be symbolic; edges that are still splines are snapped to their
    best library function on the samples of --data (refitting the constants when --data
    also holds the model's target column).
    """
    import torch

    from .symbolic import snap

    style = _style(latex, python)
    model = load_model(model_file)
    names = features or model.info.get("features") or [f"x_{i + 1}" for i in range(model.n_inputs)]
    if len(names) != model.n_inputs:
        raise ValueError(f"--features names {len(names)} columns but {model_file} has {model.n_inputs} inputs")
    numeric = sum(int(((layer.mask != 0) & (layer.symbolic.active == 0)).sum()) for layer in model.layers)
    if data_file is not None:
        X = torch.from_numpy(data.read(data_file, names)).to(model.dtype)
        model.remember(X)
    if numeric:
        if data_file is None:
            raise ValueError(f"{model_file} has {numeric} edges that are still splines; give --data DATA "
                             "(with its feature columns) to snap them to formulas")
        snap.snap_every_edge(model)
        target = model.info.get("target")
        if target and target in data.columns(data_file):
            y = torch.from_numpy(data.read(data_file, [target])).to(model.dtype)
            model.fit(X, y, steps=20, optimizer="lm", update_grid=False, progress=False)
        ui.note(f"snapped {numeric} edges to library functions")
    exprs = model.symbolic_formula(var_names=names)
    variables = sorted({s for e in exprs for s in e.free_symbols}, key=lambda s: names.index(str(s)))
    targets = [model.info.get("target", "y")] if len(exprs) == 1 else [f"y_{j + 1}" for j in range(len(exprs))]
    for expr, name in zip(exprs, targets):
        ui.result(_render(expr, variables, style, name))
    if out is not None:
        model.save(out)
        ui.note(f"saved {out}")


@command()
@click.argument("model_file", metavar="MODEL.kan")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False), metavar="PICTURE",
              help="Where to draw the network (.png, .pdf, .svg).")
@click.option("--data", "data_file", metavar="DATA", help="Samples to draw the edge functions on "
                                                           "[default: each input's grid range].")
@click.option("--features", type=NAMES, help="Feature columns of DATA [default: those the model was fitted on].")
def plot(ui: UI, model_file, out, data_file, features):
    """Draw MODEL.kan: every edge's learned curve, opacity by importance, symbolic edges named."""
    import torch

    from .io import atomic_write

    model = load_model(model_file)
    names = features or model.info.get("features") or [f"x_{i + 1}" for i in range(model.n_inputs)]
    X = None
    if data_file is not None:
        X = torch.from_numpy(data.read(data_file, names)).to(model.dtype)
    suffix = Path(out).suffix.lower().lstrip(".") or "png"
    figure = model.plot(None, X=X, var_names=names, title=Path(model_file).name)
    atomic_write(out, lambda tmp: figure.savefig(tmp, dpi=150, format=suffix))
    ui.note(f"drew {out}")
