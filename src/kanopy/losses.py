"""Training losses: what a fit minimises on a batch, and the metric it reports.

A :class:`Loss` maps the network's outputs ``pred`` (N, n_outputs) and targets ``y`` to a
scalar: the mean over samples (weighted by ``weight`` (N,) when given, normalised by the
weights' sum) of a per-sample loss. Built in:

* ``"mse"`` (default): mean over outputs of (pred - y)^2; targets (N, n_outputs); RMSE.
* ``"huber"``: mean over outputs of the Huber loss (``Huber(delta)``, delta = 1 in the
  target's units); targets (N, n_outputs); RMSE.
* ``"cross_entropy"``: -log softmax(pred)[label], the outputs being class logits; targets
  are labels 0..C-1, one per row; accuracy.
* ``"bce"``: binary cross-entropy of each output as a logit; targets 0/1 labels or
  probabilities in [0, 1], (N, n_outputs); accuracy.

and any callable ``loss(pred, y)`` returning a scalar (or one value per sample (N,), which
sample weights then weight), with regression targets and RMSE as its metric.

``least_squares`` losses (MSE) also give ``residuals`` whose sum of squares is the loss, for
Levenberg-Marquardt. ``fused_kind`` names the loss the fused C++ objective computes in one
call (kernels.FusedObjective: "mse", "cross_entropy", "bce"); None means the model's forward
under autograd.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .validation import as_matrix


class Loss:
    name = "loss"
    task = "regression"  # or "classification"
    metric_name = "rmse"  # or "accuracy"
    least_squares = False
    fused_kind: str | None = None

    def check_model(self, n_outputs: int) -> None:
        """ValueError when a network with n_outputs outputs cannot be trained with this loss."""

    def targets(self, y, n_outputs: int, *, dtype, device, name: str = "y") -> torch.Tensor:
        """User targets -> checked tensor: regression targets (N, n_outputs) of the model's dtype."""
        return as_matrix(y, name, dtype=dtype, device=device, columns=n_outputs)

    def per_sample(self, pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(N,) loss of each sample."""
        raise NotImplementedError

    def __call__(self, pred, y, weight=None) -> torch.Tensor:
        return weighted_mean(self.per_sample(pred, y), weight)

    def residuals(self, pred, y, weight=None) -> torch.Tensor:
        """(M,) residuals whose sum of squares is the loss (least-squares losses only: they
        are ``residual_scale(N, n_outputs, weight) * (pred - y)``, flattened)."""
        raise ValueError(f"loss {self.name!r} is not a sum of squares")

    @torch.no_grad()
    def metric(self, pred, y, weight=None) -> float:
        """RMSE over all outputs (weighted over samples)."""
        return float(weighted_mean(((pred - y) ** 2).mean(dim=1), weight).sqrt())

    def metric_of_loss(self, value: float) -> float | None:
        """The metric from the loss's value alone, where it determines it (MSE: its root)."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MSE(Loss):
    name = "mse"
    least_squares = True
    fused_kind = "mse"

    def per_sample(self, pred, y):
        return ((pred - y) ** 2).mean(dim=1)

    def __call__(self, pred, y, weight=None):
        if weight is None:  # as the fused kernels compute it
            return torch.mean((pred - y) ** 2)
        return super().__call__(pred, y, weight)

    def residuals(self, pred, y, weight=None):
        return ((pred - y) * self.residual_scale(*pred.shape, weight, like=pred)).reshape(-1)

    @staticmethod
    def residual_scale(n: int, m: int, weight=None, *, like: torch.Tensor) -> torch.Tensor:
        """(n, 1) factors s with residuals s * (pred - y) for n samples of m outputs: their sum
        of squares is the loss."""
        if weight is None:
            return like.new_full((n, 1), (n * m) ** -0.5)
        return (weight / (weight.sum() * m)).sqrt().unsqueeze(1)

    def metric_of_loss(self, value):
        return max(value, 0.0) ** 0.5


class Huber(Loss):
    """Quadratic within ``delta`` of the target, linear beyond (robust to outliers); delta
    is in the target's units."""

    name = "huber"

    def __init__(self, delta: float = 1.0):
        if not (isinstance(delta, (int, float)) and not isinstance(delta, bool) and delta > 0 and math.isfinite(delta)):
            raise ValueError(f"the Huber loss's delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def per_sample(self, pred, y):
        return F.huber_loss(pred, y, reduction="none", delta=self.delta).mean(dim=1)

    def __repr__(self):
        return f"Huber(delta={self.delta})"


class CrossEntropy(Loss):
    """Multi-class: the network's outputs are the logits of its classes; targets are labels
    0..C-1 (one per row)."""

    name = "cross_entropy"
    task = "classification"
    metric_name = "accuracy"
    fused_kind = "cross_entropy"

    def check_model(self, n_outputs):
        if n_outputs < 2:
            raise ValueError(f"loss='cross_entropy' needs one network output per class (at least 2), but the network "
                             f"has {n_outputs} output; for two classes use 2 outputs, or loss='bce' with 1")

    def targets(self, y, n_outputs, *, dtype, device, name="y"):
        labels = _labels(y, name)
        bad = (labels < 0) | (labels >= n_outputs)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"{name} has class label {labels[row]} at row {row}, but the network has {n_outputs} "
                             f"outputs (labels 0..{n_outputs - 1})")
        return torch.from_numpy(labels).to(device)

    def per_sample(self, pred, y):
        return F.cross_entropy(pred, y, reduction="none")

    @torch.no_grad()
    def metric(self, pred, y, weight=None):
        return float(weighted_mean((pred.argmax(dim=1) == y).to(pred.dtype), weight))


class BCE(Loss):
    """Binary (or multi-label): each output is the logit of a yes/no target; targets are 0/1
    labels or probabilities in [0, 1]."""

    name = "bce"
    task = "classification"
    metric_name = "accuracy"
    fused_kind = "bce"

    def targets(self, y, n_outputs, *, dtype, device, name="y"):
        y = super().targets(y, n_outputs, dtype=dtype, device=device, name=name)
        bad = (y < 0) | (y > 1)
        if bad.any():
            row, col = (int(v) for v in bad.nonzero()[0])
            raise ValueError(f"{name} must hold 0/1 labels or probabilities in [0, 1] for loss='bce', "
                             f"but row {row}, column {col} is {float(y[row, col])!r}")
        return y

    def per_sample(self, pred, y):
        return F.binary_cross_entropy_with_logits(pred, y, reduction="none").mean(dim=1)

    @torch.no_grad()
    def metric(self, pred, y, weight=None):
        return float(weighted_mean(((pred > 0) == (y > 0.5)).to(pred.dtype).mean(dim=1), weight))


class Callable(Loss):
    """A user function ``fn(pred, y)`` -> scalar, or (N,) per-sample values."""

    def __init__(self, fn):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)

    def __call__(self, pred, y, weight=None):
        value = self.fn(pred, y)
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"the loss {self.name!r} must return a torch tensor, got {type(value).__name__}")
        if value.dim() == 0:
            if weight is not None:
                raise ValueError(f"the loss {self.name!r} returns a scalar, so it cannot weight samples: return one "
                                 f"value per sample, shape ({pred.shape[0]},), to use sample_weight")
            return value
        if value.shape != (pred.shape[0],):
            raise ValueError(f"the loss {self.name!r} returned shape {tuple(value.shape)}; return a scalar or one "
                             f"value per sample, shape ({pred.shape[0]},)")
        return weighted_mean(value, weight)

    def __repr__(self):
        return f"Callable({self.name})"


