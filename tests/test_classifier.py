"""KANClassifier: scikit-learn's classifier contract, labels of any kind, probabilities that
agree with the network's logits, and clear errors on bad data."""

import os

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_iris  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GridSearchCV, train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import kanopy  # noqa: E402
from kanopy import KANClassifier, KANRegressor  # noqa: E402

SMALL = dict(hidden=(2,), grids=(3,), steps=3)


def rings(n, seed):
    """Two classes on concentric rings (no linear boundary), labelled with strings."""
    rng = np.random.default_rng(seed)
    radius = np.where(rng.random(n) < 0.5, 0.5, 1.5) + 0.1 * rng.standard_normal(n)
    angle = rng.uniform(0, 2 * np.pi, n)
    X = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return X, np.where(radius > 1.0, "outer", "inner")


def test_passes_scikit_learns_estimator_checks():
    check_estimator(KANClassifier(**SMALL), on_skip=None)


@pytest.mark.skipif(os.environ.get("KANOPY_SLOW", "") in ("", "0"),
                    reason="minutes on 2 cores (a full search per fit): run with KANOPY_SLOW=1")
def test_passes_scikit_learns_estimator_checks_with_its_defaults():
    check_estimator(KANClassifier(), on_skip=None)


def test_string_labels_probabilities_and_decisions_agree_with_the_logits():
    X, y = rings(300, seed=0)
    X_test, y_test = rings(300, seed=1)
    est = KANClassifier(hidden=(), grids=(5,), steps=20).fit(X, y)
    assert list(est.classes_) == ["inner", "outer"]
    assert est.score(X_test, y_test) > 0.97  # a logistic regression cannot beat 0.5 + noise here
    with torch.no_grad():
        logit = est.model_(torch.from_numpy(X_test)).numpy()  # (N, 1): bce for two classes
    assert logit.shape == (300, 1)
    np.testing.assert_allclose(est.decision_function(X_test), logit[:, 0], rtol=0, atol=0)
    p = 1 / (1 + np.exp(-logit[:, 0]))
    np.testing.assert_allclose(est.predict_proba(X_test), np.column_stack([1 - p, p]), rtol=1e-12, atol=1e-15)
    assert np.array_equal(est.predict(X_test), np.where(logit[:, 0] > 0, "outer", "inner"))


def test_two_classes_with_two_logits_and_several_classes():
    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=0.3, random_state=0, stratify=y)
    est = KANClassifier(hidden=(), grids=(3,), steps=10).fit(X_train, y_train)
    logits = est.decision_function(X_test)
    assert logits.shape == (len(X_test), 3)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(est.predict_proba(X_test), e / e.sum(axis=1, keepdims=True), rtol=1e-12)
    assert np.array_equal(est.predict(X_test), est.classes_[logits.argmax(axis=1)])
    assert est.score(X_test, y_test) >= 0.9
    binary = labels != "setosa"
    two = KANClassifier(hidden=(), grids=(3,), steps=10, loss="cross_entropy").fit(X, binary)
    assert two.model_.n_outputs == 2 and two.decision_function(X).shape == (150,)
    one = KANClassifier(hidden=(), grids=(3,), steps=10, loss="bce").fit(X, binary)
    assert one.model_.n_outputs == 1
    assert two.score(X, binary) == one.score(X, binary) == 1.0  # setosa is linearly separable


def test_defaults_generalise_like_a_logistic_regression_on_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    est = KANClassifier().fit(X_train, y_train)
    logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X_train, y_train)
    assert est.score(X_test, y_test) >= logistic.score(X_test, y_test) - 0.03
    chosen = [c for c in est.selection_ if c["chosen"]]
    assert len(chosen) == 1 and est.validation_loss_ < est.baseline_loss_
    assert 0.5 < est.validation_accuracy_ <= 1


def test_clone_pipeline_and_grid_search():
    X, y = rings(200, seed=2)
    est = KANClassifier(hidden=(), grids=(3,), steps=5, random_state=3)
    copy = clone(est)
    assert copy.get_params() == est.get_params() and not hasattr(copy, "classes_")
    pipe = make_pipeline(StandardScaler(), KANClassifier(hidden=(), grids=(5,), steps=10)).fit(X, y)
    assert pipe.score(X, y) > 0.95
    rng = np.random.default_rng(6)
    X = rng.uniform(-1, 1, size=(200, 2))
    xor = np.sign(X[:, 0] * X[:, 1])
    search = GridSearchCV(KANClassifier(grids=(3,), steps=10), {"hidden": [(), (2,)]}, cv=2).fit(X, xor)
    assert search.best_params_ == {"hidden": (2,)}  # a sum of functions of x0 and x1 alone cannot be xor
    assert search.best_estimator_.predict(X).shape == (200,)


def test_same_random_state_same_fit():
    X, y = rings(100, seed=4)
    a = KANClassifier(**SMALL, random_state=1).fit(X, y).predict_proba(X)
    b = KANClassifier(**SMALL, random_state=1).fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)


def test_bad_input_is_refused_naming_the_problem():
    X, y = rings(40, seed=5)
    with pytest.raises(ValueError, match=r"one class only \('inner'\)"):
        KANClassifier(**SMALL).fit(X, np.full(40, "inner"))
    with pytest.raises(ValueError, match="Unknown label type"):
        KANClassifier(**SMALL).fit(X, X[:, 0])  # continuous targets are for the regressor
    with pytest.raises(ValueError, match="KANRegressor needs numeric targets, but y holds text labels"):
        KANRegressor(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="optimizer 'lm' minimises a sum of squares, and loss 'bce'"):
        KANClassifier(**SMALL, optimizer="lm").fit(X, y)
    with pytest.raises(ValueError, match="loss='bce' is for two classes, but y has 3"):
        KANClassifier(**SMALL, loss="bce").fit(X, np.arange(40) % 3)
    with pytest.raises(ValueError, match="X contains NaN at row 2, column 1"):
        KANClassifier(**SMALL).fit(np.where(np.arange(80).reshape(40, 2) == 5, np.nan, X), y)
    fitted = KANClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match=r"y has the label 'middle' at row 3, which fit never saw \(the classes are "
                                         r"\['inner', 'outer'\]\)"):
        fitted.score(X, np.where(np.arange(40) == 3, "middle", y))
    assert fitted.score(X, y) == np.mean(fitted.predict(X) == y)
    model = kanopy.KAN([2, 1], grid=3, seed=0)
    with pytest.raises(ValueError, match="loss='cross_entropy' needs one network output per class"):
        model.fit(X, (y == "outer").astype(int), loss="cross_entropy", steps=1, progress=False)
    two = kanopy.KAN([2, 2], grid=3, seed=0)
    with pytest.raises(ValueError, match="optimizer 'lm' minimises a sum of squares, and loss 'cross_entropy'"):
        two.fit(X, (y == "outer").astype(int), loss="cross_entropy", optimizer="lm", steps=1, progress=False)
