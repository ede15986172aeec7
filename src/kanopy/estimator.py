"""KANRegressor: a KAN as a scikit-learn estimator (Pipeline, GridSearchCV, clone, ...).

Needs scikit-learn (>= 1.6), imported here only, so ``import kanopy`` works without it.
The fit follows :mod:`kanopy.recipe`, the same recipe as ``kanopy fit``: the data scaling
lives in the fitted network's buffers, so ``model_(X)`` (a :class:`kanopy.KAN`) computes the
predictions from raw inputs.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as err:  # pragma: no cover (depends on the environment)
    raise ImportError("kanopy.KANRegressor needs scikit-learn >= 1.6: pip install 'scikit-learn>=1.6' "
                      f"({err})") from None

from . import recipe as recipes
from .model import DTYPES
from .validation import as_matrix, check_finite, check_not_constant, check_rows


class KANRegressor(RegressorMixin, BaseEstimator):
    """Kolmogorov-Arnold Network regressor.

    The network is [n_features, *hidden, n_outputs]. It is fitted by grid extension: at each
    grid size in ``grids`` (coarse to fine) ``steps`` optimizer steps (``optimizer`` "lbfgs",
    "adam" or "lm"), in ``dtype``, reproducibly from ``random_state`` (an int, used as the
    seed; None draws one). ``lamb`` > 0 adds the KAN sparsity regulariser, ``batch_size``
    None means full batch, ``verbose`` shows progress bars. y may have several columns.

    Attributes after ``fit``: ``model_`` (the fitted :class:`kanopy.KAN`), ``stages_`` (one
    :class:`kanopy.recipe.Stage` per grid, with its history), ``n_features_in_``,
    ``formula_`` (with ``symbolic=True``: one sympy expression per output in the feature
    names, input and output scaling undone; every edge is then snapped to a library function
    after pruning and the affine parameters refitted, and ``predict`` uses that network),
    ``feature_names_in_`` (when X has string column names) and ``n_outputs_``.
    """

    def __init__(self, hidden=(5,), grids=(3, 10, 20), steps=50, optimizer="lbfgs", k=3, lamb=0.0,
                 batch_size=None, dtype="float64", symbolic=False, random_state=0, verbose=False):
        self.hidden = hidden
        self.grids = grids
        self.steps = steps
        self.optimizer = optimizer
        self.k = k
        self.lamb = lamb
        self.batch_size = batch_size
        self.dtype = dtype
        self.symbolic = symbolic
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        _check_finite_target(y)  # before scikit-learn's check, which does not name the row
        X, y = validate_data(self, X, y, multi_output=True, y_numeric=True, dtype=np.float64,
                             ensure_all_finite=False)
        recipe = self._recipe()
        X_t, y_t = self._tensors(X, y, recipe)
        model = recipes.start(X_t, y_t, recipe)
        self._record(model, recipe)
        self.stages_ = recipes.train(model, X_t, y_t, recipe, progress=bool(self.verbose))
        if self.symbolic:
            model = self._snap(model, X_t, y_t, recipe)
        self.model_ = model
        self.n_outputs_ = y_t.shape[1]
        self._y_ndim = np.ndim(y)
        return self

    def predict(self, X) -> np.ndarray:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64, ensure_all_finite=False)
        X_t = as_matrix(X, "X", dtype=self.model_.dtype, device=self.model_.device)
        with torch.no_grad():
            pred = self.model_(X_t).cpu().numpy().astype(np.float64)
        return pred[:, 0] if self._y_ndim == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    # ---------------------------------------------------------------------- helpers
    def _recipe(self) -> recipes.Recipe:
        """The parameters, checked (ValueError naming the parameter), as a Recipe."""
        hidden = (self.hidden,) if isinstance(self.hidden, numbers.Integral) else self.hidden
        grids = (self.grids,) if isinstance(self.grids, numbers.Integral) else self.grids
        return recipes.Recipe(hidden=hidden, grids=grids, steps=self.steps, optimizer=self.optimizer, k=self.k,
                              dtype=self.dtype, seed=self._seed(), lamb=self.lamb, batch_size=self.batch_size)

    def _snap(self, model, X, y, recipe):
        """Prune to the edges that matter, snap each to its best library function, refit the
        affine parameters; sets ``formula_`` (one sympy expression per output, in the
        feature names and original units, constants rounded where the data allow).
        Predictions then come from the snapped network (its constants unrounded)."""
        from .symbolic import snap

        model = model.prune(X)
        snap.snap_every_edge(model, X=X)
        model.fit(X, y, steps=self.steps, optimizer="lbfgs", update_grid=False, progress=bool(self.verbose),
                  seed=recipe.seed)
        names = [str(n) for n in getattr(self, "feature_names_in_", [])] or [f"x{i}" for i in range(X.shape[1])]
        self.formula_ = model.symbolic_formula(var_names=names, X=X, y=y)
        return model

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral) and not isinstance(self.random_state, bool):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _tensors(self, X, y, recipe):
        """(X, y) as 2-D tensors of the recipe's dtype; ValueError naming a bad row/column."""
        names = list(getattr(self, "feature_names_in_", [])) or None
        dtype = DTYPES[recipe.dtype]
        X_t = as_matrix(X, "X", dtype=dtype, device="cpu", column_names=names)
        y_t = as_matrix(y, "y", dtype=dtype, device="cpu")
        check_rows(X_t.shape[0], "X")
        check_not_constant(y_t, "y")
        return X_t, y_t

    def _record(self, model, recipe) -> None:
        """What a model file should remember (see kanopy.io): feature names, the recipe."""
        model.info = {"recipe": recipe.to_dict()}
        if hasattr(self, "feature_names_in_"):
            model.info["features"] = [str(name) for name in self.feature_names_in_]


def _check_finite_target(y) -> None:
    """ValueError naming the row of a NaN or inf in a numeric y (other kinds of y are left to
    scikit-learn's checks)."""
    if y is None or hasattr(y, "toarray"):  # None, sparse
        return
    values = np.asarray(y)
    if values.dtype.kind in "biuf" and values.ndim in (1, 2) and len(values):
        check_finite(values.reshape(len(values), -1), "y")
