"""Named base functions b(x) for the residual branch of every edge.

Stored by name so that model files stay plain data (no pickled callables)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _zero(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


BASE_FUNCTIONS = {
    "silu": F.silu,
    "identity": _identity,
    "zero": _zero,
    "tanh": torch.tanh,
    "gelu": F.gelu,
}
