"""Physics-informed PDE solving: the derivative path and the examples' problems.

* derivatives: value + gradient + Laplacian of a [2, 10, 1] KAN (grid 10, cubic) at 10,000
  points and the parameter gradient of a residual loss, forward-mode jets
  (kanopy.jets.network_jet) against double autograd (kanopy.jets.autograd_jet), interleaved
  in one process, medians of repeats;
* Poisson -Δu = 2π² sin πx sin πy on [-1, 1]², u = 0 on the boundary, and Helmholtz
  Δu + u = q with u = sin πx sin 4πy: examples/pde_poisson.py and examples/pde_helmholtz.py
  as they are (relative L2 error on a 201 x 201 mesh, wall and CPU seconds).

Writes the `pde` section of docs/benchmarks.md.

    python bench/pde.py [--repeats 7] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import argparse  # noqa: E402
import runpy  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

import kanopy  # noqa: E402
from kanopy import jets  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def derivative_timings(repeats: int) -> dict:
    model = kanopy.KAN([2, 10, 1], grid=10, seed=0)
    x = torch.rand(10_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2 - 1
    params = [p for p in model.parameters() if p.requires_grad]

    def run(jet_fn):
        jet = jet_fn(model, x, jets.LAPLACIAN)
        r = jet.laplacian[:, 0] + torch.sin(x[:, 0])
        return torch.autograd.grad((r * r).mean(), params)

    ways = {"forward-mode jets": jets.network_jet, "double autograd": jets.autograd_jet}
    for fn in ways.values():
        run(fn)  # warm-up
    times = {name: [] for name in ways}
    for _ in range(repeats):
        for name, fn in ways.items():
            t = time.perf_counter()
            run(fn)
            times[name].append(time.perf_counter() - t)
    return times


def example(name: str) -> dict:
    main = runpy.run_path(str(EXAMPLES / f"pde_{name}.py"))["main"]
    cpu = time.process_time()
    result = main()
    result["cpu"] = time.process_time() - cpu
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    times = derivative_timings(args.repeats)
    fast, slow = statistics.median(times["forward-mode jets"]), statistics.median(times["double autograd"])
    rows = [[name, f"{statistics.median(v) * 1e3:.1f} [{_report.spread([t * 1e3 for t in v])}]"]
            for name, v in times.items()]
    problems = []
    for name in ("poisson", "helmholtz"):
        result = example(name)
        h = result["solution"].history
        formula = result.get("formula")
        problems.append([name, f"{result['error']:.2e}", f"{result['seconds']:.1f}", f"{result['cpu']:.1f}",
                         len(h), h.grid[-1], "" if formula is None else f"`{formula}`"])
        print(problems[-1], flush=True)
    command = _report.command("bench/pde.py")
    text = (f"## Physics-informed PDEs\n\n`{command.strip()}` (commit {_report.commit()}, "
            f"{(time.perf_counter() - started) / 60:.1f} min, load {_report.load_average()}).\n"
            f"Machine: {_report.machine()}; ISA {_report.isa()}. {_report.THREADS_NOTE}\n\n"
            "Derivatives of a [2, 10, 1] KAN (grid 10, k = 3) at 10,000 points: value, gradient, Laplacian and "
            "the parameter gradient of a residual loss, ms, median [range] of "
            f"{args.repeats} interleaved repeats; forward-mode is **{slow / fast:.1f}x** faster.\n\n"
            + _report.table(["path", "ms"], rows)
            + "\n\nThe examples as they are (relative L2 error on a 201 x 201 mesh against the exact solution):\n\n"
            + _report.table(["problem", "relative L2", "wall s", "CPU s", "steps", "final grid", "formula"], problems))
    print(text)
    if not args.no_write:
        _report.write_section("pde", text)


if __name__ == "__main__":
    main()
