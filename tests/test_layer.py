"""KANLayer: gradients, the two kernel backends, and the grid moves."""


import pytest
import torch
from conftest import fused_available, uniform_samples

from kanopy import KANLayer, basis


def layer(in_dim=3, out_dim=2, grid=6, k=3, seed=0, **kw):
    generator = torch.Generator().manual_seed(seed)
    L = KANLayer(in_dim, out_dim, grid=grid, k=k, dtype=torch.float64, generator=generator, **kw)
    with torch.no_grad():
        L.coef.normal_(generator=torch.Generator().manual_seed(seed + 1))
        L.scale_sp.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(seed + 2))
    return L


@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("adaptive", [False, True])
def test_gradcheck(backend, k, adaptive):
    L = layer(k=k)
    L.bias.requires_grad_(True)
    L.backend = backend
    if adaptive:
        L.update_grid(uniform_samples(200, 3, seed=5) ** 3)
    x = uniform_samples(12, 3, seed=6, lo=-1.4, hi=1.4).requires_grad_()
    params = [L.coef, L.scale_base, L.scale_sp, L.bias]

    def f(x, coef, sb, sp, bias):
        return torch.func.functional_call(L, {"coef": coef, "scale_base": sb, "scale_sp": sp, "bias": bias}, (x,))

    assert torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7)


@pytest.mark.skipif(not fused_available(), reason="no compiler for the fused kernels")
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("shape,grid",
                         [((1, 1), 6), ((2, 5), 6), ((5, 1), 6), ((7, 19), 6), ((8, 40), 6), ((6, 70), 60)])
@pytest.mark.parametrize("adaptive", [False, True])
def test_fused_matches_torch(dtype, tol, shape, grid, adaptive):
    # (8, 40) with 4,500 samples: several chunks of the interval-grouped backward;
    # (6, 70) on 60 intervals: the forward by output slices, and the input gradient over
    # several groups of output vectors
    L = layer(*shape, grid=grid).to(dtype)
    with torch.no_grad():
        L.mask[0, 0] = 0.0
    if adaptive:
        L.update_grid(uniform_samples(300, shape[0], seed=7, dtype=dtype) ** 3)
    x = uniform_samples(4500 if shape in ((8, 40), (6, 70)) else 150, shape[0], seed=8, lo=-1.6, hi=1.6, dtype=dtype)
    results = []
    for backend in ("fused", "torch"):
        L.backend = backend
        xr = x.clone().requires_grad_()
        out = L(xr)
        (out * torch.linspace(0, 1, shape[1], dtype=dtype)).sum().backward()
        results.append([out.detach(), xr.grad] + [p.grad.clone() for p in (L.coef, L.scale_base, L.scale_sp)])
        L.zero_grad()
    for a, b in zip(*results):
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max())


def test_edge_values_sum_to_forward(backend):
    L = layer(4, 3)
    L.backend = backend
    x = uniform_samples(50, 4, seed=9)
    with torch.no_grad():
        torch.testing.assert_close(L.edge_values(x).sum(1) + L.bias, L(x), atol=1e-12, rtol=0)


