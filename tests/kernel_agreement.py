"""How far the fused C++ kernels are from the pure-PyTorch backend, per operation.

Run in-process for the native build, or as a script in a subprocess whose environment forces
another build (KANOPY_SIMD_BYTES, KANOPY_MARCH): prints one JSON object
{"simd": ..., "float64": {operation: relative error}, "float32": {...}}.

Relative error of a result: max |fused - torch| / max(1, max |torch|), the worst over the
cases below. The torch backend runs in float64 on the same numbers (for a float32 case: its
float32 inputs and parameters, widened), so that a float32 error is the kernels' own and not
the sum of two implementations' roundings.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import uniform_samples  # noqa: E402

from kanopy import KAN, KANLayer, _extension, kernels, losses, regularization  # noqa: E402

# (in, out, grid, samples): one output, several, more than a vector, wide on a fine grid (the
# forward by output slices), and many samples (several chunks and groups of the backward)
LAYER_CASES = [(1, 1, 6, 150), (2, 5, 6, 150), (5, 1, 6, 150), (7, 19, 6, 150), (8, 40, 6, 4500),
               (6, 70, 60, 4500), (20, 3, 8, 300)]
# (widths, grid): the forward's row blocks ([3, 7, 2]), a layer with one output ([2, 4, 1]) and
# one by output slices ([3, 70, 1] on 60 intervals), each with the regulariser's |phi| sums
NETWORKS = [([3, 7, 2], 6), ([2, 4, 1], 8), ([3, 70, 1], 60)]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / max(1.0, float(b.abs().max())))


def _layer(in_dim, out_dim, grid, dtype, seed):
    layer = KANLayer(in_dim, out_dim, grid=grid, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        layer.coef.copy_(torch.randn(layer.coef.shape, generator=g, dtype=dtype))
        layer.scale_sp.uniform_(0.5, 1.5, generator=g)
        layer.mask[0, 0] = 0.0
    return layer


def layer_errors(dtype) -> dict[str, float]:
    """Forward and backward (x, coef, scale_base, scale_sp, bias) of single layers, uniform and
    adaptive knots, inputs reaching past the grid."""
    worst = {"forward": 0.0, "backward": 0.0}
    for case, (in_dim, out_dim, grid, n) in enumerate(LAYER_CASES):
        for adaptive in (False, True):
            layer = _layer(in_dim, out_dim, grid, dtype, seed=case)
            if adaptive:
                layer.update_grid(uniform_samples(300, in_dim, seed=7, dtype=dtype) ** 3)
            x = uniform_samples(n, in_dim, seed=8, lo=-1.6, hi=1.6, dtype=dtype)
            results = []
            for backend, run_dtype in (("fused", dtype), ("torch", torch.float64)):
                L = copy.deepcopy(layer).to(run_dtype)
                L.backend = backend
                L.bias.requires_grad_(True)
                xr = x.to(run_dtype).detach().requires_grad_()
                out = L(xr)
                (out * torch.linspace(0, 1, out_dim, dtype=run_dtype)).sum().backward()
                results.append((out.detach(), [xr.grad] + [p.grad for p in (L.coef, L.scale_base, L.scale_sp, L.bias)]))
            (fused_out, fused_grads), (torch_out, torch_grads) = results
            worst["forward"] = max(worst["forward"], _rel(fused_out, torch_out))
            worst["backward"] = max(worst["backward"], *(_rel(a, b) for a, b in zip(fused_grads, torch_grads)))
    return worst


def _network(widths, grid, dtype, seed=0, scaled_outputs=False):
    model = KAN(widths, grid=grid, seed=seed, dtype=dtype)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.copy_(0.3 * torch.randn(layer.coef.shape, generator=g, dtype=dtype))
            layer.bias.requires_grad_(True)  # every gradient the fused objective gives
        if scaled_outputs:
            model.out_scale.uniform_(0.5, 2.0, generator=g)
            model.out_shift.uniform_(-1.0, 1.0, generator=g)
    return model


def _data(widths, dtype, n=700):
    X = uniform_samples(n, widths[0], seed=3, lo=-1.2, hi=1.2, dtype=dtype)
    mix = torch.randn(widths[0], widths[-1], generator=torch.Generator().manual_seed(4), dtype=dtype)
    return X, torch.sin(2 * X @ mix) + X[:, :1] ** 2


# the sparsity regulariser with every term on (fit's names; lamb_coef and lamb_coefdiff are 0 by default)
REG = dict(lamb=0.01, lamb_l1=1.0, lamb_entropy=2.0, lamb_coef=0.5, lamb_coefdiff=0.3)


# (widths, grid) for the classification losses: two logits, more logits than a float64 vector
# holds ([2, 5, 10]), and a wide hidden layer by output slices
CLASS_NETWORKS = [([3, 7, 2], 6), ([2, 5, 10], 8), ([3, 70, 3], 60)]


def _targets(loss, y):
    """Regression targets (N, m) -> the loss's: class indices of the largest column
    (cross_entropy), 0/1 of each column's sign (bce)."""
    if loss == "cross_entropy":
        return y.argmax(dim=1)
    return (y > 0).to(y.dtype) if loss == "bce" else y


