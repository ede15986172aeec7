"""Checks of user data at the boundary, with messages that name the problem."""

from __future__ import annotations

import numpy as np
import torch


def as_matrix(data, name: str, *, dtype: torch.dtype, device, columns: int | None = None) -> torch.Tensor:
    """Array-like -> 2-D finite tensor (N, columns) of the given dtype, or ValueError."""
    if isinstance(data, torch.Tensor):
        tensor = data.detach()
        if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64, torch.bool)):
            raise ValueError(f"{name} must be numeric, got dtype {tensor.dtype}")
    else:
        try:
            array = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be numeric: {err}") from None
        tensor = torch.from_numpy(array)
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(1)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if columns is not None and tensor.shape[1] != columns:
        raise ValueError(f"{name} has {tensor.shape[1]} columns but the model expects {columns}")
    tensor = tensor.to(dtype=dtype, device=device)
    bad = ~torch.isfinite(tensor)
    if bad.any():
        row, col = (int(v) for v in bad.nonzero()[0])
        kind = "NaN" if torch.isnan(tensor[row, col]) else "inf"
        raise ValueError(f"{name} contains {kind} at row {row}, column {col}")
    return tensor


def as_xy(X, y, n_inputs: int, n_outputs: int, *, dtype, device, names=("X", "y")):
    X = as_matrix(X, names[0], dtype=dtype, device=device, columns=n_inputs)
    y = as_matrix(y, names[1], dtype=dtype, device=device, columns=n_outputs)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} have different numbers of rows ({X.shape[0]} vs {y.shape[0]})")
    return X, y
