"""Physics-informed solving: the forward-mode derivatives against double autograd, the LM
Jacobian against autograd's, small solves against closed-form solutions, and bad input."""

from __future__ import annotations

import math
import os
import tempfile

import pytest
import torch

import kanopy
from kanopy import basis, functions, jets, pde
from kanopy.pde import collocation, solver
from kanopy.pde.objective import PDEObjective

PI = math.pi
F64 = torch.float64


def _rel(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _model(width, seed=0, **options):
    """A KAN with nontrivial splines, scales and input/output maps."""
    g = torch.Generator().manual_seed(seed + 1)
    model = kanopy.KAN(width, grid=options.pop("grid", 7), seed=seed, **options)
    with torch.no_grad():
        for layer in model.layers:
            layer.coef.mul_(20)
        model.in_shift.copy_(torch.rand(model.n_inputs, generator=g, dtype=F64) * 0.2)
        model.in_scale.copy_(0.5 + torch.rand(model.n_inputs, generator=g, dtype=F64))
        model.out_shift.fill_(0.3)
        model.out_scale.fill_(1.7)
    return model


# ------------------------------------------------------------------- closed-form derivatives
@pytest.mark.parametrize("uniform", [True, False])
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_basis_derivatives_match_autograd_inside_and_beyond_the_grid(uniform, k):
    g = torch.Generator().manual_seed(k)
    knots = basis.uniform_knots(-1, 1, 6, k, 3, dtype=F64)
    if not uniform:
        knots = (knots + 0.05 * torch.rand(knots.shape, generator=g, dtype=F64)).sort(dim=1).values
    x = (torch.rand(200, 3, generator=g, dtype=F64) * 4 - 2).requires_grad_(True)  # also far outside
    reference, start0 = basis.local_basis(x, knots, k, uniform)
    values, d1, d2, start = basis.local_basis_derivatives(x, knots, k, uniform)
    first = torch.stack([torch.autograd.grad(reference[..., r].sum(), x, create_graph=True)[0]
                         for r in range(k + 1)], dim=-1)
    second = torch.stack([torch.autograd.grad(first[..., r].sum(), x, retain_graph=True, allow_unused=True)[0]
                          if first.requires_grad else torch.zeros_like(x) for r in range(k + 1)], dim=-1)
    assert torch.equal(start, start0)
    assert _rel(values, reference) < 1e-13
    assert _rel(d1, first) < 1e-13
    if k >= 2:
        assert _rel(d2, second) < 1e-13
    else:
        assert d2.abs().max() == 0


@pytest.mark.parametrize("name", ["silu", "tanh", "gelu", "identity", "zero"])
def test_base_function_derivatives_match_autograd(name):
    x = torch.linspace(-4, 4, 41, dtype=F64, requires_grad=True)
    b, b1, b2 = functions.derivatives(name, x)
    y = functions.BASE_FUNCTIONS[name](x) + 0 * x  # (+ 0 x: the zero function has a graph too)
    (a1,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    a2 = torch.autograd.grad(a1.sum(), x, allow_unused=True)[0] if a1.requires_grad else None
    a2 = torch.zeros_like(x) if a2 is None else a2
    assert torch.allclose(b, y, atol=1e-15) and torch.allclose(b1, a1, atol=1e-15)
    assert torch.allclose(b2, a2, atol=1e-15)


@pytest.mark.parametrize("width,options", [
    ([2, 10, 1], {}),
    ([2, 10, 1], {"k": 5, "grid": 12}),
    ([3, [2, 2], 2], {"base_fn": "tanh"}),  # multiplication nodes, two outputs
    ([2, 4, 1], {"input_bound": 1.2, "base_fn": "gelu"}),  # clamped inputs
])
def test_network_jet_equals_double_autograd(width, options):
    model = _model(width, **options)
    x = torch.rand(500, model.n_inputs, generator=torch.Generator().manual_seed(3), dtype=F64) * 3 - 1.5
    fast, reference = jets.network_jet(model, x, jets.HESSIAN), jets.autograd_jet(model, x, jets.HESSIAN)
    for name in ("value", "grad", "laplacian", "hessian"):
        assert _rel(getattr(fast, name), getattr(reference, name)) < 1e-12, name


def test_parameter_gradient_of_a_residual_loss_equals_double_autograd():
    model = _model([2, 10, 1])
    x = torch.rand(2000, 2, generator=torch.Generator().manual_seed(4), dtype=F64) * 2 - 1
    params = [p for p in model.parameters() if p.requires_grad]

    def gradient(jet_fn):
        jet = jet_fn(model, x, jets.LAPLACIAN)
        r = jet.laplacian[:, 0] + torch.sin(x[:, 0]) * jet.grad[:, 0, 1] + jet.value[:, 0] ** 2
        return torch.autograd.grad((r * r).mean(), params)

    for fast, reference in zip(gradient(jets.network_jet), gradient(jets.autograd_jet)):
        assert _rel(fast, reference) < 1e-12


def test_the_lm_jacobian_equals_autograds_jacobian_of_the_residuals():
    """normal_equations' J^T J and J^T r against a Jacobian by reverse autograd through the
    double-autograd residuals, for a nonlinear residual, Dirichlet, Neumann and periodic terms."""
    model = _model([2, 3, 1], grid=4)

    def residual(x, u):
        return u.laplacian + u.value * u.grad[:, 0] - torch.cos(x[:, 1])

    g = torch.Generator().manual_seed(5)
    xi = torch.rand(20, 2, generator=g, dtype=F64) * 2 - 1
    xb = torch.rand(10, 2, generator=g, dtype=F64) * 2 - 1
    xb[:, 0] = 1.0
    low = xb.clone()
    low[:, 0] = -1.0
    normal = torch.zeros_like(xb)
    normal[:, 0] = 1.0
    terms = [solver._interior_term(residual, xi, 1.0),
             solver._value_term("dirichlet", xb, torch.sin(xb[:, 1]), 3.0),
             solver._neumann_term(xb, torch.cos(xb[:, 1]), normal, 2.0),
             solver._periodic_term(low, xb, 0, 0.5)]
    terms[0].level = jets.LAPLACIAN
    objective = PDEObjective(model, terms)
    try:
        loss, A, gvec = objective.normal_equations()
        r_fast = objective.residuals()
        objective.fast = False  # the reference path: nested autograd
        r_ref = objective.residuals()
        J = torch.autograd.functional.jacobian(lambda theta: _residuals_at(objective, theta), objective.theta.clone())
        objective.fast = True
    finally:
        objective.release()
    assert _rel(r_fast, r_ref) < 1e-12
    assert abs(loss - float(r_ref.dot(r_ref))) < 1e-12 * loss
    assert _rel(A, J.T @ J) < 1e-11
    assert _rel(gvec, J.T @ r_ref) < 1e-11


def _residuals_at(objective, theta):
    """The objective's residuals with every parameter a differentiable slice of theta."""
    model, swapped, offset = objective.model, [], 0
    for name, p in zip(objective.names, objective.params):
        module_name, _, attr = name.rpartition(".")
        module = model.get_submodule(module_name)
        del module._parameters[attr]
        setattr(module, attr, theta[offset : offset + p.numel()].view_as(p))
        swapped.append((module, attr, p))
        offset += p.numel()
    try:
        return torch.cat([objective.term_rows(t).reshape(-1) for t in objective.terms])
    finally:
        for module, attr, p in swapped:
            delattr(module, attr)
            module.register_parameter(attr, p)


# ------------------------------------------------------------------------- solves
def _sine_1d(x, u):
    return u.laplacian + PI**2 * torch.sin(PI * x[:, 0])


def test_a_1d_poisson_problem_is_solved_to_the_spline_accuracy():
    sol = pde.solve(_sine_1d, domain=[(-1, 1)], dirichlet=0.0, width=[1, 1], k=5, n_interior=300,
                    schedule=[pde.Phase("lm", 30, grid=40)])
    x = torch.linspace(-1, 1, 101, dtype=F64)[:, None]
    exact = torch.sin(PI * x[:, 0])
    assert float((sol(x) - exact).norm() / exact.norm()) < 1e-7
    assert sol.history.residual_rmse[-1] < 1e-4 * sol.history.residual_rmse[0]


def test_neumann_conditions():
    # u'' = -pi^2 sin(pi x) on [0, 1/2] with u(0) = 0, u'(1/2) = 0: u = sin(pi x)
    sol = pde.solve(_sine_1d, domain=[(0, 0.5)], dirichlet={(0, "low"): 0.0}, neumann={(0, "high"): 0.0},
                    width=[1, 1], k=5, n_interior=200, schedule=[pde.Phase("lm", 30, grid=10)])
    x = torch.linspace(0, 0.5, 51, dtype=F64)[:, None]
    assert float((sol(x) - torch.sin(PI * x[:, 0])).abs().max()) < 1e-7


def test_periodic_axis_and_initial_condition():
    # advection u_t + u_x = 0 on x in [0, 2) periodic, u(x, 0) = sin(pi x): u = sin(pi (x - t))
    def residual(x, u):
        return u.d(1) + u.d(0)

    sol = pde.solve(residual, domain=[(0, 2), (0, 0.5)], initial=lambda x: torch.sin(PI * x[:, 0]),
                    periodic=[0], width=[2, 2, 1], k=5, n_interior=600, seed=1,
                    schedule=[pde.Phase("lbfgs", 20, grid=5), pde.Phase("lm", 40, grid=10)])
    x = collocation.mesh(*collocation.check_domain([(0, 2), (0, 0.5)]), (21, 11))
    exact = torch.sin(PI * (x[:, 0] - x[:, 1]))
    assert float((sol(x) - exact).norm() / exact.norm()) < 1e-3


def test_the_solve_is_reproducible_and_the_solution_is_a_normal_kan():
    def residual(x, u):  # Poisson with u = sin(pi x) sin(pi y)
        return u.laplacian + 2 * PI**2 * torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1])

    def run():
        return pde.solve(residual, domain=[(-1, 1), (-1, 1)], dirichlet=0.0, width=[2, 3, 1], n_interior=300,
                         seed=3, schedule=[pde.Phase("lbfgs", 3, grid=5), pde.Phase("lm", 3, grid=6)],
                         exact=lambda x: torch.sin(PI * x[:, 0]) * torch.sin(PI * x[:, 1]))

    a, b = run(), run()
    x = torch.rand(50, 2, dtype=F64) * 2 - 1
    assert torch.equal(a(x), b(x))
    h = a.history
    assert len(h) == 6 and h.optimizer[-1] == "lm" and h.grid[-1] == 6 and h.error[-1] < h.error[0]
    assert isinstance(a.model, kanopy.KAN)
    path = os.path.join(tempfile.mkdtemp(), "poisson.kan")
    a.model.save(path)
    assert torch.equal(kanopy.load(path)(x)[:, 0], a(x))
    assert a.model.prune().width[0] == [2, 0]
    assert a.model.plot() is not None
    u = a.derivatives(x)
    assert torch.allclose(u.laplacian, jets.autograd_jet(a.model, x).laplacian[:, 0], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------- bad input
def _poisson(x, u):
    return u.laplacian + 1.0


@pytest.mark.parametrize("kwargs,message", [
    (dict(domain=[]), "domain is empty"),
    (dict(domain=[(1, -1), (0, 1)]), r"domain\[0\] .* inverted"),
    (dict(domain=[(0, 1), (1, 1)]), r"domain\[1\] .* empty"),
    (dict(domain=[(0, math.nan)]), "not finite"),
    (dict(dirichlet=lambda x: torch.zeros(x.shape[0], 2)), r"dirichlet returned shape \(\d+, 2\)"),
    (dict(dirichlet=lambda x: x[:, 0] / 0 * 0), "dirichlet is not finite"),
    (dict(residual=lambda x, u: u.laplacian[:5]), r"residual returned shape \(5,\)"),
    (dict(residual=lambda x, u: u.grad), r"residual returned shape \(\d+, 2\)"),
    (dict(residual=lambda x, u: u.laplacian + torch.log(x[:, 0] - 2)), "residual is NaN at the point"),
    (dict(residual=lambda x, u: u.d(2)), "coordinate 2 asked, but the problem has 2 coordinates"),
    (dict(dirichlet={3: 0.0}), "axis 3 does not exist"),
    (dict(periodic=[2]), "periodic axis 2 does not exist"),
    (dict(width=[3, 5, 1]), "width must run from the domain's 2 coordinates"),
    (dict(dirichlet=None), "no boundary or initial condition"),
    (dict(dirichlet="zero"), "dirichlet must be a number or a callable"),
])
def test_bad_input_raises_a_value_error_naming_it(kwargs, message):
    options = dict(residual=_poisson, domain=[(-1, 1), (-1, 1)], dirichlet=0.0, width=[2, 2, 1], n_interior=50,
                   schedule=[pde.Phase("lbfgs", 1)])
    options.update(kwargs)
    with pytest.raises(ValueError, match=message):
        pde.solve(options.pop("residual"), **options)


def test_collocation_points_are_seeded_and_in_the_box():
    lo, hi = collocation.check_domain([(-1, 1), (0, 3)])
    a = collocation.interior(lo, hi, 100, seed=4)
    assert torch.equal(a, collocation.interior(lo, hi, 100, seed=4))
    assert not torch.equal(a, collocation.interior(lo, hi, 100, seed=5))
    assert bool(((a >= lo) & (a <= hi)).all())
    face = collocation.face(lo, hi, 1, 1, 20, seed=0, sampling="uniform")
    assert bool((face[:, 1] == 3).all()) and bool(((face[:, 0] >= -1) & (face[:, 0] <= 1)).all())
