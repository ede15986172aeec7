"""Which rows each optimizer step trains on: full batches, epochs of shuffled batches, loaders.

One step trains on one batch.

* In-memory data without ``batch_size`` (or with one >= the rows): every step takes all rows,
  in their order.
* In-memory data with ``batch_size=B``: the rows are walked through in epochs; epoch e visits
  them in the order ``epoch_order(n, seed, e)``, a permutation drawn from (seed, e) alone,
  in ceil(n / B) batches of B rows (the last one smaller).
* A ``torch.utils.data.DataLoader``, or any re-iterable of ``(X, y)`` or
  ``(X, y, sample_weight)`` batches, is walked through in the order it yields them: one pass
  is one epoch. A one-shot iterator gives one epoch.

The position (epoch, batch) of the next batch is all a resumed fit needs to continue in the
same order, mid-epoch included. Data stay where they are (numpy arrays and memory maps, tensors
on any device): each batch is gathered, converted to the model's dtype and moved to its device
when it is used, so a fit in batches holds one batch more than the data (and the epoch's
permutation, 4 bytes a row).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .validation import as_matrix

FINITE_CHECK_VALUES = 2**17  # values checked for NaN/inf at a time (a 1 MiB float64 temporary)


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order (n,) in which epoch ``epoch`` (0-based) of a fit with ``seed`` visits n rows:
    a permutation that depends on (seed, epoch) only (int32 below 2**31 rows: 4 bytes a row)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch)]).generate_state(2, dtype=np.uint32)
    generator = torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))
    return torch.randperm(n, generator=generator, dtype=torch.int32 if n < 2**31 else torch.int64)


@dataclass
class Batch:
    X: torch.Tensor  # (B, n_inputs), the model's dtype and device
    y: torch.Tensor  # targets as the loss prepared them
    weight: torch.Tensor | None  # (B,)
    epoch: int  # 0-based
    index: int  # 0-based, within the epoch
    count: int | None  # batches in the epoch (None: a loader without len)

    def next_position(self) -> tuple[int, int]:
        if self.count is not None and self.index + 1 >= self.count:
            return self.epoch + 1, 0
        return self.epoch, self.index + 1


class Converter:
    """Checks and converts a batch's inputs, targets (as the loss wants them) and weights to
    the model's dtype and device."""

    def __init__(self, loss, n_inputs: int, n_outputs: int, dtype, device):
        self.loss, self.n_inputs, self.n_outputs = loss, n_inputs, n_outputs
        self.dtype, self.device = dtype, torch.device(device)

    def inputs(self, X, name: str, device=None) -> torch.Tensor:
        return as_matrix(X, name, dtype=self.dtype, device=device or self.device, columns=self.n_inputs)

    def targets(self, y, name: str, device=None) -> torch.Tensor:
        return self.loss.targets(_view(y), self.n_outputs, dtype=self.dtype, device=device or self.device, name=name)

    def weights(self, weight, name: str, n: int, device=None) -> torch.Tensor:
        w = as_matrix(_view(weight), name, dtype=self.dtype, device=device or self.device)
        if w.shape != (n, 1):
            raise ValueError(f"{name} must hold one weight per row, shape ({n},), got shape {tuple(w.shape)}")
        w = w[:, 0]
        if (w < 0).any():
            row = int((w < 0).nonzero()[0])
            raise ValueError(f"{name} must be >= 0, but row {row} is {float(w[row])!r}")
        if not w.sum() > 0:
            raise ValueError(f"{name} sums to zero: no sample would count")
        return w


class ArrayStream:
    """Batches of in-memory arrays (see the module's docstring)."""

    def __init__(self, X, y, weight, batch_size: int | None, seed: int, convert: Converter, names=("X", "y")):
        self.convert, self.seed = convert, int(seed)
        self.X = _rows(X, names[0], convert.n_inputs)
        self.n = self.X.shape[0]
        self.full = batch_size is None or batch_size >= self.n
        self.batch_size = self.n if self.full else int(batch_size)
        self.count = math.ceil(self.n / self.batch_size)
        if self.full:  # converted once, used by every step
            self.X = convert.inputs(self.X, names[0])
        home = self.X.device if isinstance(self.X, torch.Tensor) else torch.device("cpu")
        self.y = convert.targets(y, names[1], device=home)
        if self.y.shape[0] != self.n:
            raise ValueError(f"{names[0]} and {names[1]} have different numbers of rows "
                             f"({self.n} vs {self.y.shape[0]})")
        self.weight = None if weight is None else convert.weights(weight, "sample_weight", self.n, device=home)
        if self.full:
            self.y = self.y.to(convert.device)
            self.weight = None if self.weight is None else self.weight.to(convert.device)

    @property
    def layout(self) -> dict:
        """What the positions refer to (a resumed fit continues its epoch only on the same)."""
        return {"rows": self.n, "batch_size": self.batch_size}

    def batches(self, epoch: int, index: int, stop_epoch: int | None = None) -> Iterator[Batch]:
        """Batches from position (epoch, index) on, until epoch ``stop_epoch`` (never: None)."""
        while stop_epoch is None or epoch < stop_epoch:
            if self.full:
                yield Batch(self.X, self.y, self.weight, epoch, 0, 1)
            else:
                order = epoch_order(self.n, self.seed, epoch)
                for b in range(index, self.count):
                    yield self._take(order[b * self.batch_size : (b + 1) * self.batch_size], epoch, b)
                del order  # before the next epoch's: one permutation alive at a time
            epoch, index = epoch + 1, 0

    def _take(self, rows: torch.Tensor, epoch: int, index: int) -> Batch:
        device = self.convert.device
        if isinstance(self.X, torch.Tensor):
            X = self.X.index_select(0, rows.to(self.X.device))
        else:
            X = torch.from_numpy(np.ascontiguousarray(self.X[rows.numpy()]))
        X = X.to(dtype=self.convert.dtype, device=device)
        rows = rows.to(self.y.device)
        weight = None if self.weight is None else self.weight.index_select(0, rows).to(device)
        return Batch(X, self.y.index_select(0, rows).to(device), weight, epoch, index, self.count)


