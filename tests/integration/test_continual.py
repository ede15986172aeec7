"""Continual learning (examples/continual_learning.py, the KAN paper's 1-D task): the KAN keeps
the peaks it saw earlier, an MLP of the same size forgets them, in one run."""

import importlib.util
import sys
from pathlib import Path

import torch

from kanopy import baselines

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continual_learning.py"


def example():
    if "continual_learning" not in sys.modules:  # dataclasses look their module up there
        spec = importlib.util.spec_from_file_location("continual_learning", EXAMPLE)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["continual_learning"]


def test_kan_keeps_earlier_peaks_while_an_mlp_of_equal_size_forgets(tmp_path):
    cl = example()
    result = cl.run(seed=0, steps=20)  # 20 LBFGS steps a phase (the example's default is 100)
    assert abs(result.params["KAN"] - result.params["MLP"]) <= 0.05 * result.params["KAN"]
    assert result.final_rmse("KAN") <= 1e-3  # on peaks 1-4, after the fifth phase
    assert result.final_rmse("MLP") >= 0.1
    # after every phase the KAN still fits every peak it saw before
    assert max(result.rmse_earlier["KAN"][1:]) <= 1e-3
    cl.plot(result, tmp_path / "continual.png")
    assert (tmp_path / "continual.png").stat().st_size > 0


def test_a_phase_moves_only_the_coefficients_whose_support_meets_its_data():
    cl = example()
    kan = cl.make_kan(seed=0)
    X, y = cl.phase_data(0)
    kan.fit(X, y, steps=10, update_grid=False, progress=False)
    before = kan.layers[0].coef.detach().clone()
    X, y = cl.phase_data(3)  # [0.2, 0.6]
    kan.fit(X, y, steps=10, update_grid=False, progress=False)
    after = kan.layers[0].coef.detach()
    knots = kan.layers[0].knots[0]
    k, n_basis = kan.k, after.shape[1]
    # basis function m is nonzero on (knots[m], knots[m + k + 1])
    meets = torch.tensor([bool(knots[m] < X.max() and knots[m + k + 1] > X.min()) for m in range(n_basis)])
    assert torch.equal(after[0, ~meets], before[0, ~meets])  # bit for bit
    assert not torch.equal(after[0, meets], before[0, meets])


def test_the_mlp_baseline_is_seeded_without_global_state():
    state = torch.random.get_rng_state()
    a, b = baselines.MLP([1, 12, 12, 1], seed=3), baselines.MLP([1, 12, 12, 1], seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.num_parameters() == baselines.parameter_count([1, 12, 12, 1]) == 193
    assert baselines.widths_for(203, 1, 1, depth=2) == [1, 12, 12, 1]
