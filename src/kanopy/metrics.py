"""Errors of a model on data: the one definition of RMSE the package reports."""

from __future__ import annotations

import torch


def rms(values: torch.Tensor) -> float:
    """Root mean square of all entries."""
    return float(values.detach().pow(2).mean().sqrt())


@torch.no_grad()
def rmse(model, X: torch.Tensor, y: torch.Tensor) -> float:
    """RMSE of model(X) against y (N, n_outputs), over every entry."""
    return rms(model(X) - y)
