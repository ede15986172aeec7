"""The physics-informed objective: stacked, weighted residuals of a PDE and its conditions.

Each :class:`Term` is a set of collocation points (one set, or two for periodic pairs) and a
``build(us, xs, data)`` that turns the solution's derivatives there (:class:`Derivatives`) into
residual rows (M,) or (M, c). The objective's residual vector stacks every term's rows times
``sqrt(weight / M)``, so the loss r·r is ``sum over terms of weight * mean(residual^2)``.

Derivatives come from the forward-mode jets of :mod:`kanopy.jets` (no nested autograd);
``evaluate`` gets the parameter gradient by one backward pass. For Levenberg-Marquardt,
``normal_equations`` builds the Jacobian of the residuals row by row without differentiating
the user's residual function per row: one backward pass through it gives, per point, the
derivative of each residual with respect to u's value, gradient, Laplacian and Hessian there
(a residual is pointwise), and each Jacobian row is the parameter gradient of that weighted
sum of jets at the point (``torch.func.vmap`` over ``torch.func.grad``). Models with symbolic
edges fall back to nested autograd, without LM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import jets
from ..objectives import JACOBIAN_ROWS, NonFinite, Objective
from .derivatives import ORDERS, Derivatives


@dataclass
class Term:
    """One block of residual rows: ``build(us, xs, data) -> (M,) or (M, c)`` at the point sets xs."""

    name: str
    points: tuple  # of (M, d) tensors; every set has the same M
    build: object  # callable(list of Derivatives, point sets, data) -> (M,) or (M, c) tensor
    weight: float = 1.0
    data: tuple = ()  # (M, ...) tensors that go with the points (targets, normals)
    level: int = jets.VALUE  # the highest derivative order build uses (set by a first call)
    info: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.points[0].shape[0]


class PDEObjective(Objective):
    """The protocol of :mod:`kanopy.objectives` for the weighted sum of squares of PDE terms."""

    least_squares = True

    def __init__(self, model, terms: list[Term]):
        super().__init__(model)
        self.terms = terms
        self.fast = jets.supports(model)
        self.last_parts: dict[str, float] = {}

    def refresh(self) -> None:
        self.fast = jets.supports(self.model)

    # ------------------------------------------------------------------ pieces
    def jet(self, x: torch.Tensor, level: int, params: dict | None = None) -> jets.Jet:
        if self.fast:
            return jets.network_jet(self.model, x, level, params)
        return jets.autograd_jet(self.model, x, level)

    def derivatives(self, x: torch.Tensor, level: int) -> Derivatives:
        u = Derivatives(lambda order: self.jet(x, order), x.shape[1], self.jet(x, level))
        return u

    def term_rows(self, term: Term) -> torch.Tensor:
        """The term's scaled residual rows (M, c), differentiable in the parameters."""
        us = [self.derivatives(x, term.level) for x in term.points]
        r = term.build(us, term.points, term.data)
        term.level = max([term.level] + [u.level for u in us])
        return _columns(r) * (term.weight / term.size) ** 0.5

    def _all_rows(self) -> torch.Tensor:
        parts = {}
        rows = []
        for term in self.terms:
            r = self.term_rows(term)
            rows.append(r.reshape(-1))
            parts[term.name] = float(r.detach().pow(2).sum() / term.weight) ** 0.5 if term.weight else 0.0
        self.last_parts = parts  # RMS of each term's unweighted residual
        return torch.cat(rows)

    # ---------------------------------------------------------------- protocol
    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            r = self._all_rows()
            loss = r.dot(r)
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        flat = self.flat(grads)
        if torch.isfinite(loss) and not torch.isfinite(flat).all():
            raise NonFinite(f"the gradient of the PDE loss is not finite (the loss is {float(loss):.6g})")
        return loss.detach(), flat

    def residuals(self) -> torch.Tensor:
        with torch.set_grad_enabled(not self.fast):
            return self._all_rows().detach()

    def residuals_jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        blocks = [J for _, J in self._jacobian_blocks()]
        return self.residuals(), torch.cat(blocks)

    def normal_equations(self) -> tuple[float, torch.Tensor, torch.Tensor]:
        P = self.theta.numel()
        A, g = self.theta.new_zeros(P, P), self.theta.new_zeros(P)
        loss = 0.0
        for r, J in self._jacobian_blocks():
            A.addmm_(J.T, J)
            g.addmv_(J.T, r)
            loss += float(r.dot(r))
        return loss, A, g

    # ---------------------------------------------------------------- Jacobian
    def _jacobian_blocks(self):
        """(residual rows, their Jacobian (rows, P)) in blocks of points, in residual order."""
        if not self.fast:
            raise ValueError("Levenberg-Marquardt on a PDE needs a model without symbolic edges "
                             "(the forward-mode derivatives); use 'lbfgs' or 'adam'")
        parts = {}
        for term in self.terms:
            rows, sq = [], 0.0
            for start in range(0, term.size, JACOBIAN_ROWS):
                r, J = self._term_block(term, slice(start, start + JACOBIAN_ROWS))
                sq += float(r.pow(2).sum())
                rows.append((r, J))
            parts[term.name] = (sq / term.weight) ** 0.5 if term.weight else 0.0
            yield from rows
        self.last_parts = parts

    def _term_block(self, term: Term, rows: slice):
        xs = tuple(x[rows] for x in term.points)
        data = tuple(t[rows] for t in term.data)
        m = xs[0].shape[0]
        factor = (term.weight / term.size) ** 0.5
        leaves = []  # per point set: {order name: leaf tensor}

        def leaf_compute(x, store):
            def compute(level):
                with torch.no_grad():
                    jet = self.jet(x, level)
                out = jets.Jet(*(None if getattr(jet, n) is None else getattr(jet, n).requires_grad_(True)
                                 for n in ("value", "grad", "laplacian", "hessian")))
                for n in ORDERS:
                    t = getattr(out, n)
                    if t is not None and n not in store:
                        store[n] = t
                return out
            return compute

        us = []
        for x in xs:
            store: dict = {}
            leaves.append(store)
            compute = leaf_compute(x, store)
            us.append(Derivatives(compute, x.shape[1], compute(term.level)))
        with torch.enable_grad():
            r = _columns(term.build(us, xs, data)) * factor  # (m, c)
        level = max(ORDERS[n] for store in leaves for n in store)
        names = [[n for n in ORDERS if n in store] for store in leaves]
        flat_leaves = [store[n] for store, ns in zip(leaves, names) for n in ns]
        columns = []
        for c in range(r.shape[1]):
            weights = torch.autograd.grad(r[:, c].sum(), flat_leaves, retain_graph=c + 1 < r.shape[1],
                                          allow_unused=True)
            weights = [torch.zeros_like(t) if w is None else w for w, t in zip(weights, flat_leaves)]
            columns.append(self._weighted_jacobian(xs, names, weights, level))  # (m, P)
        J = torch.stack(columns, dim=1).reshape(m * r.shape[1], -1)
        return r.detach().reshape(-1), J

    def _weighted_jacobian(self, xs, names, weights, level) -> torch.Tensor:
        """Rows d/dtheta sum_sets sum_orders <weights, jet> at each point: (m, P)."""
        from torch.func import grad, vmap

        sizes = [p.numel() for p in self.params]
        shapes = [p.shape for p in self.params]
        keys = self.names
        model = self

        def scalar(theta, points, ws):
            params = {n: v.view(s) for n, v, s in zip(keys, theta.split(sizes), shapes)}
            total = theta.new_zeros(())
            w_iter = iter(ws)
            for x, ns in zip(points, names):
                jet = model.jet(x.unsqueeze(0), level, params)
                for n in ns:
                    total = total + (getattr(jet, n)[0, 0] * next(w_iter)).sum()
            return total

        return vmap(grad(scalar), in_dims=(None, 0, 0))(self.theta.detach(), tuple(xs), tuple(weights))


def _columns(r: torch.Tensor) -> torch.Tensor:
    return r.unsqueeze(1) if r.dim() == 1 else r
