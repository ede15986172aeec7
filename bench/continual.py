"""Continual learning, the KAN paper's 1-D task: runs examples/continual_learning.py (KAN and
an MLP of equal parameter count in the same run), writes the `continual` section of
docs/benchmarks.md and docs/continual_learning.png.

    python bench/continual.py [--steps 100] [--seed 0] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "examples"))
import _report  # noqa: E402
import continual_learning as task  # noqa: E402

FIGURE = _report.DOC.parent / "continual_learning.png"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    result = task.run(seed=args.seed, steps=args.steps)
    rows = [[phase + 1, f"{result.rmse_earlier['KAN'][phase]:.2e}", f"{result.rmse_earlier['MLP'][phase]:.2e}"]
            for phase in range(1, len(task.PEAKS))]
    print(_report.table(["after phase", "KAN RMSE on earlier peaks", "MLP"], rows))
    if args.no_write:
        return
    task.plot(result, FIGURE)
    command = "python bench/continual.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = (f"## Continual learning: the KAN paper's five peaks, one at a time\n\n`{command.strip()}` "
            f"(commit {_report.commit()}, {time.perf_counter() - started:.0f} s). Machine: {_report.machine()}; ISA {_report.isa()}.\n\n"
            f"KAN [1, 1], grid 200, k = 3, base branch off, scales frozen ({result.params['KAN']} trainable "
            f"parameters) against an MLP {task.widths_for(result.params['KAN'], 1, 1, depth=2)} "
            f"({result.params['MLP']} parameters, SiLU), both {args.steps} LBFGS steps per phase on 100 samples "
            f"of the current peak's region only. After the fifth phase the RMSE on peaks 1-4 is "
            f"**{result.final_rmse('KAN'):.1e}** for the KAN and **{result.final_rmse('MLP'):.1e}** for the MLP.\n\n"
            + _report.table(["after phase", "KAN: RMSE on the earlier peaks", "MLP: RMSE on the earlier peaks"], rows)
            + "\n\n![continual learning](continual_learning.png)\n\n"
            "B-splines are local: samples in one region change only the coefficients whose support meets it "
            "(bit for bit, tested in tests/test_continual.py); the MLP's weights act everywhere, so fitting a "
            "new peak overwrites the old ones.")
    _report.write_section("continual", text)


if __name__ == "__main__":
    main()
