"""One call from data to formula: ``kanopy.discover(X, y)``.

KAN structures are tried cheapest first within a budget of work (see templates.py, budget.py):
additive y = sum_i phi_i(x_i), multiplicative y = s exp(sum_i phi_i(x_i)), a product node
y = Phi(prod_i phi_i(x_i)), and a composition y = Phi(sum_i phi_i(x_i)). Each is trained,
every edge snapped to its best library function, the formula's constants refitted to the data
by Levenberg-Marquardt (machine precision when the structure is right), rounded to simple
values where that does not hurt, and scored on held-out data. When no template is exact and
the function separates into a product or sum over groups of variables (tested on a KAN
surrogate), each group is solved the same way (see search.py); when it does not, variables
that enter only through one combination (a monomial, a difference) are replaced by it and
the smaller problem is solved (symmetry.py). Least-squares polynomials and a snapped general
KAN are the fallback (polynomial.py, templates.general). Formulas go on a Pareto front of
complexity against error. Nothing in it is keyed to particular equations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch

from .. import blas
from ..model import KAN
from ..symbolic import constants, formula
from ..validation import as_xy
from .budget import Budget
from .search import EXACT, Candidate, Problem, Search, best, solve

DEFAULT_EFFORT = 100_000  # work units (budget.py): about a minute on the hardest Feynman equations


@dataclass
class Discovery:
    """What discover found: ``expr`` (sympy, in the given variable names), ``rmse`` on
    held-out test data, the ``model`` (KAN) it came from when one did, and the ``pareto``
    front of formulas, the chosen one first. ``work`` is the work done (in the units of
    `effort`), ``seconds`` the time it took, and ``limit`` what cut the search short: None
    when it ran to its end, "effort" when a stage used up its share of the effort (a larger
    effort may find more), "time" when the `budget_s` cap stopped it (then the result
    depends on the machine's speed)."""

    expr: sympy.Expr
    rmse: float
    model: KAN | None
    pareto: list[Candidate]
    variables: list
    seconds: float
    relative_rmse: float = math.inf
    log: list[str] = field(default_factory=list)
    work: float = 0.0
    limit: str | None = None

    @property
    def stopped_early(self) -> bool:
        """Whether the effort or the time cap ended the search before it had tried everything."""
        return self.limit is not None

    @property
    def exact(self) -> bool:
        """Held-out RMSE within 1e-9 of the target's spread."""
        return self.relative_rmse <= EXACT

    def __call__(self, X) -> np.ndarray:
        """The formula on the rows of X (N, n_vars): (N,)."""
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        f = sympy.lambdify(self.variables, self.expr, "numpy")
        return np.broadcast_to(np.asarray(f(*X.T), dtype=np.float64), (X.shape[0],)).copy()

    def table(self) -> str:
        rows = [f"{'complexity':>10}  {'val RMSE':>10}  {'source':<18}  formula"]
        rows += [f"{c.complexity:>10}  {c.rmse:>10.3g}  {c.source:<18}  {c.expr}" for c in self.pareto]
        return "\n".join(rows)


def discover(X, y, var_names=None, *, effort: float = DEFAULT_EFFORT, budget_s: float | None = None,
             seed: int = 0, verbose: bool = False, log=None) -> Discovery:
    """Find a closed-form formula y = f(X). X: (N, n) array or tensor, y: (N,) or (N, 1).

    The search does at most `effort` work units (see budget.py: optimizer steps of KANs,
    library fits of their edges and Levenberg-Marquardt iterations on constants, each
    charged by its arithmetic; 1,000 units take about a second on one core), so the result
    for a seed is the same on any machine. `budget_s`, when given, also caps its wall-clock
    time (then the result can depend on the machine's speed; ``Discovery.limit`` says
    whether the cap cut it short). The data are split (seeded) into 60% training, 20%
    validation (model choice) and 20% test (the reported ``rmse``). Progress lines go to
    `log` (a callable) or, with `verbose`, to stdout. Returns a :class:`Discovery`."""
    X, y = as_xy(X, y, None, 1, dtype=torch.float64, device="cpu")
    n = X.shape[1]
    if X.shape[0] < 20:
        raise ValueError(f"discover needs at least 20 samples, got {X.shape[0]}")
    names = [str(v) for v in var_names] if var_names is not None else [f"x_{i + 1}" for i in range(n)]
    if len(names) != n:
        raise ValueError(f"var_names has {len(names)} names for {n} columns of X")
    if len(set(names)) != n:
        raise ValueError("var_names must be distinct")
    budget = Budget(effort, budget_s)
    variables = formula.symbols_for(names, (X > 0).all(dim=0).tolist())
    search = Search(budget, log or (print if verbose else None))
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(X.shape[0], generator=g)
    n_hold = max(1, X.shape[0] // 5)
    test, val, train = order[:n_hold], order[n_hold:2 * n_hold], order[2 * n_hold:]
    target = y[:, 0]
    if float(target[train].std()) == 0.0:
        expr = sympy.Float(float(target[0]), 17)
        cand = Candidate(expr, 1, 0.0, "constant")
        return Discovery(expr, 0.0, None, [cand], variables, budget.elapsed(), relative_rmse=0.0)
    problem = Problem(X[train], target[train], X[val], target[val], variables, seed, search)
    with blas.sequential():  # the same bits with any number of threads
        front = solve(problem)
    if not front:
        hint = "a larger budget_s" if budget.limit == "time" else "a larger effort"
        raise RuntimeError(f"discover found no formula within its {budget.limit or 'effort'} limit; give it {hint}")
    chosen = best(front, problem)
    test_rmse = constants.rmse_of(chosen.expr, variables, X[test], target[test])
    pareto = [chosen] + sorted((c for c in front if c is not chosen), key=lambda c: (c.rmse, c.complexity))
    spread = float(target[test].std()) if len(test) > 1 else problem.scale
    return Discovery(chosen.expr, test_rmse, chosen.model, pareto, variables, budget.elapsed(),
                     relative_rmse=test_rmse / max(spread, 1e-300), log=search.lines, work=budget.used,
                     limit=budget.limit)


__all__ = ["discover", "Discovery", "Candidate", "DEFAULT_EFFORT"]
