"""Resuming: a fit continued from a saved model equals the uninterrupted fit; Ctrl-C leaves a
model that is exactly the one after its last completed step."""

import math
import signal

import pytest
import torch
from conftest import uniform_samples

import kanopy
from kanopy import KAN, kernels, recipe, schedule
from kanopy.objectives import DataObjective

TOL = 1e-12


def toy(n=200, seed=0):
    X = uniform_samples(n, 2, seed=seed)
    return X, torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)


def assert_same(a, b, X, tol=TOL):
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert p.shape == q.shape, name
        assert float((p - q).abs().max()) <= tol, name
    with torch.no_grad():
        assert float((a(X) - b(X)).abs().max()) <= tol


def saved_and_loaded(model, tmp_path):
    path = tmp_path / "model.kan"
    model.save(path)
    return kanopy.load(path)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs", "lm"])
def test_resuming_from_a_file_equals_the_uninterrupted_fit(tmp_path, optimizer):
    X, y = toy()
    options = dict(optimizer=optimizer, progress=False)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    history = whole.fit(X, y, steps=12, **options)

    first = KAN([2, 3, 1], grid=5, seed=1)
    first.fit(X, y, steps=7, **options)
    resumed = saved_and_loaded(first, tmp_path)
    rest = resumed.fit(X, y, steps=5, resume=True, **options)
    assert_same(resumed, whole, X)
    assert rest.step == [8, 9, 10, 11, 12]
    assert rest.train_rmse == pytest.approx(history.train_rmse[7:], rel=0, abs=TOL)
    assert resumed.fit_state["step"] == whole.fit_state["step"] == 12


def test_minibatch_sampling_continues_after_loading(tmp_path):
    X, y = toy()
    options = dict(optimizer="adam", batch_size=50, seed=4, progress=False)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    whole.fit(X, y, steps=10, **options)
    first = KAN([2, 3, 1], grid=5, seed=1)
    first.fit(X, y, steps=4, **options)
    resumed = saved_and_loaded(first, tmp_path)
    resumed.fit(X, y, steps=6, resume=True, **options)
    assert_same(resumed, whole, X)


def test_grid_updates_follow_the_global_step_count_after_loading(tmp_path, monkeypatch):
    """Grids move every 5 steps counted from the start of the fit: a fit resumed after 7
    steps updates at step 10 (not at its own steps 0 and 5)."""
    X, y = toy()
    events = []
    original = KAN.update_grid

    def spy(self, x, grid_eps=None):
        events.append("grid")
        return original(self, x, grid_eps)

    monkeypatch.setattr(KAN, "update_grid", spy)

    def updates(history_steps):
        """Global step numbers (0-based) at which the grid moved, from the event log."""
        out, done = [], history_steps
        for event in events:
            if event == "grid":
                out.append(done)
            else:
                done = event
        events.clear()
        return out

    log = lambda step, history: events.append(step)  # noqa: E731
    options = dict(grid_update_every=5, stop_grid_update_step=12, progress=False, callback=log)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    whole.fit(X, y, steps=15, **options)
    assert updates(0) == [0, 5, 10]
    first = KAN([2, 3, 1], grid=5, seed=1)
    first.fit(X, y, steps=7, **options)
    assert updates(0) == [0, 5]
    resumed = saved_and_loaded(first, tmp_path)
    resumed.fit(X, y, steps=8, resume=True, **options)
    assert updates(7) == [10]
    assert_same(resumed, whole, X)


class InterruptAt:
    """Raise KeyboardInterrupt, as Ctrl-C does, at the n-th evaluation of the objective;
    ``count`` evaluations are counted either way. A whole LBFGS step run in C++ counts as one
    evaluation, and the interrupt comes right after it returned (where Python would see a
    Ctrl-C pressed during it), with the parameters and the optimizer state already moved."""

    def __init__(self, monkeypatch, n=None):
        self.n, self.count = n, 0
        original = DataObjective.evaluate
        original_step = kernels.FusedObjective.lbfgs_step

        def evaluate(objective):
            self.count += 1
            if self.count == self.n:
                raise KeyboardInterrupt
            return original(objective)

        def lbfgs_step(fused, *args):
            self.count += 1
            result = original_step(fused, *args)
            if self.count == self.n:
                raise KeyboardInterrupt
            return result

        monkeypatch.setattr(DataObjective, "evaluate", evaluate)
        monkeypatch.setattr(kernels.FusedObjective, "lbfgs_step", lbfgs_step)


@pytest.mark.parametrize("optimizer,options", [("adam", dict(batch_size=64, seed=3)), ("lbfgs", {})])
@pytest.mark.parametrize("stop_in", [3, 5])  # step 5 moves the grid before it is interrupted
def test_ctrl_c_undoes_the_unfinished_step_and_the_fit_resumes_exactly(tmp_path, monkeypatch, optimizer, options,
                                                                       stop_in):
    X, y = toy()
    options = dict(optimizer=optimizer, progress=False, **options)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    whole.fit(X, y, steps=9, **options)
    done = KAN([2, 3, 1], grid=5, seed=1)  # what an interruption in step `stop_in` must leave
    counter = InterruptAt(monkeypatch)
    done.fit(X, y, steps=stop_in, **options)
    fused = kernels.FusedObjective.build(done)
    fused_steps = optimizer == "lbfgs" and fused is not None and fused.has_lbfgs
    inside = 1 if optimizer == "adam" or fused_steps else 3
    counter.count, counter.n = 0, counter.count + inside  # inside the next step

    model = KAN([2, 3, 1], grid=5, seed=1)
    seen = []
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, steps=9, callback=lambda step, history: seen.append(history), **options)
    assert counter.count == counter.n  # it did stop inside the step
    assert len(seen[-1]) == stop_in and model.fit_state["step"] == stop_in
    assert_same(model, done, X, tol=0.0)
    assert all(p.requires_grad and p.grad is None for p in model.parameters() if p.requires_grad)

    counter.n = None
    resumed = saved_and_loaded(model, tmp_path)
    resumed.fit(X, y, steps=9 - stop_in, resume=True, **options)
    assert_same(resumed, whole, X)


