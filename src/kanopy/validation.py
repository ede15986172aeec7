"""Checks of user data at the boundary, with messages that name the problem.

Rows and columns of arrays are named by their 0-based index (as in numpy), or by the
column names when given (``columns=["x1", "x2"]``)."""

from __future__ import annotations

import numpy as np
import torch

MIN_ROWS = 2  # the fewest samples a fit accepts


def as_matrix(data, name: str, *, dtype: torch.dtype, device, columns: int | None = None,
              column_names=None) -> torch.Tensor:
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
        if not array.flags.writeable:  # e.g. a read-only memmap: torch wants memory it may write
            array = array.copy()
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
    check_finite(tensor, name, column_names)
    return tensor


def as_xy(X, y, n_inputs: int, n_outputs: int, *, dtype, device, names=("X", "y")):
    X = as_matrix(X, names[0], dtype=dtype, device=device, columns=n_inputs)
    y = as_matrix(y, names[1], dtype=dtype, device=device, columns=n_outputs)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"{names[0]} and {names[1]} have different numbers of rows ({X.shape[0]} vs {y.shape[0]})")
    return X, y


def check_finite(values, name: str, column_names=None) -> None:
    """ValueError naming the first row and column holding NaN or inf in a 2-D array/tensor."""
    array = values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(array[row, col]) else "inf"
        raise ValueError(f"{name} contains {kind} at row {row}, {_column(col, column_names)}")


def check_rows(n: int, name: str, minimum: int = MIN_ROWS) -> None:
    """ValueError unless there are at least ``minimum`` rows to fit on."""
    if n < minimum:
        raise ValueError(f"{name} has too few rows to fit: got {n} sample{'' if n == 1 else 's'}, "
                         f"need at least {minimum}")


def check_not_constant(y, name: str, column_names=None) -> None:
    """ValueError when a target column takes one value only: there is nothing to fit."""
    array = y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    array = array.reshape(len(array), -1)
    for col in range(array.shape[1]):
        values = array[:, col]
        if len(values) and values.min() == values.max():
            where = "" if array.shape[1] == 1 and column_names is None else f" ({_column(col, column_names)})"
            raise ValueError(f"{name}{where} is constant (every row is {float(values[0])!r}): there is nothing to fit")


def _column(col: int, column_names) -> str:
    return f"column {col}" if column_names is None else f"column {column_names[col]!r}"