class LoaderStream:
    """Batches of a DataLoader or another iterable of (X, y[, sample_weight]) tuples."""

    def __init__(self, loader, convert: Converter):
        self.loader, self.convert = loader, convert
        self.once = iter(loader) is loader  # an iterator: one pass only
        try:
            self.count = len(loader)
        except TypeError:
            self.count = None

    layout = None

    def batches(self, epoch: int, index: int, stop_epoch: int | None = None) -> Iterator[Batch]:
        while stop_epoch is None or epoch < stop_epoch:
            seen = 0
            for b, item in enumerate(self.loader):
                seen = b + 1
                if b >= index:  # earlier batches of a resumed epoch were trained on before
                    yield self._convert(item, epoch, b)
            if seen == 0 and index == 0:
                if epoch == 0 or not self.once:
                    raise ValueError("the data loader yielded no batches")
                return  # a one-shot iterator, read to its end
            if self.once:
                return
            epoch, index = epoch + 1, 0

    def _convert(self, item, epoch: int, index: int) -> Batch:
        where = f"batch {index} of epoch {epoch}"
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise ValueError(f"each batch of the data must be (X, y) or (X, y, sample_weight); {where} is "
                             f"{type(item).__name__}" + (f" of length {len(item)}" if isinstance(item, (tuple, list))
                                                         else ""))
        c = self.convert
        X = c.inputs(item[0], f"X ({where})")
        y = c.targets(item[1], f"y ({where})")
        if X.shape[0] != y.shape[0]:
            raise ValueError(f"X and y of {where} have different numbers of rows ({X.shape[0]} vs {y.shape[0]})")
        weight = None if len(item) == 2 else c.weights(item[2], f"sample_weight ({where})", X.shape[0])
        return Batch(X, y, weight, epoch, index, self.count)


def is_batches(data) -> bool:
    """Whether ``data`` is an iterable of batches rather than an array of rows."""
    if isinstance(data, (torch.Tensor, np.ndarray, str, bytes)) or hasattr(data, "__array__"):
        return False
    if isinstance(data, torch.utils.data.DataLoader):
        return True
    if not hasattr(data, "__iter__"):
        return False
    if isinstance(data, (list, tuple)):  # a list of rows, or a list of (X, y) batches
        return len(data) > 0 and all(isinstance(b, (tuple, list)) and len(b) > 0 and not np.isscalar(b[0])
                                     for b in data)
    return True


def _view(data):
    """A writable float numpy array as a tensor sharing its memory (as_matrix would copy it to
    float64 first); anything else as it is."""
    if isinstance(data, np.ndarray) and data.dtype.kind == "f" and data.dtype.isnative and data.flags.writeable:
        return torch.from_numpy(data)
    return data


def _rows(data, name: str, columns: int):
    """Array-like -> a 2-D numpy array or tensor (N, columns), checked (shape, numbers, NaN/inf)
    without copying numpy arrays and tensors."""
    if isinstance(data, torch.Tensor):
        data = data.detach()
        numeric = data.is_floating_point() or data.dtype in (torch.int32, torch.int64, torch.bool)
    elif isinstance(data, np.ndarray) and data.dtype.kind in "fiub":
        numeric = True
    else:
        return as_matrix(data, name, dtype=torch.float64, device="cpu", columns=columns)
    if not numeric:
        raise ValueError(f"{name} must be numeric, got dtype {data.dtype}")
    if data.ndim == 1:
        data = data.reshape(-1, 1)
    if data.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {tuple(data.shape)}")
    if data.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if data.shape[1] != columns:
        raise ValueError(f"{name} has {data.shape[1]} columns but the model expects {columns}")
    rows = max(1, FINITE_CHECK_VALUES // max(1, data.shape[1]))
    for start in range(0, data.shape[0], rows):
        chunk = data[start : start + rows]
        # a float64 sum is finite when every value is (float32 values cannot overflow it):
        # no temporary of the chunk's size unless it holds a NaN or inf (or float64 near 1e308)
        if isinstance(chunk, torch.Tensor):
            if math.isfinite(float(chunk.sum(dtype=torch.float64))):
                continue
            bad = ~torch.isfinite(chunk)
        else:
            if math.isfinite(float(np.sum(chunk, dtype=np.float64))):
                continue
            bad = ~np.isfinite(chunk)
        if bad.any():
            row, col = (int(v) for v in (bad.nonzero()[0] if isinstance(bad, torch.Tensor) else np.argwhere(bad)[0]))
            kind = "NaN" if math.isnan(float(chunk[row, col])) else "inf"
            raise ValueError(f"{name} contains {kind} at row {start + row}, column {col}")
    return data
