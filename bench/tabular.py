"""Regression on real and noisy tabular data: KANRegressor() against its peers, defaults only.

Every model gets the same 5-fold splits (KFold, shuffled, seed 0) and its defaults:
KANRegressor() (kanopy), RidgeCV, MLPRegressor (max_iter 2000 so that it converges) and
HistGradientBoostingRegressor from scikit-learn, RidgeCV and MLP behind a StandardScaler.
Reported per data set: mean test R^2 over the folds (and the worst fold for kanopy), the
median fit time of a fold, kanopy's margin to the best peer, how far kanopy's predictions
reach beyond the target's range (in units of that range), and the network it chose most often.

Data sets, none downloaded:
* bundled with scikit-learn: diabetes; linnerud (20 rows, each of its 3 targets);
  make_friedman1/2/3 (500 rows, the noise of Friedman 1991: 1, 125, 0.1);
* bundled with statsmodels (when installed: the `bench` extra): fair, star98, engel,
  statecrime, stackloss, ccard, randhie;
* simulated: equations of ../shared/data/feynman_public.csv (each variable uniform in its
  range, 1,000 rows) with Gaussian noise of 1% and 10% of the target's RMS (as SRBench).

    python bench/tabular.py [--only diabetes,friedman1] [--feynman I_6_2,I_12_11] [--no-write] [--json out.json]
    python bench/tabular.py --merge part1.json part2.json   # the table of runs split over processes

``--json`` is rewritten after every data set, so a run cut short keeps what it finished.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread per model, set before numpy, torch, sklearn load

import argparse  # noqa: E402
import collections  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402
from feynman import DATA as FEYNMAN  # noqa: E402
from feynman import load_equations, sample

# a representative subset: 1 to 9 variables; Gaussians, products, ratios, roots, exponentials,
# trigonometric and oscillating (sinc-like) terms
FEYNMAN_SUBSET = ("I_6_2a", "I_6_2", "I_26_2", "I_30_3", "I_12_11", "I_29_16", "I_39_22", "I_40_1", "II_6_15a",
                  "II_11_27", "III_9_52", "I_9_18")
NOISE = (0.01, 0.1)
PEERS = ("RidgeCV", "MLP", "HGB")


def sklearn_sets():
    from sklearn.datasets import load_diabetes, load_linnerud, make_friedman1, make_friedman2, make_friedman3

    X, y = load_diabetes(return_X_y=True)
    yield "diabetes", "scikit-learn", X, y
    X, Y = load_linnerud(return_X_y=True)
    for j, name in enumerate(("weight", "waist", "pulse")):
        yield f"linnerud {name}", "scikit-learn", X.astype(float), Y[:, j].astype(float)
    for make, noise in ((make_friedman1, 1.0), (make_friedman2, 125.0), (make_friedman3, 0.1)):
        X, y = make(n_samples=500, noise=noise, random_state=0)
        yield make.__name__.removeprefix("make_"), "scikit-learn", X, y


def statsmodels_sets():
    try:
        import statsmodels.api as sm
    except ImportError:
        print("statsmodels is not installed: its data sets are left out (pip install -e '.[bench]')")
        return
    for name in ("fair", "star98", "engel", "statecrime", "stackloss", "ccard", "randhie"):
        data = getattr(sm.datasets, name).load_pandas()
        X, y = data.exog.to_numpy(dtype=float), data.endog.to_numpy(dtype=float)
        if name == "star98":  # endog: (successes, failures) -> the share of successes
            y = y[:, 0] / y.sum(axis=1)
        if name == "engel":  # endog is income, exog food expenditure: predict the expenditure
            X, y = y.reshape(-1, 1), X[:, 0]
        yield name, "statsmodels", X, y.reshape(-1)


def feynman_sets(names, n=1000, seed=0):
    equations = {eq["name"]: eq for eq in load_equations(FEYNMAN)}
    for name in names:
        X, y = sample(equations[name], n, seed)
        rms = float(np.sqrt(np.mean(y**2)))
        for level in NOISE:
            rng = np.random.default_rng([seed, int(level * 1000)])
            yield f"{name} {level:.0%}", f"Feynman, {X.shape[1]} vars", X, y + level * rms * rng.standard_normal(n)


def models():
    import torch
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import kanopy

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return {
        "KAN": lambda: kanopy.KANRegressor(),
        "RidgeCV": lambda: make_pipeline(StandardScaler(), RidgeCV()),
        "MLP": lambda: make_pipeline(StandardScaler(), MLPRegressor(max_iter=2000, random_state=0)),
        "HGB": lambda: HistGradientBoostingRegressor(random_state=0),
    }


def evaluate(name, source, X, y, makers, folds=5):
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold

    splits = list(KFold(folds, shuffle=True, random_state=0).split(X))
    span = float(y.max() - y.min())
    out = {"name": name, "source": source, "rows": int(X.shape[0]), "features": int(X.shape[1])}
    for model_name, make in makers.items():
        scores, seconds, reach, chosen, lamb_seconds = [], [], 0.0, collections.Counter(), []
        for train, test in splits:
            model = make()
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence and "no better than the mean" notes
                model.fit(X[train], y[train])
            seconds.append(time.perf_counter() - start)
            pred = model.predict(X[test])
            scores.append(float(r2_score(y[test], pred)))
            reach = max(reach, float(max(pred.max() - y.max(), y.min() - pred.min(), 0.0)) / span)
            if model_name == "KAN":
                lamb_seconds.append(sum(c["seconds"] for c in model.selection_ if c["lamb"]))
                pick = next(c for c in model.selection_ if c["chosen"])
                chosen[pick["label"] + (f" G={pick['grid']}" if pick["grid"] else "")
                       + (f" lamb={pick['lamb']:g}" if pick["lamb"] else "")] += 1
        out[model_name] = {"r2": statistics.fmean(scores), "r2_min": min(scores), "seconds": statistics.median(seconds),
                           "reach": reach, "folds": scores}
        if chosen:
            out[model_name]["chosen"] = chosen.most_common(1)[0][0] + f" ({chosen.most_common(1)[0][1]}/{folds})"
            out[model_name]["lamb_seconds"] = statistics.median(lamb_seconds)
    best = max(out[p]["r2"] for p in makers if p != "KAN")
    out["margin"] = out["KAN"]["r2"] - best
    return out


def paired_se(a, b) -> float:
    """Standard error of the mean of the per-fold differences a - b."""
    d = np.asarray(a) - np.asarray(b)
    return float(d.std(ddof=1) / np.sqrt(len(d)))


def markdown(results, meta) -> str:
    rows = []
    for r in results:
        k = r["KAN"]
        best = max(PEERS, key=lambda p: r[p]["r2"])
        r["margin_se"] = paired_se(k["folds"], r[best]["folds"])
        ok = "yes" if r["margin"] >= -0.01 else "**no**"
        peers = " | ".join(("**{:.3f}**" if p == best else "{:.3f}").format(r[p]["r2"]) for p in PEERS)
        rows.append(f"| {r['name']} | {r['source']} | {r['rows']}x{r['features']} | **{k['r2']:.3f}** ({k['r2_min']:.3f}) "
                    f"| {peers} | {r['margin']:+.3f} ± {r['margin_se']:.3f} {ok} | {k['seconds']:.2f} ({k['lamb_seconds']:.2f}) | "
                    + " / ".join(f"{r[p]['seconds']:.2f}" for p in PEERS) + f" | {k['reach']:.2f} | {k['chosen']} |")
    held = sum(r["margin"] >= -0.01 for r in results)
    positive = sum(r["KAN"]["r2_min"] > 0 for r in results)
    close = sum(r["margin"] >= -max(0.01, r["margin_se"]) for r in results)
    kan_time = statistics.median(r["KAN"]["seconds"] for r in results)
    lamb_time = statistics.median(r["KAN"]["lamb_seconds"] for r in results)
    header = ("| data | source | rows x features | KANRegressor R² (worst fold) | RidgeCV | MLP | HGB | "
              "KAN - best peer ± SE (within 0.01) | KAN fit s (lamb trials) | RidgeCV / MLP / HGB fit s | KAN reach | "
              "KAN chose |")
    folds = "".join(f"\nPer fold on {r['name']} (test R²): " + "; ".join(
        f"{p} " + ", ".join(f"{v:.3f}" for v in r[p]["folds"]) for p in ("KAN", *PEERS)) + ".\n"
        for r in results if r["name"] == "diabetes")
    return f"""## Tabular regression: KANRegressor() against its peers, defaults only

