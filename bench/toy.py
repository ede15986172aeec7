"""End-to-end toy benchmark: kanopy vs pykan 0.2.8 on the demo's schedule, in one process.

f(x, y) = exp(sin(pi x) + y^2) on [-1, 1]^2, 3,000 training and 3,000 test samples, a
[2, 5, 1] KAN, grids 3 -> 5 -> 10 -> 20 -> 50 -> 100 with 200 LBFGS steps per grid (a step is
one LBFGS call of up to 20 iterations in both libraries). Runs:

* kanopy, plain engine: exactly that schedule (float64);
* pykan 0.2.8: exactly that schedule (its default float32; its own LBFGS), in a temporary
  folder because it writes checkpoints to ./model;
* kanopy demo pipeline: what `kanopy demo` does (shrink to [2, 1, 1] at grid 20, then
  Levenberg-Marquardt), for scale.

Writes the `toy-<kernel ISA>` section of docs/benchmarks.md. The kernels are built for the CPU
they run on; the environment picks another build and the ISA torch (and so pykan) uses, e.g.
an AVX2 run on an AVX-512 machine:
    KANOPY_MARCH=x86-64-v3 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/toy.py
    python bench/toy.py [--repeats 3] [--pykan-repeats 1] [--steps 200]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from kanopy import KAN, demo  # noqa: E402

GRIDS = (3, 5, 10, 20, 50, 100)


def rmse(pred, y) -> float:
    return float(torch.sqrt(torch.mean((pred.double() - y.double()) ** 2)))


def run_kanopy(data, steps, seed):
    X, y, Xt, yt = data
    model = KAN([2, 5, 1], grid=GRIDS[0], k=3, seed=seed)
    per_grid, start = [], time.perf_counter()
    for grid in GRIDS:
        if grid != model.grid:
            model.refine(grid)
        model.fit(X, y, steps=steps, optimizer="lbfgs", progress=False)
        with torch.no_grad():
            per_grid.append((grid, time.perf_counter() - start, rmse(model(Xt), yt)))
    return per_grid


def run_pykan(data, steps, seed):
    from kan import KAN as PyKAN

    X, y, Xt, yt = data
    dataset = {"train_input": X.float(), "train_label": y.float(), "test_input": Xt.float(), "test_label": yt.float()}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # pykan writes checkpoints under ./model
        try:
            model = PyKAN(width=[2, 5, 1], grid=GRIDS[0], k=3, seed=seed, ckpt_path=str(Path(tmp) / "model"))
            per_grid, start = [], time.perf_counter()
            for grid in GRIDS:
                if grid != GRIDS[0]:
                    model = model.refine(grid)
                model.fit(dataset, opt="LBFGS", steps=steps, log=steps + 1)
                with torch.no_grad():
                    per_grid.append((grid, time.perf_counter() - start, rmse(model(dataset["test_input"]), yt)))
        finally:
            os.chdir(cwd)
    return per_grid


def run_demo_pipeline(seed):
    from io import StringIO

    from rich.console import Console

    result = demo.run(seed=seed, console=Console(file=StringIO()), progress=False, discover=False)
    return [(s.grid, sum(r.seconds for r in result.stages[: i + 1]), s.test_rmse)
            for i, s in enumerate(result.stages)]


def with_cpu_seconds(fn, *args, **kwargs):
    """(fn's result, CPU seconds of this process while it ran: all threads, user + system).
    On a machine whose cores other processes share, wall time grows with their load; the
    CPU time of the work does not (OMP_WAIT_POLICY=PASSIVE: idle threads sleep, not spin)."""
    start = time.process_time()
    result = fn(*args, **kwargs)
    return result, time.process_time() - start


def summarize(name, runs, cpu):
    """runs: list of per-grid lists, cpu: CPU seconds per run -> row of medians."""
    totals = [run[-1][1] for run in runs]
    finals = [run[-1][2] for run in runs]
    bests = [min(r[2] for r in run) for run in runs]
    return {"name": name, "repeats": len(runs), "total_s": _report.median(totals), "total_range": _report.spread(totals),
            "final": _report.median(finals), "best": _report.median(bests), "runs": runs,
            "cpu_s": _report.median(cpu), "cpu_range": _report.spread(cpu)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pykan-repeats", type=int, default=1, help="pykan takes minutes per run")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kernels_isa, torch_isa = _report.kernels_isa()  # builds the kernels now, outside any timing
    print(f"kanopy kernels: {kernels_isa}; torch CPU capability: {torch_isa}", flush=True)
    load = _report.load_average()

    X, y = demo.toy_data(args.n, seed=1)
    Xt, yt = demo.toy_data(args.n, seed=2)
    data = (X, y, Xt, yt)
    runs = {"kanopy": [], "pykan": [], "demo": []}
    cpu = {key: [] for key in runs}  # CPU seconds of each run

    def record(key, fn, *fn_args, **fn_kwargs):
        result, seconds = with_cpu_seconds(fn, *fn_args, **fn_kwargs)
        runs[key].append(result)
        cpu[key].append(seconds)
        print(key, result[-1], f"CPU {seconds:.1f} s", flush=True)

    for r in range(max(args.repeats, args.pykan_repeats)):  # implementations interleaved
        if r < args.repeats:
            record("kanopy", run_kanopy, data, args.steps, seed=r)
        if r < args.pykan_repeats:
            try:
                record("pykan", run_pykan, data, args.steps, seed=r)
            except ImportError:
                print("pykan is not installed (pip install -e '.[bench]'); skipped")
        if r < args.repeats:
            record("demo", run_demo_pipeline, seed=r)

    rows, summaries = [], {}
    labels = {"kanopy": "kanopy plain engine (float64, LBFGS)", "pykan": "pykan 0.2.8 (float32, LBFGS)",
              "demo": "kanopy demo pipeline (shrink + LM)"}
    for key in ("kanopy", "pykan", "demo"):
        if runs[key]:
            s = summaries[key] = summarize(labels[key], runs[key], cpu[key])
            rows.append([s["name"], s["repeats"], f"{s['total_s']:.1f} ({s['total_range']})",
                         f"{s['cpu_s']:.1f} ({s['cpu_range']})", f"{s['best']:.2e}", f"{s['final']:.2e}"])
    per_grid_rows = []
    for i, grid in enumerate(GRIDS):
        row = [grid]
        for key in ("kanopy", "pykan"):
            if runs[key]:
                row += [f"{_report.median([run[i][2] for run in runs[key]]):.2e}",
                        f"{_report.median([run[i][1] for run in runs[key]]):.1f}"]
        per_grid_rows.append(row)
    speedup = ""
    if "pykan" in summaries:
        ratio = summaries["pykan"]["total_s"] / summaries["kanopy"]["total_s"]
        cpu_ratio = summaries["pykan"]["cpu_s"] / summaries["kanopy"]["cpu_s"]
        speedup = (f"\nSame schedule: kanopy is **{ratio:.1f}x faster** than pykan 0.2.8 in wall time "
                   f"({cpu_ratio:.1f}x in CPU time), with test RMSE "
                   f"{summaries['kanopy']['final']:.2e} vs {summaries['pykan']['final']:.2e} at grid 100 "
                   f"(best over the schedule {summaries['kanopy']['best']:.2e} vs {summaries['pykan']['best']:.2e}).\n")
    per_grid_headers = ["grid"] + [h for key in ("kanopy", "pykan") if runs[key]
                                   for h in (f"{key} test RMSE", f"{key} cumulative s")]
    markdown = f"""## Toy problem ({kernels_isa.split(" (")[0]} kernels, torch {torch_isa}): exp(sin(pi x) + y^2), [2, 5, 1], grids 3 -> 100

`{_report.command("bench/toy.py")}` (commit {_report.commit()}),
{args.n} train / {args.n} test samples, {args.steps} LBFGS steps per grid (a step = one LBFGS call of up to
20 iterations in both libraries). Medians over repeats with different seeds (range in brackets).
Machine: {_report.machine()}, 1-minute load average {load} at the start. {_report.build_line(kernels_isa, torch_isa)}
{_report.THREADS_NOTE} CPU seconds: the process's user + system time over the run, all threads.

{_report.table(["run", "repeats", "total seconds (wall)", "CPU seconds", "best test RMSE",
                "test RMSE at grid 100"], rows)}
{speedup}
Per grid (medians):

{_report.table(per_grid_headers, per_grid_rows)}
"""
    print(markdown)
    if not args.no_write:
        _report.write_section("toy-" + _report.isa_key(kernels_isa), markdown)


if __name__ == "__main__":
    main()
