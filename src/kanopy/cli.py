"""The ``kanopy`` command: a thin layer over the library (parse, call, print).

Every subcommand is registered with :func:`command`, which gives it the shared conventions:

* ``-h``/``--help``; ``-q``/``--quiet`` (no progress bars, reports or notes: results and
  errors only); ``--debug`` (show the traceback of an error);
* results on stdout; progress bars, notes and errors on stderr;
* exit status 0 on success; 1 with a one-line ``error: ...`` and no traceback when the
  input is bad (or anything else fails); 2 for usage errors (from click); 130 after Ctrl-C.

A new subcommand receives a :class:`UI` first, then its own parameters, and raises
ValueError (or any exception) with a message naming what is wrong::

    @command()
    @click.argument("model_file", metavar="MODEL.kan")
    def formula(ui: UI, model_file: str) -> None:
        \"\"\"Print the formula of a fitted model.\"\"\"
        model = load_model(model_file)
        ui.result(...)
"""

from __future__ import annotations

import functools
import io
import os
import sys
import traceback
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import data, recipe as recipes
from .validation import check_not_constant, check_rows

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="kanopy")
def main() -> None:
    """kanopy: Kolmogorov-Arnold Networks for science.

    Fit a KAN to columns of a CSV or Parquet file, predict with it, inspect it:

        kanopy fit data.csv --target y --out model.kan

        kanopy predict model.kan new.csv --out predictions.csv

        kanopy info model.kan
    """


class UI:
    """Output of a subcommand: results (stdout, always), reports and notes (stdout/stderr,
    not with --quiet), errors (stderr, always)."""

    def __init__(self, quiet: bool = False, debug: bool = False):
        self.quiet, self.debug = quiet, debug
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True, quiet=quiet)

    def result(self, renderable) -> None:
        self.out.print(renderable)

    def report(self, renderable) -> None:
        if not self.quiet:
            self.out.print(renderable)

    def note(self, text: str) -> None:
        self.err.print(escape(text))

    def error(self, text: str) -> None:
        click.echo(f"error: {' '.join(text.split())}", err=True)

    def progress(self) -> Progress:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(),
                        console=self.err, transient=True, disable=self.quiet)


def command(*args, **kwargs):
    """Register a subcommand ``f(ui, **params)`` of ``kanopy`` with --quiet and --debug and
    the error policy above."""

    def decorate(f):
        @functools.wraps(f)
        def run(quiet: bool, debug: bool, **params):
            ui = UI(quiet=quiet, debug=debug)
            try:
                return f(ui, **params)
            except (click.exceptions.Exit, click.ClickException, click.Abort):
                raise
            except KeyboardInterrupt:
                ui.error("interrupted")
                raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
            except BrokenPipeError:  # e.g. `kanopy predict ... | head`: the reader has all it wants
                _silence_stdout()
                raise click.exceptions.Exit(EXIT_ERROR) from None
            except Exception as err:  # one line, no traceback (unless --debug)
                if debug:
                    traceback.print_exc()
                ui.error(_message(err, debug))
                raise click.exceptions.Exit(EXIT_ERROR) from None

        run = click.option("--debug", is_flag=True, help="On an error, show the full traceback.")(run)
        run = click.option("--quiet", "-q", is_flag=True,
                           help="No progress bars, reports or notes: only results and errors.")(run)
        cmd = main.command(*args, **kwargs)(run)
        shared = [p for p in cmd.params if p.name in ("quiet", "debug")]
        cmd.params = [p for p in cmd.params if p not in shared] + shared  # listed last in --help
        return cmd

    return decorate


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit raises no second BrokenPipeError."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (e.g. in tests)
        pass


def _message(err: Exception, debug: bool) -> str:
    text = str(err).strip() or type(err).__name__
    if isinstance(err, (ValueError, OSError)):
        return text
    return f"{type(err).__name__}: {text}" + ("" if debug else " (run with --debug for the traceback)")


# ------------------------------------------------------------------------- option types
class IntList(click.ParamType):
    """Comma-separated positive integers, e.g. ``3,10,20``."""

    name = "INTS"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            items = tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            items = ()
        if not items or any(v < 1 for v in items):
            self.fail(f"{value!r} is not a comma-separated list of positive integers", param, ctx)
        return items


