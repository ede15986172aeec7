"""The default way from data to a fitted KAN, shared by ``KANRegressor`` and ``kanopy fit``.

A :class:`Recipe` names the network ([n_features, *hidden, n_outputs], spline order k,
dtype, seed), the schedule (grid extension through ``grids``, coarse to fine, with up to
``steps`` optimizer steps at each grid), the sparsity regulariser ``lamb`` and early
stopping (``patience``). ``hidden``, ``grids`` and ``lamb`` may be "auto" (the default):
then :func:`run` chooses them on validation data (see :mod:`kanopy.selection`: the mean,
the linear model, additive and small hidden-layer networks, cheapest first, finer grids only
while the validation error improves). A recipe with all three given is a fixed schedule,
which :func:`train` runs as it stands.

:func:`start` builds the network and puts the data scaling into its buffers (inputs to
[-1, 1], clamped to [-1.1, 1.1], so predictions stay bounded outside the training range; targets to
zero mean and unit variance), so ``model(X)`` works on raw data and a formula can fold the
scaling in. :func:`train` brings a model to the end of a fixed recipe from wherever it stands
(its grid and ``fit_state``), so the same call starts a fit, finishes one that was
interrupted and saved, or extends a finished one with more steps or finer grids.

Importing this module does not import PyTorch (the ``kanopy`` command's ``--help`` shows the
defaults without it).
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .schedule import Stage, refine_and_fit

if TYPE_CHECKING:
    import torch

    from .model import KAN


AUTO = "auto"
INPUT_BOUND = 1.1  # scaled inputs are clamped to [-1.1, 1.1]: 5% of the training range beyond each end
SEARCH_PATIENCE = 10  # patience="auto" when the recipe searches
# a classifier's: its validation log loss turns up within a step or two once the logits
# start to overfit (an LBFGS step is 20 iterations), so longer waits only cost time
CLASSIFY_PATIENCE = 3


@dataclass(frozen=True)
class Recipe:
    """Network and schedule of a fit; checked on creation (ValueError naming the field).

    hidden: widths of the hidden layers (() for the additive model [n, 1]), or "auto";
    grids: grid sizes, increasing, or "auto"; steps: the most optimizer steps at each grid;
    optimizer, lamb, batch_size: as in :func:`kanopy.fit.fit`, lamb also "auto" (chosen on
    validation when the recipe searches, else 0); patience: early stopping after that many
    steps without a better validation error (None: every step; "auto": 10 when the recipe
    searches, None for a fixed schedule); k: spline order; dtype: "float64" or "float32";
    seed: of the network and of batch sampling; loss: a name of :data:`kanopy.losses.LOSSES`
    ("mse" for regression; "cross_entropy" or "bce" for classification, whose targets are
    labels and whose network outputs are logits, left unscaled)."""

    hidden: tuple[int, ...] | str = AUTO
    grids: tuple[int, ...] | str = AUTO
    steps: int = 50
    optimizer: str = "lbfgs"
    k: int = 3
    dtype: str = "float64"
    seed: int = 0
    lamb: float | str = AUTO
    batch_size: int | None = None
    patience: int | str | None = AUTO
    loss: str = "mse"

    def __post_init__(self):
        from .losses import LOSSES
        from .model import DTYPES
        from .optim import OPTIMIZERS

        hidden = self.hidden if self.hidden == AUTO else _int_tuple(self.hidden, "hidden")
        grids = self.grids if self.grids == AUTO else _int_tuple(self.grids, "grids")
        if hidden != AUTO and any(h < 1 for h in hidden):
            raise ValueError(f"hidden layer widths must be positive integers (or 'auto'), got {self.hidden!r}")
        if grids != AUTO and (not grids or any(g < 1 for g in grids) or any(b <= a for a, b in zip(grids, grids[1:]))):
            raise ValueError(f"grids must be one or more positive integers, increasing (or 'auto'), got {self.grids!r}")
        if not _is_int(self.steps) or self.steps < 0:
            raise ValueError(f"steps must be a nonnegative integer, got {self.steps!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
        if not _is_int(self.k) or self.k < 1:
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.lamb != AUTO and (not isinstance(self.lamb, numbers.Real) or isinstance(self.lamb, bool)
                                  or not self.lamb >= 0 or self.lamb == float("inf")):
            raise ValueError(f"lamb must be a number >= 0 or 'auto', got {self.lamb!r}")
        if self.batch_size is not None and (not _is_int(self.batch_size) or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        if self.patience not in (None, AUTO) and (not _is_int(self.patience) or self.patience < 1):
            raise ValueError(f"patience must be a positive integer, None or 'auto', got {self.patience!r}")
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {sorted(LOSSES)}, got {self.loss!r}")
        if self.optimizer == "lm" and not LOSSES[self.loss].least_squares:
            raise ValueError(f"optimizer 'lm' minimises a sum of squares, and loss {self.loss!r} is not one; "
                             "use 'lbfgs' or 'adam'")
        normal = dict(hidden=hidden, grids=grids, steps=int(self.steps), k=int(self.k), seed=int(self.seed),
                      lamb=self.lamb if self.lamb == AUTO else float(self.lamb),
                      batch_size=None if self.batch_size is None else int(self.batch_size),
                      patience=self.patience if self.patience in (None, AUTO) else int(self.patience))
        for name, value in normal.items():  # plain Python numbers (numpy ones come from e.g. GridSearchCV)
            object.__setattr__(self, name, value)

    @property
    def searches(self) -> bool:
        """Whether :func:`run` chooses the network on validation data (hidden or grids "auto")."""
        return self.hidden == AUTO or self.grids == AUTO

    @property
    def classifies(self) -> bool:
        """Whether the loss is a classification loss (targets are labels, outputs logits)."""
        from .losses import LOSSES

        return LOSSES[self.loss].task == "classification"

    @property
    def early_stopping(self) -> int | None:
        """The patience in steps, or None (every step is taken, the last state kept)."""
        if self.patience == AUTO:
            return (CLASSIFY_PATIENCE if self.classifies else SEARCH_PATIENCE) if self.searches else None
        return self.patience

    @property
    def lamb_value(self) -> float:
        """The regulariser of a fixed schedule ("auto" is 0 there)."""
        return 0.0 if self.lamb == AUTO else self.lamb

    @property
    def needs_validation(self) -> bool:
        return self.searches or self.early_stopping is not None

    def width(self, n_inputs: int, n_outputs: int) -> list[int]:
        if self.hidden == AUTO:
            raise ValueError("the recipe chooses its hidden layers on validation data (hidden='auto')")
        return [n_inputs, *self.hidden, n_outputs]

    def to_dict(self) -> dict:
        """JSON-able (for model files)."""
        out = dataclasses.asdict(self)
        for name in ("hidden", "grids"):
            out[name] = out[name] if out[name] == AUTO else list(out[name])
        return out

    @classmethod
    def from_dict(cls, data: dict, **changes) -> Recipe:
        """A recipe from ``to_dict`` output (unknown keys ignored), with ``changes`` applied."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{**{k: v for k, v in data.items() if k in known}, **changes})

    def check_model(self, model: KAN, n_inputs: int, n_outputs: int) -> None:
        """ValueError unless ``model`` is the network this recipe builds for n_inputs features
        and n_outputs targets (for resuming)."""
        from .model import DTYPES

        width = [sum(w) for w in model.width]
        expected = self.width(n_inputs, n_outputs)
        problems = []
        if width != expected:
            problems.append(f"width {width}, not {expected}")
        if model.k != self.k:
            problems.append(f"k = {model.k}, not {self.k}")
        if model.dtype != DTYPES[self.dtype]:
            problems.append(f"dtype {str(model.dtype).removeprefix('torch.')}, not {self.dtype}")
        if problems:
            raise ValueError("the model does not match the recipe: it has " + "; ".join(problems))


