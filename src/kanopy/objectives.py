"""The objective protocol: what every optimizer of :mod:`kanopy.optim` minimises.

An objective owns ``theta``, one flat vector (P,) that every trainable parameter of a model
is a view into while the objective lives (``release`` undoes that), so an optimizer that
updates theta in place updates the model. It offers

* ``evaluate() -> (loss, grad)``: a 0-d tensor and the gradient (P,) at theta (LBFGS, Adam);
* for sums of squares (``least_squares``): ``normal_equations() -> (loss, JᵀJ, Jᵀr)`` and
  ``sum_of_squares() -> loss`` (Levenberg-Marquardt), which by default come from
  ``residuals() -> r`` (M,) and ``residuals_jacobian() -> (r, J)`` (J: (M, P)); the loss is
  r·r;
* ``fused``: None, or the C++ objective whose ``lbfgs_step`` runs a whole LBFGS step in
  one call (see kernels.FusedObjective);
* ``refresh()``: to call after the model's buffers changed (grid updates).

:class:`DataObjective` is the loss of a model's predictions on a batch of data (regression,
classification, a user's loss), plus the optional sparsity regulariser. A physics-informed
objective (PDE residuals) or a data-parallel wrapper (all-reducing evaluate's and
normal_equations' results) implements the same few methods.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from . import kernels, regularization

JACOBIAN_ROWS = 4096  # samples per Jacobian block: bounds LM's memory to (4096 * outputs, P)

# Loss.fused_kind -> builder of the C++ objective computing that loss and its gradient in one
# call (None where the fused path does not apply to the model); kinds not listed run autograd
FUSED = {kind: functools.partial(kernels.FusedObjective.build, loss=kind) for kind in ("mse", "cross_entropy", "bce")}


class NonFinite(ArithmeticError):
    """An evaluation gave a non-finite loss or gradient."""


class Objective:
    """Base of the protocol: binds the model's trainable parameters to ``theta``."""

    least_squares = False
    fused = None

    def __init__(self, model):
        self.model = model
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.theta = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = self.theta[offset : offset + p.numel()].view_as(p)
            offset += p.numel()

    def release(self) -> None:
        """Give every parameter its own storage again (theta is no longer the model)."""
        for p in self.params:
            p.data = p.data.clone()

    def refresh(self) -> None:
        """Call after the model's tensors changed in place or were replaced (grid updates)."""

    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def residuals(self) -> torch.Tensor:
        raise NotImplementedError

    def residuals_jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def normal_equations(self) -> tuple[float, torch.Tensor, torch.Tensor]:
        """(r·r, JᵀJ (P, P), Jᵀr (P,)) at theta."""
        r, J = self.residuals_jacobian()
        return float(r.dot(r)), J.T @ J, J.T @ r

    @torch.no_grad()
    def sum_of_squares(self) -> float:
        r = self.residuals()
        return float(r.dot(r))

    def flat(self, grads) -> torch.Tensor:
        """Gradients of self.params (None for unused) -> one vector (P,)."""
        return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                          for g, p in zip(grads, self.params)])


@dataclass
class Measure:
    """What an evaluation saw: its total loss, the data term, the regulariser, the predictions."""

    total: float
    data: float
    reg: float
    pred: torch.Tensor | None  # (N, n_outputs), None from the fused path


