"""A multilayer perceptron to compare KANs against: seeded by a torch.Generator, float64 by
default, sized by parameter count, trained by LBFGS or Adam.

torch's nn.Linear draws its initial weights from the global random generator; this MLP
draws them (with the same distribution, U(-1/sqrt(fan_in), 1/sqrt(fan_in))) from its own
generator, so building one changes no global state and a seed gives one network anywhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ACTIVATIONS = {"silu": nn.functional.silu, "tanh": torch.tanh, "relu": torch.relu}


class MLP(nn.Module):
    """widths [n_in, h1, ..., n_out]; the activation after every layer but the last."""

    def __init__(self, widths, activation: str = "silu", seed: int = 0, dtype=torch.float64, device="cpu"):
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths must list at least 2 positive layer sizes, got {widths!r}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.widths, self.activation = widths, activation
        generator = torch.Generator().manual_seed(int(seed))
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for n_in, n_out in zip(widths, widths[1:]):
            bound = 1 / math.sqrt(n_in)
            for shape, store in (((n_in, n_out), self.weights), ((n_out,), self.biases)):
                values = (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound
                store.append(nn.Parameter(values.to(device)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, n_in) -> (N, n_out)."""
        act = ACTIVATIONS[self.activation]
        for l, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = torch.addmm(b, x, w)
            if l < len(self.weights) - 1:
                x = act(x)
        return x

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def parameter_count(widths) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:]))


def widths_for(n_params: int, n_in: int, n_out: int, depth: int = 1) -> list[int]:
    """Widths [n_in, h, ..., h, n_out] (`depth` hidden layers of equal width) whose
    parameter count is closest to n_params."""
    best = None
    for h in range(1, max(2, n_params) + 1):
        widths = [n_in] + [h] * depth + [n_out]
        count = parameter_count(widths)
        if best is None or abs(count - n_params) < abs(parameter_count(best) - n_params):
            best = widths
        if count > n_params:
            break
    return best


def train(model: nn.Module, X: torch.Tensor, y: torch.Tensor, steps: int, optimizer: str = "lbfgs",
          lr: float | None = None) -> list[float]:
    """Full-batch MSE training; a step is one LBFGS call (up to 20 iterations, strong-Wolfe
    line search, as pykan and kanopy.fit count it) or one Adam update. Returns the training
    RMSE after every step."""
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=lr or 1.0, max_iter=20, history_size=30, line_search_fn="strong_wolfe",
                                tolerance_grad=1e-12, tolerance_change=1e-16)
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=lr or 1e-3)
    else:
        raise ValueError(f"optimizer must be 'lbfgs' or 'adam', got {optimizer!r}")

    def closure():
        opt.zero_grad()
        loss = torch.mean((model(X) - y) ** 2)
        loss.backward()
        return loss

    history = []
    for _ in range(steps):
        if optimizer == "lbfgs":
            opt.step(closure)
        else:
            closure()
            opt.step()
        with torch.no_grad():
            history.append(float(torch.mean((model(X) - y) ** 2).sqrt()))
    return history
