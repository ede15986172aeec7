"""The demo: fit f(x, y) = exp(sin(pi x) + y^2) to high accuracy from a [2, 5, 1] KAN.

Schedule: grids 3 -> 5 -> 10 -> 20 with LBFGS on the full [2, 5, 1] network; at grid 20
(where the grid no longer limits the error) hidden nodes the function does not need are
removed one at a time (``prune.shrink``); the small network then goes on to grids 50 and 100
with Levenberg-Marquardt, which reaches far lower error than first-order methods on a few
hundred parameters.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .metrics import rmse as _rmse
from .model import KAN
from .prune import shrink
from .schedule import refine_and_fit

SCHEDULE = (  # (grid, optimizer, steps)
    (3, "lbfgs", 50),
    (5, "lbfgs", 50),
    (10, "lbfgs", 50),
    (20, "lbfgs", 50),
    (50, "lm", 30),
    (100, "lm", 30),
)
SHRINK_AT_GRID = 20


def target(X: torch.Tensor) -> torch.Tensor:
    """exp(sin(pi x) + y^2) for X (N, 2): (N, 1)."""
    return torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)


def toy_data(n: int, seed: int, dtype=torch.float64):
    """n samples uniform on [-1, 1]^2 and their targets."""
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=dtype) * 2 - 1
    return X, target(X)


@dataclass
class StageResult:
    grid: int
    width: list
    params: int
    optimizer: str
    train_rmse: float
    test_rmse: float
    seconds: float


@dataclass
class DemoResult:
    model: KAN
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0
    formula: object = None  # the discovered formula (kanopy.discovery.Discovery), when asked for

    @property
    def final_test_rmse(self) -> float:
        return self.stages[-1].test_rmse


def run(seed: int = 0, n_train: int = 3000, n_test: int = 3000, console: Console | None = None,
        progress: bool = True, discover: bool = True) -> DemoResult:
    console = console or Console()
    X, y = toy_data(n_train, seed=seed + 1)
    X_test, y_test = toy_data(n_test, seed=seed + 2)
    model = KAN([2, 5, 1], grid=SCHEDULE[0][0], k=3, seed=seed, grid_eps=1.0)
    result = DemoResult(model=model)

    table = Table(title="kanopy demo: exp(sin(pi x) + y^2)")
    for name in ("grid", "width", "params", "optimizer", "train RMSE", "test RMSE", "seconds"):
        table.add_column(name, justify="right")
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    task = bar.add_task("", total=1)
    start = time.perf_counter()
    plan = {grid: (optimizer, steps) for grid, optimizer, steps in SCHEDULE}

    def before(grid):
        optimizer, steps = plan[grid]
        bar.reset(task, total=steps, description=f"grid {grid:>3} {optimizer}")

    def after(model, fitted):
        t0 = time.perf_counter()
        if fitted.grid == SHRINK_AT_GRID:
            bar.reset(task, total=None, description="removing unneeded hidden nodes")
            model = result.model = shrink(model, X, y)
        stage = StageResult(grid=fitted.grid, width=[sum(w) for w in model.width], params=model.num_parameters(),
                            optimizer=plan[fitted.grid][0], train_rmse=_rmse(model, X, y),
                            test_rmse=_rmse(model, X_test, y_test),
                            seconds=fitted.seconds + time.perf_counter() - t0)
        result.stages.append(stage)
        table.add_row(str(stage.grid), str(stage.width), str(stage.params), stage.optimizer,
                      f"{stage.train_rmse:.3e}", f"{stage.test_rmse:.3e}", f"{stage.seconds:.2f}")
        return model

    with Live(Group(table, bar), console=console, transient=True, refresh_per_second=8,
              redirect_stdout=False) if progress else _Null():
        refine_and_fit(model, X, y, [g for g, _, _ in SCHEDULE], [s for _, _, s in SCHEDULE],
                       [o for _, o, _ in SCHEDULE], before=before, after=after, progress=False,
                       callback=lambda grid, step, history: bar.update(task, completed=step))
    result.seconds = time.perf_counter() - start
    console.print(table)
    console.print(f"total fit time: {result.seconds:.1f} s")
    if discover:
        result.formula = _discover(X, y, X_test, y_test, seed, console, progress)
    console.print(f"final test RMSE: {result.final_test_rmse:.3e}")
    return result


def _discover(X, y, X_test, y_test, seed, console, progress):
    """The last step: the closed form of the toy function, from the same training data."""
    from .discovery import discover

    start = time.perf_counter()
    with console.status("discovering the formula...") if progress else _Null():
        found = discover(X, y[:, 0], var_names=["x", "y"], seed=seed)
    test_rmse = float(np.sqrt(np.mean((found(X_test.numpy()) - y_test[:, 0].numpy()) ** 2)))
    console.print(f"discovered formula: {found.expr}  (test RMSE {test_rmse:.1e}, "
                  f"{time.perf_counter() - start:.1f} s)")
    return found


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
