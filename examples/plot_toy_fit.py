"""
Fitting a smooth function to high accuracy
==========================================

A ``[2, 5, 1]`` KAN fits ``f(x, y) = exp(sin(pi*x) + y**2)`` on ``[-1, 1]^2``.
Grid extension refines the splines from coarse to fine; each refinement keeps the function
and the optimizer continues from there.
"""

import math

import matplotlib.pyplot as plt
import torch

import kanopy

g = torch.Generator().manual_seed(0)
X = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 2 - 1
y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)
X_test = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 2 - 1
y_test = torch.exp(torch.sin(math.pi * X_test[:, :1]) + X_test[:, 1:] ** 2)

model = kanopy.KAN([2, 5, 1], grid=3, seed=0)
grids, errors = [], []
for grid in (3, 5, 10, 20):
    model.refine(grid)
    model.fit(X, y, steps=30, progress=False)
    with torch.no_grad():  # evaluation only: no graph for the gradient
        rmse = float(torch.sqrt(torch.mean((model(X_test) - y_test) ** 2)))
    grids.append(grid)
    errors.append(rmse)
    print(f"grid {grid:3d}: test RMSE {rmse:.2e}")

# %%
# The test error falls with the grid size, as the spline approximation theory predicts.
fig, ax = plt.subplots(figsize=(4, 3))
ax.loglog(grids, errors, "o-")
ax.set_xticks(grids, [str(g) for g in grids])  # the grids themselves, not log-scale minor labels
ax.minorticks_off()
ax.set_xlabel("grid intervals G")
ax.set_ylabel("test RMSE")
fig.tight_layout()
