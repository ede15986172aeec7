"""Classification on data sets bundled with scikit-learn: KANClassifier() against its peers.

Every model gets the same 5-fold StratifiedKFold splits (shuffled, seed 0) and its defaults:
KANClassifier() (kanopy), MLPClassifier (max_iter 5000 so that it converges),
LogisticRegression (max_iter 5000) and HistGradientBoostingClassifier from scikit-learn, MLP
and the logistic regression behind a StandardScaler. pykan 0.2.8 (loss_fn CrossEntropyLoss,
LBFGS) fits the network kanopy chose on the fold at its first grid (when kanopy chose the
prior or its logistic model: the first network its search trained) for 20 LBFGS steps, with
one logit per class, its inputs min-max scaled to [-1, 1] as kanopy scales them; the same
network and steps with kanopy (a fixed recipe, cross-entropy) time the comparison. One
small untimed fit of every model comes first (kanopy loads its kernels then). Reported per data set:
mean test accuracy over the folds, the median fit time of a fold, and the ratios the issue
asks for. Models of one fold run side by side in one process, interleaved.

    flock /tmp/kanopy-bench.lock python bench/classify.py [--only wine] [--folds 5] [--no-pykan] [--no-write]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per model, set before numpy, torch, sklearn load

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, load_wine  # noqa: E402
from sklearn.ensemble import HistGradientBoostingClassifier  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from kanopy import KANClassifier  # noqa: E402

DATA = {"breast_cancer": load_breast_cancer, "wine": load_wine, "digits": load_digits}
PEERS = {
    "MLP": lambda: make_pipeline(StandardScaler(), MLPClassifier(max_iter=5000, random_state=0)),
    "logistic": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
    "HGB": lambda: HistGradientBoostingClassifier(random_state=0),
}


def timed(fit):
    t0 = time.perf_counter()
    model = fit()
    return model, time.perf_counter() - t0


def pykan_fit(width, grid, steps, X, y):
    """pykan 0.2.8 with cross-entropy on (X, y), inputs min-max scaled to [-1, 1]."""
    from kan import KAN as PyKAN

    lo, hi = X.min(axis=0), X.max(axis=0)
    half = np.where(hi > lo, (hi - lo) / 2, 1.0)
    Z = torch.from_numpy((X - (hi + lo) / 2) / half)
    labels = torch.from_numpy(y).long()
    model = PyKAN(width=list(width), grid=grid, k=3, seed=0, auto_save=False).to(torch.float64)
    dataset = {"train_input": Z, "train_label": labels, "test_input": Z[:2], "test_label": labels[:2]}
    model.fit(dataset, opt="LBFGS", steps=steps, loss_fn=torch.nn.CrossEntropyLoss(), log=10**9)
    return model


COMPARE_STEPS = 20  # LBFGS steps of the pykan comparison (a few steps would time pykan's set-up, not its training)


def compared_network(kan):
    """(width, grid) for the pykan comparison: the network kanopy chose and its first grid;
    when it chose the prior or the logistic model, the first network its search trained."""
    if kan.stages_:
        return [sum(w) for w in kan.model_.width], kan.stages_[0].grid
    trained = next(c for c in kan.selection_ if c["grid"] is not None)
    return trained["width"], trained["schedule"][0][0]


def warm_up(X, y):
    """One small untimed fit of each kind: kanopy loads its kernels, pykan and torch their code."""
    rows = np.concatenate([np.flatnonzero(y == c)[:10] for c in np.unique(y)])
    KANClassifier().fit(X[rows], y[rows])
    for make in PEERS.values():
        make().fit(X[rows], y[rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(DATA))
    parser.add_argument("--folds", type=int, default=5, help="folds run (of the 5 splits)")
    parser.add_argument("--no-pykan", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    rows = []
    for name in args.only.split(","):
        X, y = DATA[name](return_X_y=True)
        splits = list(StratifiedKFold(5, shuffle=True, random_state=0).split(X, y))[: args.folds]
        if not rows:
            warm_up(X, y)
        acc = {k: [] for k in ["kanopy", *PEERS, "pykan"]}
        sec = {k: [] for k in ["kanopy", *PEERS, "pykan", "kanopy fixed"]}
        chosen = []
        for train, test in splits:
            kan, seconds = timed(lambda: KANClassifier().fit(X[train], y[train]))
            acc["kanopy"].append(kan.score(X[test], y[test]))
            sec["kanopy"].append(seconds)
            for peer, make in PEERS.items():
                model, seconds = timed(lambda: make().fit(X[train], y[train]))
                acc[peer].append(model.score(X[test], y[test]))
                sec[peer].append(seconds)
            chosen.append(next(f"{c['label']}" + (f" G={c['grid']}" if c["grid"] else "")
                               for c in kan.selection_ if c["chosen"]))
            width, grid = compared_network(kan)
            steps = COMPARE_STEPS
            if not args.no_pykan:
                hidden = tuple(width[1:-1])
                fixed = KANClassifier(hidden=hidden, grids=(grid,), steps=steps, lamb=0.0, patience=None,
                                      loss="cross_entropy")
                _, seconds = timed(lambda: fixed.fit(X[train], y[train]))
                sec["kanopy fixed"].append(seconds)
                model, seconds = timed(lambda: pykan_fit([X.shape[1], *hidden, len(np.unique(y))], grid, steps,
                                                         X[train], y[train]))
                sec["pykan"].append(seconds)
                with torch.no_grad():
                    lo, hi = X[train].min(axis=0), X[train].max(axis=0)
                    half = np.where(hi > lo, (hi - lo) / 2, 1.0)
                    Z = torch.from_numpy(np.clip((X[test] - (hi + lo) / 2) / half, -1.1, 1.1))
                    acc["pykan"].append(float((model(Z).argmax(1).numpy() == y[test]).mean()))
            print(name, {k: round(v[-1], 4) for k, v in acc.items() if v},
                  {k: round(v[-1], 2) for k, v in sec.items() if v}, chosen[-1], flush=True)
        mean = {k: 100 * statistics.mean(v) if v else float("nan") for k, v in acc.items()}
        med = {k: statistics.median(v) if v else float("nan") for k, v in sec.items()}
        rows.append([name, len(splits), *(f"{mean[k]:.2f}" for k in ["kanopy", *PEERS, "pykan"]),
                     f"{mean['kanopy'] - mean['MLP']:+.2f}", *(f"{med[k]:.2f}" for k in ["kanopy", *PEERS]),
                     f"{med['kanopy'] / med['MLP']:.2f}", f"{med['pykan'] / med['kanopy fixed']:.1f}",
                     max(set(chosen), key=chosen.count)])
    headers = ["data", "folds", "acc kanopy %", "acc MLP %", "acc logistic %", "acc HGB %", "acc pykan %",
               "kanopy - MLP", "s kanopy", "s MLP", "s logistic", "s HGB", "kanopy/MLP time",
               "pykan/kanopy time (same net, steps)", "model chosen (most folds)"]
    kernels, torch_isa = _report.kernels_isa()
    text = (f"## Classification (`bench/classify.py`)\n\n`flock /tmp/kanopy-bench.lock {_report.command('bench/classify.py')}`"
            f" at commit {_report.commit()} on {_report.machine()}.\n{_report.build_line(kernels, torch_isa)}\n"
            "Machine shared with other jobs while it ran: the times are noisy, their ratios (same process, "
            "interleaved) less so.\n\n" + _report.table(headers, rows) + "\n")
    print(text)
    if not args.no_write:
        _report.write_section("classify", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
