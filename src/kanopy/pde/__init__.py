"""Physics-informed PDE solving with KANs: ``pde.solve(residual, domain, dirichlet=g, ...)``.

The solution is a normal :class:`~kanopy.KAN` (``sol.model``: prune, plot, snap to formulas,
save). Derivatives of the network come from forward-mode jets (:mod:`kanopy.jets`); training
is a schedule of the package's optimizers on the stacked residuals
(:mod:`kanopy.pde.objective`); see :func:`solve`.

Examples
--------
>>> import math, torch
>>> from kanopy import pde
>>> def residual(x, u):  # u'' = -pi^2 sin(pi x) on [-1, 1], u(+-1) = 0
...     return u.laplacian + math.pi ** 2 * torch.sin(math.pi * x[:, 0])
>>> sol = pde.solve(residual, domain=[(-1, 1)], dirichlet=0.0, width=[1, 1], n_interior=200,
...                 schedule=[pde.Phase("lm", 20, grid=20)])
>>> sol(torch.zeros(1, 1, dtype=torch.float64)).abs().item() < 1e-4
True
"""

from .derivatives import Derivatives
from .solver import PDEHistory, Phase, Solution, default_schedule, solve

__all__ = ["solve", "Solution", "Phase", "PDEHistory", "Derivatives", "default_schedule"]
