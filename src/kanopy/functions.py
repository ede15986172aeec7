"""Named base functions b(x) for the residual branch of every edge.

Stored by name so that model files stay plain data (no pickled callables). Each has its
first and second derivative in closed form (``derivatives``), for the forward-mode input
derivatives of :mod:`kanopy.jets`."""

from __future__ import annotations

import math

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


def _silu_derivatives(x):
    s = torch.sigmoid(x)
    return x * s, s * (1 + x * (1 - s)), s * (1 - s) * (2 + x * (1 - 2 * s))


def _tanh_derivatives(x):
    t = torch.tanh(x)
    return t, 1 - t * t, -2 * t * (1 - t * t)


def _gelu_derivatives(x):  # the exact (erf) GELU, torch's default
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)
    return x * cdf, cdf + x * pdf, pdf * (2 - x * x)


def _identity_derivatives(x):
    return x, torch.ones_like(x), torch.zeros_like(x)


def _zero_derivatives(x):
    zero = torch.zeros_like(x)
    return zero, zero, zero


_DERIVATIVES = {"silu": _silu_derivatives, "tanh": _tanh_derivatives, "gelu": _gelu_derivatives,
                "identity": _identity_derivatives, "zero": _zero_derivatives}


def derivatives(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(b(x), b'(x), b''(x)) of the base function `name`, elementwise."""
    return _DERIVATIVES[name](x)
