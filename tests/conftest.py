import pytest
import torch

from kanopy import _extension


def fused_available() -> bool:
    return _extension.ops() is not None


BACKENDS = ["torch"] + (["fused"] if fused_available() else [])


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


def uniform_samples(n, d, seed, lo=-1.0, hi=1.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=dtype) * (hi - lo) + lo
