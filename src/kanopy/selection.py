"""Choosing a KAN on validation data: the search behind the default recipe ("auto").

Candidates, cheapest first, each kept at its best validation state (early stopping, see
:func:`kanopy.fit.fit`'s ``patience``):

1. the mean of the training targets and the linear model (ridge, its penalty chosen by
   leave-one-out; :mod:`kanopy.linear`): closed forms, both written as KANs, the linear one
   going on when its leave-one-out error over all rows is clearly below the mean's;
2. the additive model [n, m] and networks with one hidden layer of 1, 2 and 5 nodes at the
   first (coarsest) grid; wider layers (10, 20) only while each is clearly better than every
   narrower one;
3. (lamb "auto") the chosen network again with the sparsity regulariser at 1e-3 and 1e-2,
   kept when clearly better;
4. the chosen network on finer grids, while each grid is clearly better than the last.

Each grid stops after ``patience`` steps without a better validation error, or when the last
``patience`` steps gained less than 1% of it (a plateau: on clean data the grid, not the
optimizer, then limits the error).

"Clearly better" compares two models on the same validation rows: the mean decrease of the
squared error (standardised targets, summed over outputs) must exceed its standard error,
and 1% of the old error. The choice among the candidates of steps 1-2 is the simplest whose
error is not clearly worse than the best one's (the one-standard-error rule), so noise in a
small validation set does not buy a bigger network. No network gets more parameters than
there are training rows. Everything is counted in steps and candidates, not seconds: the
same data and seed give the same choice on any machine.

Classification (a recipe whose loss is "cross_entropy" or "bce": targets are labels, outputs
logits) judges by the per-row validation loss (the log loss) and searches less, since its
validation loss turns up within a step or two of overfitting: the class prior (constant
logits, add-one smoothed class frequencies) in place of the mean; the penalised linear
logistic model (:func:`kanopy.linear.logistic_kan`, its penalty the best of
``LOGISTIC_PENALTIES`` on the validation rows) in place of the linear model, kept when
clearly better than the prior; then the additive network (and the hidden layers of
``CLASSIFY_WIDTHS``) with the regulariser at ``CLASSIFY_LAMB`` when lamb is "auto", patience
``recipe.CLASSIFY_PATIENCE``; the simplest not clearly worse than the best, then finer grids
as above. Networks get room for as many parameters as the labels hold numbers (rows times
outputs: one logit per class and row).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field

import torch

from . import linear, losses
from .recipe import AUTO, Recipe, parameter_count, start
from .schedule import Stage, deferred_interrupt, refine_and_fit

GRID_LADDER = (3, 5, 10, 20, 50, 100)
WIDTHS = ((), (1,), (2,), (5,))  # always tried (when their parameters fit the rows)
WIDER = ((10,), (20,))  # tried in turn while each is clearly better than all narrower ones
LAMBS = (1e-3, 1e-2)
# classification: hidden layers tried after the prior, the logistic model and the additive
# network (none: on digits, bench/classify.py, [64, 5, 10] never won and cost a second a fold),
# and the regulariser of every network when lamb is "auto" (not searched: on digits' first folds
# 1e-3 matched 1e-4 and beat 1e-2 by 3 points of accuracy, and a search triples the cost)
CLASSIFY_WIDTHS = ()
CLASSIFY_LAMB = 1e-3
LOGISTIC_PENALTIES = (1e-4, 1e-3, 1e-2)  # of the linear logistic model: penalty * sum(W**2) on the mean log loss
MIN_RELATIVE_GAIN = 0.01
MIN_STEP_GAIN = 0.01  # a grid whose validation RMSE gained less over `patience` steps has converged


@dataclass
class Candidate:
    """One model the search trained, at its best validation state."""

    label: str  # "mean", "linear", "prior", "logistic" or the width, e.g. "[10, 2, 1]"
    kind: str  # "mean", "linear", "prior" (a classifier's class frequencies), "logistic" or "kan"
    model: object  # the KAN
    schedule: list = field(default_factory=list)  # (grid, steps kept) that led to this state
    lamb: float = 0.0
    penalty: float | None = None  # "logistic": the penalty of its weights
    stages: list = field(default_factory=list)  # Stage per grid trained (this candidate's own)
    metric_name: str = "rmse"  # or "accuracy" (classification)
    train_metric: float = math.nan
    val_metric: float = math.nan
    parameters: int = 0  # free numbers: 1 per output for the mean, n + 1 for the linear model
    seconds: float = 0.0
    chosen: bool = False
    errors: torch.Tensor | None = field(default=None, repr=False)  # (N_val,) squared, standardised; log loss
    wild: bool = False  # predicts beyond twice the targets' range between the data points (Search.goes_wild)

    @property
    def train_rmse(self) -> float:
        return self.train_metric if self.metric_name == "rmse" else math.nan

    @property
    def val_rmse(self) -> float:
        return self.val_metric if self.metric_name == "rmse" else math.nan

    @property
    def val_loss(self) -> float:
        """The mean validation error the search compares (standardised squared error; log loss)."""
        return float(self.errors.mean())

    @property
    def width(self) -> list[int]:
        return [sum(w) for w in self.model.width]

    @property
    def grid(self) -> int | None:
        return self.model.grid if self.kind == "kan" else None

    @property
    def steps(self) -> int:
        return sum(steps for _, steps in self.schedule)

    @property
    def usable(self) -> bool:
        """False for a network whose best validation state is its random initial one (no step
        improved on it) and for one that goes wild between the data points: neither is a model
        of the data, and neither is chosen."""
        return self.kind != "kan" or (self.schedule[0][1] > 0 and not self.wild)

    def describe(self) -> dict:
        """JSON-able summary (for model files and reports)."""
        return {"label": self.label, "width": self.width, "grid": self.grid, "lamb": self.lamb,
                "schedule": [list(s) for s in self.schedule], f"train_{self.metric_name}": self.train_metric,
                f"val_{self.metric_name}": self.val_metric, "val_loss": self.val_loss,
                "penalty": self.penalty, "parameters": self.parameters, "seconds": round(self.seconds, 3),
                "wild": self.wild, "chosen": self.chosen}


def clearly_better(new: Candidate, old: Candidate) -> bool:
    """Whether ``new`` has a lower validation error than ``old`` by more than one standard
    error of the mean paired difference, and by more than 1%."""
    d = old.errors - new.errors  # (N_val,)
    n = d.numel()
    if n < 2:
        return False  # one validation row cannot tell two models apart
    gain = float(d.mean())
    return gain > float(d.std(correction=1)) / math.sqrt(n) and gain > MIN_RELATIVE_GAIN * float(old.errors.mean())


def simplest_close_to_best(candidates: list[Candidate]) -> Candidate:
    """The first candidate (they come simplest first) that the best one is not clearly better
    than, among the usable ones."""
    candidates = [c for c in candidates if c.usable]
    best = _best(candidates)
    return next(c for c in candidates if c is best or not clearly_better(best, c))


def _best(candidates: list[Candidate]) -> Candidate:
    return min((c for c in candidates if c.usable), key=lambda c: float(c.errors.mean()))


class Search:
    """The search of a recipe over (X, y), judged on (X_val, y_val) (2-D tensors).

    ``run()`` returns the chosen :class:`Candidate` (its model at the best validation state);
    ``candidates`` lists every one trained, in order; after an interruption (Ctrl-C),
    ``best_so_far()`` is the choice among those finished. ``refit(X, y)`` trains the chosen
    network again on other rows (all of them, typically) with the steps it kept at each grid.
    ``on_step(label, grid, step, steps, history)`` is called after every optimizer step and
    ``on_candidate(candidate)`` after each candidate (for progress displays).

    For a classification loss, y and y_val hold the targets as the loss takes them (class
    indices (N,) for cross-entropy, (N, m) 0/1 for bce) and ``n_outputs`` is the number of
    logits."""

    def __init__(self, X, y, X_val, y_val, recipe: Recipe, on_step=None, on_candidate=None, n_outputs=None):
        if X_val is None or y_val is None or X_val.shape[0] == 0:
            raise ValueError("choosing the network needs validation rows (a validation fraction > 0), "
                             "or a fixed recipe (hidden, grids and lamb given, no early stopping)")
        self.X, self.y, self.X_val, self.y_val, self.recipe = X, y, X_val, y_val, recipe
        self.on_step, self.on_candidate = on_step, on_candidate
        self.candidates: list[Candidate] = []
        self.chosen: Candidate | None = None
        self.loss = losses.get(recipe.loss)
        self.classifies = recipe.classifies
        self.n_outputs = y.shape[1] if n_outputs is None else int(n_outputs)
        if self.classifies:
            self.loss.check_model(self.n_outputs)
            self.max_parameters = X.shape[0] * self.n_outputs  # one logit per class and row
            self.prior = prior_logits(y, self.n_outputs, self.loss)  # (m,)
            self.mean_errors = self.loss.per_sample(self.prior.expand(X_val.shape[0], -1), y_val)
            self.mean_rmse = math.nan
        else:
            self.max_parameters = X.shape[0]
            std = y.std(dim=0, correction=0)
            self._scale = torch.where(std > 0, std, torch.ones_like(std))  # errors in standardised targets
            mean_residual = (y.mean(dim=0) - y_val) / self._scale
            self.mean_errors = (mean_residual**2).sum(dim=1)  # (N_val,): predicting the training mean
            self.mean_rmse = float(torch.sqrt(torch.mean((y.mean(dim=0) - y_val) ** 2)))
            self._probes, self._sane = sanity_probes(X, y, X_val, y_val, recipe.seed)
        self.mean_loss = float(self.mean_errors.mean())  # of the mean (the prior for a classifier)

    # ------------------------------------------------------------------------- the search
    def run(self) -> Candidate:
        r = self.recipe
        ladder = GRID_LADDER if r.grids == AUTO else r.grids
        lamb = r.lamb if r.lamb != AUTO else CLASSIFY_LAMB if self.classifies else 0.0
        if r.hidden == AUTO:
            if self.classifies:
                prior, line = self._baseline("prior"), self._logistic()
                pool = [line if clearly_better(line, prior) else prior]
                pool += [self._network(hidden, ladder[:1], lamb) for hidden in ((), *CLASSIFY_WIDTHS)
                         if self._parameters(hidden, ladder[0]) <= self.max_parameters]
            else:
                mean, line = self._baseline("mean"), self._baseline("linear")
                pool = [line if self._linear_beats_mean() else mean]
                pool += self._widths(ladder[0], lamb)
            current = simplest_close_to_best(pool)
        else:
            current = self._network(tuple(r.hidden), ladder[:1], lamb)
        if current.kind == "kan" and r.lamb == AUTO and r.searches and not self.classifies:
            for value in LAMBS:  # the regulariser, at the first grid
                trial = self._network(tuple(current.width[1:-1]), ladder[:1], value)
                if trial.usable and clearly_better(trial, current):
                    current = trial
        if current.kind == "kan" and len(ladder) > 1:
            current = self._extend(current, ladder[1:])
        return self._choose(current)

    def best_so_far(self) -> Candidate | None:
        """The candidate to keep when the search is cut short."""
        if self.chosen is not None:
            return self.chosen
        done = [c for c in self.candidates if c.errors is not None and c.usable]
        return self._choose(simplest_close_to_best(done)) if done else None

    def _choose(self, candidate: Candidate) -> Candidate:
        for c in self.candidates:
            c.chosen = c is candidate
        self.chosen = candidate
        return candidate

    def no_better_than_mean(self, candidate: Candidate) -> bool:
        """Whether ``candidate`` predicts no better than the mean: it is the mean, or a network
        whose validation error is not below the training mean's (the linear model is chosen
        only when clearly better than the mean)."""
        if candidate.kind != "kan":
            return candidate.kind in ("mean", "prior")
        return float(candidate.errors.mean()) >= float(self.mean_errors.mean())

    def _linear_beats_mean(self) -> bool:
        """The linear model against the mean by their leave-one-out errors over all the rows the
        search sees (training and validation): closed forms, and far more rows than the
        validation split alone, which on a small table holds a handful."""
        X, y = torch.cat([self.X, self.X_val]), torch.cat([self.y, self.y_val])
        model = start(X, y, self.recipe, width=[X.shape[1], y.shape[1]], grid=1)
        with torch.no_grad():
            Z, T = model.scaled_inputs(X), (y - model.out_shift) / model.out_scale
        line = Candidate(label="linear", kind="linear", model=None, errors=(linear.ridge_loo(Z, T)[3] ** 2).sum(dim=1))
        mean = Candidate(label="mean", kind="mean", model=None, errors=(linear.mean_loo(T) ** 2).sum(dim=1))
        return clearly_better(line, mean)

    # --------------------------------------------------------------------- the candidates
    def _baseline(self, kind: str) -> Candidate:
        t0 = time.perf_counter()
        m = self.n_outputs
        model = start(self.X, self.y, self.recipe, width=[self.X.shape[1], m], grid=1)
        if kind == "prior":
            linear.constant_kan(model, self.prior)
        else:
            linear.linear_kan(model, self.X, self.y, mean_only=kind == "mean")
        parameters = m if kind in ("mean", "prior") else (self.X.shape[1] + 1) * m
        return self._record(Candidate(label=kind, kind=kind, model=model, parameters=parameters), t0)

    def _logistic(self) -> Candidate:
        """The penalised linear logistic model (classification), its penalty the one of
        LOGISTIC_PENALTIES with the lowest validation log loss."""
        tried, solution = [], None
        for penalty in sorted(LOGISTIC_PENALTIES, reverse=True):  # each starts from the last (more penalised) one
            t0 = time.perf_counter()
            model = start(self.X, self.y, self.recipe, width=[self.X.shape[1], self.n_outputs], grid=1)
            solution = linear.logistic_kan(model, self.X, self.y, self.loss, penalty, solution)
            candidate = Candidate(label="logistic", kind="logistic", model=model, penalty=penalty,
                                  parameters=(self.X.shape[1] + 1) * self.n_outputs)
            tried.append(self._record(candidate, t0))
        best = min(tried, key=lambda c: c.val_loss)
        self.candidates = [c for c in self.candidates if c.kind != "logistic" or c is best]
        return best

    def _widths(self, grid: int, lamb: float) -> list[Candidate]:
        """Networks of every width in WIDTHS at the first grid, then each of WIDER while the
        widest so far is clearly better than all the narrower ones."""
        tried = [self._network(hidden, (grid,), lamb) for hidden in WIDTHS
                 if self._parameters(hidden, grid) <= self.max_parameters]
        for hidden in WIDER:
            if len(tried) < 2 or not tried[-1].usable or not any(c.usable for c in tried[:-1]) \
                    or not clearly_better(tried[-1], _best(tried[:-1])):
                break
            if self._parameters(hidden, grid) > self.max_parameters:
                break
            tried.append(self._network(hidden, (grid,), lamb))
        return tried

    def _network(self, hidden: tuple, grids: tuple, lamb: float, extend: bool = False) -> Candidate:
        """A new network [n, *hidden, m] trained at grids[0] (and, with ``extend``, along the
        rest of ``grids`` while each grid is clearly better)."""
        t0 = time.perf_counter()
        width = [self.X.shape[1], *hidden, self.n_outputs]
        model = start(self.X, self.y, self.recipe, width=width, grid=grids[0])
        label = str(width)
        first = self._train(model, Candidate(label=label, kind="kan", model=model, lamb=lamb), t0)
        return self._extend(first, grids[1:]) if extend and len(grids) > 1 else first

    def _extend(self, candidate: Candidate, grids: tuple) -> Candidate:
        """Grid extension of a trained candidate, one grid at a time, while clearly better."""
        current = candidate
        for grid in grids:
            if grid <= current.model.grid:
                continue
            t0 = time.perf_counter()
            model = copy.deepcopy(current.model)
            with deferred_interrupt():  # never leave a half-refined model
                model.refine(grid)
            if model.num_parameters() > self.max_parameters:
                break
            trial = Candidate(label=current.label, kind="kan", model=model, lamb=current.lamb,
                              schedule=list(current.schedule), stages=list(current.stages))
            trial = self._train(model, trial, t0)
            if not trial.usable or not clearly_better(trial, current):
                break
            current = trial
        return current

    def _train(self, model, candidate: Candidate, t0: float) -> Candidate:
        """Fit ``model`` at its grid (early stopping on the validation rows) into ``candidate``."""
        r, grid, patience = self.recipe, model.grid, self.recipe.early_stopping

        def each(step, history):
            if self.on_step is not None:
                self.on_step(candidate.label, grid, step, r.steps, history)
            # a plateau: the last `patience` steps gained less than 1% (early stopping keeps the best state)
            val = history.val_loss if self.classifies else history.val_rmse
            return patience is not None and len(val) > patience and val[-1] > (1 - MIN_STEP_GAIN) * val[-1 - patience]

        history = model.fit(self.X, self.y, steps=r.steps, optimizer=r.optimizer, loss=r.loss, lamb=candidate.lamb,
                            batch_size=r.batch_size, X_val=self.X_val, y_val=self.y_val, patience=patience,
                            progress=False, seed=r.seed, callback=each)
        kept = len(history) if history.best_step is None else history.best_step
        candidate.schedule.append((grid, kept))
        candidate.stages.append(Stage(grid=grid, history=history, seconds=time.perf_counter() - t0))
        candidate.parameters = model.num_parameters()
        return self._record(candidate, t0)

    def goes_wild(self, model) -> bool:
        """Whether a regression network predicts outside twice the targets' range (their range
        widened by half of it on each side) on the data or between data points. A network can
        fit the training and validation rows and still swing far out where the rows are sparse
        (a skewed input: grid intervals with a point or two); early stopping cannot see it."""
        if self.classifies:
            return False
        with torch.no_grad():
            pred = model(self._probes)  # (P, m)
        lo, hi = self._sane
        return not bool(((pred >= lo) & (pred <= hi)).all())

    def _record(self, candidate: Candidate, t0: float) -> Candidate:
        if candidate.kind == "kan":
            candidate.wild = self.goes_wild(candidate.model)
        with torch.no_grad():
            pred = candidate.model(self.X_val)  # (N_val, m)
            if self.classifies:
                candidate.errors = self.loss.per_sample(pred, self.y_val)
            else:
                candidate.errors = (((pred - self.y_val) / self._scale) ** 2).sum(dim=1)
            candidate.metric_name = self.loss.metric_name
            candidate.train_metric = self.loss.metric(candidate.model(self.X), self.y)
            candidate.val_metric = self.loss.metric(pred, self.y_val)
        candidate.seconds = time.perf_counter() - t0
        self.candidates.append(candidate)
        if self.on_candidate is not None:
            self.on_candidate(candidate)
        return candidate

    def _parameters(self, hidden: tuple, grid: int) -> int:
        return parameter_count([self.X.shape[1], *hidden, self.n_outputs], grid, self.recipe.k)

    # ------------------------------------------------------------------------------ refit
    def refit(self, X, y, progress: bool = False):
        """(model, stages): the chosen network trained again on (X, y) with the schedule it
        kept (its grids, and the steps it kept at each); the mean and the linear model are
        recomputed in closed form."""
        chosen = self.chosen
        if chosen is None:
            raise ValueError("nothing was chosen yet: run the search first")
        r = self.recipe
        if chosen.kind != "kan":
            model = start(X, y, r, width=chosen.width, grid=1)
            if chosen.kind == "prior":
                linear.constant_kan(model, prior_logits(y, self.n_outputs, self.loss))
            elif chosen.kind == "logistic":
                linear.logistic_kan(model, X, y, self.loss, chosen.penalty)
            else:
                linear.linear_kan(model, X, y, mean_only=chosen.kind == "mean")
            return model, []
        model = start(X, y, r, width=chosen.width, grid=chosen.schedule[0][0])
        grids, steps = zip(*chosen.schedule)
        stages = refine_and_fit(model, X, y, grids, steps, r.optimizer, loss=r.loss, lamb=chosen.lamb,
                                batch_size=r.batch_size, progress=progress, seed=r.seed).stages
        if self.goes_wild(model):  # the extra rows moved it where the search's model was sane
            warnings.warn("the network refit on every row goes wild between the data points; the chosen "
                          "network (trained without the validation rows) is kept", UserWarning, stacklevel=3)
            return copy.deepcopy(chosen.model), list(chosen.stages)
        return model, stages


PROBES = 2048  # points between pairs of data rows on which a network must stay sane


def sanity_probes(X, y, X_val, y_val, seed: int):
    """(probes, (lo, hi)): every data row and PROBES points on segments between random pairs of
    rows (seeded), and the sane range of each output: the targets' range widened by half of it
    on each side. Segments stay inside the data's hull, where a model is asked to interpolate."""
    rows, targets = torch.cat([X, X_val]), torch.cat([y, y_val])
    g = torch.Generator().manual_seed(int(seed))
    n = rows.shape[0]
    i, j = torch.randint(n, (PROBES,), generator=g), torch.randint(n, (PROBES,), generator=g)
    a = torch.rand(PROBES, 1, generator=g, dtype=rows.dtype)
    probes = torch.cat([rows, a * rows[i] + (1 - a) * rows[j]])
    lo, hi = targets.min(dim=0).values, targets.max(dim=0).values
    half = (hi - lo) / 2
    return probes, (lo - half, hi + half)


def prior_logits(y: torch.Tensor, n_outputs: int, loss) -> torch.Tensor:
    """(n_outputs,) constant logits of the class frequencies in y, add-one smoothed (so a class
    absent from these rows keeps a finite logit): log-frequencies for cross-entropy
    (class indices (N,)), the log-odds of each column for bce ((N, m) 0/1)."""
    if loss.name == "cross_entropy":
        counts = torch.bincount(y.reshape(-1), minlength=n_outputs).to(torch.float64)
        return torch.log((counts + 1) / (counts.sum() + n_outputs))
    positive = y.to(torch.float64).sum(dim=0)
    return torch.log((positive + 1) / (y.shape[0] - positive + 1))
