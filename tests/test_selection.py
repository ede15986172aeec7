"""The default recipe's search (kanopy.selection) and its closed-form candidates (kanopy.linear),
against independent references: scikit-learn's RidgeCV, hand-computed statistics, a replay."""

import math

import numpy as np
import pytest
import torch

from kanopy import basis, recipe
from kanopy.linear import RELATIVE_PENALTIES, greville, linear_kan
from kanopy.selection import Candidate, Search, clearly_better, simplest_close_to_best


def candidate(errors, kind="kan", label="net", steps=5):
    return Candidate(label=label, kind=kind, model=None, schedule=[(3, steps)],
                     errors=torch.as_tensor(errors, dtype=torch.float64))


def test_clearly_better_is_a_paired_one_standard_error_test_with_a_one_percent_floor():
    rng = np.random.default_rng(0)
    old = rng.uniform(0.5, 1.5, 50)
    for shift in (0.0, 0.01, 0.05, 0.2):
        new = old - shift + 0.1 * rng.standard_normal(50)
        d = old - new
        expected = d.mean() > d.std(ddof=1) / math.sqrt(50) and d.mean() > 0.01 * old.mean()
        assert clearly_better(candidate(new), candidate(old)) == expected
    tiny = old * (1 - 0.005)  # 0.5% better on every row: significant, but under the 1% floor
    assert not clearly_better(candidate(tiny), candidate(old))
    assert clearly_better(candidate(old * 0.9), candidate(old))
    assert not clearly_better(candidate([0.1]), candidate([5.0]))  # one row cannot tell


def test_the_choice_is_the_simplest_not_clearly_worse_than_the_best():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.5, 1.5, 40)
    mean = candidate(base * 2.0, kind="mean", label="mean")
    simple = candidate(base * 1.005 + 0.02 * rng.standard_normal(40), label="simple")  # as good as the best
    best = candidate(base, label="best")
    assert simplest_close_to_best([mean, simple, best]) is simple
    assert simplest_close_to_best([mean, best]) is best
    untrained = candidate(base * 0.5, label="untrained", steps=0)  # its kept state is its random start
    assert simplest_close_to_best([mean, simple, best, untrained]) is simple


def test_ridge_matches_scikit_learns_ridgecv_per_output():
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(2)
    X = rng.uniform(-3, 5, size=(80, 4))
    Y = np.column_stack([X @ [1.0, -2.0, 0.5, 0.0], np.sin(X[:, 0])]) + 0.5 * rng.standard_normal((80, 2))
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    model = recipe.start(Xt, Yt, recipe.Recipe(), width=[4, 2], grid=1)
    penalties = linear_kan(model, Xt, Yt)
    Z = model.scaled_inputs(Xt).numpy()
    T = ((Yt - model.out_shift) / model.out_scale).numpy()
    reference = sklearn_linear.RidgeCV(alphas=(RELATIVE_PENALTIES * 80).numpy(), alpha_per_target=True).fit(Z, T)
    np.testing.assert_allclose(penalties.numpy(), reference.alpha_, rtol=1e-12)
    with torch.no_grad():
        predicted = model(Xt).numpy()
    np.testing.assert_allclose(predicted, reference.predict(Z) * model.out_scale.numpy() + model.out_shift.numpy(),
                               rtol=1e-10, atol=1e-10)
    linear_kan(model, Xt, Yt, mean_only=True)
    with torch.no_grad():
        np.testing.assert_allclose(model(Xt[:3]).numpy(), np.broadcast_to(Y.mean(axis=0), (3, 2)), rtol=1e-13)


def test_greville_abscissae_reproduce_the_identity():
    knots = basis.uniform_knots(-1.0, 1.0, 4, 3, 2, dtype=torch.float64)
    knots[1] = torch.sort(knots[1] + 0.05 * torch.sin(torch.arange(knots.shape[1], dtype=torch.float64))).values
    x = torch.linspace(-1, 1, 101, dtype=torch.float64)[:, None].expand(-1, 2)
    reproduced = (basis.dense_basis(x, knots, 3) * greville(knots, 3)).sum(dim=-1)  # sum_m xi_m B_m(x)
    torch.testing.assert_close(reproduced, x, rtol=0, atol=1e-13)


