"""How much work a discover search may do, counted the same way on every machine.

The search is bounded by *effort*, a number of work units, so that a seed gives one answer
on a fast or a slow machine, idle or busy, with any number of threads. Each kind of work is
charged by its arithmetic (the ``*_COST`` constants): a Levenberg-Marquardt step of a small
KAN (a hundred parameters, a thousand samples) costs about 25 units, fitting the 30 library
functions to one edge 750, a Levenberg-Marquardt iteration on a formula's 10 constants 3, so
that effort tracks time: on one core of an AMD EPYC (Zen 4) a unit takes about 0.6 ms
(docs/benchmarks.md). A wall-clock cap (`seconds`) is there for those who opt in; when it
ends the search before the effort does, the result says so.
"""

from __future__ import annotations

import math
import numbers
import time
from contextlib import contextmanager

# Work units charged, from the CPU time of each kind of work in discover on the Feynman
# equations (one thread): per optimizer step of a KAN, a fixed part plus a part per sample
# and trainable parameter; per candidate function fitted to an edge; per Levenberg-Marquardt
# iteration on a formula's constants, per sample and constant; per least-squares solve.
LM_STEP_COST = (8.0, 1.5e-4)  # (fixed, per sample x parameter): the Jacobian dominates
LBFGS_STEP_COST = (2.0, 1.5e-5)  # up to 20 evaluations of loss and gradient by the fused kernels
EDGE_CANDIDATE_COST = 25.0  # grid search and polish of c f(a x + b) + d for one library function
CONSTANTS_ITERATION_COST = (1.0, 2.0e-4)  # (fixed, per sample x constant): forward-mode Jacobian
LEAST_SQUARES_COST = (1.0, 1.0e-6)  # (fixed, per sample x term^2): an SVD least-squares solve


class OutOfWork(RuntimeError):
    """The budget is spent (its effort, or the opted-in time cap)."""


class Budget:
    """The work a search may do: `effort` work units, and optionally at most `seconds` of
    wall-clock time. Work is charged with ``spend`` by whoever does it; ``exhausted()`` (or
    ``check()``, which raises OutOfWork) tells when to stop. A stage of the search can be
    given a share of the whole with ``share(fraction)``.

    After the search, ``used`` is the work done and ``limit`` what cut it short: None when
    every stage finished within its share, "effort" when a stage ran out of work units,
    "time" when the time cap ended it."""

    def __init__(self, effort: float, seconds: float | None = None):
        if not (_is_number(effort) and math.isfinite(effort) and effort > 0):
            raise ValueError(f"effort must be a positive number of work units, got {effort!r}")
        if seconds is not None and not (_is_number(seconds) and seconds > 0):
            raise ValueError(f"budget_s must be a positive number of seconds or None, got {seconds!r}")
        self.effort = float(effort)
        self.seconds = None if seconds is None else float(seconds)
        self.start = time.perf_counter()
        self.used = 0.0
        self.fraction = 1.0  # share of the effort (and of the time cap) that the current stage may reach
        self.limit: str | None = None

    # ------------------------------------------------------------------ charging
    def spend(self, units: float) -> None:
        self.used += units

    def fit_step(self, optimizer: str, samples: int, parameters: int) -> None:
        """Charge one optimizer step of a KAN fit."""
        fixed, per = LM_STEP_COST if optimizer == "lm" else LBFGS_STEP_COST
        self.spend(fixed + per * samples * parameters)

    def constants_iteration(self, samples: int, constants: int) -> None:
        """Charge one Levenberg-Marquardt iteration on a formula's constants."""
        fixed, per = CONSTANTS_ITERATION_COST
        self.spend(fixed + per * samples * constants)

    def least_squares(self, samples: int, terms: int) -> None:
        """Charge one linear least-squares fit of `terms` features to `samples` values."""
        fixed, per = LEAST_SQUARES_COST
        self.spend(fixed + per * samples * terms * terms)

    def edge_fits(self, candidates: int) -> None:
        """Charge fitting `candidates` library functions to an edge."""
        self.spend(EDGE_CANDIDATE_COST * candidates)

    # ------------------------------------------------------------------ stopping
    def exhausted(self) -> bool:
        if self.used >= self.fraction * self.effort:
            self.limit = self.limit or "effort"
            return True
        if self.seconds is not None and self.elapsed() >= self.fraction * self._cap():
            self.limit = "time"
            return True
        return False

    def check(self) -> None:
        if self.exhausted():
            raise OutOfWork("time cap reached" if self.limit == "time" else "effort used up")

    @contextmanager
    def share(self, fraction: float):
        """Within the block, the search stops at `fraction` of the effort (and of the time
        cap): the rest is kept for what follows it."""
        saved = self.fraction
        self.fraction = fraction
        try:
            yield self
        finally:
            self.fraction = saved

    # ------------------------------------------------------------------ time
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _cap(self) -> float:
        # a small reserve for choosing and reporting the result
        return max(0.9 * self.seconds, self.seconds - 3.0)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)
