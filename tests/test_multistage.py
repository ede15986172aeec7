"""Multi-stage fitting: stages on normalised residuals reach float64 rounding on smooth 1-D
functions; the model is one nn.Module (predict, prune, plot, formula, safe files)."""

import json
import math

import numpy as np
import pytest
import sympy
import torch
from conftest import uniform_samples
from safetensors import safe_open

import kanopy
from kanopy import KAN, ModelFileError, MultiStageKAN, fit_multistage, frequency


def wang_lai(x):
    return torch.log(x + 2) * torch.cos(2 * x + x**3)


def rmse(model, X, y) -> float:
    with torch.no_grad():
        return float(((model(X) - y) ** 2).mean().sqrt())


@pytest.fixture(scope="module")
def one_d():
    X, X_test = uniform_samples(6000, 1, seed=1), uniform_samples(3000, 1, seed=2)
    model = fit_multistage(X, wang_lai(X), stages=4, seed=0)
    return model, X, X_test


def test_stages_reach_float64_rounding_on_fresh_points(one_d):
    model, _, X_test = one_d
    assert rmse(model, X_test, wang_lai(X_test)) <= 1e-13  # a single stage stalls orders above
    kept = [r for r in model.reports if r.kept]
    assert len(model.stages) == len(kept) >= 2
    assert kept[0].val_rmse > 1e3 * kept[-1].val_rmse


def test_a_bessel_function_reaches_rounding_with_its_grid_from_the_periodogram():
    import scipy.special

    def j0(X):  # scipy's J0: torch.special.bessel_j0 is off by up to 4e-7 near |x| = 5
        return torch.from_numpy(scipy.special.j0(20 * X.numpy()))

    X, X_test = uniform_samples(8000, 1, seed=8), uniform_samples(3000, 1, seed=9)
    model = fit_multistage(X, j0(X), stages=4, seed=0)
    assert rmse(model, X_test, j0(X_test)) <= 1e-13
    # J0(20x) ~ cos(20x - pi/4): 20 / pi = 6.4 cycles over [-1, 1], 9 intervals a cycle
    assert 45 <= model.stages[0].grid <= 70


def test_each_stage_fits_the_normalised_residual_of_the_ones_before(one_d):
    model, X, _ = one_d
    y = wang_lai(X)
    with torch.no_grad():
        residual = y.clone()
        for stage, report in zip(model.stages, model.reports):
            # the stage's output map carries the RMS of the residual it was fitted to ...
            centred = residual - residual.mean()
            assert float(stage.out_scale) == pytest.approx(float(centred.pow(2).mean().sqrt()), rel=0.05)
            assert report.scale == pytest.approx(float(stage.out_scale), rel=1e-12)
            # ... and leaves a residual far smaller than that scale
            residual = residual - stage(X)
            assert float(residual.pow(2).mean().sqrt()) < 1e-3 * report.scale
    # each grid comes from the residual's frequency content, nested in the one before
    grids = [stage.grid for stage in model.stages]
    assert all(b % a == 0 and b > a for a, b in zip(grids, grids[1:]))


def test_the_model_is_the_sum_of_its_stages_and_predicts_numpy(one_d):
    model, _, X_test = one_d
    with torch.no_grad():
        total = sum(stage(X_test) for stage in model.stages)
        assert torch.allclose(model(X_test), total, rtol=0, atol=1e-15)
    pred = model.predict(X_test.numpy())
    assert isinstance(pred, np.ndarray) and pred.shape == (X_test.shape[0],)
    np.testing.assert_allclose(pred, wang_lai(X_test)[:, 0].numpy(), rtol=0, atol=1e-12)
    assert isinstance(model, torch.nn.Module) and model.num_parameters() == sum(
        s.num_parameters() for s in model.stages)


def test_save_and_load_round_trip_with_a_new_format_version(one_d, tmp_path):
    model, _, X_test = one_d
    model.info = {"target": "f"}
    path = tmp_path / "multi.kan"
    model.save(path)
    loaded = kanopy.load(path)
    assert isinstance(loaded, MultiStageKAN) and loaded.info == {"target": "f"}
    with torch.no_grad():
        assert torch.equal(loaded(X_test), model(X_test))
    assert [r.grid for r in loaded.reports] == [r.grid for r in model.reports]
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format_version"] == "2" and json.loads(meta["config"])["kind"] == "multistage"
    # plain KANs keep version 1, so older kanopy versions still read them
    plain = tmp_path / "plain.kan"
    KAN([1, 1], grid=3, seed=0).save(plain)
    with safe_open(str(plain), framework="pt") as f:
        assert f.metadata()["format_version"] == "1"
    assert kanopy.io.read_metadata(path)["config"]["kind"] == "multistage"


