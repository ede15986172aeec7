"""refine_and_fit, the one grid-extension loop: checked against the loop written out by hand
(the same bits), and its hooks (scores, patience, before, after) on a small network."""

import pytest
import torch
from conftest import uniform_samples

from kanopy import KAN
from kanopy.schedule import refine_and_fit


def data():
    X = uniform_samples(120, 2, seed=3)
    return X, torch.sin(2 * X[:, :1]) + X[:, 1:] ** 2


def params(model):
    return {name: value.clone() for name, value in model.state_dict().items()}


def test_the_schedule_is_the_hand_written_loop():
    X, y = data()
    grids, steps, optimizers = (3, 5, 10), (4, 3, 2), ("lbfgs", "adam", "lm")
    by_hand = KAN([2, 1], grid=3, seed=1)
    for grid, n, optimizer in zip(grids, steps, optimizers):
        if grid != by_hand.grid:
            by_hand.refine(grid)
        by_hand.fit(X, y, steps=n, optimizer=optimizer, progress=False)
    model = KAN([2, 1], grid=3, seed=1)
    seen = []
    result = refine_and_fit(model, X, y, grids, steps, optimizers, progress=False,
                            callback=lambda grid, step, history: seen.append((grid, step)))
    assert result.model is model and model.grid == 10
    assert [(s.grid, s.steps) for s in result.stages] == list(zip(grids, steps))
    assert seen == [(g, s) for g, n in zip(grids, steps) for s in range(1, n + 1)]
    expected = params(by_hand)
    for name, value in params(model).items():
        assert torch.equal(value, expected[name]), name


def test_the_best_scoring_grid_is_kept_and_patience_ends_the_schedule():
    X, y = data()
    scores = iter([3.0, 1.0, 2.0, float("nan"), 0.5])
    model = KAN([2, 1], grid=3, seed=0)
    at_best = {}

    def score(m):
        value = next(scores)
        at_best[value] = m(X).detach().clone()
        return value

    result = refine_and_fit(model, X, y, (3, 5, 10, 20, 40), 2, score=score, patience=2, progress=False)
    # 2.0 and NaN are no better than 1.0: two grids without improvement end it at grid 20
    assert [s.grid for s in result.stages] == [3, 5, 10, 20] and result.scores[:3] == [3.0, 1.0, 2.0]
    assert result.model is not model and result.model.grid == 5 and model.grid == 20
    assert torch.equal(result.model(X).detach(), at_best[1.0])
    # without patience every grid is trained; the best is still kept
    model = KAN([2, 1], grid=3, seed=0)
    values = iter([2.0, 1.0, 3.0])
    result = refine_and_fit(model, X, y, (3, 5, 10), 2, score=lambda m: next(values), progress=False)
    assert model.grid == 10 and result.model.grid == 5


def test_before_can_end_and_after_can_replace_the_model():
    X, y = data()
    model = KAN([2, 3, 1], grid=3, seed=0)
    replacement = KAN([2, 1], grid=5, seed=1)
    result = refine_and_fit(model, X, y, (3, 5, 10, 20), 1, progress=False,
                            before=lambda grid: grid < 10,
                            after=lambda m, stage: replacement if stage.grid == 3 else None)
    assert [s.grid for s in result.stages] == [3, 5]
    assert result.model is replacement and replacement.fit_state["step"] == 1 and model.grid == 3


def test_one_value_per_grid_or_one_for_all():
    X, y = data()
    with pytest.raises(ValueError, match="steps: 2 values for 3 grids"):
        refine_and_fit(KAN([2, 1], grid=3), X, y, (3, 5, 10), (1, 2))
    with pytest.raises(ValueError, match="optimizer: 1 values for 2 grids"):
        refine_and_fit(KAN([2, 1], grid=3), X, y, (3, 5), 1, ["lm"])
