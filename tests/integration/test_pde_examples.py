"""The PDE examples run (their quick versions), and the Poisson solution snaps to
sin(pi x) sin(pi y) automatically: sympy-equivalent, relative L2 <= 1e-12 on a 201 x 201 mesh."""

from __future__ import annotations

import runpy
from pathlib import Path

import sympy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_poisson_solution_snaps_to_its_closed_form():
    result = runpy.run_path(str(EXAMPLES / "pde_poisson.py"))["main"](quick=True)
    expr = result["formula"]
    assert expr is not None, "not every edge snapped"
    x, y = sorted(expr.free_symbols, key=str)
    assert sympy.simplify(sympy.expand_trig(expr - sympy.sin(sympy.pi * x) * sympy.sin(sympy.pi * y))) == 0
    assert result["error"] <= 1e-12


def test_the_helmholtz_example_runs_and_improves_on_its_start():
    result = runpy.run_path(str(EXAMPLES / "pde_helmholtz.py"))["main"](quick=True)
    history = result["solution"].history
    assert history.loss[-1] < 0.1 * history.loss[0]
    assert result["error"] < 1.0


def test_the_burgers_example_runs_and_improves_on_its_start():
    module = runpy.run_path(str(EXAMPLES / "pde_burgers.py"))
    result = module["main"](quick=True)
    history = result["solution"].history
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert result["error"] < 1.0
