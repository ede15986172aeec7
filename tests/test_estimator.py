"""KANRegressor: a scikit-learn estimator that fits well, with clear errors on bad data."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from reproduction import assert_reproduced  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import kanopy  # noqa: E402
import kanopy.recipe  # noqa: E402
from kanopy import KANRegressor  # noqa: E402

SMALL = dict(hidden=(3,), grids=(3, 6), steps=10)


def toy(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 3, size=(n, 2))  # not in [-1, 1]: the scaling has work to do
    return X, np.sin(math.pi * X[:, 0] / 2) + 0.3 * X[:, 1] ** 2


def test_passes_scikit_learns_estimator_checks():
    check_estimator(KANRegressor(hidden=(2,), grids=(3,), steps=1), on_skip=None)


def test_fits_a_smooth_function_to_unseen_points():
    X, y = toy(300, seed=0)
    X_test, y_test = toy(300, seed=1)
    est = KANRegressor(**SMALL).fit(X, y)
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    assert rmse < 2e-2 * y.std()
    assert est.score(X_test, y_test) > 0.999
    assert [s.grid for s in est.stages_] == [3, 6] and [s.steps for s in est.stages_] == [10, 10]


def test_scaling_lives_in_the_model_buffers():
    X, y = toy(100, seed=2)
    est = KANRegressor(hidden=(2,), grids=(3,), steps=2).fit(X, y)
    model = est.model_
    np.testing.assert_allclose(model.in_shift.numpy(), (X.max(0) + X.min(0)) / 2, rtol=1e-15)
    np.testing.assert_allclose(model.in_scale.numpy(), (X.max(0) - X.min(0)) / 2, rtol=1e-15)
    np.testing.assert_allclose(model.out_shift.numpy(), [y.mean()], rtol=1e-14)
    np.testing.assert_allclose(model.out_scale.numpy(), [y.std()], rtol=1e-14)
    with torch.no_grad():
        raw = model(torch.from_numpy(X)).numpy()[:, 0]
    assert np.array_equal(est.predict(X), raw)  # nothing happens outside the network


def test_parameters_are_stored_verbatim_and_clone_gives_an_unfitted_copy():
    hidden = [4, 2]
    est = KANRegressor(hidden=hidden, steps=3, random_state=7)
    assert est.get_params()["hidden"] is hidden
    assert est.set_params(steps=5) is est and est.steps == 5
    X, y = toy(60, seed=3)
    assert est.fit(X, y) is est
    assert [sum(w) for w in est.model_.width] == [2, 4, 2, 1]
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "model_")
    with pytest.raises(NotFittedError):
        copy.predict(X)


def test_same_random_state_same_fit_and_a_different_one_differs():
    X, y = toy(80, seed=4)
    a = KANRegressor(hidden=(3,), grids=(3,), steps=3, random_state=1).fit(X, y).predict(X)
    b = KANRegressor(hidden=(3,), grids=(3,), steps=3, random_state=1).fit(X, y).predict(X)
    c = KANRegressor(hidden=(3,), grids=(3,), steps=3, random_state=2).fit(X, y).predict(X)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_works_in_a_pipeline_and_a_grid_search():
    X, y = toy(120, seed=5)
    pipe = make_pipeline(StandardScaler(), KANRegressor(hidden=(3,), grids=(3,), steps=5))
    assert pipe.fit(X, y).score(X, y) > 0.9
    search = GridSearchCV(KANRegressor(grids=(3,), steps=5), {"hidden": [(1,), (4,)]}, cv=2).fit(X, y)
    assert search.best_params_ == {"hidden": (4,)}  # one hidden node cannot add sin(x0) and x1^2
    assert search.best_estimator_.predict(X).shape == (120,)


def test_several_targets_and_column_targets():
    X, y = toy(150, seed=6)
    Y = np.column_stack([y, X[:, 0] * X[:, 1]])
    est = KANRegressor(hidden=(4,), grids=(3, 6), steps=10).fit(X, Y)
    assert est.predict(X).shape == (150, 2) and est.n_outputs_ == 2
    assert est.score(X, Y) > 0.99
    assert KANRegressor(hidden=(2,), grids=(3,), steps=1).fit(X, y[:, None]).predict(X).shape == (150, 1)


@pytest.mark.parametrize("make,match", [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), y),
     r"X contains NaN at row 3, column 1"),
    (lambda X, y: (X, np.where(np.arange(y.size) == 5, np.inf, y)), r"y contains inf at row 5, column 0"),
    (lambda X, y: (X, np.full_like(y, 2.5)), r"y is constant \(every row is 2.5\)"),
    (lambda X, y: (X[:1], y[:1]), "got 1 sample, need at least 2"),
    (lambda X, y: (X[:0], y[:0]), "0 sample"),
    (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
])
def test_bad_training_data_is_refused_naming_what_is_wrong(make, match):
    X, y = toy(20, seed=7)
    with pytest.raises(ValueError, match=match):
        KANRegressor(hidden=(2,), grids=(3,), steps=1).fit(*make(X, y))


def test_column_names_appear_in_messages_and_feature_names_are_kept():
    pd = pytest.importorskip("pandas")
    X, y = toy(20, seed=8)
    frame = pd.DataFrame(X, columns=["mass", "speed"])
    frame.loc[4, "speed"] = np.nan
    with pytest.raises(ValueError, match="X contains NaN at row 4, column 'speed'"):
        KANRegressor(steps=1, grids=(3,)).fit(frame, y)
    est = KANRegressor(hidden=(2,), steps=1, grids=(3,)).fit(frame.fillna(0.0), y)
    assert list(est.feature_names_in_) == ["mass", "speed"]
    assert est.model_.info["features"] == ["mass", "speed"]  # saved with the model, for `kanopy predict`


def test_predict_checks_the_number_of_features_and_bad_values():
    X, y = toy(30, seed=9)
    est = KANRegressor(hidden=(2,), grids=(3,), steps=1).fit(X, y)
    with pytest.raises(ValueError, match="X has 1 features, but KANRegressor is expecting 2 features"):
        est.predict(X[:, :1])
    bad = X.copy()
    bad[2, 0] = -np.inf
    with pytest.raises(ValueError, match="X contains inf at row 2, column 0"):
        est.predict(bad)


@pytest.mark.parametrize("params,match", [
    (dict(grids=(10, 3)), "grids must be .* increasing"), (dict(hidden=(0,)), "hidden"),
    (dict(optimizer="sgd"), "unknown optimizer"), (dict(steps=-1), "steps"), (dict(dtype="float16"), "dtype"),
])
def test_bad_parameters_are_refused_at_fit_naming_the_parameter(params, match):
    est = KANRegressor(**params)  # never at construction (scikit-learn's rule)
    X, y = toy(20, seed=10)
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_import_kanopy_does_not_need_scikit_learn():
    code = ("import sys; sys.modules['sklearn'] = None\n"
            "import kanopy\n"
            "assert 'kanopy.estimator' not in sys.modules\n"
            "try:\n    kanopy.KANRegressor\nexcept ImportError as err:\n    print(err)\n"
            "try:\n    kanopy.KANClassifier\nexcept ImportError as err:\n    print(err)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)  # hang guard
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("KANRegressor needs scikit-learn >= 1.6, as does kanopy.KANClassifier") == 2
    with pytest.raises(AttributeError, match="no attribute 'KANRegresor'"):
        kanopy.KANRegresor  # noqa: B018


def test_symbolic_snapping_gives_the_formula_in_original_units():
    import sympy

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(0, 4, 400), rng.uniform(10, 20, 400)])  # not on [-1, 1]
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
    reg = KANRegressor(hidden=(2,), grids=(3, 10), steps=30, symbolic=True, random_state=0).fit(X, y)
    [expr] = reg.formula_
    assert {str(s) for s in expr.free_symbols} == {"x0", "x1"}  # numpy input: x0, x1, ...
    f = sympy.lambdify(sorted(expr.free_symbols, key=str), expr, "numpy")
    X_new = np.column_stack([rng.uniform(0, 4, 200), rng.uniform(10, 20, 200)])
    truth = np.sin(X_new[:, 0]) + 0.5 * X_new[:, 1]
    assert np.sqrt(np.mean((f(X_new[:, 0], X_new[:, 1]) - truth) ** 2)) < 1e-3
    # predict uses the snapped network; the formula has its constants rounded besides
    assert np.sqrt(np.mean((reg.predict(X_new) - truth) ** 2)) < 1e-2
    assert not hasattr(KANRegressor(hidden=(2,), grids=(3,), steps=2).fit(X, y), "formula_")


# --------------------------------------------------------------------- the default recipe
def noisy_additive(n, seed, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    return X, np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + noise * rng.standard_normal(n)


def test_default_on_diabetes_matches_ridge_on_a_fold_and_stays_in_range():
    """One fold of the 5-fold acceptance run (the whole run is bench/tabular.py)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold

    X, y = load_diabetes(return_X_y=True)
    train, test = next(KFold(5, shuffle=True, random_state=0).split(X))
    kan = make_pipeline(StandardScaler(), KANRegressor()).fit(X[train], y[train])
    ridge = make_pipeline(StandardScaler(), RidgeCV()).fit(X[train], y[train])
    assert kan.score(X[test], y[test]) > ridge.score(X[test], y[test]) - 0.02
    pred = kan.predict(X[test])
    span = y.max() - y.min()
    assert y.min() - span / 2 < pred.min() and pred.max() < y.max() + span / 2
    est = kan[-1]
    assert est.baseline_rmse_ > est.validation_rmse_ and 0 < est.validation_score_ < 1
    labels = [c["label"] for c in est.selection_]
    assert labels[:2] == ["mean", "linear"] and "[10, 1]" in labels  # cheapest first, the additive model among them
    assert sum(c["chosen"] for c in est.selection_) == 1