def reference_loss(model, X, y, reg=None, loss="mse"):
    """(loss, data term, regulariser) by the torch backend and autograd: losses.py's loss and
    regularization.py over the model's trace, as fit computes them without the fused kernels."""
    data_loss = losses.get(loss)
    with model.using_backend("torch"):
        if not reg:
            data = data_loss(model(X), y)
            return data, data, data.new_zeros(())
        traces = model.trace(X)
        pred = traces[-1].outputs * model.out_scale + model.out_shift
        data = data_loss(pred, y)
        value = (regularization.sparsity(traces, reg["lamb_l1"], reg["lamb_entropy"])
                 + regularization.coefficients(model.layers, reg["lamb_coef"], reg["lamb_coefdiff"]))
        return data + reg["lamb"] * value, data, value


def objective_errors(dtype, reg=None, suffix="", loss="mse") -> dict[str, float]:
    """kan_loss_grad for ``loss`` (the loss, its parts and its gradient) against autograd over
    the torch backend, and one fused LBFGS step (kan_lbfgs_step) against the Python LBFGS over
    the torch backend; with reg, the regularised objective. The classification losses run on
    networks whose outputs are shifted and scaled (the kernels map them as KAN.forward)."""
    worst = 0.0
    networks = NETWORKS if loss == "mse" else CLASS_NETWORKS
    for widths, grid in networks:
        X, y = _data(widths, dtype)
        y = _targets(loss, y)
        model = _network(widths, grid, dtype, scaled_outputs=loss != "mse")
        fused = kernels.FusedObjective.build(model, reg, loss)
        value, grads = fused(X, y)
        data, reg_value = fused.parts(X, y)
        wide = copy.deepcopy(model).double()
        ref_loss, ref_data, ref_value = reference_loss(wide, X.double(), y if loss == "cross_entropy" else y.double(),
                                                       reg, loss)
        names = list(grads)
        params = dict(wide.named_parameters())
        ref_grads = torch.autograd.grad(ref_loss, [params[name] for name in names])
        worst = max(worst, _rel(value, ref_loss.detach()), _rel(data, ref_data.detach()),
                    _rel(reg_value, ref_value.detach()), *(_rel(grads[n], g) for n, g in zip(names, ref_grads)))
    name = "mse" if loss == "mse" else loss
    errors = {f"{name}_grad{suffix}": worst}

    widths, grid = networks[0]
    X, y = _data(widths, dtype)
    y = _targets(loss, y)
    model = _network(widths, grid, dtype, scaled_outputs=loss != "mse")
    steps = []
    for backend, run_dtype in (("auto", dtype), ("torch", torch.float64)):  # auto: C++ LBFGS, fused objective
        m = copy.deepcopy(model).to(run_dtype)
        m.backend = backend
        m.fit(X.to(run_dtype), y if loss == "cross_entropy" else y.to(run_dtype), steps=1, loss=loss,
              update_grid=False, progress=False, optimizer_options={"max_iter": 3}, **(reg or {}))
        steps.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
    errors[f"{'' if loss == 'mse' else loss + '_'}lbfgs_step{suffix}"] = _rel(*steps)
    return errors


def errors() -> dict:
    out = {"simd": _extension.describe()}
    for dtype in (torch.float64, torch.float32):
        # the classification losses in float64 only: their data term is computed in double
        # (csrc/loss.h) from the same layer kernels the MSE cases hold in float32, and a float32
        # LBFGS step of a logistic loss can take another branch of the line search than float64
        kinds = ("mse", "cross_entropy", "bce") if dtype == torch.float64 else ("mse",)
        out[str(dtype).replace("torch.", "")] = {
            **layer_errors(dtype),
            **{key: value for loss in kinds
               for key, value in {**objective_errors(dtype, loss=loss),
                                  **objective_errors(dtype, REG, suffix="_regularised", loss=loss)}.items()}}
    return out


if __name__ == "__main__":
    torch.set_num_threads(1)  # run beside other builds and checks
    if _extension.ops() is None:
        sys.exit("the fused kernels could not be built")
    print(json.dumps(errors()))