class NameList(click.ParamType):
    """Comma-separated column names, e.g. ``x1,x2``."""

    name = "NAMES"

    def convert(self, value, param, ctx):
        if isinstance(value, list):
            return value
        names = [v.strip() for v in str(value).split(",")]
        if not all(names):
            self.fail(f"{value!r} is not a comma-separated list of column names", param, ctx)
        if len(set(names)) != len(names):
            self.fail(f"{value!r} names a column twice", param, ctx)
        return names


INTS, NAMES = IntList(), NameList()


def load_model(path):
    """kanopy.load (never unpickles; refuses what is not a kanopy model file)."""
    from . import load

    return load(path)


# ---------------------------------------------------------------------------------- fit
_DEFAULT = recipes.Recipe()


@command()
@click.argument("data_file", metavar="DATA")
@click.option("--target", help="Column to predict (when resuming: the model's).")
@click.option("--features", type=NAMES, help="Feature columns, e.g. x1,x2 [default: all other columns].")
@click.option("--width", "--hidden", "hidden", type=INTS,
              help=f"Hidden layer widths, e.g. 5 or 8,4: the network is [features, WIDTH..., 1] "
                   f"[default: {','.join(map(str, _DEFAULT.hidden))}].")
@click.option("--grids", type=INTS, help=f"Grid sizes, coarse to fine "
                                         f"[default: {','.join(map(str, _DEFAULT.grids))}].")
@click.option("--steps", type=click.IntRange(min=0), help=f"Optimizer steps per grid [default: {_DEFAULT.steps}].")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam", "lm"]),
              help=f"Optimizer [default: {_DEFAULT.optimizer}].")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help=f"[default: {_DEFAULT.dtype}]")
@click.option("--seed", type=int, help=f"Seed of the network and the validation split [default: {_DEFAULT.seed}].")
@click.option("--val-frac", type=click.FloatRange(min=0, max=1, max_open=True),
              help="Fraction of the rows held out to report validation error [default: 0.2].")
@click.option("--out", type=click.Path(dir_okay=False), metavar="MODEL.kan",
              help="Write the fitted model here (atomically; also when interrupted by Ctrl-C).")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="MODEL.kan",
              help="Continue the fit of this model (e.g. one saved at Ctrl-C) to the end of the schedule.")
def fit(ui: UI, data_file, target, features, hidden, grids, steps, optimizer, dtype, seed, val_frac, out, resume):
    """Fit a KAN to predict column --target of DATA (CSV, or Parquet with pyarrow).

    The inputs are scaled to [-1, 1] and the target to zero mean, unit variance inside the
    model; the grid is extended through --grids with --steps optimizer steps at each.
    """
    if out is not None:
        _check_writable(out)
    given = {k: v for k, v in dict(hidden=hidden, grids=grids, steps=steps, optimizer=optimizer, dtype=dtype,
                                   seed=seed).items() if v is not None}
    model, saved = (None, {}) if resume is None else _resumed(resume, target, features, val_frac, given)
    target = target or saved.get("target")
    if target is None:
        raise click.UsageError("Missing option '--target' (the column to predict).")
    features = features or saved.get("features")
    val_frac = next(v for v in (val_frac, saved.get("val_frac"), 0.2) if v is not None)
    recipe = recipes.Recipe.from_dict(saved.get("recipe", {}), **given)

    features, table = _training_table(data_file, target, features)
    train_rows, val_rows = recipes.split(len(table), val_frac, recipe.seed)
    check_rows(len(train_rows), f"{data_file} without its {len(val_rows)} validation rows (--val-frac {val_frac})")
    X, y = table[train_rows, :-1], table[train_rows, -1:]
    X_val, y_val = (table[val_rows, :-1], table[val_rows, -1:]) if len(val_rows) else (None, None)
    if model is None:
        model = recipes.start(X, y, recipe)
    else:
        if model.n_inputs != len(features):
            raise ValueError(f"{resume} has {model.n_inputs} inputs but {len(features)} features were given")
        recipe.check_model(model, len(features), 1)
        index, done = recipes.position(model, recipe)
        ui.note(f"resuming {resume}: " + (f"grid {recipe.grids[index]}, {done} of {recipe.steps} steps done"
                                          if index < len(recipe.grids) else "the schedule is already complete"))
    model.info = dict(features=features, target=target, val_frac=val_frac, recipe=recipe.to_dict(),
                      data=Path(data_file).name, rows=len(table))

    bars = _StepBars(ui, recipe.steps)
    try:
        with bars.progress:
            stages = recipes.train(model, X, y, recipe, X_val=X_val, y_val=y_val, callback=bars)
    except KeyboardInterrupt:
        index, done = recipes.position(model, recipe)
        where = (f"at grid {recipe.grids[index]} after {done} of {recipe.steps} steps"
                 if index < len(recipe.grids) else "at the end")
        if out is None:
            ui.error(f"interrupted {where}; nothing saved (give --out to keep an interrupted fit)")
        else:
            model.save(out)
            ui.error(f"interrupted {where}; saved the model so far to {out} (continue with --resume {out})")
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None

    if stages:
        ui.report(_fit_report(data_file, target, features, len(train_rows), len(val_rows), stages))
    if out is not None:
        model.save(out)
        ui.note(f"saved {out}: width {[sum(w) for w in model.width]}, {model.num_parameters()} parameters")


