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


def pytest_collection_modifyitems(config, items):
    """Tests under tests/integration/ run whole workflows through the public surfaces (the
    CLI, discover, the demo, the README's code, the examples): all marked ``integration``, so
    ``pytest -m "not integration"`` runs the unit tests of the layers alone."""
    for item in items:
        if "integration" in item.path.parts:
            item.add_marker(pytest.mark.integration)