def test_unknown_model_kinds_and_versions_are_refused(tmp_path):
    from safetensors.torch import save_file

    model = MultiStageKAN([KAN([1, 1], grid=3, seed=0)])
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    for version, kind, message in (("2", "mystery", "unknown model kind"), ("3", "multistage", "version")):
        config = dict(model.config(), kind=kind)
        path = tmp_path / f"{kind}{version}.kan"
        save_file(tensors, str(path), metadata={"format": "kanopy", "format_version": version,
                                               "config": json.dumps(config)})
        with pytest.raises(ModelFileError, match=message):
            kanopy.load(path)


def test_formula_is_the_sum_of_the_stage_formulas():
    x = sympy.Symbol("x", real=True)
    first, second = KAN([1, 1], grid=3, seed=0), KAN([1, 1], grid=3, seed=1)
    first.fix_symbolic(0, 0, 0, "sin", fit=False)
    second.fix_symbolic(0, 0, 0, "x^2", fit=False)
    with torch.no_grad():
        first.out_scale.fill_(2.0)
        second.out_scale.fill_(1e-3)
        second.out_shift.fill_(0.5)
    model = MultiStageKAN([first, second])
    [expr] = model.symbolic_formula(var_names=["x"])
    assert float(expr.coeff(sympy.sin(x))) == pytest.approx(2.0, rel=1e-14)
    assert float(expr.coeff(x, 2)) == pytest.approx(1e-3, rel=1e-14)
    assert float(expr.subs({sympy.sin(x): 0, x: 0})) == pytest.approx(0.5, rel=1e-14)
    X = uniform_samples(50, 1, seed=3)
    with torch.no_grad():
        numeric = model(X)[:, 0].numpy()
    np.testing.assert_allclose(sympy.lambdify(x, expr, "numpy")(X[:, 0].numpy()), numeric, rtol=1e-12, atol=1e-12)


def test_prune_and_plot_work_per_stage(one_d, tmp_path):
    model, X, X_test = one_d
    pruned = model.prune(X)
    assert isinstance(pruned, MultiStageKAN) and len(pruned.stages) == len(model.stages)
    assert rmse(pruned, X_test, wang_lai(X_test)) <= 1e-12
    fig = model.plot(tmp_path / "stages.png")
    assert (tmp_path / "stages.png").stat().st_size > 0 and len(fig.axes) == len(model.stages)


def test_several_inputs_use_network_stages_fitted_by_lm():
    X, X_test = uniform_samples(1500, 2, seed=4), uniform_samples(2000, 2, seed=5)

    def f(X):
        return torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2

    model = fit_multistage(X, f(X), stages=2, width=[2, 1], grids=(3, 5), steps=5, max_grid=20, seed=0)
    assert rmse(model, X_test, f(X_test)) < 1e-7  # LM on order-5 splines, grid refined from 5 to 20
    assert model.reports[0].solver == "LBFGS + LM" and model.stages[0].k == 5


@pytest.mark.parametrize("bad, message", [
    (dict(stages=0), "stages"),
    (dict(width=[3, 1]), "width"),
    (dict(X_val=np.zeros((3, 2))), "X_val and y_val"),
])
def test_bad_arguments_are_named(bad, message):
    X = uniform_samples(50, 2, seed=6)
    with pytest.raises(ValueError, match=message):
        fit_multistage(X, X[:, :1], **bad)


def test_bad_data_is_refused():
    X = uniform_samples(50, 1, seed=7)
    y = X.clone()
    y[3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN at row 3"):
        fit_multistage(X, y)
    with pytest.raises(ValueError, match="constant"):
        fit_multistage(X, torch.ones_like(X))


def test_periodogram_matches_a_direct_least_squares_fit_of_a_sinusoid():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, 1500)
    r = np.sin(2 * np.pi * 7.3 * x + 0.4) + 0.3 * np.cos(2 * np.pi * 2.1 * x)
    assert frequency.dominant_frequency(x, r) == pytest.approx(7.3, abs=0.25)
    freqs, power = frequency.periodogram(x, r, max_frequency=50)  # all samples used
    centred = r - r.mean()
    for i in (3, len(freqs) // 2, int(np.argmax(power))):  # second implementation: numpy lstsq
        w = 2 * np.pi * freqs[i]
        A = np.column_stack([np.cos(w * (x - x.min())), np.sin(w * (x - x.min()))])
        coef, *_ = np.linalg.lstsq(A, centred, rcond=None)
        explained = centred @ (A @ coef)  # = |A coef|^2 for a least-squares projection
        assert power[i] == pytest.approx(explained / (centred @ centred), rel=1e-9, abs=1e-12)
    assert frequency.sign_changes(x, np.sin(2 * np.pi * 3 * x)) == 11  # zeros at k/6, |k| < 6
