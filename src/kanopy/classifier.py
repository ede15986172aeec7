"""KANClassifier: a KAN whose outputs are class logits, as a scikit-learn classifier.

Shares the recipe, the validation search and the refit with KANRegressor
(:class:`kanopy.estimator.KANEstimator`); only the targets (labels, encoded as indices of
``classes_``), the loss (cross-entropy over one logit per class, or binary cross-entropy of
one logit) and the outputs (probabilities, decisions) are its own.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .estimator import ClassifierMixin, KANEstimator, check_classification_targets, check_is_fitted, validate_data
from .model import DTYPES

LOSSES = ("auto", "cross_entropy", "bce")


class KANClassifier(ClassifierMixin, KANEstimator):
    """Kolmogorov-Arnold Network classifier (binary and multi-class, labels of any kind).

    The network ``[n_features, *hidden, n_logits]`` is chosen and trained as KANRegressor's, judged
    by the validation log loss (see :mod:`kanopy.selection`): by default the class prior, a
    penalised linear logistic model, then the additive network (``lamb`` 1e-3, patience 3),
    the simplest not clearly worse than the best, finer grids while clearly better; each
    network kept at its best validation state, the chosen one refit on every row. Its outputs
    are the logits; the fused C++ objective trains both cross-entropy and BCE. Works in
    Pipeline, GridSearchCV and clone. Needs scikit-learn (>= 1.6).

    Parameters
    ----------
    hidden : "auto" or tuple of int, default "auto"
        Hidden layer sizes, e.g. ``(5,)``; ``()`` is the additive model.
    grids : "auto" or tuple of int, default "auto"
        The grid extension schedule, e.g. ``(3, 10)``.
    steps : int, default 50
        Optimizer steps at each grid.
    optimizer : {"lbfgs", "adam"}, default "lbfgs"
        The optimizer ("lm" minimises sums of squares, which these losses are not).
    k : int, default 3
        Spline order.
    lamb : "auto" or float, default "auto"
        The KAN sparsity regulariser ("auto": 1e-3 for the search's networks, 0 for a fixed
        schedule).
    patience : "auto", int or None, default "auto"
        Early stopping on the validation split after this many steps without improvement;
        "auto": 3 in the search, none for a fixed schedule.
    validation_fraction : float, default 0.2
        Rows held out to choose the network (and for early stopping).
    refit : bool, default True
        Train the chosen network again on all rows with the steps it kept.
    batch_size : int or None, default None
        Rows per batch; None: full batch.
    dtype : {"float64", "float32"}, default "float64"
        Floating-point type of the network.
    loss : {"auto", "cross_entropy", "bce"}, default "auto"
        "auto": binary cross-entropy of one logit for two classes, cross-entropy over one
        logit per class for more; "bce" (two classes only); "cross_entropy" (also for two).
    symbolic : bool, default False
        After fitting, prune, snap every edge to a library function, refit and expose
        ``formula_`` (one sympy expression per logit).
    random_state : int or None, default 0
        Seed of everything (None draws one).
    verbose : bool, default False
        Show progress bars.

    Attributes
    ----------
    classes_ : numpy.ndarray
        The sorted labels.
    model_ : KAN
        The fitted network computing the logits from raw inputs.
    stages_ : list of kanopy.recipe.Stage
        One per grid of its training (empty for the prior or the logistic model).
    selection_ : list
        With a validation split: a summary of every candidate tried, the chosen one marked.
    validation_accuracy_, validation_loss_ : float
        The chosen model's accuracy and mean log loss on the validation rows, before any refit.
    baseline_loss_ : float
        The log loss there of the class prior (a UserWarning says when no model beat it).
    formula_ : list of sympy.Expr
        With ``symbolic=True``: the logit formulas.

    See Also
    --------
    kanopy.KANRegressor : the regressor sharing the recipe.

    Examples
    --------
    >>> import numpy as np
    >>> from kanopy import KANClassifier
    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (200, 2))
    >>> y = np.where(X[:, 0] ** 2 + X[:, 1] > 0.3, "yes", "no")
    >>> clf = KANClassifier(hidden=(), grids=(5,), steps=10).fit(X, y)  # a fixed schedule
    >>> clf.classes_.tolist(), clf.predict_proba(X[:2]).shape
    (['no', 'yes'], (2, 2))
    >>> clf.score(X, y) > 0.9
    True
    """

    _name = "KANClassifier"

    def __init__(self, hidden="auto", grids="auto", steps=50, optimizer="lbfgs", k=3, lamb="auto", patience="auto",
                 validation_fraction=0.2, refit=True, batch_size=None, dtype="float64", loss="auto", symbolic=False,
                 random_state=0, verbose=False):
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
        self.loss = loss
        self.symbolic = symbolic
        self.random_state = random_state
        self.verbose = verbose

    def fit(self, X, y):
        """Fit the classifier on (X, y): the default recipe's search, or the fixed schedule given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training inputs (finite).
        y : array-like of shape (n_samples,)
            Class labels of any kind (at least two classes).

        Returns
        -------
        KANClassifier
            The fitted estimator.

        Raises
        ------
        ValueError
            For one class only, NaN or infinite inputs, mismatched shapes, too few rows, or a bad
            parameter (naming it).

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANClassifier
        >>> X = np.linspace(-1, 1, 80)[:, None]
        >>> KANClassifier(hidden=(), grids=(3,), steps=5, lamb=0.0, patience=None).fit(X, X[:, 0] > 0).classes_
        array([False,  True])
        """
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite=False)
        check_classification_targets(y)  # "Unknown label type" for continuous targets
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has one class only ({_plain(classes[0])!r}): a classifier needs at least 2 classes")
        loss = self._loss_name(len(classes))
        recipe = self._recipe(loss=loss)
        X_t = self._inputs(X, recipe)
        n_logits = 1 if loss == "bce" else len(classes)
        if loss == "bce":  # (N, 1) 0/1 of the second class
            y_t = torch.from_numpy(encoded.astype(np.float64)).to(DTYPES[recipe.dtype]).unsqueeze(1)
        else:  # (N,) class indices
            y_t = torch.from_numpy(encoded.astype(np.int64))
        for name in ("selection_", "validation_accuracy_", "validation_loss_", "baseline_loss_"):
            self.__dict__.pop(name, None)  # from an earlier fit
        self.classes_ = classes
        self.model_ = self._fit_tensors(X_t, y_t, recipe, n_logits)
        return self

    def decision_function(self, X) -> np.ndarray:
        """The logits of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (finite).

        Returns
        -------
        numpy.ndarray
            ``(n_samples,)`` for two classes (the second class's log-odds), else
            ``(n_samples, n_classes)``.

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANClassifier
        >>> X = np.linspace(-1, 1, 80)[:, None]
        >>> clf = KANClassifier(hidden=(), grids=(3,), steps=5, lamb=0.0, patience=None).fit(X, X[:, 0] > 0)
        >>> clf.decision_function([[-0.9], [0.9]]).shape
        (2,)
        """
        logits = self._outputs(X)
        if logits.shape[1] == 1:
            return logits[:, 0].numpy()
        if len(self.classes_) == 2:
            return (logits[:, 1] - logits[:, 0]).numpy()
        return logits.numpy()

    def predict_proba(self, X) -> np.ndarray:
        """The probability of each class, in the order of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (finite).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples, n_classes)``; each row sums to 1.

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANClassifier
        >>> X = np.linspace(-1, 1, 80)[:, None]
        >>> clf = KANClassifier(hidden=(), grids=(3,), steps=5, lamb=0.0, patience=None).fit(X, X[:, 0] > 0)
        >>> bool(np.allclose(clf.predict_proba([[-0.9], [0.9]]).sum(axis=1), 1))
        True
        """
        logits = self._outputs(X)
        if logits.shape[1] == 1:
            p = torch.sigmoid(logits)
            return torch.cat([1 - p, p], dim=1).numpy()
        return torch.softmax(logits, dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (finite).

        Returns
        -------
        numpy.ndarray
            Shape ``(n_samples,)``: labels as given to fit.

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANClassifier
        >>> X = np.linspace(-1, 1, 80)[:, None]
        >>> clf = KANClassifier(hidden=(), grids=(3,), steps=5, lamb=0.0, patience=None).fit(X, X[:, 0] > 0)
        >>> clf.predict([[-0.9], [0.9]]).tolist()
        [False, True]
        """
        logits = self._outputs(X)
        index = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(dim=1)
        return self.classes_[index.numpy()]

    def score(self, X, y, sample_weight=None) -> float:
        """Mean accuracy on (X, y).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Inputs (finite).
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), optional
            Weights of the rows.

        Returns
        -------
        float
            The (weighted) share of rows predicted right.

        Raises
        ------
        ValueError
            When y holds a label fit never saw (no prediction can match it: the data are not
            the classifier's).

        Examples
        --------
        >>> import numpy as np
        >>> from kanopy import KANClassifier
        >>> X = np.linspace(-1, 1, 80)[:, None]
        >>> clf = KANClassifier(hidden=(), grids=(3,), steps=5, lamb=0.0, patience=None).fit(X, X[:, 0] > 0)
        >>> clf.score(X, X[:, 0] > 0) > 0.9
        True
        """
        check_is_fitted(self)
        labels = np.asarray(y).reshape(-1)
        known = np.isin(labels, self.classes_)
        if not known.all():
            row = int(np.argmin(known))
            raise ValueError(f"y has the label {_plain(labels[row])!r} at row {row}, which fit never saw (the "
                             f"classes are {[_plain(c) for c in self.classes_]})")
        return super().score(X, y, sample_weight)

    # ---------------------------------------------------------------------- helpers
    def _loss_name(self, n_classes: int) -> str:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {list(LOSSES)}, got {self.loss!r}")
        if self.loss == "auto":
            return "bce" if n_classes == 2 else "cross_entropy"
        if self.loss == "bce" and n_classes != 2:
            raise ValueError(f"loss='bce' is for two classes, but y has {n_classes}; use loss='cross_entropy'")
        return self.loss

    def _report(self, search, chosen, X_val, y_val) -> None:
        self.validation_accuracy_ = chosen.val_metric
        self.validation_loss_ = chosen.val_loss
        self.baseline_loss_ = search.mean_loss
        if search.no_better_than_mean(chosen):
            warnings.warn(f"KANClassifier: no network predicted the validation rows clearly better than the class "
                          f"frequencies of the training rows (validation log loss {chosen.val_loss:.4g}, prior "
                          f"{search.mean_loss:.4g}); the model chosen is the "
                          f"{chosen.label if chosen.kind != 'kan' else 'network ' + chosen.label}",
                          UserWarning, stacklevel=5)

    def _validation_notes(self) -> dict:
        return {"accuracy": self.validation_accuracy_, "log_loss": self.validation_loss_,
                "baseline_log_loss": self.baseline_loss_, "refit": bool(self.refit),
                "classes": [_plain(c) for c in self.classes_]}


def _plain(label):
    """A label as a plain Python value (numpy scalars -> int, float, str)."""
    return label.item() if hasattr(label, "item") else label
