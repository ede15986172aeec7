"""
Reading a formula out of a KAN
==============================

A KAN's edges are univariate functions, so a trained network can be read as a formula: snap
every edge to a library function ``c * f(a*x + b) + d``, let the affine parameters train,
and collect the expression. The data here come from ``y = x**2 + sin(3*t)``, an additive
function, so the additive network ``[2, 1]`` (no hidden layer) is enough.
(:func:`kanopy.discover` automates this search over structures; see the user guide.)
"""

import matplotlib.pyplot as plt
import numpy as np
import torch

import kanopy

g = torch.Generator().manual_seed(0)
X = torch.rand(400, 2, generator=g, dtype=torch.float64) * 2 - 1
y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])

model = kanopy.KAN([2, 1], grid=5, seed=0)
for grid in (5, 10):
    model.refine(grid).fit(X, y, steps=20, progress=False)

# %%
# The learned edges, drawn on the training samples:
panel = model.plot(var_names=["x", "t"])  # a matplotlib Figure of its own (pyplot untouched)
panel.canvas.draw()
fig, ax = plt.subplots(figsize=(4, 3.4))  # shown here through pyplot, which the gallery captures
ax.imshow(np.asarray(panel.canvas.buffer_rgba()))
ax.axis("off")

# %%
# Each edge's best library fits, ranked by R² against simplicity:
library = ["x", "x^2", "x^3", "sin", "exp", "tanh"]
for i, name in enumerate(["x", "t"]):
    fits = model.suggest_symbolic(0, i, 0, top=3, names=library)
    print(name, [(fit.name, round(fit.r2, 6)) for fit in fits])

# %%
# Snap every edge, train the symbolic edges' constants, and read the formula (constants
# rounded where that does not change the outputs by more than 1e-6 of their spread):
model.auto_symbolic(r2_threshold=0.999, names=library)
history = model.fit(X, y, steps=20, progress=False)
[expr] = model.symbolic_formula(var_names=["x", "t"])
print("formula:", expr)
print(f"training RMSE of the symbolic network: {history.train_rmse[-1]:.1e}")

# %%
# Check it on new rows: the formula against the function that made the data.
X_new = torch.rand(1000, 2, generator=g, dtype=torch.float64) * 2 - 1
f = kanopy.symbolic.to_numpy(expr, ["x", "t"])
truth = (X_new[:, 0] ** 2 + torch.sin(3 * X_new[:, 1])).numpy()
print(f"largest error on new rows: {abs(f(X_new[:, 0].numpy(), X_new[:, 1].numpy()) - truth).max():.1e}")
