"""Evaluation kernels of a KAN layer, never building a (batch, in, out) tensor:

    y[n, j] = bias_j + sum_i ( b(x[n, i]) * base_w[i, j] + spline_ij(x[n, i]) )

for x (N, in), spline_ij = scale_sp_ij * mask_ij * sum_m coef[i, m, j] B_m, and
base_w = mask * scale_base (in, out).

Two implementations:
* ``fused``: C++ kernels (csrc/spline.cpp) for CPU tensors, built lazily, with their autograd
  node in C++ (``torch.ops.kanopy.spline_layer``); only x is saved for backward and the basis
  is recomputed there. First derivatives only.
* ``torch``: pure PyTorch on local support (gathered coefficient rows for narrow layers, one
  GEMM on a scattered basis for wide ones). Runs on any device, differentiable to any order
  and usable under torch.func (vmap/jacrev): physics-informed losses and Levenberg-Marquardt
  Jacobians use it.
``backend="auto"`` picks fused when it applies.
"""

from __future__ import annotations

import torch

from . import _extension, basis
from .functions import BASE_FUNCTIONS

BACKENDS = ("auto", "fused", "torch")
_FUSED_BASE = {"zero": 0, "identity": 1, "silu": 2, "tanh": 3}  # base functions built into C++
_GATHER_MAX_OUT = 8  # below this many outputs gathering rows beats scatter + GEMM


def layer_forward(x, knots, coef, scale_sp, scale_base, mask, bias, k: int, uniform: bool, base_fn: str,
                  backend: str = "auto"):
    """The layer's output (N, out) from its raw parameters (see KANLayer)."""
    if backend != "torch" and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        ops = _extension.ops()
        if ops is not None:
            kind = _FUSED_BASE.get(base_fn)
            if kind is not None:
                return ops.spline_layer(x, knots, coef, scale_sp, scale_base, mask, bias, k, uniform, kind)
            y = ops.spline_layer(x, knots, coef, scale_sp, torch.zeros_like(scale_base), mask, bias, k, uniform, 0)
            return torch.addmm(y, BASE_FUNCTIONS[base_fn](x), mask * scale_base)
        if backend == "fused":
            raise RuntimeError("backend='fused' was asked for but the fused kernels could not be built")
    elif backend == "fused":
        raise RuntimeError(f"backend='fused' runs on CPU float32/float64 tensors, got {x.device} {x.dtype}")
    y = spline_sum(x, knots, coef * (mask * scale_sp).unsqueeze(1), k, uniform)
    return torch.addmm(y + bias, BASE_FUNCTIONS[base_fn](x), mask * scale_base)


def spline_sum(x: torch.Tensor, knots: torch.Tensor, coef: torch.Tensor, k: int, uniform: bool) -> torch.Tensor:
    """Pure-torch y[n, j] = sum_i spline_ij(x[n, i]): (N, out)."""
    values, start = basis.local_basis(x, knots, k, uniform)  # (N, in, k+1), (N, in)
    n, n_in = x.shape
    n_basis, n_out = coef.shape[1], coef.shape[2]
    if n_out <= _GATHER_MAX_OUT:
        idx = start.unsqueeze(-1) + torch.arange(k + 1, device=x.device)  # (N, in, k+1)
        flat = (idx + torch.arange(n_in, device=x.device)[:, None] * n_basis).reshape(n, -1)
        rows = coef.reshape(n_in * n_basis, n_out)[flat]  # (N, in*(k+1), out)
        return torch.bmm(values.reshape(n, 1, -1), rows).squeeze(1)
    flat = start + torch.arange(n_in, device=x.device) * n_basis  # (N, in)
    idx = (flat.unsqueeze(-1) + torch.arange(k + 1, device=x.device)).reshape(n, -1)
    dense = x.new_zeros(n, n_in * n_basis).scatter(1, idx, values.reshape(n, -1))  # (N, in*(G+k))
    return dense @ coef.reshape(n_in * n_basis, n_out)


