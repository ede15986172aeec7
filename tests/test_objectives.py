"""Losses and the objective protocol: values against closed forms, gradients against finite
differences, Levenberg-Marquardt's normal equations against autograd's Jacobian, sample
weights against repeated rows; classification, custom losses, the NaN guard, bad input."""

import math

import numpy as np
import pytest
import torch
from conftest import fused_available, uniform_samples
from scipy.special import expit, logsumexp

from kanopy import KAN, losses
from kanopy.objectives import DataObjective


def rng(seed):
    return np.random.default_rng(seed)


def regression_case(n=40, m=2, seed=0):
    r = rng(seed)
    return r.normal(size=(n, m)), r.normal(size=(n, m)), r.uniform(0.1, 2.0, size=n)


@pytest.mark.parametrize("weighted", [False, True])
def test_loss_values_match_their_closed_forms(weighted):
    pred, y, w = regression_case()
    weight = w if weighted else np.ones(len(w))
    mean = lambda per_sample: float((weight * per_sample).sum() / weight.sum())  # noqa: E731
    t = lambda a: torch.from_numpy(a)  # noqa: E731
    tw = t(w) if weighted else None
    r = pred - y
    assert float(losses.MSE()(t(pred), t(y), tw)) == pytest.approx(mean((r**2).mean(1)), rel=1e-13)
    delta = 0.7
    huber = np.where(np.abs(r) <= delta, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta))
    assert float(losses.Huber(delta)(t(pred), t(y), tw)) == pytest.approx(mean(huber.mean(1)), rel=1e-13)

    logits = rng(1).normal(size=(40, 4))
    labels = rng(2).integers(0, 4, size=40)
    ce = logsumexp(logits, axis=1) - logits[np.arange(40), labels]
    assert float(losses.CrossEntropy()(t(logits), t(labels), tw)) == pytest.approx(mean(ce), rel=1e-13)
    accuracy = mean((logits.argmax(1) == labels).astype(float))
    assert losses.CrossEntropy().metric(t(logits), t(labels), tw) == pytest.approx(accuracy, rel=1e-13)

    target = rng(3).uniform(size=(40, 2)).round()
    p = expit(pred)
    bce = -(target * np.log(p) + (1 - target) * np.log(1 - p))
    assert float(losses.BCE()(t(pred), t(target), tw)) == pytest.approx(mean(bce.mean(1)), rel=1e-12)
    rmse = math.sqrt(mean((r**2).mean(1)))
    assert losses.MSE().metric(t(pred), t(y), tw) == pytest.approx(rmse, rel=1e-13)


@pytest.mark.parametrize("name", ["mse", "huber", "cross_entropy", "bce"])
def test_integer_weights_equal_repeated_rows(name):
    pred, y, _ = regression_case(n=30, m=3)
    counts = rng(4).integers(0, 4, size=30)
    counts[0] = 1
    if name == "cross_entropy":
        y = rng(5).integers(0, 3, size=30)
    if name == "bce":
        y = (y > 0).astype(float)
    loss = losses.get(name)
    weighted = loss(torch.from_numpy(pred), torch.from_numpy(y), torch.from_numpy(counts.astype(float)))
    repeated = loss(torch.from_numpy(np.repeat(pred, counts, axis=0)), torch.from_numpy(np.repeat(y, counts, axis=0)))
    assert float(weighted) == pytest.approx(float(repeated), rel=1e-13)


def bound_objective(loss, weighted, seed=0):
    """A DataObjective on a small float64 model and batch, with the torch kernels."""
    X = uniform_samples(25, 2, seed=seed)
    model = KAN([2, 3, 3], grid=4, seed=seed)
    model.backend = "torch"
    loss = losses.get(loss)
    g = torch.Generator().manual_seed(seed)
    if loss.name == "cross_entropy":
        y = torch.randint(0, 3, (25,), generator=g)
    elif loss.name == "bce":
        y = torch.rand(25, 3, generator=g, dtype=torch.float64).round()
    else:
        y = torch.randn(25, 3, generator=g, dtype=torch.float64)
    w = torch.rand(25, generator=g, dtype=torch.float64) + 0.1 if weighted else None
    objective = DataObjective(model, loss)
    objective.set_batch(X, y, w)
    return objective