def toy(n, seed, noise):
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, 2, generator=g, dtype=torch.float64) * 4 - 2
    y = torch.sin(X[:, :1]) * X[:, 1:] + noise * torch.randn(n, 1, generator=g, dtype=torch.float64)
    return X, y


def test_refit_on_the_same_rows_replays_the_chosen_network_exactly():
    X, y = toy(200, 0, noise=0.05)
    train, val = recipe.split(200, 0.2, 0)
    search = Search(X[train], y[train], X[val], y[val], recipe.Recipe(steps=15, lamb=0.0))
    chosen = search.run()
    assert chosen.kind == "kan" and chosen.steps > 0  # a product needs a hidden layer
    replay, stages = search.refit(X[train], y[train])
    assert [s.grid for s in stages] == [g for g, _ in chosen.schedule]
    assert [s.steps for s in stages] == [n for _, n in chosen.schedule]
    with torch.no_grad():
        assert torch.equal(replay(X), chosen.model(X))
    assert [c.chosen for c in search.candidates].count(True) == 1 and search.chosen is chosen


def test_the_search_handles_several_outputs_and_records_what_it_tried():
    X, y = toy(150, 1, noise=0.1)
    Y = torch.cat([y, X[:, :1] ** 2], dim=1)
    train, val = recipe.split(150, 0.2, 1)
    seen = []
    search = Search(X[train], Y[train], X[val], Y[val], recipe.Recipe(steps=5, lamb=0.0, seed=1),
                    on_candidate=seen.append)
    chosen = search.run()
    assert seen == search.candidates and chosen.width[-1] == 2
    assert [c.label for c in search.candidates[:3]] == ["mean", "linear", "[2, 2]"]
    for c in search.candidates:  # each candidate's reported error is its model's, on the validation rows
        with torch.no_grad():
            rmse = float(torch.sqrt(torch.mean((c.model(X[val]) - Y[val]) ** 2)))
        assert c.val_rmse == pytest.approx(rmse, rel=1e-12)
        assert c.parameters <= len(train) or c.kind != "kan"


def test_a_search_without_validation_rows_is_refused():
    X, y = toy(30, 2, noise=0.1)
    with pytest.raises(ValueError, match="needs validation rows"):
        Search(X, y, None, None, recipe.Recipe())


def test_a_network_that_swings_out_between_sparse_rows_is_never_chosen():
    # a skewed input (most rows near 0, a few far out), as incomes are: a spline interval
    # holds no row, and a network can fit every row yet swing far out inside that interval
    g = torch.Generator().manual_seed(0)
    near = torch.rand(95, 1, generator=g, dtype=torch.float64)
    far = 4 + torch.rand(5, 1, generator=g, dtype=torch.float64)
    x = torch.cat([near, far])
    x = x[torch.randperm(100, generator=g)]  # far rows in both the training and the validation rows
    y = 0.5 * x + 0.05 * torch.randn(100, 1, generator=g, dtype=torch.float64)
    search = Search(x[:80], y[:80], x[80:], y[80:], recipe.Recipe(steps=5, lamb=0.0))
    model = recipe.start(x[:80], y[:80], search.recipe, width=[1, 1], grid=20)
    linear_kan(model, x[:80], y[:80])
    assert not search.goes_wild(model)  # a line stays inside the targets' range over the data
    with torch.no_grad():  # a bump of height 10 (the targets span about 2.5) in the empty interval [2, 3]
        layer = model.layers[0]
        z = model.scaled_inputs(torch.tensor([[2.5]], dtype=torch.float64))
        values, start = basis.local_basis(z, layer.knots, layer.k)  # (1, 1, k+1), (1, 1)
        r = int(values[0, 0].argmax())  # the basis function centred nearest 2.5: support about [2, 3]
        height = 10 / float(model.out_scale) / float(values[0, 0, r]) / float(layer.scale_sp[0, 0])
        layer.coef[0, int(start) + r, 0] += height
    with torch.no_grad():
        rows = torch.cat([x[:80], x[80:]])
        assert float((model(rows) - y).abs().max()) < 1.0  # the rows themselves stay well fitted
    assert search.goes_wild(model)
    wild = Candidate(label="wild", kind="kan", model=model, schedule=[(5, 5)], wild=True,
                     errors=torch.full((20,), 0.001, dtype=torch.float64))
    line = candidate(torch.full((20,), 0.01), kind="linear", label="linear")
    assert not wild.usable and simplest_close_to_best([line, wild]) is line
