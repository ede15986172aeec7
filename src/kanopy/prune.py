"""Attribution scores of edges and nodes, and pruning to a smaller KAN.

Scores follow KAN 2.0: an output node has score 1; going backwards, an edge ``i -> j`` gets
the score of its (sub)node `j` times the share it brings to that node's variation,

    E_ij = A_j * std(phi_ij) / (std(value of node j) + eps),

and a node's score is the sum of the scores of its outgoing edges. A multiplication node
passes its score to each of its factors (subnodes). Scores are scale free (ratios of
standard deviations), so thresholds mean the same on every problem.

:func:`prune` removes what scores low; :func:`shrink` removes, one at a time with a refit,
the hidden nodes the function does not need.

Examples
--------
>>> import torch, kanopy
>>> X = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
>>> model = kanopy.KAN([2, 3, 1], seed=0)
>>> scores = kanopy.prune.attribution(model, X)
>>> [s.shape for s in scores.edges]
[torch.Size([2, 3]), torch.Size([3, 1])]
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .metrics import rmse

_EPS = 1e-4


@dataclass
class Attribution:
    """Importance scores of every node and edge of a KAN.

    Parameters
    ----------
    nodes : list of torch.Tensor
        Per level ``0..L`` (level 0: the inputs, L: the outputs), shape ``(n_nodes,)``.
    edges : list of torch.Tensor
        Per layer ``0..L-1``, shape ``(in, out_subnodes)``.

    Examples
    --------
    >>> import torch, kanopy
    >>> model = kanopy.KAN([2, 1], seed=0)
    >>> scores = kanopy.prune.attribution(model, torch.rand(50, 2, dtype=torch.float64))
    >>> scores.nodes[-1]  # an output scores 1
    tensor([1.], dtype=torch.float64)
    """
    nodes: list[torch.Tensor]  # per level 0..L: (n_nodes,), level 0 = inputs, L = outputs
    edges: list[torch.Tensor]  # per layer 0..L-1: (in, out_subnodes)


@torch.no_grad()
def attribution(model, X: torch.Tensor) -> Attribution:
    """Score every node and edge of `model` on inputs X (KAN 2.0 attribution).

    Parameters
    ----------
    model : KAN
        The network.
    X : torch.Tensor
        Inputs, shape ``(N, n_inputs)``, in the model's dtype.

    Returns
    -------
    Attribution
        Node scores per level and edge scores per layer.

    Examples
    --------
    >>> import torch, kanopy
    >>> X = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    >>> model = kanopy.KAN([2, 3, 1], seed=0)
    >>> with torch.no_grad():
    ...     model.layers[0].mask[1] = 0  # input 2 no longer reaches any hidden node
    >>> kanopy.prune.attribution(model, X).nodes[0]  # doctest: +ELLIPSIS
    tensor([..., 0.0000], dtype=torch.float64)
    """
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
    """Return a smaller copy of `model` without what scores below the thresholds.

    Hidden nodes scoring below `node_threshold` are removed (every hidden layer keeps at least
    its best node) and, with `edge_threshold`, edges scoring below it are masked off. The mean
    contribution of every removed edge is folded into the bias of the node it fed, so the pruned
    model computes the same function up to the removed variation.

    Parameters
    ----------
    model : KAN
        The network (not changed).
    X : torch.Tensor
        Inputs to score on, shape ``(N, n_inputs)``.
    node_threshold : float, default 1e-2
        Hidden nodes scoring below this are removed.
    edge_threshold : float, optional
        Edges scoring below this are masked off.

    Returns
    -------
    KAN
        The pruned copy.

    Examples
    --------
    >>> import torch, kanopy
    >>> X = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
    >>> model = kanopy.KAN([2, 3, 1], seed=0)
    >>> with torch.no_grad():
    ...     model.layers[1].mask[2] = 0  # hidden node 3 no longer reaches the output
    >>> kanopy.prune.prune(model, X).width
    [[2, 0], [2, 0], [1, 0]]
    """
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
    """Copy `model` keeping the listed hidden nodes (and masking weak edges).

    Levels 0 and L (inputs and outputs) are always kept whole. Removed contributions go into the
    biases as their mean over X.

    Parameters
    ----------
    model : KAN
        The network (not changed).
    X : torch.Tensor
        Inputs, shape ``(N, n_inputs)``, over which removed contributions are averaged.
    keep_hidden : list
        Per level, the indices of the nodes to keep (entries 0 and L are ignored).
    weak_edges : list of torch.Tensor, optional
        Per layer, a boolean ``(in, out_subnodes)`` mask of edges to switch off.

    Returns
    -------
    KAN
        The smaller copy.

    Examples
    --------
    >>> import torch, kanopy
    >>> model = kanopy.KAN([2, 3, 1], seed=0)
    >>> X = torch.rand(100, 2, dtype=torch.float64)
    >>> kanopy.prune.subnetwork(model, X, [None, [0, 2], None]).width
    [[2, 0], [2, 0], [1, 0]]
    """
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
    """Remove hidden nodes greedily while the fit stays good.

    Greedy backward elimination: remove the hidden node with the lowest attribution, refit, and
    keep the removal while the RMSE on (X, y) stays within `tolerance` times the starting
    model's. Attribution-based pruning alone keeps every node that carries variation; this
    finds the nodes the function does not need, e.g. ``[2, 5, 1] -> [2, 1, 1]`` for
    ``f(x, y) = exp(sin x + y^2)``.

    Parameters
    ----------
    model : KAN
        The fitted network (not changed).
    X : torch.Tensor
        Inputs, shape ``(N, n_inputs)``.
    y : torch.Tensor
        Targets, shape ``(N, n_outputs)``.
    tolerance : float, default 2.0
        A removal is kept while the RMSE is at most this times the starting RMSE.
    refit_steps : int, default 20
        Optimizer steps after each removal.
    optimizer : str, default "lm"
        The optimizer of the refits.
    min_width : int, default 1
        Hidden layers keep at least this many nodes.
    callback : callable, optional
        ``callback(trial, rmse)`` after every trial.

    Returns
    -------
    KAN
        The smallest model accepted (`model` itself when no removal was).

    Examples
    --------
    >>> import torch, kanopy
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.rand(300, 2, generator=g, dtype=torch.float64) * 2 - 1
    >>> y = X[:, :1] + X[:, 1:] ** 2
    >>> model = kanopy.KAN([2, 3, 1], grid=5, seed=0)
    >>> history = model.fit(X, y, steps=20, progress=False)
    >>> small = kanopy.prune.shrink(model, X, y, refit_steps=5)
    >>> sum(small.width[1]) <= 3
    True
    """

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