@pytest.mark.parametrize("loss", ["mse", "huber", "cross_entropy", "bce"])
def test_objective_gradient_matches_central_differences(loss):
    objective = bound_objective(loss, weighted=True)
    value, grad = objective.evaluate()
    theta = objective.theta
    g = torch.Generator().manual_seed(1)
    for _ in range(3):  # directional derivatives along random directions
        d = torch.randn(theta.numel(), generator=g, dtype=theta.dtype)
        h = 1e-6
        base = theta.clone()
        theta.copy_(base + h * d)
        plus = float(objective.evaluate()[0])
        theta.copy_(base - h * d)
        minus = float(objective.evaluate()[0])
        theta.copy_(base)
        assert float(grad.dot(d)) == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-9)
    objective.release()


@pytest.mark.parametrize("weighted", [False, True])
def test_normal_equations_match_autograds_jacobian(weighted, monkeypatch):
    import kanopy.objectives as objectives_module

    monkeypatch.setattr(objectives_module, "JACOBIAN_ROWS", 7)  # several blocks of rows
    objective = bound_objective("mse", weighted)
    loss, A, g = objective.normal_equations()
    theta0 = objective.theta.clone()

    def residuals(theta):
        objective.theta.copy_(theta)  # parameters are views into theta: evaluate the model at theta...
        return objective.residuals()

    # ...but torch.autograd.functional needs a pure function: rebuild it with functional_call
    from torch.func import functional_call

    sizes = [p.numel() for p in objective.params]

    def pure(theta):
        values = {n: v.view_as(p) for n, v, p in zip(objective.names, theta.split(sizes), objective.params)}
        pred = functional_call(objective.model, values, (objective.X,))
        return losses.MSE().residuals(pred, objective.y, objective.weight)

    J = torch.autograd.functional.jacobian(pure, theta0)
    r = pure(theta0)
    with torch.no_grad():
        direct = float(losses.MSE()(objective.model(objective.X), objective.y, objective.weight))
    assert loss == pytest.approx(direct, rel=1e-13)
    assert loss == pytest.approx(float(r.dot(r)), rel=1e-13)
    torch.testing.assert_close(A, J.T @ J, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(g, J.T @ r, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(residuals(theta0), r, rtol=1e-13, atol=0)
    objective.release()


def blobs(n=300, seed=0):
    """Three classes in the plane, one per sector around the origin."""
    X = uniform_samples(n, 2, seed=seed)
    angle = torch.atan2(X[:, 1], X[:, 0])
    return X, ((angle + math.pi) / (2 * math.pi / 3)).long().clamp(max=2)


@pytest.mark.parametrize("optimizer,steps", [("lbfgs", 15), ("adam", 150)])
def test_cross_entropy_classifies(optimizer, steps):
    X, labels = blobs()
    X_val, labels_val = blobs(200, seed=1)
    model = KAN([2, 4, 3], grid=5, seed=0)
    history = model.fit(X, labels, steps=steps, optimizer=optimizer, loss="cross_entropy", X_val=X_val,
                        y_val=labels_val, progress=False)
    assert history.loss_name == "cross_entropy" and history.metric_name == "accuracy"
    with torch.no_grad():
        val_accuracy = float((model(X_val).argmax(1) == labels_val).double().mean())
    assert history.val_metric[-1] == val_accuracy
    assert val_accuracy > 0.93
    assert history.loss[-1] < 0.3 * history.loss[0]
    assert history.train_rmse[-1] is None


def test_bce_classifies_a_binary_target():
    X = uniform_samples(300, 2, seed=3)
    y = (X[:, 0] * X[:, 1] > 0).double()
    model = KAN([2, 4, 1], grid=5, seed=0)
    history = model.fit(X, y, steps=15, loss="bce", progress=False)
    with torch.no_grad():
        accuracy = float(((model(X)[:, 0] > 0) == (y > 0.5)).double().mean())
    assert history.metric[-1] == pytest.approx(accuracy, abs=1e-12) and accuracy > 0.95


@pytest.mark.skipif(not fused_available(), reason="no compiler for the fused kernels")
@pytest.mark.parametrize("loss", ["cross_entropy", "bce"])
def test_classification_losses_run_fused_and_agree_with_autograd(loss):
    """The one-call C++ objective serves cross-entropy and BCE (tests/kernel_agreement.py
    holds its gradient to autograd within 1e-12 on more networks, in every build): here the
    objective's loss and gradient on a plain KAN, then an LBFGS fit, against autograd over
    the torch backend."""
    X, labels = blobs(150, seed=4)
    y = labels if loss == "cross_entropy" else (labels == 1).double().unsqueeze(1)
    width = [2, 4, 3 if loss == "cross_entropy" else 1]
    results = []
    for backend in ("auto", "torch"):
        model = KAN(width, grid=5, seed=0)
        model.backend = backend
        objective = DataObjective(model, losses.get(loss))
        objective.set_batch(X, y)
        assert (objective.fused is not None) == (backend == "auto")
        value, grad = objective.evaluate()
        objective.release()
        history = model.fit(X, y, steps=2, loss=loss, update_grid=False, progress=False,
                            optimizer_options={"max_iter": 5})
        results.append((value, grad, history.loss, torch.cat([p.detach().reshape(-1) for p in model.parameters()])))
    (value, grad, fit_losses, theta), (ref_value, ref_grad, ref_losses, ref_theta) = results
    assert float(value) == pytest.approx(float(ref_value), rel=1e-13)
    torch.testing.assert_close(grad, ref_grad, rtol=0, atol=1e-12 * max(1.0, float(ref_grad.abs().max())))
    assert fit_losses == pytest.approx(ref_losses, rel=1e-10)
    torch.testing.assert_close(theta, ref_theta, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
def test_fit_with_sample_weights_equals_the_fit_on_repeated_rows(loss):
    """Weights 0, 1, 2 and 3 are the rows left out, kept, doubled, tripled (grids fixed:
    they would move to the repeated rows' extremes alike, but not bit for bit)."""
    X, labels = blobs(120, seed=2)
    y = labels if loss == "cross_entropy" else torch.sin(3 * X[:, :1]) * X[:, 1:]
    counts = torch.from_numpy(rng(6).integers(0, 4, size=120))
    options = dict(steps=8, optimizer="adam", loss=loss, update_grid=False, progress=False)
    weighted = KAN([2, 3, 3 if loss == "cross_entropy" else 1], grid=4, seed=0)
    weighted.fit(X, y, sample_weight=counts.double(), **options)
    repeated = KAN([2, 3, 3 if loss == "cross_entropy" else 1], grid=4, seed=0)
    repeated.fit(X.repeat_interleave(counts, 0), y.repeat_interleave(counts, 0), **options)
    for a, b in zip(weighted.parameters(), repeated.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def pinball(tau):
    def pinball_loss(pred, y):
        r = y - pred
        return torch.maximum(tau * r, (tau - 1) * r).mean()
    return pinball_loss


@pytest.mark.parametrize("optimizer,steps,lr", [("adam", 300, 5e-2), ("lbfgs", 20, None)])
def test_a_pinball_loss_lands_on_the_90_percent_quantile(optimizer, steps, lr):
    g = torch.Generator().manual_seed(7)
    X = uniform_samples(2000, 1, seed=8)
    scale = 0.1 + 0.1 * (X + 1)  # noise grows with x: the quantile is not the mean plus a constant
    y = torch.sin(2 * X) + scale * torch.randn(2000, 1, generator=g, dtype=X.dtype)
    model = KAN([1, 3, 1], grid=5, seed=0)
    history = model.fit(X, y, steps=steps, optimizer=optimizer, lr=lr, loss=pinball(0.9), progress=False)
    assert history.loss_name == "pinball_loss"
    with torch.no_grad():
        pred = model(X)
    assert float((y <= pred).double().mean()) == pytest.approx(0.9, abs=0.01)  # empirical coverage
    for part in X[:, 0].argsort().chunk(5):  # and on each fifth of the x range (binomial sd 0.015)
        assert float((y[part] <= pred[part]).double().mean()) == pytest.approx(0.9, abs=0.04)
    # the curve itself: sin(2x) + 1.2816 scale, the normal's 90% quantile (the mean is 0.26 below)
    truth = torch.sin(2 * X) + 1.2815516 * scale
    assert float((pred - truth).abs().mean()) < 0.035


class NanFrom:
    """An MSE that turns NaN (its value, or only its gradient) from a given step on, with the
    model's state after each step recorded by the fit's callback."""

    def __init__(self, model, step, gradient_only=False):
        self.model, self.step, self.gradient_only, self.done = model, step, gradient_only, 0
        self.states = {0: self.snapshot()}

    def snapshot(self):
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def loss(self, pred, y):
        value = torch.mean((pred - y) ** 2)
        if self.done + 1 < self.step:
            return value
        if self.gradient_only:  # a finite value whose gradient is NaN (sqrt of a negative, masked)
            return value + torch.where(pred > 1e300, torch.sqrt(-pred), torch.zeros_like(pred)).sum()
        return value * float("nan")

    def callback(self, step, history):
        self.done = step
        self.states[step] = self.snapshot()


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
@pytest.mark.parametrize("gradient_only", [False, True])
def test_a_non_finite_loss_rolls_back_and_stops_with_a_message(optimizer, gradient_only):
    X = uniform_samples(100, 2, seed=0)
    y = X[:, :1] * X[:, 1:]
    model = KAN([2, 3, 1], grid=4, seed=0)
    nan = NanFrom(model, 3, gradient_only)
    with pytest.warns(RuntimeWarning, match="step 3: "):
        history = model.fit(X, y, steps=10, optimizer=optimizer, loss=nan.loss, callback=nan.callback,
                            progress=False)
    assert history.nonfinite_step == 3 and len(history) == 2 and "step 3" in history.message
    assert all(math.isfinite(v) for v in history.loss)
    for name, value in model.state_dict().items():  # the state after step 2, buffers included
        assert torch.equal(value, nan.states[2][name]), name
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.fit_state["step"] == 2


def test_a_loss_that_is_never_finite_leaves_the_initial_model():
    X = uniform_samples(50, 2, seed=0)
    model = KAN([2, 3, 1], grid=4, seed=0)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(RuntimeWarning, match="step 1"):
        history = model.fit(X, X[:, :1], steps=5, loss=lambda p, y: (p - y).sum() * float("inf"), progress=False)
    assert len(history) == 0 and history.nonfinite_step == 1
    assert all(torch.equal(v, start[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("width,kwargs,y,match", [
    ([2, 3, 1], dict(loss="cross_entropy"), [0, 1] * 10, "one network output per class"),
    ([2, 3, 3], dict(loss="cross_entropy", optimizer="lm"), [0, 1] * 10, "sum of squares.*cross_entropy"),
    ([2, 3, 3], dict(loss="huber", optimizer="lm"), None, "sum of squares.*huber"),
    ([2, 3, 3], dict(loss=lambda p, y: p.sum(), optimizer="lm"), None, "sum of squares"),
    ([2, 3, 3], dict(loss="cross_entropy"), [0, 1, 3] * 6 + [0, 0], "class label 3 at row 2.*labels 0..2"),
    ([2, 3, 3], dict(loss="cross_entropy"), [0, 1, 0.5] * 6 + [0, 0], "integer class labels.*row 2 is 0.5"),
    ([2, 3, 3], dict(loss="cross_entropy"), [[0, 1, 0]] * 20, "one class label per row"),
    ([2, 3, 1], dict(loss="bce"), [0, 1, 2] * 6 + [0, 0], "0/1 labels.*row 2"),
    ([2, 3, 1], dict(loss="nope"), None, "unknown loss 'nope'"),
    ([2, 3, 1], dict(loss=42), None, "loss must be"),
    ([2, 3, 2], dict(), None, "y has 1 columns but the model expects 2"),
    ([2, 3, 1], dict(sample_weight=[1.0] * 19), None, "one weight per row"),
    ([2, 3, 1], dict(sample_weight=[1.0] * 19 + [-1.0]), None, "sample_weight must be >= 0.*row 19"),
    ([2, 3, 1], dict(sample_weight=[0.0] * 20), None, "sums to zero"),
    ([2, 3, 1], dict(loss=lambda p, y: (p - y) ** 2), None, r"returned shape \(20, 1\)"),
    ([2, 3, 1], dict(loss=lambda p, y: ((p - y) ** 2).mean(), sample_weight=[1.0] * 20), None, "cannot weight"),
    ([2, 3, 1], dict(loss=lambda p, y: 1.0), None, "must return a torch tensor"),
])
def test_bad_losses_and_targets_are_refused(width, kwargs, y, match):
    X = uniform_samples(20, 2, seed=0)
    y = X[:, :1] if y is None else np.asarray(y, dtype=float)
    with pytest.raises(ValueError, match=match):
        KAN(width, grid=3).fit(X, y, steps=1, progress=False, **kwargs)


def test_huber_delta_is_checked():
    with pytest.raises(ValueError, match="delta"):
        losses.Huber(0)