def test_default_finds_a_clean_function_to_high_accuracy():
    X, y = toy(200, seed=11)
    X_test, y_test = toy(2000, seed=12)
    est = KANRegressor(lamb=0.0).fit(X, y)
    rmse = float(np.sqrt(np.mean((est.predict(X_test) - y_test) ** 2)))
    assert rmse < 1e-4 * y.std()  # no noise: the search goes on to finer grids
    chosen = next(c for c in est.selection_ if c["chosen"])
    assert chosen["grid"] > 3 and chosen["label"] not in ("mean", "linear")


def test_pure_noise_gives_the_mean_and_says_so():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(120, 4)), rng.normal(size=120)
    with pytest.warns(UserWarning, match="no network predicted the validation rows clearly better than the mean"):
        est = KANRegressor().fit(X, y)
    assert next(c for c in est.selection_ if c["chosen"])["label"] == "mean"
    np.testing.assert_allclose(est.predict(rng.normal(size=(5, 4))), y.mean(), rtol=1e-12)  # refit on every row


def test_a_linear_target_gets_the_linear_model_equal_to_ridge():
    from sklearn.linear_model import RidgeCV

    from kanopy.linear import RELATIVE_PENALTIES

    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 3))
    y = X @ [1.5, -2.0, 0.5] + 0.3 * rng.standard_normal(200)
    est = KANRegressor(lamb=0.0).fit(X, y)
    assert next(c for c in est.selection_ if c["chosen"])["label"] == "linear"
    # the refit linear model is ridge on the inputs scaled to [-1, 1], its penalty chosen by leave-one-out
    Z = 2 * (X - X.min(0)) / (X.max(0) - X.min(0)) - 1
    ridge = RidgeCV(alphas=(RELATIVE_PENALTIES * len(X)).numpy()).fit(Z, (y - y.mean()) / y.std())
    X_new = rng.uniform(-1, 1, size=(50, 3))
    Z_new = 2 * (X_new - X.min(0)) / (X.max(0) - X.min(0)) - 1
    inside = (np.abs(Z_new) <= 1).all(axis=1)  # beyond the training range the inputs are clamped
    np.testing.assert_allclose(est.predict(X_new)[inside], ridge.predict(Z_new[inside]) * y.std() + y.mean(),
                               rtol=1e-9, atol=1e-9)


