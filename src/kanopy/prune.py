"""Attribution scores of edges and nodes, and pruning to a smaller KAN.

Scores follow KAN 2.0: an output node has score 1; going backwards, an edge i -> j gets the
score of its (sub)node j times the share it brings to that node's variation,

    E_ij = A_j * std(phi_ij) / (std(value of node j) + eps),

and a node's score is the sum of the scores of its outgoing edges. A multiplication node
passes its score to each of its factors (subnodes). Scores are scale free (ratios of
standard deviations), so thresholds mean the same on every problem.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .metrics import rmse

_EPS = 1e-4


@dataclass
class Attribution:
    nodes: list[torch.Tensor]  # per level 0..L: (n_nodes,), level 0 = inputs, L = outputs
    edges: list[torch.Tensor]  # per layer 0..L-1: (in, out_subnodes)


@torch.no_grad()
def attribution(model, X: torch.Tensor) -> Attribution:
    traces = model.trace(X)
    node_score = torch.ones(model.n_outputs, dtype=model.dtype, device=model.device)
    nodes, edges = [node_score], []
    for l in range(len(model.layers) - 1, -1, -1):
        trace, layer = traces[l], model.layers[l]
        sub_score = model.layout(l).spread(node_score)  # (out_sub,)
        sub_value = trace.edges.sum(dim=1) + layer.bias  # (N, out_sub)
        share = trace.edges.std(dim=0) / (sub_value.std(dim=0) + _EPS)  # (in, out_sub)
        edge_score = share * sub_score
        node_score = edge_score.sum(dim=1)
        edges.append(edge_score)
        nodes.append(node_score)
    return Attribution(nodes=nodes[::-1], edges=edges[::-1])


@torch.no_grad()
def prune(model, X: torch.Tensor, node_threshold: float = 1e-2, edge_threshold: float | None = None):
    """A smaller copy of model without the hidden nodes scoring below node_threshold and
    with the edges scoring below edge_threshold masked off. The mean contribution of every
    removed edge is folded into the bias of the node it fed, so the pruned model computes the
    same function up to the removed variation."""
    scores = attribution(model, X)
    keep = [torch.nonzero(scores.nodes[level] >= node_threshold).flatten() for level in range(len(model.width))]
    for level in range(1, len(model.width) - 1):
        if keep[level].numel() == 0:  # a layer needs a node: keep the best one
            keep[level] = scores.nodes[level].argmax().reshape(1)
    weak = None
    if edge_threshold is not None:
        weak = [e < edge_threshold for e in scores.edges]
    return subnetwork(model, X, keep, weak_edges=weak)


@torch.no_grad()
def subnetwork(model, X: torch.Tensor, keep_hidden: list, weak_edges: list | None = None):
    """Copy of model keeping, at every hidden level, the nodes listed in keep_hidden[level]
    (levels 0 and L, inputs and outputs, are always kept whole); weak_edges[l] (in, out_sub)
    marks edges of layer l to mask off. Removed contributions go into biases as their mean."""
    traces = model.trace(X)
    L = len(model.layers)
    keep = [torch.arange(model.n_inputs, device=model.device)]
    keep += [torch.as_tensor(k, device=model.device).flatten().sort().values for k in keep_hidden[1:L]]
    keep.append(torch.arange(model.n_outputs, device=model.device))
    width = []
    for level, kept in enumerate(keep):
        n_sum = model.width[level][0]
        width.append([int((kept < n_sum).sum()), int((kept >= n_sum).sum())])
    config = model.config()
    config["width"] = width
    config.pop("symbolic", None)  # sliced below
    smaller = type(model).from_config(config, device=model.device)
    for name in ("in_shift", "in_scale", "out_shift", "out_scale"):
        getattr(smaller, name).copy_(getattr(model, name))
    smaller.info = dict(model.info)
    smaller.samples = model.samples
    for l, (old, new) in enumerate(zip(model.layers, smaller.layers)):
        rows, cols = keep[l], model.layout(l).subnodes_of(keep[l + 1])
        mean_edges = traces[l].edges.mean(dim=0)  # (in, out_sub)
        removed = torch.ones_like(old.mask, dtype=torch.bool)
        removed[rows[:, None], cols[None, :]] = False
        if weak_edges is not None:
            removed |= weak_edges[l] & (old.mask > 0)
        mask = old.mask.masked_fill(removed, 0.0)
        bias = old.bias + (mean_edges * removed).sum(dim=0)
        new.knots = old.knots[rows].clone()
        new.mask = mask[rows][:, cols].clone()
        for name in ("coef", "scale_base", "scale_sp"):
            value = getattr(old, name)[rows]
            getattr(new, name).data = (value[:, :, cols] if name == "coef" else value[:, cols]).clone()
        new.bias.data = bias[cols].clone()
        new.symbolic = old.symbolic.select(rows, cols)
        new.backend = old.backend
    return smaller


def shrink(model, X, y, tolerance: float = 2.0, refit_steps: int = 20, optimizer: str = "lm",
           min_width: int = 1, callback=None):
    """Greedy backward elimination: remove the hidden node with the lowest attribution,
    refit, and keep the removal while the RMSE on (X, y) stays within ``tolerance`` times the
    starting model's. Returns the smallest model accepted (the input model is not changed).

    Attribution-based pruning alone keeps every node that carries variation; this finds the
    nodes the function does not need, e.g. [2, 5, 1] -> [2, 1, 1] for f(x, y) = exp(sin x + y^2)."""

    reference = rmse(model, X, y)
    current = model
    while True:
        scores = attribution(current, X)
        candidates = [
            (float(score), level, node)
            for level in range(1, len(current.width) - 1) if sum(current.width[level]) > min_width
            for node, score in enumerate(scores.nodes[level].tolist())
        ]
        if not candidates:
            return current
        _, level, node = min(candidates)
        keep = [torch.arange(sum(w)) for w in current.width]
        keep[level] = keep[level][keep[level] != node]
        trial = subnetwork(current, X, keep)
        trial.fit(X, y, steps=refit_steps, optimizer=optimizer, progress=False, update_grid=False)
        error = rmse(trial, X, y)
        if callback is not None:
            callback(trial, error)
        if not error <= tolerance * reference:
            return current
        current = trial