class DataObjective(Objective):
    """``loss(model(X), y, weight) + lamb * regulariser`` on the current batch (``set_batch``).

    The fused C++ objective (one call per evaluation, and per whole LBFGS step) serves a
    plain KAN when the loss declares a fused kind the kernels know and there are no sample
    weights, the sparsity regulariser included; otherwise the model's forward (itself the
    fused per-layer op on CPU) runs under autograd."""

    def __init__(self, model, loss, reg_options: dict | None = None):
        super().__init__(model)
        self.loss = loss
        reg_options = dict(reg_options or {})
        self.lamb = reg_options.pop("lamb", 0.0)
        self.reg = reg_options
        self.least_squares = loss.least_squares and not self.lamb
        self.X = self.y = self.weight = None
        self.last: Measure | None = None
        self._fused = self.fused = None
        if loss.fused_kind in FUSED:  # the regulariser, when asked for, is part of the fused objective
            self._fused = FUSED[loss.fused_kind](model, dict(reg_options, lamb=self.lamb))

    def set_batch(self, X: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None) -> None:
        self.X, self.y, self.weight = X, y, weight
        self.fused = self._fused if weight is None else None  # the C++ objective has no sample weights
        self.last = None

    def refresh(self) -> None:
        if self._fused is not None:
            self._fused.refresh()

    def parts(self, X=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(predictions, data loss, regulariser) on the batch, differentiable."""
        X = self.X if X is None else X
        if self.lamb:
            traces = self.model.trace(X)
            pred = traces[-1].outputs * self.model.out_scale + self.model.out_shift
            reg = regularization.sparsity(traces, self.reg["lamb_l1"], self.reg["lamb_entropy"])
            reg = reg + regularization.coefficients(
                self.model.layers, self.reg["lamb_coef"], self.reg["lamb_coefdiff"])
        else:
            pred = self.model(X)
            reg = pred.new_zeros(())
        return pred, self.loss(pred, self.y, self.weight), reg

    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fused is not None:
            loss, grads = self.fused(self.X, self.y)
            total = float(loss)
            self.last = Measure(total, total, 0.0, None) if not self.lamb else None
            return loss, torch.cat([grads[name].reshape(-1) for name in self.names])
        with torch.enable_grad():
            pred, data, reg = self.parts()
            loss = data + self.lamb * reg if self.lamb else data
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        flat = self.flat(grads)
        loss, pred = loss.detach(), pred.detach()
        total = float(loss)
        self.last = Measure(total, float(data.detach()), float(reg.detach()), pred)
        if torch.isfinite(loss) and not torch.isfinite(flat).all():
            raise NonFinite(f"the gradient of the loss is not finite (the loss is {total:.6g})")
        return loss, flat

    # ------------------------------------------------------------- least squares
    @torch.no_grad()
    def residuals(self) -> torch.Tensor:
        pred = self.model(self.X)
        r = self.loss.residuals(pred, self.y, self.weight)
        self.last = Measure(float(r.dot(r)), float(r.dot(r)), 0.0, pred)
        return r

    def _jacobian_rows(self, X) -> torch.Tensor:
        """d model(x_n) / d theta for each row of X: (n, n_outputs, P), by per-sample
        reverse mode (torch.func) over the pure-torch kernels."""
        from torch.func import functional_call, jacrev, vmap

        sizes = [p.numel() for p in self.params]
        shapes = [p.shape for p in self.params]
        model = self.model

        def single(theta, x):
            values = theta.split(sizes)
            params = {n: v.view(s) for n, v, s in zip(self.names, values, shapes)}
            return functional_call(model, params, (x.unsqueeze(0),)).squeeze(0)

        with model.using_backend("torch"):  # torch.func needs the pure-torch kernels
            return vmap(jacrev(single), in_dims=(None, 0))(self.theta.detach(), X)

    def _row_scale(self) -> torch.Tensor:
        """(N, 1): the least-squares loss's residuals are these factors times (pred - y)."""
        return self.loss.residual_scale(self.X.shape[0], self.model.n_outputs, self.weight, like=self.X)

    def residuals_jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        scale = self._row_scale()
        J = torch.cat([self._jacobian_rows(self.X[i : i + JACOBIAN_ROWS]) * scale[i : i + JACOBIAN_ROWS, :, None]
                       for i in range(0, self.X.shape[0], JACOBIAN_ROWS)])
        return self.residuals(), J.reshape(-1, self.theta.numel())

    def normal_equations(self) -> tuple[float, torch.Tensor, torch.Tensor]:
        """Accumulated over blocks of rows: the Jacobian is never held whole."""
        r = self.residuals()
        loss = float(r.dot(r))
        m, P = self.model.n_outputs, self.theta.numel()
        scale = self._row_scale()
        A, g = self.theta.new_zeros(P, P), self.theta.new_zeros(P)
        for i in range(0, self.X.shape[0], JACOBIAN_ROWS):
            rows = slice(i, i + JACOBIAN_ROWS)
            J = (self._jacobian_rows(self.X[rows]) * scale[rows, :, None]).reshape(-1, P)  # (rows * m, P)
            A.addmm_(J.T, J)
            g.addmv_(J.T, r[i * m : (i + JACOBIAN_ROWS) * m])
        return loss, A, g

    # ------------------------------------------------------------------ metrics
    @torch.no_grad()
    def measure(self, loss: float) -> Measure:
        """The measurement behind the loss an optimizer step reported: the last evaluation
        when it is that one (Adam measures before its update, LBFGS where it ended),
        otherwise a new one at theta."""
        if self.fused is not None:
            by_loss = self.loss.metric_of_loss(loss) is not None  # the loss alone gives the metric (MSE: RMSE)
            if by_loss and not self.lamb:
                return Measure(loss, loss, 0.0, None)
            if self.lamb:
                data, reg = self.fused.parts(self.X, self.y)  # one C++ forward, no gradients
                total, data, reg = float(data + self.lamb * reg), float(data), float(reg)
            else:
                total, data, reg = loss, loss, 0.0
            # a classification metric needs the predictions: one forward (not the regulariser's trace)
            self.last = Measure(total, data, reg, None if by_loss else self.model(self.X))
            return self.last
        if self.last is None or self.last.total != loss or self.last.pred is None:
            pred, data, reg = self.parts()
            total = float(data + self.lamb * reg) if self.lamb else float(data)
            self.last = Measure(total, float(data.detach()), float(reg.detach()), pred)
        return self.last

    def metric(self, measure: Measure) -> float:
        if measure.pred is None:
            return self.loss.metric_of_loss(measure.data)
        return self.loss.metric(measure.pred, self.y, self.weight)

    @torch.no_grad()
    def score(self, X, y, weight=None) -> tuple[float, float]:
        """(loss, metric) of the model on other data, e.g. validation data."""
        pred = self.model(X)
        return float(self.loss(pred, y, weight)), self.loss.metric(pred, y, weight)