def test_mask_removes_an_edge(backend):
    L = layer(2, 2)
    L.backend = backend
    x = uniform_samples(30, 2, seed=10)
    with torch.no_grad():
        before = L.edge_values(x)
        L.mask[1, 0] = 0.0
        after = L(x)
    torch.testing.assert_close(after[:, 0], before[:, 0, 0] + L.bias[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("k", [1, 3, 5])
@pytest.mark.parametrize("factor", [2, 5])
def test_refine_on_a_nested_grid_keeps_the_function(k, factor):
    L = layer(k=k, grid=4)
    x = uniform_samples(500, 3, seed=11)
    with torch.no_grad():
        before = L(x)
        L.refine(4 * factor)
        after = L(x)
    assert L.grid == 4 * factor and L.coef.shape == (3, 4 * factor + k, 2)
    assert (after - before).abs().max() <= 1e-10


def test_refine_on_a_non_nested_grid_is_the_best_approximation():
    """Off a nested grid, refine is a least-squares projection: on its quadrature points no
    other spline of the new space (here a direct fit of sin) is closer to the old function."""
    L = layer(grid=5)
    with torch.no_grad():  # a smooth edge function: sin on every edge
        pts = basis.quadrature_points(L.knots, L.k)
        L.coef.copy_(basis.fit_coefficients(pts, torch.sin(2 * pts)[:, :, None].expand(-1, -1, 2), L.knots, L.k))
        old = layer(grid=5)
        old.load_state_dict(L.state_dict())
        L.refine(7)
        pts = basis.quadrature_points(L.knots, L.k)
        target = old.spline_values(pts)
        ours = (L.spline_values(pts) - target).square().sum()
        other = basis.fit_coefficients(pts, torch.sin(2 * pts)[:, :, None].expand(-1, -1, 2), L.knots, L.k)
        theirs = (basis.evaluate(pts, L.knots, other, L.k) - target).square().sum()
        assert ours <= theirs and ours.sqrt() / target.square().sum().sqrt() < 1e-3


def test_update_grid_keeps_polynomials_exactly():
    """A spline that is one global cubic lies in every cubic spline space: kept exactly."""
    x = uniform_samples(2000, 3, seed=13, lo=-0.8, hi=0.9) ** 3 * 1.2  # non-uniform samples
    L = layer(grid=8)
    with torch.no_grad():
        pts = basis.quadrature_points(L.knots, L.k)
        cubic = 0.3 * pts**3 - pts + 0.2
        L.coef.copy_(basis.fit_coefficients(pts, cubic[:, :, None].expand(-1, -1, 2), L.knots, L.k))
        before = L(x)
        L.update_grid(x, grid_eps=0.02)
        after = L(x)
    lo, hi = L.domain()
    torch.testing.assert_close(lo, x.min(0).values)
    torch.testing.assert_close(hi, x.max(0).values)
    assert not L.uniform
    assert (after - before).abs().max() <= 1e-10


def test_update_grid_keeps_smooth_functions_to_the_spline_error():
    """For sin(3x) on every edge, the change is at most the two splines' approximation
    errors, each below (5/384) h^4 max|f^(4)| for the widest interval h (Hall's bound for
    cubic interpolation; least squares does no worse in practice): a stated tolerance."""
    x = uniform_samples(2000, 3, seed=14, lo=-0.8, hi=0.9) ** 3 * 1.2
    L = layer(grid=8)
    with torch.no_grad():
        pts = basis.quadrature_points(L.knots, L.k)
        L.coef.copy_(basis.fit_coefficients(pts, torch.sin(3 * pts)[:, :, None].expand(-1, -1, 2), L.knots, L.k))
        before = L.spline_values(x)
        h_old = float(L.knots.diff(dim=1).max())
        L.update_grid(x, grid_eps=0.02)
        h_new = float(L.knots[:, L.k : -L.k].diff(dim=1).max())
        after = L.spline_values(x)
    bound = 5 / 384 * 81 * (h_old**4 + h_new**4)
    assert (after - before).abs().max() <= bound


def test_update_grid_keeps_a_constant_input_alone():
    L = layer(2, 1)
    x = torch.stack([torch.linspace(-1, 1, 100, dtype=torch.float64), torch.full((100,), 0.3, dtype=torch.float64)], 1)
    old = L.knots[1].clone()
    L.update_grid(x)
    torch.testing.assert_close(L.knots[1], old)
    assert torch.isfinite(L.knots).all()


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0), "spline order"), (dict(k=6), "spline order"), (dict(grid=0), "grid"),
    (dict(in_dim=0), "in_dim"), (dict(base_fn="nope"), "base_fn"), (dict(grid_range=(1, -1)), "grid_range"),
])
def test_bad_arguments(kwargs, match):
    args = dict(in_dim=2, out_dim=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        KANLayer(**args)


@pytest.mark.skipif(not fused_available(), reason="no compiler for the fused kernels")
def test_fused_large_coefficient_gradient():
    # 8 x 1003 x 512 float64 coefficients (33 MB): the fused backward allocates their gradient
    # itself (2 MB aligned, huge pages); it must behave as any tensor, accumulation included
    L = layer(8, 512, grid=1000)
    x = uniform_samples(50, 8, seed=11, lo=-1.2, hi=1.2)
    grads = []
    for backend in ("fused", "torch"):
        L.backend = backend
        L.zero_grad()
        for _ in range(2):  # the second backward accumulates into the first one's gradient
            L(x).square().sum().backward()
        grads.append(L.coef.grad.clone())
    assert grads[0].shape == L.coef.shape
    assert (grads[0] - grads[1]).abs().max() <= 1e-12 * grads[1].abs().max()


@pytest.mark.skipif(not fused_available(), reason="no compiler for the fused kernels")
def test_fused_second_derivative_raises_and_torch_backend_gives_it():
    L = layer(2, 1)
    x = uniform_samples(20, 2, seed=12).requires_grad_()
    L.backend = "fused"
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(L(x).sum(), x, create_graph=True)
    # the torch backend's second derivative matches central differences of its first
    L.backend = "torch"
    (g,) = torch.autograd.grad(L(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x)
    eps = 1e-5
    shift = torch.zeros_like(x)
    shift[:, 0] = eps
    first = lambda z: torch.autograd.grad(L(z).sum(), z)[0][:, 0]  # noqa: E731
    fd = (first((x + shift).detach().requires_grad_()) - first((x - shift).detach().requires_grad_())) / (2 * eps)
    torch.testing.assert_close(h[:, 0], fd, atol=1e-6, rtol=1e-6)
