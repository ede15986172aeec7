"""The sparsity regulariser of the KAN paper, computed from per-edge activations.

For each layer, with a_ij = mean_n |phi_ij(x_n)| (the L1 norm of edge i -> j):
    l1 = sum_ij a_ij
    entropy = mean over output nodes of the entropy of that node's incoming edges
            + mean over input nodes of the entropy of that node's outgoing edges
    reg = lamb_l1 * l1 + lamb_entropy * entropy   (summed over layers)
Optional terms on the coefficients (lamb_coef: mean |c|, lamb_coefdiff: mean |c_{m+1} - c_m|)
favour small and smooth splines.
"""

from __future__ import annotations

import torch


def edge_scale(edges: torch.Tensor) -> torch.Tensor:
    """edges (N, in, out) -> mean |phi| per edge (in, out)."""
    return edges.abs().mean(dim=0)


def _entropy(p: torch.Tensor, dim: int) -> torch.Tensor:
    return -(p * torch.log2(p + 1e-4)).sum(dim=dim).mean()


def sparsity(traces, lamb_l1: float = 1.0, lamb_entropy: float = 2.0) -> torch.Tensor:
    total = traces[0].edges.new_zeros(())
    for trace in traces:
        a = edge_scale(trace.edges)  # (in, out)
        l1 = a.sum()
        tiny = torch.finfo(a.dtype).tiny  # a dead node has all-zero shares, not NaN
        p_in = a / (a.sum(dim=0, keepdim=True) + tiny)  # shares of a node's incoming edges
        p_out = a / (a.sum(dim=1, keepdim=True) + tiny)  # shares of a node's outgoing edges
        total = total + lamb_l1 * l1 + lamb_entropy * (_entropy(p_in, 0) + _entropy(p_out, 1))
    return total


def coefficients(layers, lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> torch.Tensor:
    total = layers[0].coef.new_zeros(())
    for layer in layers:
        if lamb_coef:
            total = total + lamb_coef * layer.coef.abs().mean(dim=1).sum()
        if lamb_coefdiff:
            total = total + lamb_coefdiff * layer.coef.diff(dim=1).abs().mean(dim=1).sum()
    return total
