"""Grid extension: a coarse grid, a fit, a finer grid, a fit... The one owner of that loop.

:func:`refine_and_fit` walks a model along increasing grid sizes; at each it refines the
model (``model.refine``: the function kept) and fits it (``model.fit``). Every caller that
trains along grids (the fixed recipe, the search's refit, the demo, discover's templates and
its separability surrogate, the structure fit of a multi-stage stage) runs this loop and
says how it differs through parameters: the steps and optimizer at each grid, a per-step
callback (progress, a work budget, stopping on a plateau), a check before each grid (a
spent budget), a validation score after each (keep the best grid; stop once it no longer
improves) and a hook after each grid that may replace the model (the demo's shrink).

It takes any object with ``KAN``'s ``grid``, ``refine``, ``fit`` and ``fit_state`` (no model
class is imported), and importing it does not import PyTorch.
"""

from __future__ import annotations

import copy
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .history import History


@dataclass
class Stage:
    """One grid of a schedule: the grid size, the fit's history (the steps taken there) and
    the seconds its refinement and fit took."""

    grid: int
    history: History
    seconds: float

    @property
    def steps(self) -> int:
        return len(self.history)

    @property
    def train_rmse(self) -> float | None:
        return self.history.train_rmse[-1] if len(self.history) else None

    @property
    def val_rmse(self) -> float | None:
        return self.history.val_rmse[-1] if len(self.history) else None


@dataclass
class Schedule:
    """What :func:`refine_and_fit` did: the model it ends with (the best-scoring one when a
    score was given), one :class:`Stage` per grid trained, and the score after each."""

    model: Any
    stages: list[Stage] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)


def refine_and_fit(model, X, y, grids: Sequence[int], steps: int | Sequence[int],
                   optimizer: str | Sequence[str] = "lbfgs", *, callback: Callable | None = None,
                   before: Callable | None = None, score: Callable | None = None, patience: int | None = None,
                   after: Callable | None = None, resume: bool = False, **fit_options) -> Schedule:
    """Train ``model`` on (X, y) at each grid of ``grids`` in turn: refine to it, then fit.

    Parameters
    ----------
    model : KAN
        The network; refined and trained in place (a copy is kept only for ``score``).
    X, y
        The training data, as ``model.fit`` takes them.
    grids : sequence of int
        Grid sizes, in order; a grid equal to the model's is fitted without refining.
    steps : int or sequence of int
        Optimizer steps at every grid, or one count per grid.
    optimizer : str or sequence of str, default "lbfgs"
        The optimizer at every grid, or one per grid.
    callback : callable, optional
        ``callback(grid, step, history)`` after every step (step counts from the start of that
        grid's fit); True ends that grid's fit (not the schedule).
    before : callable, optional
        ``before(grid)`` before each grid is refined; False ends the schedule (it may also raise).
    score : callable, optional
        ``score(model) -> float`` after each grid, lower is better (NaN counts as no better);
        the best-scoring model is kept (a deep copy) and returned.
    patience : int, optional
        With ``score``: end the schedule after this many grids in a row without a better
        score (None: train at every grid).
    after : callable, optional
        ``after(model, stage)`` after each grid's fit (before ``score``); may return a model
        that replaces this one for the grids that follow (None keeps it).
    resume : bool, default False
        At a grid the model already stands at, continue the fit its ``fit_state`` records
        (``model.refine`` clears that state, so only the first grid can resume).
    **fit_options
        Passed to ``model.fit`` at every grid (loss, lamb, batch_size, X_val, y_val, seed,
        progress...).

    Returns
    -------
    Schedule
        The final (or best-scoring) model, its stages and scores.
    """
    steps_at = _per_grid(steps, grids, "steps")
    optimizer_at = _per_grid(optimizer, grids, "optimizer")
    result = Schedule(model=model)
    best, best_score, worse = None, math.inf, 0
    for index, grid in enumerate(grids):
        if before is not None and before(grid) is False:
            break
        t0 = time.perf_counter()
        if model.grid != grid:
            with deferred_interrupt():  # never leave a half-refined model
                model.refine(grid)
        each = None if callback is None else (lambda step, history, grid=grid: callback(grid, step, history))
        history = model.fit(X, y, steps=steps_at[index], optimizer=optimizer_at[index], callback=each,
                            resume=resume and model.fit_state is not None, **fit_options)
        stage = Stage(grid=grid, history=history, seconds=time.perf_counter() - t0)
        result.stages.append(stage)
        if after is not None:
            model = after(model, stage) or model
        if score is None:
            continue
        value = score(model)
        result.scores.append(value)
        if value < best_score:
            best, best_score, worse = copy.deepcopy(model), value, 0
        else:
            worse += 1
            if patience is not None and worse >= patience:
                break
    result.model = model if best is None else best
    return result


def _per_grid(value, grids, name: str) -> list:
    """``value`` repeated for every grid, or the sequence given (one per grid)."""
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return [value] * len(grids)
    values = list(value)
    if len(values) != len(grids):
        raise ValueError(f"{name}: {len(values)} values for {len(grids)} grids")
    return values


@contextmanager
def deferred_interrupt():
    """Hold a Ctrl-C that arrives inside the block until the block ends (in the main thread,
    with Python's default SIGINT handler; elsewhere the block runs unprotected)."""
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    received = []
    signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if received:
        raise KeyboardInterrupt
