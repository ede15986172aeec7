"""What a search works on: a (sub)problem's data and variables (Problem), the state one
discover call shares among its sub-problems (Search), and a formula found (Candidate).

Kept apart from the search itself so that the reductions (separability, symmetry), which
make sub-problems, need not import the search that calls them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import sympy
import torch

from ..model import KAN
from .budget import Budget

EXACT = 1e-9  # held-out RMSE / std(y) below which a formula counts as exact


@dataclass
class Candidate:
    expr: sympy.Expr
    complexity: int
    rmse: float  # on the problem's validation split
    source: str
    model: KAN | None = None

    def __repr__(self) -> str:
        return f"Candidate({self.complexity}, {self.rmse:.3g}, {self.source}: {self.expr})"


@dataclass
class Search:
    """What the (sub)problems of one discover call share: the budget, the progress log
    (each line stamped with the work done so far) and the count of variables made by
    reductions (u_1, u_2, ...)."""

    budget: Budget
    sink: Callable[[str], None] | None = None
    lines: list[str] = field(default_factory=list)
    symbols: int = 0

    def say(self, text: str, depth: int = 0) -> None:
        line = f"[{self.budget.used:8.0f} units {self.budget.elapsed():6.1f}s] {'  ' * depth}{text}"
        self.lines.append(line)
        if self.sink is not None:
            self.sink(line)


@dataclass
class Problem:
    """Training and validation data of one (sub)problem, and its variables.

    ``noise`` is the relative error of the data source (0 for real data, the surrogate's
    for sub-problems): formulas within 20 times it count as exact here."""

    Xtr: torch.Tensor
    ytr: torch.Tensor
    Xval: torch.Tensor
    yval: torch.Tensor
    variables: list
    seed: int
    search: Search
    depth: int = 0
    noise: float = 0.0
    oracle: object = None  # callable X (N, n) -> y (N,): a surrogate of the function
    oracle_noise: float = 0.0  # the surrogate's relative error
    surrogate: object = None  # the KAN behind the oracle, when this problem fitted one
    reductions: int = 0  # how many pairs of variables were replaced on the way here
    scale: float = field(init=False)

    def __post_init__(self):
        self.scale = float(self.ytr.std()) if self.ytr.numel() > 1 else 1.0

    @property
    def budget(self) -> Budget:
        return self.search.budget

    @property
    def n(self) -> int:
        return self.Xtr.shape[1]

    @property
    def tolerance(self) -> float:
        # the surrogate's error is an average: on a slice through it, it can be several times more
        return max(EXACT, min(20 * self.noise, 0.01))  # beyond 1% "exact" would mean nothing

    def say(self, text):
        self.search.say(text, self.depth)
