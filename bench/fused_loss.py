"""The fused objective's loss kinds: an LBFGS step with cross-entropy against one with MSE.

On digits (load_digits, 1,797 rows, 64 features standardised), a [64, 16, 10] KAN (grid 5,
float64, full batch): the time of an LBFGS step (``optim.lbfgs.LBFGS.step``, up to 20
iterations with a strong-Wolfe line search, all in C++) on the objective of ``fit`` for

* MSE on one-hot targets (N, 10) (the fused path before the loss kinds),
* cross-entropy on the labels (fused, ``kan_loss_grad`` with loss kind cross_entropy),
* cross-entropy by autograd over the per-layer fused op (the path cross-entropy took before),

and the time of one evaluation (loss and gradient) of each. Each round starts every variant
from the same fresh model and times its first ``--steps`` steps; variants interleaved,
medians over rounds and steps; one thread.

    flock /tmp/kanopy-bench.lock python bench/fused_loss.py [--rounds 7] [--steps 3] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from kanopy import KAN, losses  # noqa: E402
from kanopy.objectives import DataObjective  # noqa: E402
from kanopy.optim.lbfgs import LBFGS  # noqa: E402

VARIANTS = ("mse (fused)", "cross_entropy (fused)", "cross_entropy (autograd)")


def data():
    X, labels = load_digits(return_X_y=True)
    X = (X - X.mean(axis=0)) / np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    X = torch.from_numpy(X)
    labels = torch.from_numpy(labels).long()
    return X, labels, torch.nn.functional.one_hot(labels, 10).double()


def objective_for(model, variant, X, labels, one_hot):
    loss = "mse" if variant.startswith("mse") else "cross_entropy"
    objective = DataObjective(model, losses.get(loss))
    objective.set_batch(X, one_hot if loss == "mse" else labels)
    if variant.endswith("(autograd)"):
        objective._fused = objective.fused = None
    elif objective.fused is None:
        raise SystemExit(f"{variant}: the fused objective does not apply (no compiler?)")
    return objective


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X, labels, one_hot = data()
    base = KAN([64, 16, 10], grid=5, seed=0)
    base.set_scaling(X, None)
    steps = {v: [] for v in VARIANTS}
    evals = {v: [] for v in VARIANTS}
    for _ in range(args.rounds):
        for variant in VARIANTS:
            model = copy.deepcopy(base)
            objective = objective_for(model, variant, X, labels, one_hot)
            t0 = time.perf_counter()
            objective.evaluate()
            evals[variant].append(time.perf_counter() - t0)
            opt = LBFGS()
            for _ in range(args.steps):
                t0 = time.perf_counter()
                opt.step(objective)
                steps[variant].append(time.perf_counter() - t0)
            objective.release()
    step = {v: 1000 * statistics.median(steps[v]) for v in VARIANTS}
    evaluation = {v: 1000 * statistics.median(evals[v]) for v in VARIANTS}
    reference = VARIANTS[0]
    rows = [[v, f"{step[v]:.1f}", f"{step[v] / step[reference]:.2f}", f"{evaluation[v]:.2f}",
             f"{evaluation[v] / evaluation[reference]:.2f}"] for v in VARIANTS]
    headers = ["objective", "ms per LBFGS step", "step / mse step", "ms per evaluation", "evaluation / mse"]
    kernels, torch_isa = _report.kernels_isa()
    text = (f"## Fused cross-entropy: an LBFGS step on digits, [64, 16, 10] (`bench/fused_loss.py`)\n\n"
            f"`flock /tmp/kanopy-bench.lock {_report.command('bench/fused_loss.py')}` at commit {_report.commit()} "
            f"on {_report.machine()}, load average {_report.load_average()} at the end.\n"
            f"{_report.build_line(kernels, torch_isa)}\n\n"
            f"load_digits standardised (1,797 rows), a [64, 16, 10] KAN at grid 5, float64, full batch; one LBFGS "
            f"step is up to 20 iterations with a strong-Wolfe line search (the objectives differ, so their "
            f"evaluations per step may too). Medians of {args.rounds} rounds x {args.steps} steps from the same "
            f"fresh model, variants interleaved; evaluation: one loss and gradient at the initial model.\n\n"
            + _report.table(headers, rows) + "\n")
    print(text)
    if not args.no_write:
        _report.write_section("fused-loss", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