def test_the_search_keeps_each_networks_best_validation_state():
    X, y = noisy_additive(300, seed=3, noise=0.5)
    est = KANRegressor(hidden=(5,), grids=(3, 5), patience=3, refit=False).fit(X, y)
    first = est.stages_[0].history
    assert first.best_step is not None and first.stopped_early  # noisy: it stopped before its 50 steps
    assert len(first) == first.best_step + 3
    # the kept state is the best one: its validation RMSE is the lowest of the fit (or the start)
    assert est.validation_rmse_ <= min(min(s.history.val_rmse) for s in est.stages_) + 1e-12
    train_rows, val_rows = kanopy.recipe.split(300, 0.2, 0)
    pred = est.predict(X[val_rows])
    assert np.sqrt(np.mean((pred - y[val_rows]) ** 2)) == pytest.approx(est.validation_rmse_, rel=1e-12)


def test_grid_extension_stops_when_validation_does_not_improve():
    X, y = noisy_additive(200, seed=4, noise=1.0)
    est = KANRegressor(hidden=(), lamb=0.0, refit=False).fit(X, y)
    tried = [c for c in est.selection_ if c["label"] == "[3, 1]"]
    grids = [c["grid"] for c in tried]
    assert grids == sorted(grids) and len(grids) >= 2 and grids[-1] < 100  # stopped on the way up
    chosen = next(c for c in est.selection_ if c["chosen"])
    assert chosen["grid"] == grids[-2]  # the last grid tried was not kept: the one before it was
    assert est.model_.grid == grids[-2]


