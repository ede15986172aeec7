"""The same code on a GPU: skipped on machines without CUDA."""

import math

import pytest
import torch
from conftest import uniform_samples

import kanopy
from kanopy import KAN, KANLayer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def toy(n=500, device="cpu"):
    X = uniform_samples(n, 2, seed=0)
    y = torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)
    return X.to(device), y.to(device)


def test_layer_on_the_gpu_matches_the_cpu_values_and_gradients():
    cpu = KANLayer(7, 19, grid=10, k=3, dtype=torch.float64)
    gpu = KANLayer(7, 19, grid=10, k=3, dtype=torch.float64, device="cuda")
    gpu.load_state_dict(cpu.state_dict())
    x = uniform_samples(300, 7, seed=1, lo=-1.3, hi=1.3)
    results = []
    for layer, device in ((cpu, "cpu"), (gpu, "cuda")):
        xr = x.to(device).requires_grad_()
        out = layer(xr)
        out.square().sum().backward()
        results.append([out.detach().cpu(), xr.grad.cpu(), layer.coef.grad.cpu()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam", "lm"])
def test_a_model_trains_refines_and_round_trips_on_the_gpu(tmp_path, optimizer):
    X, y = toy(device="cuda")
    model = KAN([2, 3, 1], grid=3, seed=0, device="cuda")
    history = model.fit(X, y, steps=10, optimizer=optimizer, progress=False)
    assert history.train_rmse[-1] < history.train_rmse[0]
    with torch.no_grad():
        before = model(X)
        model.refine(6)
        torch.testing.assert_close(model(X), before, rtol=1e-6, atol=1e-6)
    model.save(tmp_path / "gpu.kan")
    back = kanopy.load(tmp_path / "gpu.kan", device="cuda")
    with torch.no_grad():
        assert torch.equal(back(X), model(X))


def test_cpu_and_gpu_fits_agree():
    models = []
    for device in ("cpu", "cuda"):
        X, y = toy(device=device)
        model = KAN([2, 3, 1], grid=5, seed=0, device=device)
        model.backend = "torch"  # the same arithmetic on both sides
        model.fit(X, y, steps=3, optimizer="adam", progress=False)
        models.append(model)
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        torch.testing.assert_close(a.detach(), b.detach().cpu(), rtol=1e-8, atol=1e-10)
