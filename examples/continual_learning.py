"""Continual learning: a KAN keeps what it learned earlier; an MLP of equal size forgets.

The KAN paper's 1-D task: y = sum over c in (-0.8, -0.4, 0, 0.4, 0.8) of exp(-300 (x - c)^2),
shown one peak at a time: phase i trains on 100 evenly spaced samples of y on [c_i - 0.2,
c_i + 0.2] only. The KAN is pykan's setup: [1, 1], grid 200, cubic splines, base branch off,
scales frozen (only the spline coefficients train), no grid updates, 100 LBFGS steps per
phase. B-splines are local, so samples in one region move only the coefficients whose
support meets that region; the MLP's weights act everywhere, so fitting a new peak
overwrites the old ones. The MLP ([1, h, h, 1], SiLU, the same parameter count within a
few) trains with LBFGS too, the same number of steps.

    python examples/continual_learning.py [--steps 100] [--seed 0] [--figure docs/continual_learning.png]
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

import torch

from kanopy import KAN
from kanopy.baselines import MLP, train, widths_for

PEAKS = (-0.8, -0.4, 0.0, 0.4, 0.8)
HALF_WIDTH = 0.2  # each phase sees [c - 0.2, c + 0.2]


def target(x: torch.Tensor) -> torch.Tensor:
    """y(x) for x (N, 1): (N, 1)."""
    return sum(torch.exp(-300 * (x - c) ** 2) for c in PEAKS)


def phase_data(phase: int, n: int = 100):
    c = PEAKS[phase]
    x = torch.linspace(c - HALF_WIDTH, c + HALF_WIDTH, n, dtype=torch.float64)[:, None]
    return x, target(x)


def region_points(phases, n_per_region: int = 400) -> torch.Tensor:
    """Evenly spaced test points over the regions of the given phases, off the training samples."""
    parts = []
    for p in phases:
        c = PEAKS[p]
        t = (torch.arange(n_per_region, dtype=torch.float64) + 0.5) / n_per_region
        parts.append(c - HALF_WIDTH + 2 * HALF_WIDTH * t)
    return torch.cat(parts)[:, None]


def make_kan(seed: int = 0) -> KAN:
    return KAN([1, 1], grid=200, k=3, seed=seed, scale_base_mu=0.0, scale_base_sigma=0.0,
               sb_trainable=False, sp_trainable=False)


@dataclass
class Result:
    """Per model: the curve on [-1, 1] after every phase, and the RMSE on the earlier peaks."""

    x: torch.Tensor
    curves: dict = field(default_factory=dict)  # name -> list of (N,) tensors, one per phase
    rmse_earlier: dict = field(default_factory=dict)  # name -> list: RMSE on peaks 1..i-1 after phase i
    params: dict = field(default_factory=dict)

    def final_rmse(self, name: str) -> float:
        """RMSE on peaks 1-4 after the fifth phase."""
        return self.rmse_earlier[name][-1]


def run(seed: int = 0, steps: int = 100, mlp_depth: int = 2) -> Result:
    kan = make_kan(seed)
    widths = widths_for(kan.num_parameters(), 1, 1, depth=mlp_depth)
    mlp = MLP(widths, activation="silu", seed=seed)
    x = torch.linspace(-1, 1, 801, dtype=torch.float64)[:, None]
    result = Result(x=x, params={"KAN": kan.num_parameters(), "MLP": mlp.num_parameters()})
    for name in ("KAN", "MLP"):
        result.curves[name], result.rmse_earlier[name] = [], []
    for phase in range(len(PEAKS)):
        X, y = phase_data(phase)
        kan.fit(X, y, steps=steps, optimizer="lbfgs", update_grid=False, progress=False, seed=seed)
        train(mlp, X, y, steps=steps, optimizer="lbfgs")
        earlier = region_points(range(phase)) if phase else None
        for name, model in (("KAN", kan), ("MLP", mlp)):
            with torch.no_grad():
                result.curves[name].append(model(x)[:, 0].clone())
                error = (float(torch.sqrt(torch.mean((model(earlier) - target(earlier)) ** 2)))
                         if earlier is not None else math.nan)
            result.rmse_earlier[name].append(error)
    return result


def plot(result: Result, path) -> None:
    """Both models after every phase (rows: KAN, MLP; columns: phases), on their own Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(3.0 * len(PEAKS), 5.2))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, len(PEAKS), sharex=True, sharey=True)
    x = result.x[:, 0].numpy()
    for row, name in enumerate(("KAN", "MLP")):
        for phase in range(len(PEAKS)):
            ax = axes[row][phase]
            ax.plot(x, target(result.x)[:, 0].numpy(), color="0.8", linewidth=1.0, label="target")
            X, y = phase_data(phase)
            ax.plot(X[:, 0].numpy(), y[:, 0].numpy(), ".", color="tab:orange", markersize=2, label="phase data")
            ax.plot(x, result.curves[name][phase].numpy(), color="tab:blue" if row == 0 else "tab:red",
                    linewidth=1.2, label=name)
            error = result.rmse_earlier[name][phase]
            title = f"{name} after phase {phase + 1}"
            ax.set_title(title + (f"\nRMSE on earlier peaks {error:.1e}" if phase else ""), fontsize=8)
            ax.set_ylim(-0.4, 1.3)
    axes[0][0].legend(fontsize=6, loc="upper right")
    fig.suptitle(f"Continual learning: KAN ({result.params['KAN']} parameters) vs MLP "
                 f"({result.params['MLP']} parameters)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100, help="LBFGS steps per phase (both models)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", default=None, help="write the figure of both models after each phase here")
    args = parser.parse_args()
    result = run(seed=args.seed, steps=args.steps)
    print(f"parameters: KAN {result.params['KAN']}, MLP {result.params['MLP']}")
    print("RMSE on the peaks shown before, after each phase:")
    print("phase     KAN        MLP")
    for phase in range(1, len(PEAKS)):
        print(f"{phase + 1:>5}  {result.rmse_earlier['KAN'][phase]:.2e}  {result.rmse_earlier['MLP'][phase]:.2e}")
    if args.figure:
        plot(result, args.figure)
        print(f"figure: {args.figure}")


if __name__ == "__main__":
    main()