def test_outside_the_training_range_predictions_stay_bounded():
    X, y = toy(300, seed=5)
    est = KANRegressor(hidden=(3,), grids=(3, 10), steps=20).fit(X, y)
    far = np.array([[-200.0, 300.0], [50.0, -80.0], [1e6, 0.5]])
    lo, hi = X.min(0), X.max(0)
    edge = np.clip(far, lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))  # 5% of the range beyond the data
    np.testing.assert_array_equal(est.predict(far), est.predict(edge))
    assert not np.array_equal(est.predict(edge), est.predict(np.clip(far, lo, hi)))  # extrapolates up to there


SEARCH = """
import json, sympy, numpy as np
from kanopy import KANRegressor
rng = np.random.default_rng(6)
X = rng.uniform(-2, 2, size=(150, 3))
y = np.sin(X[:, 0]) + 0.5 * X[:, 1] ** 2 + 0.3 * rng.standard_normal(150)
est = KANRegressor(steps=10, lamb=0.0, symbolic=True, random_state=3).fit(X, y)
print(json.dumps({"selection": [[c["label"], c["schedule"], c["val_rmse"].hex()] for c in est.selection_],
                  "formula": [sympy.srepr(f) for f in est.formula_],
                  "predictions": est.predict(X).tobytes().hex()}))
"""


def test_the_search_is_reproducible_from_the_seed():
    """The default search (widths, grids, early stopping), then pruning, snapping and the
    rounded formula: the same choices and bits twice here and pinned to one core."""

    def searched(result):
        assert len(result["selection"]) >= 4 and result["formula"]

    assert_reproduced(SEARCH, searched)


def test_the_default_search_passes_scikit_learns_estimator_checks():
    check_estimator(KANRegressor(steps=2, lamb=0.0), on_skip=None)


def test_a_search_without_validation_rows_is_refused():
    X, y = toy(40, seed=7)
    with pytest.raises(ValueError, match="validation_fraction is 0"):
        KANRegressor(validation_fraction=0).fit(X, y)
    with pytest.raises(ValueError, match="validation_fraction must be a number in"):
        KANRegressor(validation_fraction=1.5).fit(X, y)
    with pytest.raises(ValueError, match="patience must be"):
        KANRegressor(patience=0).fit(X, y)
    with pytest.raises(ValueError, match="lamb must be"):
        KANRegressor(lamb="some").fit(X, y)


def test_more_parameters_than_rows_warns():
    X, y = toy(30, seed=8)
    with pytest.warns(UserWarning, match=r"the network has 375 parameters for 30 training rows"):
        KANRegressor(hidden=(5,), grids=(3, 20), steps=1).fit(X, y)


def test_stages_fit_a_multistage_model_down_to_rounding_error():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 1))
    reg = KANRegressor(stages=3).fit(X, np.sin(3 * X[:, 0]))
    assert isinstance(reg.model_, kanopy.MultiStageKAN) and len(reg.stages_) >= 1
    fresh = np.linspace(X.min(), X.max(), 1001)[:, None]  # inside the training range
    assert np.sqrt(np.mean((reg.predict(fresh) - np.sin(3 * fresh[:, 0])) ** 2)) < 1e-9  # against the closed form
    assert reg.validation_rmse_ < 1e-9 and reg.model_.info["validation"]["rmse"] == reg.validation_rmse_


@pytest.mark.parametrize("options, named", [({"stages": 0}, "stages"), ({"stages": 2.5}, "stages"),
                                            ({"stages": 2, "symbolic": True}, "symbolic"),
                                            ({"stages": 2, "dtype": "float32"}, "float64"),
                                            ({"stages": 2, "validation_fraction": 0}, "validation_fraction")])
def test_stages_refuse_what_cannot_apply(options, named):
    X = np.linspace(-1, 1, 50)[:, None]
    with pytest.raises(ValueError, match=named):
        KANRegressor(**options).fit(X, X[:, 0] ** 2)