`{meta['command']}` (commit {meta['commit']}). Mean test R² over the same 5 folds (KFold, shuffled, seed 0) for
every model, each with its defaults: `KANRegressor()`; `RidgeCV`, `MLPRegressor(max_iter=2000)` (both after
`StandardScaler`) and `HistGradientBoostingRegressor` from scikit-learn. Fit time: median seconds per fold,
every model on one thread (`OMP_NUM_THREADS=1`: the machine's cores are shared); in brackets the part of
kanopy's spent on its trials of the sparsity regulariser (`lamb` > 0, which runs outside the fused kernels at
this commit).
"KAN reach": how far kanopy's test predictions go beyond the target's range, in units of that range (the
acceptance bound is 0.5: inside twice the range). "KAN chose": the network the recipe chose most often
(G: grid). Feynman rows: 1,000 samples of the equation, each variable uniform in its range, plus Gaussian
noise of 1% or 10% of the target's RMS; test R² against the noisy targets, so 10% noise caps R² near 0.99.
Machine: {meta['machine']}; ISA: {meta['isa']}.{meta.get('note', '')}

KANRegressor within 0.01 R² of the best peer or above on **{held}/{len(results)}** data sets (within 0.01 or one
standard error of the paired fold differences, "± SE", on {close}/{len(results)}); R² > 0 on every
fold on {positive}/{len(results)}; median fit time {kan_time:.2f} s per fold, of which {lamb_time:.2f} s on the
regulariser's trials.
{folds}
{header}
|{"---|" * 12}
""" + "\n".join(rows) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated data set names (as in the table)")
    parser.add_argument("--feynman", default=",".join(FEYNMAN_SUBSET), help="Feynman equations to simulate")
    parser.add_argument("--no-bundled", action="store_true", help="leave out scikit-learn's and statsmodels' sets")
    parser.add_argument("--no-write", action="store_true", help="print, do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the per-fold results here (after every data set)")
    parser.add_argument("--merge", type=Path, nargs="+", help="no run: the table of these --json files, in order")
    parser.add_argument("--note", default="", help="with --merge: a sentence on how the parts were run")
    args = parser.parse_args()

    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        results = [r for part in parts for r in part["results"]]
        meta = {key: parts[0][key] for key in ("machine", "isa")}
        meta["commit"] = ", ".join(dict.fromkeys(part["commit"] for part in parts))
        meta["command"] = parts[0]["command"] if len(parts) == 1 else "python bench/tabular.py"
        if len(parts) > 1:
            meta["note"] = (f" Run as {len(parts)} processes side by side (" + "; ".join(
                f"`{part['command']}`" for part in parts) + "), so the fit times are under shared load: indicative only.")
        if args.note:
            meta["note"] = meta.get("note", "") + " " + args.note
    else:
        makers = models()
        bundled = [] if args.no_bundled else [*sklearn_sets(), *statsmodels_sets()]
        sets = [*bundled, *feynman_sets([n for n in args.feynman.split(",") if n])]
        if args.only:
            wanted = set(args.only.split(","))
            sets = [s for s in sets if s[0] in wanted]
        command = "python bench/tabular.py" + (f" --only {shlex.quote(args.only)}" if args.only else "") + (
            " --no-bundled" if args.no_bundled else "") + (
            f" --feynman {shlex.quote(args.feynman)}" if args.feynman != ",".join(FEYNMAN_SUBSET) else "")
        meta = {"command": command, "commit": _report.commit(), "machine": _report.machine(), "isa": _report.isa()}
        results = []
        for name, source, X, y in sets:
            result = evaluate(name, source, X, y, makers)
            results.append(result)
            print(f"{name:<22} KAN {result['KAN']['r2']:.4f} ({result['KAN']['seconds']:.1f}s, "
                  f"{result['KAN']['chosen']})  " + "  ".join(f"{p} {result[p]['r2']:.4f}" for p in PEERS)
                  + f"  margin {result['margin']:+.4f}", flush=True)
            if args.json:
                args.json.write_text(json.dumps({**meta, "results": results}, indent=1))
    text = markdown(results, meta)
    print(text)
    if not args.no_write:
        _report.write_section("tabular", text)


if __name__ == "__main__":
    main()
