"""
Poisson's equation with a physics-informed KAN
==============================================

Solves ``-Δu = 2π² sin(πx) sin(πy)`` on ``[-1, 1]²`` with ``u = 0`` on the boundary
(exact solution ``u = sin(πx) sin(πy)``) by ``kanopy.pde.solve`` with a ``[2, 2, 1]`` KAN
(``sin πx sin πy = ½ cos π(x−y) − ½ cos π(x+y)``), snaps its edges to formulas and trains
their constants on the residuals (``symbolic=True``), and reports the relative L2 error on a
201 x 201 mesh, the time and the formula.

Run ``python examples/pde_poisson.py`` (``--quick`` for a small, fast version).
"""

import math
import sys
import time

import torch

from kanopy import pde
from kanopy.pde import collocation

PI = math.pi


def forcing(x):
    return 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])


def residual(x, u):
    return u.laplacian + forcing(x)


def exact(x):
    return torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])


def main(quick: bool = False) -> dict:
    domain = [(-1, 1), (-1, 1)]
    options = {}
    if quick:
        options = dict(n_interior=500, schedule=[pde.Phase("lbfgs", 20, grid=5), pde.Phase("lm", 30, grid=5),
                                                 pde.Phase("lm", 30, grid=10)])
    start = time.perf_counter()
    sol = pde.solve(residual, domain=domain, dirichlet=0.0, width=[2, 2, 1], k=5, seed=0, symbolic=True, **options)
    seconds = time.perf_counter() - start
    mesh = collocation.mesh(*collocation.check_domain(domain), (201, 201))
    error = float((sol(mesh) - exact(mesh)).norm() / exact(mesh).norm())
    formula = sol.model.symbolic_formula(var_names=["x", "y"])[0] if not sol.model.layers[0].plain else None
    return {"solution": sol, "error": error, "seconds": seconds, "formula": formula}


if __name__ == "__main__":
    result = main(quick="--quick" in sys.argv)
    h = result["solution"].history
    print(f"relative L2 error on a 201 x 201 mesh: {result['error']:.3e} in {result['seconds']:.1f} s "
          f"({len(h)} steps, final grid {h.grid[-1]}, residual RMSE {h.residual_rmse[-1]:.2e})")
    print(f"formula: {result['formula']}")
