"""KAN: construction, forward through sum and multiplication nodes, traces, refine."""

import pytest
import torch
from conftest import uniform_samples

from kanopy import KAN


def test_forward_is_the_composition_of_layers():
    model = KAN([3, 4, 2], grid=5, seed=0)
    x = uniform_samples(20, 3, seed=1)
    with torch.no_grad():
        manual = model.layers[1](model.layers[0](x))
        torch.testing.assert_close(model(x), manual, atol=1e-14, rtol=0)


def test_multiplication_nodes_multiply_their_subnodes():
    model = KAN([2, [1, 2], 1], grid=4, seed=0, mult_arity=2)
    assert model.layers[0].out_dim == 1 + 2 * 2 and model.layers[1].in_dim == 3
    x = uniform_samples(10, 2, seed=2)
    with torch.no_grad():
        sub = model.layers[0](x)
        nodes = torch.stack([sub[:, 0], sub[:, 1] * sub[:, 2], sub[:, 3] * sub[:, 4]], 1)
        torch.testing.assert_close(model(x), model.layers[1](nodes), atol=1e-14, rtol=0)


def test_arity_three():
    model = KAN([2, [0, 1], 1], grid=3, mult_arity=3)
    x = uniform_samples(10, 2, seed=3)
    with torch.no_grad():
        sub = model.layers[0](x)
        torch.testing.assert_close(model(x), model.layers[1](sub.prod(1, keepdim=True)), atol=1e-14, rtol=0)


def test_trace_agrees_with_forward():
    model = KAN([2, [2, 1], 3, 1], grid=4, seed=1)
    x = uniform_samples(25, 2, seed=4)
    with torch.no_grad():
        traces = model.trace(x)
        torch.testing.assert_close(traces[-1].outputs, model(x), atol=1e-12, rtol=0)
        assert traces[0].edges.shape == (25, 2, 4)


def test_input_and_output_maps():
    model = KAN([1, 2, 1], grid=4, seed=0)
    x = uniform_samples(10, 1, seed=5)
    with torch.no_grad():
        base = model(x)
        model.in_shift.fill_(2.0)
        model.in_scale.fill_(3.0)
        model.out_shift.fill_(-1.0)
        model.out_scale.fill_(0.5)
        torch.testing.assert_close(model(2.0 + 3.0 * x), base * 0.5 - 1.0, atol=1e-13, rtol=0)


def test_refine_returns_the_model_and_keeps_it():
    model = KAN([2, 3, 1], grid=4, seed=0)
    x = uniform_samples(100, 2, seed=6)
    with torch.no_grad():
        before = model(x)
    assert model.refine(8) is model and model.grid == 8
    with torch.no_grad():
        assert (model(x) - before).abs().max() <= 1e-10


def test_same_seed_same_model_and_no_global_state():
    default_dtype = torch.get_default_dtype()
    rng_state = torch.get_rng_state()
    a, b, c = KAN([2, 3, 1], seed=7), KAN([2, 3, 1], seed=7), KAN([2, 3, 1], seed=8)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.layers[0].coef, c.layers[0].coef)
    assert torch.get_default_dtype() == default_dtype
    assert torch.equal(torch.get_rng_state(), rng_state)


def test_dtypes():
    assert KAN([2, 1], dtype="float32").layers[0].coef.dtype == torch.float32
    assert KAN([2, 1]).layers[0].coef.dtype == torch.float64


@pytest.mark.parametrize("width,match", [
    ([2], "at least 2"), ([], "at least 2"), (5, "at least 2"), ([2, 0, 1], r"width\[1\]"),
    ([2, -1, 1], r"width\[1\]"), ([2, "a", 1], r"width\[1\]"), ([[1, 1], 1], "multiplication"),
])
def test_bad_width(width, match):
    with pytest.raises(ValueError, match=match):
        KAN(width)


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0), "spline order"), (dict(k=7), "spline order"), (dict(grid=0), "grid"),
    (dict(dtype="float16"), "dtype"), (dict(mult_arity=1), "mult_arity"), (dict(input_bound=0), "input_bound"),
    (dict(input_bound="1"), "input_bound"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KAN([2, 2, 1], **kwargs)


def test_an_input_bound_clamps_the_scaled_inputs_and_nothing_else():
    free = KAN([2, 3, 1], grid=4, seed=0)
    bounded = KAN([2, 3, 1], grid=4, seed=0, input_bound=1.1)
    for m in (free, bounded):
        with torch.no_grad():
            m.in_shift.copy_(torch.tensor([1.0, -2.0], dtype=torch.float64))
            m.in_scale.copy_(torch.tensor([2.0, 0.5], dtype=torch.float64))
    inside = torch.tensor([[1.0 + 2.0 * 1.05, -2.0 - 0.5 * 1.05], [0.5, -2.2]], dtype=torch.float64)  # |scaled| <= 1.1
    far = torch.tensor([[100.0, -2.1], [1.0, 1e6]], dtype=torch.float64)
    clamped = torch.tensor([[1.0 + 2.0 * 1.1, -2.1], [1.0, -2.0 + 0.5 * 1.1]], dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(bounded(inside), free(inside))
        assert torch.equal(bounded(far), free(clamped))
        assert torch.equal(bounded.trace(far)[-1].outputs, free.trace(clamped)[-1].outputs)
        assert not torch.allclose(free(far), free(clamped))
    assert bounded.config()["input_bound"] == 1.1 and KAN.from_config(bounded.config()).input_bound == 1.1
    assert KAN.from_config({k: v for k, v in free.config().items() if k != "input_bound"}).input_bound is None
