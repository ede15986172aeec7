"""B-spline basis against independent references (scipy, partition of unity, calculus)."""

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from kanopy import basis


def random_knots(k, G=7, n_in=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    interior = torch.sort(torch.rand(n_in, G + 1, generator=g, dtype=torch.float64) * 2 - 1, dim=1).values
    return basis.extend_knots(interior, k)


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_matches_scipy_and_sums_to_one(k, uniform):
    knots = basis.uniform_knots(-1.0, 1.0, 7, k, 2, dtype=torch.float64) if uniform else random_knots(k)
    lo, hi = basis.domain(knots, k)
    g = torch.Generator().manual_seed(1)
    x = lo + (hi - lo) * torch.rand(400, 2, generator=g, dtype=torch.float64)
    x[0], x[1] = lo, hi  # the domain's ends
    dense = basis.dense_basis(x, knots, k)
    for i in range(2):
        reference = BSpline.design_matrix(x[:, i].numpy(), knots[i].numpy(), k).toarray()
        np.testing.assert_allclose(dense[:, i].numpy(), reference, atol=1e-13)
    np.testing.assert_allclose(dense.sum(-1).numpy(), 1.0, atol=1e-13)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("uniform", [True, False])
def test_continuation_outside_domain(k, uniform):
    """End pieces continue one interval beyond the domain, then the spline goes on linearly."""
    knots = basis.uniform_knots(-1.0, 1.0, 6, k, 1, dtype=torch.float64) if uniform else random_knots(k, 6, 1)
    coef = torch.randn(1, knots.shape[1] - k - 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    t = knots[0].numpy()
    spline = BSpline(t, coef[0, :, 0].numpy(), k, extrapolate=True)
    a, b = t[k], t[-k - 1]
    reach_a, reach_b = a - (t[k + 1] - a), b + (b - t[-k - 2])

    def reference(x):
        if x < reach_a:
            return spline(reach_a) + spline.derivative()(reach_a) * (x - reach_a)
        if x > reach_b:
            return spline(reach_b) + spline.derivative()(reach_b) * (x - reach_b)
        return spline(x)

    xs = [reach_a - 2.0, (a + reach_a) / 2, reach_a, a, b, (b + reach_b) / 2, reach_b, reach_b + 3.0]
    values = basis.evaluate(torch.tensor(xs, dtype=torch.float64)[:, None], knots, coef, k)[:, 0, 0]
    np.testing.assert_allclose(values.numpy(), [reference(x) for x in xs], atol=1e-12)


@pytest.mark.parametrize("uniform", [True, False])
def test_derivative_matches_finite_differences(uniform):
    k = 3
    knots = basis.uniform_knots(-1.0, 1.0, 5, k, 1, dtype=torch.float64) if uniform else random_knots(k, 5, 1)
    coef = torch.randn(1, 8, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    x = torch.linspace(-1.7, 1.7, 41, dtype=torch.float64)[:, None].requires_grad_()
    y = basis.evaluate(x, knots, coef, k).sum()
    (grad,) = torch.autograd.grad(y, x)
    h = 1e-6
    with torch.no_grad():
        fd = (basis.evaluate(x + h, knots, coef, k) - basis.evaluate(x - h, knots, coef, k))[:, 0, 0] / (2 * h)
    np.testing.assert_allclose(grad[:, 0].numpy(), fd.numpy(), atol=1e-7)


def test_least_squares_reproduces_a_spline_exactly():
    k = 3
    knots = random_knots(k, 9, 2)
    coef = torch.randn(2, 12, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    pts = basis.quadrature_points(knots, k)
    values = basis.evaluate(pts, knots, coef, k)
    refit = basis.fit_coefficients(pts, values, knots, k)
    torch.testing.assert_close(refit, coef, atol=1e-10, rtol=0)


def test_bad_orders_and_knots_are_rejected():
    for k in (0, 6, 2.5, True):
        with pytest.raises(ValueError, match="spline order"):
            basis.check_order(k)
    with pytest.raises(ValueError, match="strictly increasing"):
        basis.check_knots(torch.tensor([[0.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]), 1)
