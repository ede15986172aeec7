"""Input derivatives of a KAN by forward-mode propagation: value, gradient, Laplacian, Hessian.

A *jet* of a level of the network carries, at each point, the nodes' values and their
derivatives with respect to the d raw inputs. Through an edge phi with input jet
(v, g, L, H), in closed form (B-spline derivatives from :func:`kanopy.basis.local_basis_derivatives`,
base functions' from :func:`kanopy.functions.derivatives`):

    value phi(v),  gradient phi'(v) g,  Laplacian phi''(v) |g|^2 + phi'(v) L,
    Hessian phi''(v) g g^T + phi'(v) H,

summed at the nodes (multiplication nodes by the product rule), through the model's input and
output scaling. No nested autograd: gradients with respect to the parameters come from one
ordinary backward pass through these tensors, and ``torch.func`` transforms (per-row
Jacobians for Levenberg-Marquardt) apply as they do to the forward.

``level``: 0 values, 1 + gradients, 2 + Laplacians, 3 + Hessians (their trace is the Laplacian).
Layers with symbolic edges are not handled here (:func:`supports` says so); the caller
differentiates those by autograd.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import basis, functions

VALUE, GRADIENT, LAPLACIAN, HESSIAN = 0, 1, 2, 3
GATHER_MAX_OUT = 4  # up to this many outputs gathering coefficient rows beats a dense GEMM


@dataclass
class Jet:
    """Values (N, m) of m nodes and their input derivatives; unused orders are None."""

    value: torch.Tensor  # (N, m)
    grad: torch.Tensor | None = None  # (N, m, d)
    laplacian: torch.Tensor | None = None  # (N, m)
    hessian: torch.Tensor | None = None  # (N, m, d, d)

    def select(self, columns) -> Jet:
        return Jet(*(None if t is None else t[:, columns] for t in (self.value, self.grad, self.laplacian,
                                                                     self.hessian)))


def supports(model) -> bool:
    """Whether :func:`network_jet` handles this model (no symbolic edges)."""
    return all(layer.plain for layer in model.layers)


def input_jet(model, x: torch.Tensor, level: int, params: dict | None = None) -> Jet:
    """The jet of the scaled inputs ``(x - in_shift) / in_scale`` (clamped to input_bound)."""
    n, d = x.shape
    scale = model.in_scale
    s = (x - model.in_shift) / scale
    grad = lap = hess = None
    if level >= GRADIENT:
        grad = torch.diag_embed(1 / scale).expand(n, d, d)  # (N, d, d): ds_i / dx_e
        if model.input_bound is not None:
            inside = (s.abs() <= model.input_bound).to(x.dtype)  # a clamped input is constant
            grad = grad * inside.unsqueeze(-1)
    if model.input_bound is not None:
        s = s.clamp(-model.input_bound, model.input_bound)
    if level >= LAPLACIAN:
        lap = x.new_zeros(n, d)
    if level >= HESSIAN:
        hess = x.new_zeros(n, d, d, d)
    return Jet(s, grad, lap, hess)


def layer_jet(layer, jet: Jet, level: int, params: dict | None = None, prefix: str = "") -> Jet:
    """The jet of a plain KANLayer's outputs (N, out) from its inputs' jet.

    ``params``: optional replacements of the layer's parameters by name (``prefix + "coef"``...),
    as torch.func.functional_call would give them."""

    def get(name):
        return params[prefix + name] if params is not None and prefix + name in params else getattr(layer, name)

    if not layer.plain:
        raise ValueError("forward-mode jets handle spline edges only; this layer has symbolic edges "
                         "(use autograd_jet)")
    coef, scale_sp, scale_base, bias = get("coef"), get("scale_sp"), get("scale_base"), get("bias")
    mask = layer.mask
    v = jet.value  # (N, in)
    n, n_in = v.shape
    k = layer.k
    orders = min(level, LAPLACIAN) + 1  # phi, phi', phi'' as far as needed
    basis_jet = basis.local_basis_derivatives(v, layer.knots, k, layer.uniform)  # 3 x (N, in, k+1), start
    start = basis_jet[3]
    stacked = torch.stack(basis_jet[:orders])  # (S, N, in, k+1)
    scaled = coef * (mask * scale_sp).unsqueeze(1)  # (in, G+k, out)
    n_basis, n_out = scaled.shape[1], scaled.shape[2]
    if n_out <= GATHER_MAX_OUT:  # gather the k+1 coefficient rows of each point
        idx = start.unsqueeze(-1) + torch.arange(k + 1, device=v.device)  # (N, in, k+1)
        flat = (idx + (torch.arange(n_in, device=v.device) * n_basis)[:, None]).reshape(-1)  # rows of the table
        # index_select: its backward is one index_add, far cheaper than advanced indexing's
        rows = scaled.reshape(n_in * n_basis, n_out).index_select(0, flat).reshape(n, n_in, k + 1, n_out)
        phis = (stacked.unsqueeze(-1) * rows).sum(3)  # (S, N, in, out); tiny matrices: no bmm
    else:  # scatter the basis densely: one GEMM per input over all points and orders
        idx = (start.unsqueeze(-1) + torch.arange(k + 1, device=v.device)).expand(orders, n, n_in, k + 1)
        dense = v.new_zeros(orders, n, n_in, n_basis).scatter(3, idx, stacked)  # (S, N, in, G+k)
        phis = torch.bmm(dense.permute(2, 0, 1, 3).reshape(n_in, orders * n, n_basis), scaled)  # (in, S N, out)
        phis = phis.reshape(n_in, orders, n, n_out).permute(1, 2, 0, 3)  # (S, N, in, out)
    base = torch.stack(functions.derivatives(layer.base_fn, v)[:orders])  # (S, N, in)
    w = mask * scale_base  # (in, out)
    phis = phis + base.unsqueeze(-1) * w
    value = phis[0].sum(1) + bias
    if level == VALUE:
        return Jet(value)
    phi1 = phis[1]  # (N, in, out)
    grad = (phi1.unsqueeze(-1) * jet.grad.unsqueeze(2)).sum(1)  # (N, out, d)
    if level == GRADIENT:
        return Jet(value, grad)
    phi2 = phis[2]
    g2 = (jet.grad * jet.grad).sum(-1)  # (N, in): |g|^2
    lap = (phi2 * g2.unsqueeze(-1) + phi1 * jet.laplacian.unsqueeze(-1)).sum(1)
    hess = None
    if level >= HESSIAN:
        hess = (torch.einsum("nio,nid,nie->node", phi2, jet.grad, jet.grad)
                + torch.einsum("nio,nide->node", phi1, jet.hessian))
    return Jet(value, grad, lap, hess)


def product(a: Jet, b: Jet) -> Jet:
    """The jet of the elementwise product of two jets of the same nodes."""
    value = a.value * b.value
    grad = lap = hess = None
    if a.grad is not None:
        grad = a.value.unsqueeze(-1) * b.grad + b.value.unsqueeze(-1) * a.grad
    if a.laplacian is not None:
        lap = a.value * b.laplacian + b.value * a.laplacian + 2 * (a.grad * b.grad).sum(-1)
    if a.hessian is not None:
        outer = a.grad.unsqueeze(-1) * b.grad.unsqueeze(-2)  # (N, m, d, d)
        hess = (a.value[..., None, None] * b.hessian + b.value[..., None, None] * a.hessian
                + outer + outer.transpose(-1, -2))
    return Jet(value, grad, lap, hess)


def combine(layout, jet: Jet) -> Jet:
    """Subnode jets -> node jets (the NodeLayout's sum and multiplication nodes)."""
    if layout.n_mult == 0:
        return jet
    out = jet.select(slice(0, layout.n_sum))
    parts = [out]
    for m in range(layout.n_mult):
        first = layout.n_sum + m * layout.arity
        factor = jet.select(slice(first, first + 1))
        for a in range(1, layout.arity):
            factor = product(factor, jet.select(slice(first + a, first + a + 1)))
        parts.append(factor)
    return Jet(*(None if getattr(out, f) is None else torch.cat([getattr(p, f) for p in parts], dim=1)
                 for f in ("value", "grad", "laplacian", "hessian")))


def network_jet(model, x: torch.Tensor, level: int = LAPLACIAN, params: dict | None = None) -> Jet:
    """The jet of a KAN's outputs at raw inputs x (N, d): value (N, n_out), grad (N, n_out, d)...

    ``model``: anything with KAN's interface (layers, layout, scaling buffers, input_bound);
    ``params``: optional replacements of its parameters by name (``"layers.0.coef"``...)."""
    jet = input_jet(model, x, level)
    for l, layer in enumerate(model.layers):
        jet = combine(model.layout(l), layer_jet(layer, jet, level, params, f"layers.{l}."))
    scale = model.out_scale
    return Jet(jet.value * scale + model.out_shift,
               None if jet.grad is None else jet.grad * scale[:, None],
               None if jet.laplacian is None else jet.laplacian * scale,
               None if jet.hessian is None else jet.hessian * scale[:, None, None])


def autograd_jet(model, x: torch.Tensor, level: int = LAPLACIAN) -> Jet:
    """The same by nested autograd through the model's pure-torch forward: the reference, and
    the path for models with symbolic edges. Differentiable in the parameters (create_graph)."""
    x = x.detach().requires_grad_(True)
    n, d = x.shape
    with torch.enable_grad(), model.using_backend("torch"):
        value = model(x)  # (N, m)
        if level == VALUE:
            return Jet(value)
        grads, hessians = [], []
        for o in range(value.shape[1]):
            (g,) = torch.autograd.grad(value[:, o].sum(), x, create_graph=True)
            grads.append(g)
            if level >= LAPLACIAN:
                rows = [torch.autograd.grad(g[:, e].sum(), x, create_graph=True, allow_unused=True)[0]
                        for e in range(d)]
                rows = [torch.zeros_like(x) if r is None else r for r in rows]
                hessians.append(torch.stack(rows, dim=1))  # (N, d, d)
        grad = torch.stack(grads, dim=1)
        if level == GRADIENT:
            return Jet(value, grad)
        hess = torch.stack(hessians, dim=1)  # (N, m, d, d)
        lap = hess.diagonal(dim1=-2, dim2=-1).sum(-1)
        return Jet(value, grad, lap, hess if level >= HESSIAN else None)