def _resumed(path, target, features, val_frac, given):
    """(model, what it was fitted with) from --resume; options that would change the data or
    the network are refused (a resumed fit continues the same fit)."""
    model = load_model(path)
    saved = dict(model.info)
    _check_same(saved, dict(target=target, features=features, val_frac=val_frac), path)
    _check_same(saved.get("recipe", {}), {k: given.get(k) for k in ("hidden", "dtype", "seed")}, path)
    return model, saved


def _training_table(data_file, target, features):
    """(feature names, tensor of the feature columns then the target) of DATA, checked."""
    import torch

    chosen = features is not None
    features = features or [name for name in data.columns(data_file) if name != target]
    if target in features:
        raise ValueError(f"--features includes the target column {target!r}")
    if not features:
        raise ValueError(f"{data_file} has no feature columns besides the target {target!r}")
    try:
        table = data.read(data_file, [*features, target])
    except data.DataError as err:
        if chosen or "is not a number" not in str(err):
            raise
        raise data.DataError(f"{err} (the features default to every column but the target; "
                             "choose them with --features)") from None
    check_rows(len(table), str(data_file))
    check_not_constant(table[:, -1], f"the target column {target!r}")
    return features, torch.from_numpy(table)


def _fit_report(data_file, target, features, n_train, n_val, stages) -> Table:
    report = Table(title=escape(f"{Path(data_file).name}: {target} from {len(features)} features, "
                                f"{n_train} training rows, {n_val} validation rows"))
    for column in ("grid", "steps", "train RMSE", "val RMSE", "seconds"):
        report.add_column(column, justify="right")
    for stage in stages:
        report.add_row(str(stage.grid), str(stage.history.step[-1] if stage.steps else 0), _number(stage.train_rmse),
                       _number(stage.val_rmse), f"{stage.seconds:.2f}")
    return report


class _StepBars:
    """Progress bars of a recipe: one per grid, with the latest errors."""

    def __init__(self, ui: UI, steps: int):
        self.progress, self.steps, self.tasks = ui.progress(), steps, {}

    def __call__(self, grid, step, history):
        if grid not in self.tasks:
            self.tasks[grid] = self.progress.add_task(f"grid {grid:>4}", total=self.steps, metrics="")
        val = history.val_rmse[-1]
        metrics = f"train {history.train_rmse[-1]:.2e}" + ("" if val is None else f"  val {val:.2e}")
        self.progress.update(self.tasks[grid], completed=step, metrics=metrics)


def _check_same(saved: dict, given: dict, source) -> None:
    """A resumed fit continues on the same data and network: options that define them may be
    repeated but not changed."""
    for key, value in given.items():
        if value is None or key not in saved or _plain(value) == _plain(saved[key]):
            continue
        option = {"hidden": "--width", "val_frac": "--val-frac"}.get(key, f"--{key}")
        raise ValueError(f"{option} {_plain(value)} differs from the {_plain(saved[key])} that {source} was "
                         "fitted with; a resumed fit continues on the same data and network")


def _plain(value) -> str:
    return ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _check_writable(path) -> None:
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--out {path}: cannot write in {folder}")


def _number(value) -> str:
    return "-" if value is None else f"{value:.3e}"


# ------------------------------------------------------------------------------ predict
@command()
@click.argument("model_file", metavar="MODEL.kan")
@click.argument("data_file", metavar="DATA")
@click.option("--out", type=click.Path(dir_okay=False), metavar="PRED.csv",
              help="Write the predictions here (CSV; Parquet for .parquet) [default: stdout].")