DEFAULTS = {f.name: f.default for f in dataclasses.fields(Recipe)}


def start(X: torch.Tensor, y: torch.Tensor, recipe: Recipe, device="cpu", width=None, grid=None) -> KAN:
    """A new network for (X, y) (2-D tensors; for a classification loss y holds the targets
    as the loss takes them, and ``width`` is required) with the data scaling in its buffers
    and its inputs clamped 5% of the training range beyond it; ``width`` and ``grid``
    (default: the recipe's network and first grid) for the candidates of a search. A
    classifier's outputs are logits: only its inputs are scaled."""
    from .model import KAN
    from .validation import check_not_constant, check_rows

    check_rows(X.shape[0], "the data")
    if not recipe.classifies:
        check_not_constant(y, "the target")
    width = recipe.width(X.shape[1], y.shape[1]) if width is None else width
    grid = recipe.grids[0] if grid is None else grid
    model = KAN(width, grid=grid, k=recipe.k, seed=recipe.seed, dtype=recipe.dtype, device=device,
                input_bound=INPUT_BOUND)
    model.set_scaling(X, None if recipe.classifies else y)
    return model


def split(n: int, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training rows, validation rows) of n rows: round(n * fraction) rows drawn at random
    from ``seed`` for validation; both in their original order (fraction 0: all rows, in order)."""
    import torch

    if not 0 <= fraction < 1:
        raise ValueError(f"the validation fraction must be in [0, 1), got {fraction!r}")
    n_val = round(n * fraction)
    if fraction > 0 and n_val == 0:
        raise ValueError(f"{n} rows are too few to hold out a fraction {fraction} of them for validation")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    return order[n_val:].sort().values, order[:n_val].sort().values


def position(model: KAN, recipe: Recipe) -> tuple[int, int]:
    """(index of the grid the model is at or goes to next, steps it has done there).
    The index is len(recipe.grids) when the model has finished the recipe."""
    grid = model.grid
    done = int(model.fit_state["step"]) if model.fit_state else 0
    for index, g in enumerate(recipe.grids):
        if g > grid:
            return index, 0
        if g == grid:
            return (index, done) if done < recipe.steps else (index + 1, 0)
    return len(recipe.grids), 0


def train(model: KAN, X, y, recipe: Recipe, *, X_val=None, y_val=None, progress: bool = False,
          callback=None) -> list[Stage]:
    """Bring ``model`` to the end of the fixed ``recipe`` on (X, y): at each grid from the one
    it stands at, refine to it (grid extension) and fit the steps left there, continuing a fit
    the model's ``fit_state`` records. An uninterrupted call and one interrupted (Ctrl-C),
    saved, loaded and called again give the same model. ``callback(grid, step, history)`` is
    called after every step (step counts from the start of that grid); returns one
    :class:`Stage` per grid it trained at. (A recipe that searches goes through :func:`run`.)"""
    if recipe.searches:
        raise ValueError("train runs a fixed schedule; this recipe chooses hidden or grids on validation data "
                         "(use kanopy.recipe.run)")
    index, done = position(model, recipe)
    grids = recipe.grids[index:]
    steps = [recipe.steps - done] + [recipe.steps] * (len(grids) - 1) if grids else []
    return refine_and_fit(model, X, y, grids, steps, recipe.optimizer, callback=callback, resume=True,
                          loss=recipe.loss, lamb=recipe.lamb_value, batch_size=recipe.batch_size, X_val=X_val,
                          y_val=y_val, progress=progress, seed=recipe.seed).stages


def parameter_count(width, grid: int, k: int) -> int:
    """Parameters of a plain network ``width`` (node counts) at ``grid``, as KAN.num_parameters
    counts them: G + k coefficients, scale_base and scale_sp per edge."""
    return sum(a * b for a, b in zip(width, width[1:])) * (grid + k + 2)


def parameter_warning(parameters: int, rows: int) -> str | None:
    """The warning for a network with more parameters than training rows (None if it has not)."""
    if parameters <= rows:
        return None
    return (f"the network has {parameters} parameters for {rows} training row{'' if rows == 1 else 's'}: more "
            "parameters than rows, so it can pass through every row and predict new ones poorly (choose fewer "
            "hidden nodes or coarser grids, or let the recipe choose: hidden and grids 'auto')")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _int_tuple(value, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of integers, got {value!r}")
    items = tuple(value)
    if not all(_is_int(v) for v in items):
        raise ValueError(f"{name} must be a sequence of integers, got {value!r}")
    return tuple(int(v) for v in items)
