"""The node layout of one level of a KAN: which of a layer's outputs feed which node.

A level has ``n_sum`` sum nodes, then ``n_mult`` multiplication nodes (KAN 2.0). The layer
into it has one output *subnode* per sum node, then ``arity`` consecutive subnodes per
multiplication node, whose product is that node's value:

    subnodes  s_0 .. s_{n_sum-1} | m_0: (n_sum, ..., n_sum+arity-1) | m_1: ... |
    nodes     s_0 .. s_{n_sum-1} | prod(m_0) | prod(m_1) | ...

This module is the one place that knows that layout; the model, pruning, plots and formulas
ask it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class NodeLayout:
    n_sum: int
    n_mult: int
    arity: int

    @property
    def n_subnodes(self) -> int:
        return self.n_sum + self.arity * self.n_mult

    @property
    def n_nodes(self) -> int:
        return self.n_sum + self.n_mult

    def combine(self, subnodes: torch.Tensor) -> torch.Tensor:
        """Subnode values (N, n_subnodes) -> node values (N, n_nodes)."""
        if self.n_mult == 0:
            return subnodes
        products = subnodes[:, self.n_sum :].reshape(-1, self.n_mult, self.arity).prod(dim=-1)
        return torch.cat([subnodes[:, : self.n_sum], products], dim=1)

    def combine_list(self, subnodes: list) -> list:
        """The same on a list of values of any kind that multiplies (sympy expressions)."""
        first = self.n_sum
        return subnodes[:first] + [math.prod(subnodes[first + m * self.arity : first + (m + 1) * self.arity])
                                   for m in range(self.n_mult)]

    def node_of(self, j: int) -> int:
        """The node that subnode j feeds."""
        return j if j < self.n_sum else self.n_sum + (j - self.n_sum) // self.arity

    def subnodes_of(self, nodes: torch.Tensor) -> torch.Tensor:
        """Indices of the subnodes that feed the given nodes (1-D, in that order)."""
        if self.n_mult == 0:
            return nodes
        parts = [torch.tensor([node]) if node < self.n_sum
                 else torch.arange(self.n_sum + (node - self.n_sum) * self.arity,
                                   self.n_sum + (node - self.n_sum + 1) * self.arity)
                 for node in nodes.tolist()]
        return torch.cat(parts).to(nodes.device)

    def spread(self, node_values: torch.Tensor) -> torch.Tensor:
        """A value per node (n_nodes,) -> the same value on each of its subnodes (n_subnodes,)."""
        if self.n_mult == 0:
            return node_values
        return torch.cat([node_values[: self.n_sum], node_values[self.n_sum :].repeat_interleave(self.arity)])
