"""Training: optimizers reduce the loss, fits are reproducible, bad data is refused."""

import math

import numpy as np
import pytest
import torch
from conftest import uniform_samples
from reproduction import assert_reproduced

from kanopy import KAN


def toy(n=400, seed=0):
    X = uniform_samples(n, 2, seed=seed)
    return X, torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)


@pytest.mark.parametrize("optimizer,steps", [("lbfgs", 20), ("adam", 200), ("lm", 20)])
def test_optimizers_reduce_the_error(optimizer, steps):
    X, y = toy()
    model = KAN([2, 3, 1], grid=5, seed=0)
    with torch.no_grad():
        start = torch.sqrt(torch.mean((model(X) - y) ** 2)).item()
    history = model.fit(X, y, steps=steps, optimizer=optimizer, progress=False)
    assert len(history) == steps
    assert history.train_rmse[-1] < 0.05 * start
    assert all(s2 >= s1 for s1, s2 in zip(history.seconds, history.seconds[1:]))


def test_history_reports_validation_and_regularisation():
    X, y = toy()
    Xv, yv = toy(100, seed=1)
    model = KAN([2, 3, 1], grid=3, seed=0)
    history = model.fit(X, y, steps=5, lamb=1e-3, X_val=Xv, y_val=yv, progress=False)
    with torch.no_grad():
        val = torch.sqrt(torch.mean((model(Xv) - yv) ** 2)).item()
    assert history.val_rmse[-1] == pytest.approx(val, rel=1e-12)
    assert all(r > 0 for r in history.reg)
    record = history.to_dict()
    assert record["train_rmse"] == record["metric"] == history.train_rmse and record["metric_name"] == "rmse"
    assert record["loss"] == pytest.approx([r**2 for r in record["metric"]], rel=1e-12)  # the MSE, without reg
    assert record["val_loss"] == pytest.approx([r**2 for r in record["val_rmse"]], rel=1e-12)
    assert record["best_step"] is None and not record["stopped_early"] and record["nonfinite_step"] is None


