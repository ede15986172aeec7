"""KANRegressor and KANClassifier: a KAN as a scikit-learn estimator (Pipeline,
GridSearchCV, clone, ...).

Needs scikit-learn (>= 1.6), imported here only, so ``import kanopy`` works without it.
Both fit by :mod:`kanopy.recipe`, the same recipe as ``kanopy fit``, through one base
(:class:`KANEstimator`): the data scaling lives in the fitted network's buffers, so
``model_(X)`` (a :class:`kanopy.KAN`) computes the predictions (a classifier's logits) from
raw inputs.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin  # noqa: F401  (for classifier.py)
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets  # noqa: F401  (for classifier.py)
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover (depends on the environment)
    raise ImportError("kanopy.KANRegressor needs scikit-learn >= 1.6, as does kanopy.KANClassifier: "
                      f"pip install 'scikit-learn>=1.6' ({err})") from None

from . import metrics
from . import recipe as recipes
from .model import DTYPES
from .validation import as_matrix, check_finite, check_not_constant, check_rows


class KANEstimator(BaseEstimator):
    """What KANRegressor and KANClassifier share: the recipe from the parameters, the search
    on a validation split (and refit), the symbolic snap, the seed and the model file notes.
    A subclass gives its targets as tensors, its loss, and ``_report`` (what it keeps of
    the search)."""

    _name = "KANEstimator"

    def _fit_tensors(self, X_t, y_t, recipe, n_outputs: int):
        """The fitted network for the tensors (X_t (N, n), y_t as recipe.loss takes them)."""
        if recipe.needs_validation:
            model = self._search(X_t, y_t, recipe, n_outputs)
        else:
            model = recipes.start(X_t, y_t, recipe, width=recipe.width(X_t.shape[1], n_outputs))
            largest = recipes.parameter_count([sum(w) for w in model.width], recipe.grids[-1], recipe.k)
            message = recipes.parameter_warning(largest, X_t.shape[0] * (n_outputs if recipe.classifies else 1))
            if message:  # before the fit: it may take a while
                warnings.warn(f"{self._name}: {message} (at grid {recipe.grids[-1]})", UserWarning, stacklevel=3)
            self.stages_ = recipes.train(model, X_t, y_t, recipe, progress=bool(self.verbose))
        self._record(model, recipe)
        if self.symbolic:
            model = self._snap(model, X_t, y_t, recipe)
        return model

    def _recipe(self, **extra) -> recipes.Recipe:
        """The parameters, checked (ValueError naming the parameter), as a Recipe."""
        hidden = (self.hidden,) if isinstance(self.hidden, numbers.Integral) else self.hidden
        grids = (self.grids,) if isinstance(self.grids, numbers.Integral) else self.grids
        fraction = self.validation_fraction
        if not isinstance(fraction, numbers.Real) or isinstance(fraction, bool) or not 0 <= fraction < 1:
            raise ValueError(f"validation_fraction must be a number in [0, 1), got {fraction!r}")
        return recipes.Recipe(hidden=hidden, grids=grids, steps=self.steps, optimizer=self.optimizer, k=self.k,
                              dtype=self.dtype, seed=self._seed(), lamb=self.lamb, batch_size=self.batch_size,
                              patience=self.patience, **extra)

    def _search(self, X, y, recipe, n_outputs):
        """Choose (or early-stop) on a validation split; refit on every row when asked."""
        from .selection import Search

        if self.validation_fraction == 0:
            raise ValueError("validation_fraction is 0, but the recipe chooses on validation rows (hidden, grids "
                             "or lamb 'auto', or a patience): give validation_fraction > 0, or hidden, grids and "
                             "lamb with patience=None")
        train_rows, val_rows = recipes.split(X.shape[0], float(self.validation_fraction), recipe.seed)
        check_rows(len(train_rows), f"X without its {len(val_rows)} validation rows")
        search = Search(X[train_rows], y[train_rows], X[val_rows], y[val_rows], recipe, n_outputs=n_outputs)
        chosen = search.run()
        self.selection_ = [c.describe() for c in search.candidates]
        self._report(search, chosen, X[val_rows], y[val_rows])
        rows = len(train_rows) * (n_outputs if recipe.classifies else 1)
        message = recipes.parameter_warning(chosen.parameters if chosen.kind == "kan" else 0, rows)
        if message:
            warnings.warn(f"{self._name}: {message}", UserWarning, stacklevel=4)
        if self.refit:
            model, self.stages_ = search.refit(X, y, progress=bool(self.verbose))
        else:
            model, self.stages_ = chosen.model, chosen.stages
        return model

    def _report(self, search, chosen, X_val, y_val) -> None:
        raise NotImplementedError

    def _snap(self, model, X, y, recipe):
        """Prune to the edges that matter, snap each to its best library function, refit the
        affine parameters; sets ``formula_`` (one sympy expression per output, in the
        feature names and original units, constants rounded where the data allow).
        Predictions then come from the snapped network (its constants unrounded)."""
        from .symbolic import snap

        model = model.prune(X)
        snap.snap_every_edge(model, X=X)
        model.fit(X, y, steps=self.steps, optimizer="lbfgs", loss=recipe.loss, update_grid=False,
                  progress=bool(self.verbose), seed=recipe.seed)
        names = [str(n) for n in getattr(self, "feature_names_in_", [])] or [f"x{i}" for i in range(X.shape[1])]
        # a classifier's formulas are its logits, rounded against the network itself
        self.formula_ = model.symbolic_formula(var_names=names, X=X, y=None if recipe.classifies else y)
        return model

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _inputs(self, X, recipe):
        """X as a 2-D tensor of the recipe's dtype; ValueError naming a bad row/column."""
        names = list(getattr(self, "feature_names_in_", [])) or None
        X_t = as_matrix(X, "X", dtype=DTYPES[recipe.dtype], device="cpu", column_names=names)
        check_rows(X_t.shape[0], "X")
        return X_t

    def _outputs(self, X) -> torch.Tensor:
        """The fitted network's outputs (N, n_outputs) for raw inputs X, float64 on the CPU."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        X_t = as_matrix(X, "X", dtype=self.model_.dtype, device=self.model_.device)
        with torch.no_grad():
            return self.model_(X_t).cpu().to(torch.float64)

    def _record(self, model, recipe) -> None:
        """What a model file should remember (see kanopy.io): feature names, the recipe, the
        validation error."""
        model.info = {"recipe": recipe.to_dict()}
        if hasattr(self, "feature_names_in_"):
            model.info["features"] = [str(name) for name in self.feature_names_in_]
        if hasattr(self, "selection_"):
            model.info["validation"] = self._validation_notes()
            model.info["selection"] = self.selection_

    def _validation_notes(self) -> dict:
        raise NotImplementedError


class KANRegressor(RegressorMixin, KANEstimator):
    """Kolmogorov-Arnold Network regressor (scikit-learn estimator).

    By default (`hidden`, `grids` and `lamb` "auto") the network is chosen on a validation split
    of the training rows (`validation_fraction`, drawn from `random_state`): the mean, the linear
    model, the additive model and small hidden layers, cheapest first, finer grids only while the
    validation error improves, each network kept at its best validation state (early stopping
    after `patience` steps without improvement), the simplest candidate not clearly worse than
    the best one chosen (see :mod:`kanopy.selection`); with `refit` the chosen network is then
    trained again on all the rows with the steps it kept. Inputs are clamped 5% of the training
    range beyond it. Works in Pipeline, GridSearchCV and clone; y may have several columns.
    Needs scikit-learn (>= 1.6).

    Parameters
    ----------
    hidden : "auto" or tuple of int, default "auto"
        Hidden layer sizes, e.g. ``(5,)``; ``()`` is the additive model.
    grids : "auto" or tuple of int, default "auto"
        The grid extension schedule, e.g. ``(3, 10, 20)``.
    steps : int, default 50
        Optimizer steps at each grid.
    optimizer : {"lbfgs", "adam", "lm"}, default "lbfgs"
        The optimizer.
    k : int, default 3
        Spline order.
    lamb : "auto" or float, default "auto"
        The KAN sparsity regulariser (0: none).
    patience : "auto", int or None, default "auto"
        Early stopping on the validation split after this many steps without improvement;
        "auto": 10 in the search, none for a fixed schedule.
    validation_fraction : float, default 0.2
        Rows held out to choose the network (and for early stopping).
    refit : bool, default True
        Train the chosen network again on all rows with the steps it kept (False keeps the
        validated state).
    batch_size : int or None, default None
        Rows per batch; None: full batch.
    dtype : {"float64", "float32"}, default "float64"
        Floating-point type of the network.
    symbolic : bool, default False
        After fitting, prune, snap every edge to a library function, refit the affine
        parameters and expose ``formula_``; ``predict`` then uses that network.
    random_state : int or None, default 0
        Seed of everything (None draws one).
    verbose : bool, default False
        Show progress bars.
    stages : int or None, default None
        Fit by :func:`kanopy.fit_multistage` instead: up to this many KAN stages, each on the
        normalised residual of the ones before (float64, down to rounding error on smooth
        functions), with that function's own schedule (`hidden`, `grids`, `steps`,
        `optimizer`, `k`, `lamb` and `patience` do not apply); early stopping and the stage
        count judged on the validation split. ``model_`` is then a
        :class:`kanopy.MultiStageKAN`.

    Attributes
    ----------
    model_ : KAN or MultiStageKAN
        The fitted network; its buffers carry the data scaling, so ``model_(X)`` predicts from
        raw inputs.
    stages_ : list of kanopy.schedule.Stage, or of kanopy.multistage.StageReport
        One per grid of its training, with its history (with `stages`: one report per stage).
    selection_ : list
        With a validation split: a summary of every candidate tried, in order, the chosen one
        marked.
    validation_rmse_, validation_score_ : float
        RMSE and R^2 of the chosen network on the validation rows, before any refit.
    baseline_rmse_ : float
        The RMSE there of predicting the training mean (a UserWarning says when no network
        beat it).
    formula_ : list of sympy.Expr
        With ``symbolic=True``: one expression per output in the feature names, scaling undone.
    n_features_in_ : int
        Number of features seen in fit.
    feature_names_in_ : numpy.ndarray
        Names of the features (when X has string column names).
    n_outputs_ : int
        Number of outputs.

    See Also
    --------
    kanopy.KAN : the network itself.

    Examples
    --------
    >>> import numpy as np
    >>> from kanopy import KANRegressor
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 2))
    >>> y = np.sin(2 * X[:, 0]) + X[:, 1] / 2
    >>> reg = KANRegressor(hidden=(), grids=(3, 5), steps=10).fit(X, y)  # a fixed schedule
    >>> reg.predict(X[:3]).shape
    (3,)
    >>> reg.score(X, y) > 0.99
    True
    """

    def __init__(self, hidden="auto", grids="auto", steps=50, optimizer="lbfgs", k=3, lamb="auto", patience="auto",
                 validation_fraction=0.2, refit=True, batch_size=None, dtype="float64", symbolic=False,
                 random_state=0, verbose=False, stages=None):
        self.hidden = hidden
        self.grids = grids
        self.steps = steps
        self.optimizer = optimizer
        self.k = k
        self.lamb = lamb
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.batch_size = batch_size
        self.dtype = dtype
        self.symbolic = symbolic
        self.random_state = random_state
        self.verbose = verbose
        self.stages = stages

    _name = "KANRegressor"

    def fit(self, X, y):
        """Fit the regressor on (X, y): the default recipe's search, or the fixed schedule given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (finite).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Training targets (finite).

        Returns
        -------
        KANRegressor
            The fitted estimator.

        Raises
        ------
        ValueError
            For NaN or infinite values (naming the row and column), mismatched shapes, too few
            rows, or a bad parameter (naming it).

        Warns
        -----
        UserWarning
            When no network beats predicting the mean on the validation rows, or a fixed schedule's
            network has more parameters than training rows.

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANRegressor
        >>> X = np.linspace(-1, 1, 100)[:, None]
        >>> reg = KANRegressor(hidden=(), grids=(5,), steps=5).fit(X, X[:, 0] ** 2)
        >>> reg.n_features_in_, reg.n_outputs_
        (1, 1)
        """
        _check_regression_target(y)  # before scikit-learn's checks, which do not name the row or the kind
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             ensure_all_finite=False)
        recipe = self._recipe()
        X_t = self._inputs(X, recipe)
        y_t = as_matrix(y, "y", dtype=DTYPES[recipe.dtype], device="cpu")
        check_not_constant(y_t, "y")
        for name in ("selection_", "validation_rmse_", "validation_score_", "baseline_rmse_"):
            self.__dict__.pop(name, None)  # from an earlier fit
        if self.stages is None:
            self.model_ = self._fit_tensors(X_t, y_t, recipe, y_t.shape[1])
        else:
            self.model_ = self._fit_stages(X_t, y_t, recipe)
        self.n_outputs_ = y_t.shape[1]
        self._y_ndim = np.ndim(y)
        return self

    def _fit_stages(self, X_t, y_t, recipe):
        """A MultiStageKAN (kanopy.fit_multistage) on the training rows, judged on the validation split."""
        from .multistage import fit_multistage

        stages = self.stages
        if not isinstance(stages, numbers.Integral) or isinstance(stages, bool) or stages < 1:
            raise ValueError(f"stages must be a positive integer or None, got {stages!r}")
        if self.symbolic:
            raise ValueError("symbolic=True snaps one network; with stages, snap the fitted stages with "
                             "model_.auto_symbolic() and read model_.symbolic_formula()")
        if recipe.dtype != "float64":
            raise ValueError(f"stages fit in float64 (their residuals reach rounding error), got dtype={self.dtype!r}")
        fraction = float(self.validation_fraction)
        if fraction == 0:
            raise ValueError("stages need validation rows to stop adding stages: give validation_fraction > 0")
        train_rows, val_rows = recipes.split(X_t.shape[0], fraction, recipe.seed)
        check_rows(len(train_rows), f"X without its {len(val_rows)} validation rows")
        model = fit_multistage(X_t[train_rows], y_t[train_rows], stages=int(stages), seed=recipe.seed,
                               X_val=X_t[val_rows], y_val=y_t[val_rows], log=print if self.verbose else None)
        self.stages_ = list(model.reports)
        X_val, y_val = X_t[val_rows], y_t[val_rows]
        self.validation_rmse_ = metrics.rmse(model, X_val, y_val)
        self.baseline_rmse_ = metrics.rms(y_t[train_rows].mean(dim=0) - y_val)
        self.validation_score_ = _r2(model, X_val, y_val)
        self._record(model, recipe)
        model.info["stages"] = int(stages)
        model.info["validation"] = {**self._validation_notes(), "refit": False}  # stages are not refit
        return model

    def predict(self, X) -> np.ndarray:
        """Predict with the fitted network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (finite).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)`` when y was 1-D in fit, else ``(n_samples, n_outputs)``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before fit.
        ValueError
            For bad inputs (NaN, inf, the wrong number of features).

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANRegressor
        >>> X = np.linspace(-1, 1, 100)[:, None]
        >>> reg = KANRegressor(hidden=(), grids=(5,), steps=10).fit(X, 2 * X[:, 0])
        >>> np.abs(reg.predict([[0.5]]) - 1.0) < 1e-2
        array([ True])
        """
        pred = self._outputs(X).numpy()
        return pred[:, 0] if self._y_ndim == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ---------------------------------------------------------------------- helpers
    def _report(self, search, chosen, X_val, y_val) -> None:
        self.validation_rmse_ = chosen.val_rmse
        self.baseline_rmse_ = search.mean_rmse
        self.validation_score_ = _r2(chosen.model, X_val, y_val)
        if search.no_better_than_mean(chosen):
            warnings.warn(f"KANRegressor: no network predicted the validation rows clearly better than the mean of "
                          f"the training targets (validation RMSE {chosen.val_rmse:.4g}, mean {search.mean_rmse:.4g}); "
                          f"the model chosen is the "
                          f"{chosen.label if chosen.kind != 'kan' else 'network ' + chosen.label}",
                          UserWarning, stacklevel=5)

    def _validation_notes(self) -> dict:
        return {"rmse": self.validation_rmse_, "baseline_rmse": self.baseline_rmse_, "r2": self.validation_score_,
                "refit": bool(self.refit)}


@torch.no_grad()
def _r2(model, X_val, y_val) -> float:
    """R^2 of model on the validation rows (all outputs pooled); NaN for constant targets."""
    total = float(((y_val - y_val.mean(dim=0)) ** 2).sum())
    residual = float(((model(X_val) - y_val) ** 2).sum())
    return 1.0 - residual / total if total > 0 else float("nan")


def _check_regression_target(y) -> None:
    """ValueError naming the row of a NaN or inf in a numeric y, or saying that labels (text)
    are for KANClassifier (other kinds of y are left to scikit-learn's checks)."""
    if y is None or hasattr(y, "toarray"):  # None, sparse
        return
    values = np.asarray(y)
    if values.dtype.kind in "USO" and values.size:
        try:
            values.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError("KANRegressor needs numeric targets, but y holds text labels (e.g. "
                             f"{values.reshape(-1)[0]!r}); for classes use kanopy.KANClassifier") from None
        return
    if values.dtype.kind in "biuf" and values.ndim in (1, 2) and len(values):
        check_finite(values.reshape(len(values), -1), "y")