@click.option("--features", type=NAMES,
              help="Columns to use as the model's inputs, in order [default: those it was fitted on].")
def predict(ui: UI, model_file, data_file, out, features):
    """Predict with MODEL.kan from the feature columns of DATA: a column `prediction`,
    one row per row of DATA, floats written exactly."""
    import torch

    model = load_model(model_file)
    names = _feature_names(model, model_file, data_file, features)
    X = torch.from_numpy(data.read(data_file, names)).to(model.dtype)
    with torch.no_grad():
        values = model(X).double().numpy()
    header = ["prediction"] if values.shape[1] == 1 else [f"prediction_{j}" for j in range(values.shape[1])]
    if out is None:
        click.echo(data.to_text(header, values), nl=False)
    else:
        data.write(out, header, values)
        ui.note(f"wrote {len(values)} predictions to {out}")


def _feature_names(model, model_file, data_file, features) -> list[str]:
    n = model.n_inputs
    if features is not None:
        if len(features) != n:
            raise ValueError(f"--features names {len(features)} columns but {model_file} expects {n} features")
        return features
    if model.info.get("features"):
        return list(model.info["features"])
    names = data.columns(data_file)
    if len(names) != n:
        raise ValueError(f"{model_file} does not record its feature names and expects {n} features, but "
                         f"{data_file} has {len(names)} columns; name them with --features")
    return names


# --------------------------------------------------------------------------------- info
@command()
@click.argument("model_file", metavar="MODEL.kan")
def info(ui: UI, model_file):
    """Describe a model file: network, features, how it was fitted, whether it can resume."""
    from .io import read_metadata

    meta = read_metadata(model_file)
    model = load_model(model_file)
    notes = model.info
    table = Table(title=escape(str(model_file)), show_header=False)
    table.add_column(style="bold")
    table.add_column()
    rows = [
        ("format", f"kanopy model file, version {meta['format_version']} (written by kanopy {meta['kanopy_version']})"),
        ("width", str([sum(w) for w in model.width])),
        ("grid", ", ".join(str(layer.grid) for layer in model.layers) + f" (spline order k = {model.k})"),
        ("dtype", str(model.dtype).removeprefix("torch.")),
        ("parameters", str(model.num_parameters())),
    ]
    if notes.get("features"):
        rows.append(("features", ", ".join(notes["features"])))
    if notes.get("target"):
        rows.append(("target", notes["target"]))
    if notes.get("recipe"):
        r = notes["recipe"]
        rows.append(("recipe", f"grids {_plain(r['grids'])}, {r['steps']} {r['optimizer']} steps each, "
                               f"seed {r['seed']}"))
    if notes.get("data"):
        rows.append(("data", f"{notes['data']} ({notes.get('rows', '?')} rows, "
                             f"validation fraction {notes.get('val_frac', 0)})"))
    state = model.fit_state
    rows.append(("resumable", f"yes: {state['optimizer']} state after {state['step']} steps at grid {model.grid}"
                 if state else "no (no optimizer state saved)"))
    for key, value in rows:
        table.add_row(key, escape(value))
    ui.result(table)


# --------------------------------------------------------------------------------- demo
@command()
@click.option("--seed", default=0, show_default=True, help="Seed of the data and the network.")
def demo(ui: UI, seed: int) -> None:
    """Fit exp(sin(pi x) + y^2) to high accuracy from a [2, 5, 1] KAN and print the schedule."""
    from . import demo as demo_module

    console = Console(quiet=ui.quiet)
    result = demo_module.run(seed=seed, console=console, progress=not ui.quiet)
    if ui.quiet:
        click.echo(f"final test RMSE: {result.final_test_rmse:.3e}")


@command()
def kernels(ui: UI) -> None:
    """Build (once, cached) and report the fused C++ kernels."""
    import warnings

    from . import _extension

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ops = _extension.ops()
    if ops is not None:
        click.echo(f"fused CPU kernels: ready, {_extension.describe()} (cache: {_extension.cache_dir()})")
    else:
        reason = str(caught[0].message) if caught else "disabled by KANOPY_NO_EXTENSION"
        click.echo(f"fused CPU kernels: unavailable, using pure PyTorch ({reason})")


from . import cli_symbolic  # noqa: E402,F401  (registers discover, formula, plot)

if __name__ == "__main__":  # pragma: no cover
    main()
