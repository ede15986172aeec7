"""Multi-stage fitting to float64 precision: kanopy.fit_multistage on three smooth functions.

* J0(20x) on [-1, 1] (a Bessel function with 12 sign changes);
* log(x + 2) cos(2x + x^3) on [-1, 1] (Wang & Lai's regression example);
* exp(sin(pi x) + y^2) on [-1, 1]^2 (the KAN paper's toy), no symbolic snapping.

20,000 samples uniform on the domain (fit_multistage holds 20% out for validation), test
RMSE on 10,000 fresh points; default settings (fit_multistage(X, y, stages=4, seed=...)).
Wall and CPU seconds are medians over the repeats (seeds 0, 1, 2); on a shared machine the
wall seconds include waiting for cores (or for a kernel build) that CPU seconds do not.
J0 is scipy's (torch.special.bessel_j0 is off by up to 4e-7). Writes the `multistage`
section of docs/benchmarks.md.

    python bench/multistage.py [--repeats 3] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
from _problems import j0  # noqa: E402

from kanopy import fit_multistage  # noqa: E402

N_FIT, N_TEST = 20_000, 10_000
PROBLEMS = {
    "J0(20x)": (1, lambda X: j0(20 * X), 1e-13),
    "log(x+2) cos(2x+x^3)": (1, lambda X: torch.log(X + 2) * torch.cos(2 * X + X**3), 1e-13),
    "exp(sin(pi x) + y^2)": (2, lambda X: torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:] ** 2), 1e-12),
}


def run(name: str, seed: int) -> dict:
    d, f, _ = PROBLEMS[name]
    g = torch.Generator().manual_seed(1000 + seed)
    X = torch.rand(N_FIT, d, generator=g, dtype=torch.float64) * 2 - 1
    X_test = torch.rand(N_TEST, d, generator=g, dtype=torch.float64) * 2 - 1
    y = f(X)
    t0, c0 = time.perf_counter(), time.process_time()
    model = fit_multistage(X, y, stages=4, seed=seed)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    with torch.no_grad():
        test = float(torch.sqrt(torch.mean((model(X_test) - f(X_test)) ** 2)))
    return {"test": test, "wall": wall, "cpu": cpu, "params": model.num_parameters(), "reports": model.reports}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    rows, stage_rows = [], []
    for name, (_, _, goal) in PROBLEMS.items():
        runs = [run(name, seed) for seed in range(args.repeats)]
        for seed, r in enumerate(runs):
            print(f"{name} seed {seed}: test RMSE {r['test']:.2e}, {r['wall']:.1f} s wall, {r['cpu']:.1f} s CPU, "
                  f"{len([s for s in r['reports'] if s.kept])} stages, {r['params']} params", flush=True)
        tests = [r["test"] for r in runs]
        rows.append([name, f"**{statistics.median(tests):.2e}** [{_report.spread(tests)}]", f"{goal:.0e}",
                     "yes" if max(tests) <= goal else "no", f"{statistics.median(r['wall'] for r in runs):.1f}",
                     f"{statistics.median(r['cpu'] for r in runs):.1f}", f"{statistics.median(r['params'] for r in runs):.0f}"])
        for s in runs[0]["reports"]:
            stage_rows.append([name, s.stage, str(s.width), s.grid, s.k, f"{s.scale:.2e}", s.params, s.solver,
                               f"{s.val_rmse:.2e}", f"{s.seconds:.1f}", "kept" if s.kept else "dropped"])
    if args.no_write:
        return
    command = "python bench/multistage.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"## Multi-stage fitting to float64 precision\n\n`{command.strip()}` (commit {_report.commit()}, "
            f"{(time.perf_counter() - started) / 60:.1f} min).\nMachine: {_report.machine()}; ISA {_report.isa()}. {_report.THREADS_NOTE}\n\n"
            + "\n\n".join(__doc__.split("\n\n")[1:3]) + "\n\n"
            + _report.table(["function", "test RMSE, median [range]", "goal", "all repeats at goal", "wall s",
                             "CPU s", "params"], rows)
            + "\n\nStages of the seed-0 fits (validation RMSE of the model up to that stage):\n\n"
            + _report.table(["function", "stage", "width", "grid", "k", "scale", "params", "solver", "val RMSE",
                             "s", ""], stage_rows))
    _report.write_section("multistage", text)


if __name__ == "__main__":
    main()
