"""Scaling laws: test RMSE against parameter count over grid extension (the KAN paper's Fig. 2.3).

Cubic splines approximate a smooth function with error ~ h^4 in the knot spacing h, so a KAN
whose structure is exact (the [2, 1, 1] KAN of exp(sin(pi x) + y^2), the [1, 1] KAN of
J0(20x)) should reach test RMSE ~ N^-4 in its parameter count N, down to float64 rounding.
The paper's pykan runs flatten out near 1e-6..1e-8 (float32, LBFGS only); the fits here are
float64, LBFGS on the coarse grids (the first from the best of 4 initialisations by training
RMSE) and Levenberg-Marquardt from grid 20 on (a nested grid extension keeps the function;
knots follow the hidden layer's range before every fit). J0 is scipy's.

* toy: [2, 1, 1], k = 3, 10,000 training and 10,000 test points on [-1, 1]^2;
* J0(20x): [1, 1], k = 3, 10,000 training and 10,000 test points on [-1, 1].

The exponent is the least-squares slope of log RMSE against log N over the grids whose RMSE
is above 1e-14 (the last ones sit on rounding) and from grid 10 on (the asymptotic regime).
Writes the `scaling` section of docs/benchmarks.md and docs/scaling_laws.png.

    python bench/scaling.py [--grids 3,5,10,20,50,100,200,500] [--n 10000] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
from _problems import j0  # noqa: E402

from kanopy import KAN  # noqa: E402
from kanopy.multistage import cover_inputs, fit_lm  # noqa: E402

FIGURE = _report.DOC.parent / "scaling_laws.png"
LM_FROM_GRID = 20
LBFGS_ROWS, LBFGS_STEPS, RESTARTS = 3000, 50, 4  # the coarse grids' LBFGS fits
ROUNDING_FLOOR = 1e-14


def toy(X):
    return torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2)


def bessel(X):
    return j0(20 * X)


PROBLEMS = {"toy": ("exp(sin(pi x) + y^2), [2, 1, 1]", [2, 1, 1], 2, toy),
            "j0": ("J0(20 x), [1, 1]", [1, 1], 1, bessel)}


def data(d: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1


def first_fit(width, grid, X, y, seed: int) -> KAN:
    """The coarsest grid's fit from RESTARTS initialisations (seeds seed, seed + 1, ...), the
    one with the lowest training RMSE kept: from some initialisations LBFGS settles where the
    hidden node carries only one input (test RMSE ~0.6 on the toy), and grid extension keeps
    the structure it starts from."""
    best, best_rmse = None, math.inf
    for s in range(seed, seed + RESTARTS):
        model = KAN(width, grid=grid, k=3, seed=s)
        model.set_scaling(X, y)
        model.fit(X, y, steps=LBFGS_STEPS, optimizer="lbfgs", progress=False)
        with torch.no_grad():
            train = float(torch.sqrt(torch.mean((model(X) - y) ** 2)))
        if train < best_rmse:
            best, best_rmse = model, train
    return best


def sweep(name: str, grids, n: int, seed: int = 0) -> list[dict]:
    _, width, d, f = PROBLEMS[name]
    X, Xt = data(d, n, seed + 1), data(d, n, seed + 2)
    y, yt = f(X), f(Xt)
    points, start = [], time.perf_counter()
    model = first_fit(width, grids[0], X[:LBFGS_ROWS], y[:LBFGS_ROWS], seed)
    for grid in grids:
        if grid != model.grid:  # the first grid is first_fit's
            model.refine(grid)
            if grid < LM_FROM_GRID:
                model.fit(X[:LBFGS_ROWS], y[:LBFGS_ROWS], steps=LBFGS_STEPS, optimizer="lbfgs", progress=False)
            else:
                cover_inputs(model, X)
                fit_lm(model, X, y)
        with torch.no_grad():
            test = float(torch.sqrt(torch.mean((model(Xt) - yt) ** 2)))
        points.append({"grid": grid, "params": model.num_parameters(), "test": test,
                       "seconds": time.perf_counter() - start})
        print(f"{name} grid {grid}: {model.num_parameters()} params, test RMSE {test:.3e}, "
              f"{time.perf_counter() - start:.1f} s", flush=True)
    return points


def exponent(points) -> tuple[float, list[dict]]:
    """-slope of log RMSE vs log params over the asymptotic points above rounding."""
    used = [p for p in points if p["grid"] >= 10 and p["test"] > ROUNDING_FLOOR]
    if len(used) < 2:
        return math.nan, used
    slope = np.polyfit(np.log([p["params"] for p in used]), np.log([p["test"] for p in used]), 1)[0]
    return -float(slope), used


def plot(results: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for (name, (points, alpha)), color in zip(results.items(), ("tab:blue", "tab:red")):
        N = np.array([p["params"] for p in points], dtype=float)
        rmse = np.array([p["test"] for p in points])
        ax.loglog(N, rmse, "o-", color=color, label=f"{PROBLEMS[name][0]}: fitted exponent {alpha:.2f}")
        anchor = next(p for p in points if p["grid"] >= 10)
        ref = anchor["test"] * (N / anchor["params"]) ** -4.0
        ax.loglog(N, ref, "--", color=color, alpha=0.4, linewidth=1)
    ax.axhline(ROUNDING_FLOOR, color="0.6", linewidth=0.8, linestyle=":")
    ax.set_xlabel("parameters N")
    ax.set_ylabel("test RMSE")
    ax.set_title("kanopy, float64, cubic splines: test RMSE vs N (dashed: N^-4)", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grids", default="3,5,10,20,50,100,200,500")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grids = [int(g) for g in args.grids.split(",")]
    started = time.perf_counter()
    results = {}
    for name in PROBLEMS:
        points = sweep(name, grids, args.n)
        alpha, used = exponent(points)
        results[name] = (points, alpha)
        print(f"{name}: exponent {alpha:.2f} over grids {[p['grid'] for p in used]}")
    if args.no_write:
        return
    plot(results, FIGURE)
    command = "python bench/scaling.py " + " ".join(argv if argv is not None else sys.argv[1:])
    rows = []
    for name, (points, alpha) in results.items():
        for p in points:
            rows.append([PROBLEMS[name][0], p["grid"], p["params"], f"{p['test']:.2e}", f"{p['seconds']:.1f}"])
    summary = "; ".join(f"{PROBLEMS[name][0]}: exponent **{alpha:.2f}**, lowest test RMSE "
                        f"{min(p['test'] for p in points):.1e}" for name, (points, alpha) in results.items())
    text = (f"## Scaling laws: test RMSE against parameters over grid extension\n\n"
            f"`{command.strip()}` (commit {_report.commit()}, {(time.perf_counter() - started) / 60:.1f} min).\n"
            f"Machine: {_report.machine()}; ISA {_report.isa()}. {_report.THREADS_NOTE}\n\n{summary} (theory for cubic splines: 4).\n\n"
            f"![scaling laws](scaling_laws.png)\n\n"
            + _report.table(["problem", "grid", "params", "test RMSE", "cumulative s"], rows) + "\n\n"
            + "\n\n".join(__doc__.split("\n\n")[1:3]))
    _report.write_section("scaling", text)


if __name__ == "__main__":
    main()
