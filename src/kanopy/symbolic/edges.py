"""Symbolic edges of a layer: phi_ij(x) = c * f(a * x + b) + d with f from the library.

Part of every KANLayer (``layer.symbolic``). An edge marked symbolic replaces its spline and
base branch; (a, b, c, d) are trainable, so fitting continues on them after snapping. Edges
are evaluated grouped by function: one vectorised call of f per distinct function per layer.
"""

from __future__ import annotations

import torch
from torch import nn

from . import library


class SymbolicEdges(nn.Module):
    def __init__(self, in_dim: int, out_dim: int, dtype=torch.float64, device=None):
        super().__init__()
        self.register_buffer("active", torch.zeros(in_dim, out_dim, dtype=dtype, device=device))
        affine = torch.zeros(in_dim, out_dim, 4, dtype=dtype, device=device)
        affine[..., 0] = 1.0  # a
        affine[..., 2] = 1.0  # c
        # trainable only while some edge is symbolic (keeps plain networks on the fused path)
        self.affine = nn.Parameter(affine, requires_grad=False)
        self.names: list[list[str | None]] = [[None] * out_dim for _ in range(in_dim)]
        self._groups = None
        self._count = 0  # symbolic edges; read on every forward, so kept, not recounted

    @property
    def count(self) -> int:
        return self._count

    def _names_changed(self) -> None:
        self._count = sum(name is not None for row in self.names for name in row)
        self.affine.requires_grad_(self._count > 0)
        self._groups = None

    def set(self, i: int, j: int, name: str, params=(1.0, 0.0, 1.0, 0.0)) -> None:
        library.get(name)  # validates the name
        with torch.no_grad():
            self.affine[i, j] = torch.as_tensor(params, dtype=self.affine.dtype)
            self.active[i, j] = 1.0
        self.names[i][j] = name
        self._names_changed()

    def clear(self, i: int, j: int) -> None:
        self.names[i][j] = None
        with torch.no_grad():
            self.active[i, j] = 0.0
        self._names_changed()

    def set_names(self, names) -> None:
        """Restore names (from a model file); active and affine come from the state dict."""
        self.names = [list(row) for row in names]
        self._names_changed()

    def groups(self) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """function name -> (input indices, output indices) of its edges."""
        if self._groups is None:
            found: dict[str, tuple[list, list]] = {}
            for i, row in enumerate(self.names):
                for j, name in enumerate(row):
                    if name is not None:
                        found.setdefault(name, ([], []))
                        found[name][0].append(i)
                        found[name][1].append(j)
            device = self.active.device
            self._groups = {n: (torch.tensor(ii, device=device), torch.tensor(jj, device=device))
                            for n, (ii, jj) in found.items()}
        return self._groups

    def _values(self, x, mask, name, ii, jj):
        p = self.affine[ii, jj]  # (E, 4)
        u = x[:, ii] * p[:, 0] + p[:, 1]  # (N, E)
        return (library.get(name).torch_fn(u) * p[:, 2] + p[:, 3]) * mask[ii, jj]

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Sum of the symbolic edges into each output: (N, out)."""
        out = x.new_zeros(x.shape[0], self.active.shape[1])
        for name, (ii, jj) in self.groups().items():
            out = out.index_add(1, jj, self._values(x, mask, name, ii, jj))
        return out

    def edge_values(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(N, in, out) with the symbolic edges' values (zero elsewhere)."""
        out = x.new_zeros(x.shape[0], *self.active.shape)
        for name, (ii, jj) in self.groups().items():
            out[:, ii, jj] = self._values(x, mask, name, ii, jj)
        return out

    def select(self, rows: torch.Tensor, cols: torch.Tensor) -> SymbolicEdges:
        """The symbolic state of the sub-layer rows x cols."""
        sub = SymbolicEdges(len(rows), len(cols), dtype=self.affine.dtype, device=self.affine.device)
        with torch.no_grad():
            sub.active.copy_(self.active[rows][:, cols])
            sub.affine.copy_(self.affine[rows][:, cols])
        sub.set_names([[self.names[i][j] for j in cols.tolist()] for i in rows.tolist()])
        return sub
