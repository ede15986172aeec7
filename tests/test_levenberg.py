"""The one Levenberg-Marquardt loop (kanopy.levenberg), shared by the network optimizer and
the symbolic fits: Nielsen's damping update by its formula, steps that never raise the loss,
and convergence to known minimisers."""

import math

import torch

from kanopy.levenberg import Damping, damped_step, minimize_residual


def test_nielsen_damping_update():
    d = Damping(1e-3)
    d.accepted(1.0)  # a perfect model: the most decrease, 1/3
    assert math.isclose(d.mu, 1e-3 / 3)
    d.accepted(0.5)  # 1 - 0^3: unchanged
    assert math.isclose(d.mu, 1e-3 / 3)
    d.rejected(), d.rejected(), d.rejected()  # nu = 2, 4, 8
    assert math.isclose(d.mu, 1e-3 / 3 * 64) and d.nu == 16
    d.accepted(0.0)  # 1 - (-1)^3 = 2, and nu is reset
    assert math.isclose(d.mu, 1e-3 / 3 * 128) and d.nu == 2


def test_a_step_is_taken_only_when_it_lowers_the_loss():
    A = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    g = torch.tensor([1.0, -1.0], dtype=torch.float64)
    quadratic = lambda delta: float(1.0 + 2 * delta @ g + delta @ A @ delta)  # noqa: E731 (r.r of r + J delta)
    delta, (loss, _) = damped_step(A, g, 1.0, lambda d: (quadratic(d), None), Damping(1e-3), tries=4)
    exact = -torch.linalg.solve(A, g)
    assert loss < 1.0 and torch.allclose(delta, exact, rtol=1e-2)
    damping = Damping(1e-3)
    assert damped_step(A, g, 1.0, lambda d: (2.0, None), damping, tries=3) == (None, None)
    assert math.isclose(damping.mu, 1e-3 * 2 * 4 * 8)


def test_rosenbrock_residuals_reach_the_minimum():
    def residual(t):  # r.r = 100 (y - x^2)^2 + (1 - x)^2, minimum at (1, 1)
        return torch.stack([10 * (t[1] - t[0] ** 2), 1 - t[0]])

    theta = torch.tensor([-1.2, 1.0], dtype=torch.float64)
    theta, loss = minimize_residual(residual, theta, residual(theta), 1e-3, iterations=200)
    assert loss < 1e-20 and torch.allclose(theta, torch.ones(2, dtype=torch.float64), atol=1e-10)


def test_an_exponential_fit_recovers_its_constants():
    x = torch.linspace(0, 2, 50, dtype=torch.float64)
    y = 2.5 * torch.exp(-1.3 * x) + 0.5
    residual = lambda t: t[0] * torch.exp(t[1] * x) + t[2] - y  # noqa: E731
    theta = torch.tensor([1.0, -0.5, 0.0], dtype=torch.float64)
    theta, loss = minimize_residual(residual, theta, residual(theta), 1e-6, iterations=100)
    assert torch.allclose(theta, torch.tensor([2.5, -1.3, 0.5], dtype=torch.float64), atol=1e-10)