class FusedObjective:
    """The training objective of a plain KAN and its gradient in one C++ call (``kan_loss_grad``):

        loss = data + lamb * (sparsity + coefficient terms)

    with ``data`` the loss named by ``loss`` (a key of ``LOSSES``: "mse", "cross_entropy" over
    the outputs as class logits with int64 class indices (N,) as targets, "bce" of each output
    as a logit; the definitions of :mod:`kanopy.losses`, without sample weights) and the
    regulariser of :mod:`kanopy.regularization` when ``reg`` is given (a dict with lamb,
    lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff, as fit takes them; lamb = 0 or no ``reg``:
    the data term alone). The regulariser's per-edge mean |phi| come from the forward kernels
    and its gradient joins the same backward pass, so a regularised step costs little more
    than a plain one.

    ``FusedObjective.build(model, reg, loss)`` returns None when the fused path does not apply
    (multiplication nodes, symbolic edges, mixed or non-built-in base functions, GPU, no
    compiler...). The argument lists are gathered once; call ``refresh`` after the model's
    tensors were replaced (grid updates)."""

    PARAMS = ("coef", "scale_sp", "scale_base", "bias")
    REG = ("lamb", "lamb_l1", "lamb_entropy", "lamb_coef", "lamb_coefdiff")
    LOSSES = {"mse": 0, "cross_entropy": 1, "bce": 2}  # the loss kinds of csrc/loss.h (LossKind)

    @classmethod
    def build(cls, model, reg: dict | None = None, loss: str = "mse"):
        if loss not in cls.LOSSES:
            raise ValueError(f"the fused objective computes the losses {sorted(cls.LOSSES)}, not {loss!r}")
        layers = model.layers
        base_fn = layers[0].base_fn
        if (model.device.type != "cpu" or model.dtype not in (torch.float32, torch.float64)
                or any(n_mult for _, n_mult in model.width) or base_fn not in _FUSED_BASE
                or any(layer.base_fn != base_fn or layer.backend == "torch" or not layer.plain for layer in layers)):
            return None
        ops = _extension.ops()
        return None if ops is None else cls(model, ops, _FUSED_BASE[base_fn], reg, loss)

    def __init__(self, model, ops, base_kind, reg: dict | None = None, loss: str = "mse"):
        self.model, self.op, self.base_kind = model, ops.kan_loss_grad, base_kind
        self.loss, self.loss_kind = loss, self.LOSSES[loss]
        self.names = [f"layers.{l}.{p}" for l in range(len(model.layers)) for p in self.PARAMS]
        # (lamb, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff), or empty: the data term alone
        self.reg_weights = [float(reg[name]) for name in self.REG] if reg and reg.get("lamb") else []
        self.refresh()

    def refresh(self) -> None:
        m = self.model
        layers = list(m.layers)
        self.args = (
            [l.knots for l in layers], [l.coef for l in layers], [l.scale_sp for l in layers],
            [l.scale_base for l in layers], [l.mask for l in layers], [l.bias for l in layers],
            [int(l.uniform) for l in layers], m.k, self.base_kind, m.in_shift, m.in_scale, m.out_shift, m.out_scale,
            self.reg_weights, self.loss_kind,
        )

    @property
    def has_lbfgs(self) -> bool:
        return hasattr(torch.ops.kanopy, "kan_lbfgs_step")

    def lbfgs_step(self, X, y, theta, names, rows, order, direction, prev_grad, has_direction, t,
                   max_iter, max_eval, lr, tolerance_grad, tolerance_change):
        """One L-BFGS step in C++ (csrc/lbfgs.h); theta's slices are the parameters `names`."""
        grad_order = [self.names.index(name) for name in names]
        with torch.no_grad():
            return torch.ops.kanopy.kan_lbfgs_step(
                X, y, theta, *self.args, grad_order, rows, list(order), direction, prev_grad, has_direction, float(t),
                int(max_iter), int(max_eval), float(lr), float(tolerance_grad), float(tolerance_change))

    def __call__(self, X: torch.Tensor, y: torch.Tensor):
        """(loss, {parameter name: gradient})."""
        with torch.no_grad():  # gradients come from the op itself, not from autograd
            loss, _, _, grads = self.op(X, y, *self.args, True)
        return loss, dict(zip(self.names, grads))

    def parts(self, X: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(data term, regulariser) without gradients; the regulariser is 0 without ``reg``."""
        with torch.no_grad():
            _, data, reg, _ = self.op(X, y, *self.args, False)
        return data, reg
