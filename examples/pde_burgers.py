"""
Burgers' equation with a physics-informed KAN
=============================================

Solves ``u_t + u u_x = (0.01/π) u_xx`` for x in [-1, 1], t in [0, 1], with
``u(x, 0) = -sin(πx)`` and ``u(±1, t) = 0`` (time is the second coordinate) by
``kanopy.pde.solve``, and reports the relative L2 error on a 201 x 101 space-time mesh
against the Cole-Hopf solution, computed here by quadrature.

Run ``python examples/pde_burgers.py`` (``--quick`` for a small, fast version).
"""

import math
import sys
import time

import numpy as np
import torch

from kanopy import pde
from kanopy.pde import collocation

PI = math.pi
NU = 0.01 / PI


def residual(x, u):
    return u.d(1) + u.value * u.d(0) - NU * u.d(0, 0)


def initial(x):
    return -torch.sin(PI * x[:, 0])


def cole_hopf(x, t, nodes: int = 4001):
    """u(x, t) = -∫ sin(π(x-η)) f(x-η) e^{-η²/4νt} dη / ∫ f(x-η) e^{-η²/4νt} dη,
    f(y) = exp(-cos(πy) / (2πν)), with η = sqrt(4νt) z, by the trapezoidal rule in z on
    [-12, 12] (spectrally accurate for a smooth integrand that decays like e^{-z²})."""
    z = np.linspace(-12, 12, nodes)
    w = np.exp(-z * z)
    x, t = np.asarray(x, dtype=np.float64), np.asarray(t, dtype=np.float64)
    out = np.zeros_like(x)
    moving = t > 0
    c = np.sqrt(4 * NU * t[moving])[:, None]
    y = x[moving][:, None] - c * z[None, :]
    exponent = -np.cos(PI * y) / (2 * PI * NU)
    weights = w[None, :] * np.exp(exponent - exponent.max(axis=1, keepdims=True))  # scaled: no overflow
    out[moving] = -(np.sin(PI * y) * weights).sum(axis=1) / weights.sum(axis=1)
    out[~moving] = -np.sin(PI * x[~moving])
    return out


def main(quick: bool = False) -> dict:
    domain = [(-1, 1), (0, 1)]
    if quick:
        options = dict(n_interior=500, schedule=[pde.Phase("lbfgs", 10, grid=5), pde.Phase("lm", 5, grid=5)])
    else:
        options = dict(n_interior=3000, schedule=[pde.Phase("lbfgs", 40, grid=5), pde.Phase("lm", 40, grid=5),
                                                  pde.Phase("lm", 40, grid=10, resample=True),
                                                  pde.Phase("lm", 40, grid=20, resample=True)])
    start = time.perf_counter()
    sol = pde.solve(residual, domain=domain, dirichlet={0: 0.0}, initial=initial, width=[2, 10, 1], seed=0,
                    **options)
    seconds = time.perf_counter() - start
    mesh = collocation.mesh(*collocation.check_domain(domain), (201, 101))
    reference = torch.from_numpy(cole_hopf(mesh[:, 0].numpy(), mesh[:, 1].numpy()))
    error = float((sol(mesh) - reference).norm() / reference.norm())
    return {"solution": sol, "error": error, "seconds": seconds}


if __name__ == "__main__":
    result = main(quick="--quick" in sys.argv)
    h = result["solution"].history
    print(f"relative L2 error on a 201 x 101 mesh: {result['error']:.3e} in {result['seconds']:.1f} s "
          f"({len(h)} steps, final grid {h.grid[-1]}, residual RMSE {h.residual_rmse[-1]:.2e})")