def test_same_seed_gives_the_same_fit_twice():
    X, y = toy()
    runs = []
    for _ in range(2):
        model = KAN([2, 3, 1], grid=4, seed=3)
        history = model.fit(X, y, steps=6, batch_size=100, optimizer="adam", seed=5, progress=False)
        model.refine(8)
        history2 = model.fit(X, y, steps=4, progress=False)
        runs.append((history.train_rmse + history2.train_rmse, [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


LM_FIT = """
import json, torch
from kanopy import KAN
g = torch.Generator().manual_seed(0)
X = torch.rand(800, 2, generator=g, dtype=torch.float64) * 2 - 1
y = torch.exp(torch.sin(3 * X[:, :1]) + X[:, 1:] ** 2)
model = KAN([2, 8, 1], grid=20, seed=0)  # 600 trainable parameters: MKL threads their Cholesky
history = model.fit(X, y, steps=4, optimizer="lm", progress=False)
print(json.dumps([history.train_rmse[-1].hex(),
                  torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().tobytes().hex()]))
"""


def test_a_levenberg_marquardt_fit_is_the_same_twice_and_on_one_core():
    """Bitwise the same parameters here (two threads) and pinned to one core: the damped
    solves do not depend on the number of threads."""
    assert_reproduced(LM_FIT)


def test_fused_and_torch_objectives_train_alike():
    X, y = toy()
    results = []
    for backend in ("auto", "torch"):
        model = KAN([2, 3, 1], grid=5, seed=0)
        model.backend = backend
        results.append(model.fit(X, y, steps=3, progress=False).train_rmse)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6)


def test_levenberg_marquardt_reaches_the_least_squares_optimum():
    """With a zero base function a one-edge KAN is a linear least-squares spline problem:
    LM must reach scipy's least-squares spline on the same knots."""
    from scipy.interpolate import make_lsq_spline

    X = uniform_samples(500, 1, seed=2)
    y = torch.sin(3 * X) + X**2
    model = KAN([1, 1], grid=20, seed=0, base_fn="zero")
    model.fit(X, y, steps=15, optimizer="lm", update_grid=False, progress=False)
    order = X[:, 0].argsort()
    reference = make_lsq_spline(X[order, 0].numpy(), y[order, 0].numpy(), model.layers[0].knots[0].numpy(), k=3)
    with torch.no_grad():
        ours = torch.sqrt(torch.mean((model(X) - y) ** 2)).item()
    best = float(((reference(X[:, 0].numpy()) - y[:, 0].numpy()) ** 2).mean() ** 0.5)
    assert ours <= best * (1 + 1e-6)


def test_grid_updates_follow_the_data():
    X = uniform_samples(300, 2, seed=4, lo=2.0, hi=5.0)
    y = X[:, :1] * X[:, 1:]
    model = KAN([2, 2, 1], grid=5, seed=0)
    model.fit(X, y, steps=2, progress=False)
    lo, hi = model.layers[0].domain()
    torch.testing.assert_close(lo, X.min(0).values)
    torch.testing.assert_close(hi, X.max(0).values)


def test_numpy_inputs_and_one_dimensional_targets():
    X, y = toy(200)
    model = KAN([2, 2, 1], grid=3, seed=0)
    history = model.fit(X.numpy(), y[:, 0].numpy(), steps=2, progress=False)
    assert len(history) == 2


@pytest.mark.parametrize("make,match", [
    (lambda X, y: (X[:, :1], y), "X has 1 columns but the model expects 2"),
    (lambda X, y: (X, y[:-1]), "different numbers of rows"),
    (lambda X, y: (X.index_fill(0, torch.tensor([7]), float("nan")), y), "X contains NaN at row 7"),
    (lambda X, y: (X, y.index_fill(0, torch.tensor([3]), float("inf"))), "y contains inf at row 3"),
    (lambda X, y: (X[:0], y[:0]), "X is empty"),
    (lambda X, y: (X[None], y), "2-D array"),
    (lambda X, y: (np.array([["a", "b"]]), y[:1]), "numeric"),
])
def test_bad_data_is_refused_with_a_clear_message(make, match):
    X, y = toy(20)
    model = KAN([2, 2, 1], grid=3)
    with pytest.raises(ValueError, match=match):
        model.fit(*make(X, y), steps=1, progress=False)


@pytest.mark.parametrize("kwargs,match", [
    (dict(optimizer="sgd"), "unknown optimizer"), (dict(steps=-1), "steps"), (dict(batch_size=0), "batch_size"),
    (dict(lamb=-1.0), "lamb"), (dict(lamb=0.1, optimizer="lm"), "sum of squares"),
    (dict(X_val=np.zeros((2, 2))), "both X_val and y_val"), (dict(resume=True), "no saved optimizer state"),
])
def test_bad_options(kwargs, match):
    X, y = toy(20)
    options = dict(steps=1, progress=False)
    options.update(kwargs)
    with pytest.raises(ValueError, match=match):
        KAN([2, 2, 1], grid=3).fit(X, y, **options)


def test_lbfgs_steps_in_cpp_follow_the_python_optimizer(monkeypatch):
    """The C++ LBFGS step (a plain KAN's MSE) is the same algorithm as optim/lbfgs.py, and
    its state continues on either side."""
    import copy

    from kanopy import kernels

    X, y = toy()
    cpp = KAN([2, 3, 1], grid=5, seed=2)
    fused = kernels.FusedObjective.build(cpp)
    if fused is None or not fused.has_lbfgs:
        pytest.skip("fused kernels unavailable")
    python = KAN([2, 3, 1], grid=5, seed=2)
    cpp_history = cpp.fit(X, y, steps=3, update_grid=False, progress=False)
    cpp_next = copy.deepcopy(cpp)
    cpp_next.fit(X, y, steps=1, update_grid=False, progress=False, resume=True)

    with monkeypatch.context() as patch:
        patch.setattr(kernels.FusedObjective, "has_lbfgs", property(lambda self: False))
        python_history = python.fit(X, y, steps=3, update_grid=False, progress=False)
        python_next = copy.deepcopy(python)
        python_next.fit(X, y, steps=1, update_grid=False, progress=False, resume=True)
        from_cpp = copy.deepcopy(cpp)  # the C++ state, continued in Python
        from_cpp.fit(X, y, steps=1, update_grid=False, progress=False, resume=True)
    from_python = copy.deepcopy(python)  # and the other way round
    from_python.fit(X, y, steps=1, update_grid=False, progress=False, resume=True)

    assert python_history.train_rmse[-1] < 0.5 * python_history.train_rmse[0]
    np.testing.assert_allclose(cpp_history.train_rmse, python_history.train_rmse, rtol=1e-6)
    for a, b in zip(cpp.parameters(), python.parameters()):  # 60 iterations: rounding grows a little
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    for a, b, c, d in zip(*(m.parameters() for m in (cpp_next, from_cpp, python_next, from_python))):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
        torch.testing.assert_close(c, d, rtol=1e-9, atol=1e-11)


def overfitting_problem():
    """30 noisy samples of a smooth curve and a network flexible enough to chase the noise:
    the validation error (on the clean curve) falls, then rises."""
    g = torch.Generator().manual_seed(11)
    X = uniform_samples(30, 1, seed=12)
    y = torch.sin(2 * X) + 0.3 * torch.randn(30, 1, generator=g, dtype=X.dtype)
    X_val = torch.linspace(-1, 1, 200, dtype=X.dtype)[:, None]
    return X, y, X_val, torch.sin(2 * X_val)


def test_early_stopping_restores_the_best_validation_state():
    X, y, X_val, y_val = overfitting_problem()
    model = KAN([1, 8, 1], grid=20, seed=0)
    states = {0: {k: v.clone() for k, v in model.state_dict().items()}}
    record = lambda step, history: states.__setitem__(  # noqa: E731
        step, {k: v.clone() for k, v in model.state_dict().items()})
    history = model.fit(X, y, steps=60, X_val=X_val, y_val=y_val, patience=5, grid_update_every=2, progress=False,
                        callback=record)
    best = history.best_step
    assert history.stopped_early and len(history) == best + 5 < 60
    assert history.val_rmse[best - 1] == min(history.val_rmse)
    assert min(history.val_rmse) < 0.9 * history.val_rmse[-1]  # it did get worse after the best step
    moved = [name for name in states[best] if not torch.equal(states[best][name], states[len(history)][name])]
    assert any("knots" in name for name in moved) and any("coef" in name for name in moved)
    for name, value in model.state_dict().items():  # parameters and buffers of the best step
        assert torch.equal(value, states[best][name]), name
    with torch.no_grad():
        val = torch.sqrt(torch.mean((model(X_val) - y_val) ** 2)).item()
    assert val == history.val_rmse[best - 1]


def test_after_early_stopping_the_model_resumes_as_if_fitted_for_the_best_step_count():
    X, y, X_val, y_val = overfitting_problem()
    options = dict(optimizer="adam", lr=0.05, batch_size=10, seed=2, grid_update_every=3, progress=False)
    stopped = KAN([1, 8, 1], grid=20, seed=0)
    history = stopped.fit(X, y, steps=300, X_val=X_val, y_val=y_val, patience=10, **options)
    assert history.stopped_early and 0 < history.best_step < len(history)
    assert stopped.fit_state["step"] == history.best_step
    short = KAN([1, 8, 1], grid=20, seed=0)
    short.fit(X, y, steps=history.best_step, **options)
    for name, value in short.state_dict().items():
        assert torch.equal(value, stopped.state_dict()[name]), name
    stopped.fit(X, y, steps=4, resume=True, **options)
    short.fit(X, y, steps=4, resume=True, **options)
    for name, value in short.state_dict().items():
        assert torch.equal(value, stopped.state_dict()[name]), name


def test_a_fit_that_never_improves_keeps_its_starting_state():
    X, y, X_val, y_val = overfitting_problem()
    model = KAN([1, 3, 1], grid=5, seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    history = model.fit(X, y, steps=3, X_val=X_val, y_val=-1e6 * y_val, patience=2, progress=False)
    assert history.best_step == 0 and history.stopped_early and len(history) == 2
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


def test_patience_needs_validation_data():
    X, y = toy(20)
    with pytest.raises(ValueError, match="patience"):
        KAN([2, 2, 1], grid=3).fit(X, y, steps=2, patience=3, progress=False)
    with pytest.raises(ValueError, match="patience"):
        KAN([2, 2, 1], grid=3).fit(X, y, steps=2, patience=0, X_val=X, y_val=y, progress=False)


class Recorder:
    """An MSE loss that records the targets of every batch it sees (targets = row numbers)."""

    def __init__(self):
        self.seen = []

    def __call__(self, pred, y):
        self.seen.append(y[:, 0].round().long().tolist())
        return torch.mean((pred - y) ** 2)


def numbered(n=50):
    X = uniform_samples(n, 2, seed=0)
    return X, torch.arange(n, dtype=X.dtype)[:, None]


def test_each_epoch_visits_every_row_once_in_a_seeded_shuffled_order():
    X, ids = numbered()
    runs = []
    for seed in (3, 3, 4):
        recorder = Recorder()
        history = KAN([2, 2, 1], grid=3).fit(X, ids, epochs=3, batch_size=16, optimizer="adam", loss=recorder,
                                             seed=seed, update_grid=False, progress=False)
        assert [len(b) for b in recorder.seen] == [16, 16, 16, 2] * 3
        assert history.epoch == [1] * 4 + [2] * 4 + [3] * 4 and history.batch == [1, 2, 3, 4] * 3
        epochs = [sum(recorder.seen[4 * e : 4 * e + 4], []) for e in range(3)]
        assert all(sorted(order) == list(range(50)) for order in epochs)
        assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(50))
        runs.append(epochs)
    assert runs[0] == runs[1] and runs[0] != runs[2]

    recorder = Recorder()  # steps walk through the same epochs
    KAN([2, 2, 1], grid=3).fit(X, ids, steps=6, batch_size=16, optimizer="adam", loss=recorder, seed=3,
                               update_grid=False, progress=False)
    assert sum(recorder.seen, []) == runs[0][0] + runs[0][1][:32]


class EpochSampler(torch.utils.data.Sampler):
    """The in-memory fit's order (kanopy.batches.epoch_order), one epoch per pass."""

    def __init__(self, n, seed):
        self.n, self.seed, self.epoch = n, seed, 0

    def __iter__(self):
        from kanopy.batches import epoch_order

        order = epoch_order(self.n, self.seed, self.epoch)
        self.epoch += 1
        return iter(order.tolist())

    def __len__(self):
        return self.n


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
@pytest.mark.parametrize("weighted", [False, True])
def test_a_dataloader_fit_equals_the_in_memory_fit_with_the_same_order(optimizer, weighted):
    from torch.utils.data import DataLoader, TensorDataset

    X, y = toy(100)
    w = torch.rand(100, generator=torch.Generator().manual_seed(1), dtype=X.dtype) + 0.5
    options = dict(epochs=2, optimizer=optimizer, grid_update_every=3, progress=False)
    memory = KAN([2, 3, 1], grid=4, seed=0)
    h1 = memory.fit(X, y, batch_size=32, seed=5, sample_weight=w if weighted else None, **options)
    data = TensorDataset(X, y, w) if weighted else TensorDataset(X, y)
    loader = DataLoader(data, batch_size=32, sampler=EpochSampler(100, seed=5))
    loaded = KAN([2, 3, 1], grid=4, seed=0)
    h2 = loaded.fit(loader, **options)
    assert len(h1) == len(h2) == 8 and h1.loss == h2.loss and h1.epoch == h2.epoch and h1.batch == h2.batch
    for name, value in memory.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
    assert loaded.samples is not None  # kept from the loader's first batch


def test_numpy_float32_batches_are_converted_one_at_a_time_and_exactly():
    X, y = toy(90)
    X32, y32 = X.float().numpy(), y.float().numpy()
    options = dict(batch_size=20, epochs=2, optimizer="adam", seed=1, progress=False)
    a, b = KAN([2, 3, 1], grid=4, seed=0), KAN([2, 3, 1], grid=4, seed=0)
    a.fit(X32, y32, **options)
    b.fit(torch.from_numpy(X32).double(), torch.from_numpy(y32).double(), **options)
    for name, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[name]), name


def test_a_one_shot_iterator_is_one_epoch():
    X, y = toy(60)
    batches = lambda: ((X[i : i + 20], y[i : i + 20]) for i in range(0, 60, 20))  # noqa: E731
    history = KAN([2, 2, 1], grid=3).fit(batches(), epochs=1, optimizer="adam", progress=False)
    assert len(history) == 3
    with pytest.warns(RuntimeWarning, match="the data ran out after 3 of 5 steps"):
        history = KAN([2, 2, 1], grid=3).fit(batches(), steps=5, optimizer="adam", progress=False)
    assert len(history) == 3 and "ran out" in history.message
    with pytest.raises(ValueError, match="read once"):
        KAN([2, 2, 1], grid=3).fit(batches(), epochs=2, progress=False)


def test_progress_shows_epochs_and_batches(monkeypatch):
    from kanopy.progress import StepProgress

    shown = []
    monkeypatch.setattr(StepProgress, "advance", lambda self, metrics, where=None: shown.append((where, metrics)))
    X, y = toy(50)
    KAN([2, 2, 1], grid=3).fit(X, y, epochs=2, batch_size=20, optimizer="adam", progress=True)
    assert [w for w, _ in shown] == [f"epoch {e}/2 batch {b}/3" for e in (1, 2) for b in (1, 2, 3)]
    assert all(m.startswith("train ") for _, m in shown)


@pytest.mark.parametrize("args,kwargs,match", [
    ((), dict(steps=3, epochs=2), "steps or epochs, not both"),
    ((), dict(epochs=-1), "epochs"),
    (("loader",), dict(batch_size=10), "batch_size is for arrays"),
    (("X only",), dict(), "y is missing"),
    (("bad batches",), dict(), r"\(X, y\) or \(X, y, sample_weight\)"),
    (("nan batch",), dict(), r"X \(batch 1 of epoch 0\) contains NaN at row 2"),
    (("empty",), dict(), "yielded no batches"),
])
def test_bad_data_streams_are_refused(args, kwargs, match):
    X, y = toy(40)
    bad = X.clone()
    bad[22, 0] = float("nan")
    data = {
        "loader": ([(X, y)],), "X only": (X,), "bad batches": ([(X, y, y, y)],),
        "nan batch": ([(X[:20], y[:20]), (bad[20:], y[20:])],),
        "empty": (torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X[:0], y[:0])),),
    }
    positional = data[args[0]] if args else (X, y)
    with pytest.raises(ValueError, match=match):
        KAN([2, 2, 1], grid=3).fit(*positional, progress=False, **kwargs)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_batches_of_cpu_data_move_to_a_gpu_model():
    X, y = toy(200)
    options = dict(epochs=2, batch_size=64, optimizer="adam", seed=1, update_grid=False, progress=False)
    cpu = KAN([2, 3, 1], grid=4, seed=0)
    cpu.backend = "torch"
    cpu.fit(X, y, **options)
    gpu = KAN([2, 3, 1], grid=4, seed=0, device="cuda")
    history = gpu.fit(X, y, **options)  # the data stay on the CPU
    assert X.device.type == "cpu" and len(history) == 8
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-7, atol=1e-10)