@pytest.mark.parametrize("stop_at", [(3, 4), (5, 1), (5, 3)])
def test_a_recipe_interrupted_saved_and_trained_again_ends_where_the_whole_run_does(tmp_path, stop_at):
    X, y = toy()
    X_val, y_val = toy(50, seed=5)
    plan = recipe.Recipe(hidden=(3,), grids=(3, 5), steps=5)
    whole = recipe.start(X, y, plan)
    stages = recipe.train(whole, X, y, plan, X_val=X_val, y_val=y_val)
    assert [s.grid for s in stages] == [3, 5] and [s.steps for s in stages] == [5, 5]

    def interrupt(grid, step, history):
        if (grid, step) == stop_at:
            raise KeyboardInterrupt

    model = recipe.start(X, y, plan)
    with pytest.raises(KeyboardInterrupt):
        recipe.train(model, X, y, plan, X_val=X_val, y_val=y_val, callback=interrupt)
    grid, step = stop_at
    assert recipe.position(model, plan) == (plan.grids.index(grid), step - 1)
    resumed = saved_and_loaded(model, tmp_path)
    stages = recipe.train(resumed, X, y, plan, X_val=X_val, y_val=y_val)
    assert stages[0].history.step[0] == step  # it went on from the interrupted step
    assert_same(resumed, whole, X)
    assert recipe.position(resumed, plan) == (2, 0)  # finished
    assert recipe.train(resumed, X, y, plan) == []


def test_a_finished_recipe_extends_to_more_grids_like_a_fresh_longer_one():
    X, y = toy()
    short, longer = recipe.Recipe(hidden=(3,), grids=(3,), steps=4), recipe.Recipe(hidden=(3,), grids=(3, 6), steps=4)
    model = recipe.start(X, y, short)
    recipe.train(model, X, y, short)
    recipe.train(model, X, y, longer)
    fresh = recipe.start(X, y, longer)
    recipe.train(fresh, X, y, longer)
    assert_same(model, fresh, X)


def test_ctrl_c_during_a_refinement_waits_for_it_to_finish():
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT is not handled by Python's default handler here")
    finished = []
    with pytest.raises(KeyboardInterrupt):
        with schedule.deferred_interrupt():
            signal.raise_signal(signal.SIGINT)
            finished.append(True)
    assert finished == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_fit_in_epochs_resumes_mid_epoch_in_the_same_order(tmp_path, optimizer):
    """3 epochs of 4 batches in one go, or 5 steps, saved, loaded, and 2 epochs more (the
    unfinished second epoch counts as one): the same model."""
    X, y = toy(100)
    options = dict(optimizer=optimizer, batch_size=30, seed=2, grid_update_every=3, progress=False)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    history = whole.fit(X, y, epochs=3, **options)
    assert len(history) == 12
    first = KAN([2, 3, 1], grid=5, seed=1)
    first.fit(X, y, steps=5, **options)
    assert first.fit_state["position"] == [1, 1]
    resumed = saved_and_loaded(first, tmp_path)
    rest = resumed.fit(X, y, epochs=2, resume=True, **options)
    assert rest.step == list(range(6, 13)) and rest.epoch == [2, 2, 2, 3, 3, 3, 3] and rest.batch[:3] == [2, 3, 4]
    assert rest.loss == history.loss[5:]
    assert_same(resumed, whole, X, tol=0.0)


def test_ctrl_c_in_a_dataloader_fit_resumes_mid_epoch(tmp_path, monkeypatch):
    from torch.utils.data import DataLoader, TensorDataset

    X, y = toy(96)
    loader = DataLoader(TensorDataset(X, y), batch_size=16)  # 6 batches, in order
    options = dict(optimizer="adam", progress=False)
    whole = KAN([2, 3, 1], grid=5, seed=1)
    whole.fit(loader, epochs=2, **options)
    counter = InterruptAt(monkeypatch, n=9)  # inside step 9: batch 3 of epoch 2
    model = KAN([2, 3, 1], grid=5, seed=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(loader, epochs=2, **options)
    assert counter.count == 9 and model.fit_state["step"] == 8 and model.fit_state["position"] == [1, 2]
    counter.n = None
    resumed = saved_and_loaded(model, tmp_path)
    rest = resumed.fit(loader, epochs=1, resume=True, **options)
    assert rest.step == [9, 10, 11, 12] and rest.batch == [3, 4, 5, 6]
    assert_same(resumed, whole, X, tol=0.0)


def test_ctrl_c_while_the_next_batch_loads_keeps_the_finished_steps():
    X, y = toy(80)

    class Batches:
        """4 batches of 20 rows; Ctrl-C while batch `stop` is being loaded."""

        def __init__(self, stop=None):
            self.stop = stop

        def __iter__(self):
            for b in range(4):
                if b == self.stop:
                    raise KeyboardInterrupt
                yield X[20 * b : 20 * b + 20], y[20 * b : 20 * b + 20]

    done = KAN([2, 3, 1], grid=5, seed=1)
    done.fit(Batches(), steps=3, optimizer="adam", progress=False)
    model = KAN([2, 3, 1], grid=5, seed=1)
    with pytest.raises(KeyboardInterrupt):
        model.fit(Batches(stop=3), epochs=1, optimizer="adam", progress=False)
    assert model.fit_state["step"] == 3 and model.fit_state["position"] == [0, 3]
    assert_same(model, done, X, tol=0.0)