LOSSES = {"mse": MSE, "huber": Huber, "cross_entropy": CrossEntropy, "bce": BCE}


def get(spec) -> Loss:
    """A Loss from a name in LOSSES, a Loss, or a callable loss(pred, y)."""
    if isinstance(spec, Loss):
        return spec
    if isinstance(spec, str):
        if spec not in LOSSES:
            raise ValueError(f"unknown loss {spec!r}; choose one of {sorted(LOSSES)}, or pass a callable loss(pred, y)")
        return LOSSES[spec]()
    if callable(spec):
        return Callable(spec)
    raise ValueError(f"loss must be a name ({', '.join(sorted(LOSSES))}), a kanopy.losses.Loss or a callable "
                     f"loss(pred, y), got {spec!r}")


def weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean of values (N,), weighted by weight (N,) normalised by its sum."""
    if weight is None:
        return values.mean()
    return (values * weight).sum() / weight.sum()


def _labels(y, name: str) -> np.ndarray:
    """Integer class labels (N,) int64 from a 1-D (or one-column) array, or ValueError."""
    values = as_matrix(y, name, dtype=torch.float64, device="cpu")
    if values.shape[1] != 1:
        raise ValueError(f"{name} must hold one class label per row for loss='cross_entropy' (shape (N,) or (N, 1)), "
                         f"got shape {tuple(values.shape)}")
    array = values[:, 0].numpy()
    fractional = array != np.round(array)
    if fractional.any():
        row = int(np.argmax(fractional))
        raise ValueError(f"{name} must hold integer class labels for loss='cross_entropy', but row {row} is "
                         f"{float(array[row])!r}")
    return array.astype(np.int64)
