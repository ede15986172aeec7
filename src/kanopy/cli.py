"""The ``kanopy`` command's fit, predict, info, demo and kernels subcommands (discover,
formula and plot: cli_symbolic.py), registered on the group of cli_app.py, whose docstring
gives the conventions every subcommand follows. Importing this module does not import
PyTorch: ``kanopy --help`` and ``--version`` answer at once."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from . import data
from . import recipe as recipes
from .cli_app import (  # noqa: F401  (main: the entry point; the exit statuses: part of this module's interface)
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    FILE_WIDTH,
    NAMES,
    UI,
    IntList,
    NumberOrAuto,
    Patience,
    check_rows,
    command,
    load_model,
    main,
    training_table,
)
from .cli_app import console as make_console
from .cli_classify import (
    CLASSIFY_LOSSES,
    LOSSES,
    REGRESS_LOSSES,
    TASKS,
    classifier_validation_text,
    fit_classifier,
    predictions,
    task_of,
)

# ---------------------------------------------------------------------------------- fit
_DEFAULT = recipes.DEFAULTS


def _shown(value) -> str:
    return _plain(value) if isinstance(value, (list, tuple)) else str(value)


@command()
@click.argument("data_file", metavar="DATA")
@click.option("--target", help="Column to predict (when resuming: the model's).")
@click.option("--features", type=NAMES, help="Feature columns, e.g. x1,x2 [default: all other columns].")
@click.option("--width", "--hidden", "hidden", type=IntList(auto=True, none=True),
              help="Hidden layer widths, e.g. 5 or 8,4: the network is [features, WIDTH..., 1]; 'none': no hidden "
                   "layer (the additive model); 'auto': chosen on the validation rows "
                   f"[default: {_shown(_DEFAULT['hidden'])}].")
@click.option("--grids", type=IntList(auto=True), help="Grid sizes, coarse to fine, or 'auto': extended while the "
                                                       f"validation error improves [default: {_DEFAULT['grids']}].")
@click.option("--steps", type=click.IntRange(min=0),
              help=f"Optimizer steps per grid (the most, with early stopping) [default: {_DEFAULT['steps']}].")
@click.option("--lamb", type=NumberOrAuto(), help="Sparsity regulariser (L1 + entropy of the KAN paper), or 'auto': "
                                                  "chosen on the validation rows when the network is; 0 otherwise "
                                                  f"[default: {_DEFAULT['lamb']}].")
@click.option("--patience", type=Patience(),
              help="Early stopping: stop a grid after this many steps without a better validation error and keep "
                   f"the best state; 'none': every step [default: 'auto': {recipes.SEARCH_PATIENCE} when choosing "
                   "the network, none for a given --width and --grids].")
@click.option("--optimizer", type=click.Choice(["lbfgs", "adam", "lm"]),
              help=f"Optimizer [default: {_DEFAULT['optimizer']}].")
@click.option("--dtype", type=click.Choice(["float64", "float32"]), help=f"[default: {_DEFAULT['dtype']}]")
@click.option("--seed", type=int, help=f"Seed of the network and the validation split [default: {_DEFAULT['seed']}].")
@click.option("--val-frac", type=click.FloatRange(min=0, max=1, max_open=True),
              help="Fraction of the rows held out for validation: to choose the network and to report its error "
                   "[default: 0.2].")
@click.option("--out", type=click.Path(dir_okay=False), metavar="MODEL.kan",
              help="Write the fitted model here (atomically; also when interrupted by Ctrl-C).")
@click.option("--stages", type=click.IntRange(min=1), metavar="N",
              help="Fit up to N KAN stages, each on the normalised residual of the ones before "
                   "(kanopy.fit_multistage: float64, to rounding error on smooth functions; its own schedule, "
                   "so --width, --grids, --steps, --optimizer, --lamb and --patience do not apply); stages are "
                   "added while the validation error falls.")
@click.option("--resume", type=click.Path(dir_okay=False), metavar="MODEL.kan",
              help="Continue the fit of this model (e.g. one saved at Ctrl-C) to the end of its fixed schedule "
                   "(regression).")
@click.option("--task", type=click.Choice(TASKS), default="auto", show_default=True,
              help="'classify': the target holds class labels (a KANClassifier; predict then writes the label and "
                   "one probability per class); 'regress': numbers; 'auto': classify text labels and classification "
                   "losses, regress numbers.")
@click.option("--loss", type=click.Choice(LOSSES), default="auto", show_default=True,
              help="Training loss: mse (regression's auto) or huber; cross_entropy or bce for classes ('auto': bce "
                   "for two classes, cross_entropy for more).")
def fit(ui: UI, data_file, target, features, hidden, grids, steps, lamb, patience, optimizer, dtype, seed, val_frac,
        out, stages, resume, task, loss):
    """Fit a KAN to predict column --target of DATA (CSV, or Parquet with pyarrow).

    The inputs are scaled to [-1, 1] (and clamped 5% of the training range beyond it, so
    predictions stay bounded outside it) and the target to zero mean, unit variance inside
    the model. By default
    the network is chosen on the validation rows: the mean, the linear model, the additive
    model and small hidden layers, cheapest first, finer grids only while the validation
    error improves, each kept at its best validation state. With --width and --grids the
    grid is extended through --grids with --steps optimizer steps at each.

    Classes (--task classify, or text labels in --target): the same search judged by the
    validation log loss, with the class frequencies and a logistic model as baselines, the
    chosen network refit on every row (see kanopy.KANClassifier); its outputs are logits.
    """
    if out is not None:
        _check_writable(out)  # before the fit, which may take long
    given = {k: v for k, v in dict(hidden=hidden, grids=grids, steps=steps, optimizer=optimizer, dtype=dtype,
                                   seed=seed, lamb=lamb).items() if v is not None}
    if _given("patience"):  # "none" (None) counts too
        given["patience"] = patience
    if stages is not None:
        _check_stage_options(given, resume, val_frac)
    if resume is not None and (task == "classify" or loss in CLASSIFY_LOSSES):
        raise ValueError("--resume continues a regression's fixed schedule; a classifier is fitted again "
                         "(drop --resume)")
    model, saved = (None, {}) if resume is None else _resumed(resume, target, features, val_frac, given)
    if saved.get("task") == "classify":
        raise ValueError(f"{resume} is a classifier: --resume continues a regression's fixed schedule; fit the "
                         "classifier again (drop --resume)")
    target = target or saved.get("target")
    if target is None:
        raise click.UsageError("Missing option '--target' (the column to predict).")
    features = features or saved.get("features")
    val_frac = next(v for v in (val_frac, saved.get("val_frac"), 0.2) if v is not None)
    task, why = (task, None) if resume is not None else task_of(task, loss, data_file, target)
    if task == "classify" and stages is not None:
        raise ValueError("--stages fits a regression (stages on residuals); a classifier is one network: drop --stages")
    if task == "classify":
        model = fit_classifier(ui, data_file, target, features, given, val_frac, loss, why)
        if out is not None:
            model.save(out)
            ui.note(f"saved {out}: width {[sum(w) for w in model.width]}, {model.num_parameters()} parameters, "
                    f"classes {model.info['classes']}")
        return
    if loss in REGRESS_LOSSES:
        given["loss"] = loss
    recipe = recipes.Recipe.from_dict(saved.get("recipe", {}), **given)
    if model is not None and recipe.needs_validation:
        raise ValueError(f"--resume continues a fixed schedule (--width and --grids, no early stopping), and {resume} "
                         "was not fitted on one: fit again without --resume, or give --width and --grids")
    if recipe.needs_validation and val_frac == 0:
        raise ValueError("--val-frac 0 leaves no validation rows to choose the network on or to stop early with; "
                         "give --val-frac > 0, or --width and --grids (and no --patience)")

    features, table = training_table(data_file, target, features)
    train_rows, val_rows = recipes.split(len(table), val_frac, recipe.seed)
    check_rows(len(train_rows), f"{data_file} without its {len(val_rows)} validation rows (--val-frac {val_frac})")
    X, y = table[train_rows, :-1], table[train_rows, -1:]
    X_val, y_val = (table[val_rows, :-1], table[val_rows, -1:]) if len(val_rows) else (None, None)
    where = dict(data_file=data_file, target=target, features=features, n_train=len(train_rows), n_val=len(val_rows))
    info = dict(features=features, target=target, val_frac=val_frac, recipe=recipe.to_dict(),
                data=Path(data_file).name, rows=len(table))
    if stages is not None:
        model = _fit_stages(ui, stages, X, y, X_val, y_val, recipe, info)
    elif recipe.needs_validation:
        model = _fit_search(ui, X, y, X_val, y_val, recipe, info, out, where)
    else:
        model = _fit_schedule(ui, model, resume, X, y, X_val, y_val, recipe, info, out, where)
    if out is not None:
        model.save(out)
        ui.note(f"saved {out}: {_shape(model)}, {model.num_parameters()} parameters")


def _network_rows(model) -> list[tuple[str, str]]:
    """`kanopy info`'s rows on the network: width and grids, per stage for a MultiStageKAN."""
    if hasattr(model, "stages"):
        return [(f"stage {s + 1}", f"width {[sum(w) for w in stage.width]}, grid {stage.grid} (k = {stage.k}), "
                                   f"{stage.num_parameters()} parameters") for s, stage in enumerate(model.stages)]
    return [("width", str([sum(w) for w in model.width])),
            ("grid", ", ".join(str(layer.grid) for layer in model.layers) + f" (spline order k = {model.k})")]


def _shape(model) -> str:
    """'width [2, 5, 1]', or the stages' widths of a MultiStageKAN."""
    if hasattr(model, "stages"):
        n, plural = len(model.stages), "s" if len(model.stages) > 1 else ""
        widths = ", ".join(str([sum(w) for w in stage.width]) for stage in model.stages)
        return f"{n} stage{plural} of width{plural} {widths}"
    return f"width {[sum(w) for w in model.width]}"


def _check_stage_options(given, resume, val_frac) -> None:
    """--stages has its own schedule and needs validation rows: refuse what cannot apply."""
    clash = sorted(set(given) & {"hidden", "grids", "steps", "optimizer", "lamb", "patience"})
    if clash:
        raise ValueError("--stages fits with kanopy.fit_multistage's own schedule; leave out "
                         + ", ".join("--width" if c == "hidden" else f"--{c}" for c in clash))
    if resume is not None:
        raise ValueError("--stages cannot --resume: a multi-stage fit is not resumable; fit again")
    if given.get("dtype", "float64") != "float64":
        raise ValueError("--stages fits in float64 (its residuals reach rounding error): leave out --dtype float32")
    if val_frac == 0:
        raise ValueError("--stages needs validation rows to decide when to stop adding stages: give --val-frac > 0")


def _fit_stages(ui, stages, X, y, X_val, y_val, recipe, info):
    """kanopy.fit_multistage on the training rows, stopped on the validation rows."""
    from .multistage import fit_multistage

    model = fit_multistage(X, y, stages=stages, seed=recipe.seed, X_val=X_val, y_val=y_val, log=ui.note)
    model.info = info
    info["stages"] = stages
    info["validation"] = _validation(model, X, y, X_val, y_val)
    _say_validation(ui, info["validation"])
    return model


def _given(name: str) -> bool:
    """Whether option ``name`` came from the command line (not its default)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE


def _fit_schedule(ui, model, resume, X, y, X_val, y_val, recipe, info, out, where):
    """A fixed schedule (--width and --grids): train through it, resumable after Ctrl-C."""
    if model is None:
        model = recipes.start(X, y, recipe)
        largest = recipes.parameter_count([sum(w) for w in model.width], recipe.grids[-1], recipe.k)
        message = recipes.parameter_warning(largest, X.shape[0])
        if message:  # before the fit, which may take long
            ui.note(f"warning: {message} (at grid {recipe.grids[-1]})")
    else:
        if model.n_inputs != len(info["features"]):
            raise ValueError(f"{resume} has {model.n_inputs} inputs but {len(info['features'])} features were given")
        recipe.check_model(model, len(info["features"]), 1)
        index, done = recipes.position(model, recipe)
        ui.note(f"resuming {resume}: " + (f"grid {recipe.grids[index]}, {done} of {recipe.steps} steps done"
                                          if index < len(recipe.grids) else "the schedule is already complete"))
    model.info = info
    schedule_bars = _StepBars(ui, recipe.steps)
    try:
        with schedule_bars.progress:
            stages = recipes.train(model, X, y, recipe, X_val=X_val, y_val=y_val, callback=schedule_bars)
    except KeyboardInterrupt:
        index, done = recipes.position(model, recipe)
        at = (f"at grid {recipe.grids[index]} after {done} of {recipe.steps} steps"
              if index < len(recipe.grids) else "at the end")
        _interrupted(ui, model, out, at, f" (continue with --resume {out})")
    if X_val is not None:
        info["validation"] = _validation(model, X, y, X_val, y_val)
    if stages:
        ui.report(_fit_report(where, stages))
    if X_val is not None:
        _say_validation(ui, info["validation"])
    return model


def _fit_search(ui, X, y, X_val, y_val, recipe, info, out, where):
    """Choose the network on the validation rows (see kanopy.selection); keep the best."""
    from .selection import Search

    search_bars = _StepBars(ui, recipe.steps)
    search = Search(X, y, X_val, y_val, recipe, on_step=search_bars.search_step)
    try:
        with search_bars.progress:
            chosen = search.run()
    except KeyboardInterrupt:
        chosen = search.best_so_far()
        if chosen is None or out is None:
            ui.error("interrupted during the search; nothing saved" + (" (give --out to keep the best network "
                                                                       "found so far)" if out is None else ""))
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
        _keep(chosen, search, X, y, X_val, y_val, info)
        _interrupted(ui, chosen.model, out, f"during the search, after {len(search.candidates)} candidates",
                     f" (the best so far: {chosen.label}, validation RMSE {chosen.val_rmse:.4g})")
    model = _keep(chosen, search, X, y, X_val, y_val, info)
    ui.report(_search_report(where, search))
    if search.no_better_than_mean(chosen):
        ui.note(f"warning: no network predicted the validation rows clearly better than the mean of the training "
                f"target ({search.mean_rmse:.4g}); the model kept is the {chosen.label}")
    _say_validation(ui, info["validation"])
    return model


def _keep(chosen, search, X, y, X_val, y_val, info):
    """The chosen model, its info (recipe, validation error, candidates) set."""
    model = chosen.model
    model.info = info
    info["validation"] = _validation(model, X, y, X_val, y_val)
    info["selection"] = [c.describe() for c in search.candidates]
    return model


def _interrupted(ui, model, out, at, hint):
    if out is None:
        ui.error(f"interrupted {at}; nothing saved (give --out to keep an interrupted fit)")
    else:
        model.save(out)
        ui.error(f"interrupted {at}; saved the model so far to {out}{hint}")
    raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


def _validation(model, X, y, X_val, y_val) -> dict:
    """Validation error of ``model`` and of predicting the training mean, in target units."""
    import torch

    with torch.no_grad():
        rmse = float(torch.sqrt(torch.mean((model(X_val) - y_val) ** 2)))
    baseline = float(torch.sqrt(torch.mean((y.mean(dim=0) - y_val) ** 2)))
    spread = float(y_val.std(correction=0)) if len(y_val) > 1 else float("nan")
    r2 = 1 - (rmse / spread) ** 2 if spread > 0 else float("nan")
    return {"rmse": rmse, "baseline_rmse": baseline, "target_std": spread, "r2": r2, "rows": int(len(y_val))}


def _say_validation(ui, validation: dict) -> None:
    ui.note(_validation_text(validation))
    if validation["rmse"] >= validation["baseline_rmse"]:
        ui.note("warning: the model predicts the validation rows no better than the mean of the training target")


def _validation_text(v: dict) -> str:
    return (f"validation RMSE {v['rmse']:.4g} on {v['rows']} rows (R² {v['r2']:.3f}; target std {v['target_std']:.4g}; "
            f"predicting the training mean: {v['baseline_rmse']:.4g})")


def _resumed(path, target, features, val_frac, given):
    """(model, what it was fitted with) from --resume; options that would change the data or
    the network are refused (a resumed fit continues the same fit)."""
    model = load_model(path)
    saved = dict(model.info)
    _check_same(saved, dict(target=target, features=features, val_frac=val_frac), path)
    _check_same(saved.get("recipe", {}), {k: given.get(k) for k in ("hidden", "dtype", "seed")}, path)
    return model, saved


def _title(where) -> str:
    return escape(f"{Path(where['data_file']).name}: {where['target']} from {len(where['features'])} features, "
                  f"{where['n_train']} training rows, {where['n_val']} validation rows")


def _fit_report(where, stages) -> Table:
    report = Table(title=_title(where))
    for column in ("grid", "steps", "train RMSE", "val RMSE", "seconds"):
        report.add_column(column, justify="right")
    for stage in stages:
        report.add_row(str(stage.grid), str(stage.history.step[-1] if stage.steps else 0), _number(stage.train_rmse),
                       _number(stage.val_rmse), f"{stage.seconds:.2f}")
    return report


def _search_report(where, search) -> Table:
    """One row per candidate the search trained (per grid for grid extension), the chosen one marked."""
    report = Table(title=_title(where))
    for column in ("", "candidate", "grid", "lamb", "steps", "parameters", "train RMSE", "val RMSE", "seconds"):
        report.add_column(column, justify="left" if column == "candidate" else "right", no_wrap=column == "candidate")
    for c in search.candidates:
        kan = c.kind == "kan"
        report.add_row("*" if c.chosen else "", escape(c.label), str(c.grid) if kan else "-",
                       f"{c.lamb:g}" if kan else "-",
                       str(c.schedule[-1][1]) if kan else "-", str(c.parameters), _number(c.train_rmse),
                       _number(c.val_rmse), f"{c.seconds:.2f}")
    report.caption = "* chosen: the simplest candidate not clearly worse than the best (steps: those kept)"
    return report


class _StepBars:
    """Progress bars of a recipe: one per grid (per candidate and grid in a search), with the
    latest errors."""

    def __init__(self, ui: UI, steps: int):
        self.progress, self.steps, self.tasks = ui.progress(), steps, {}

    def __call__(self, grid, step, history):
        self._update(f"grid {grid:>4}", step, history)

    def search_step(self, label, grid, step, steps, history):
        self._update(f"{label} grid {grid}", step, history)

    def _update(self, name, step, history):
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=self.steps, metrics="")
        val = history.val_rmse[-1]
        metrics = f"train {history.train_rmse[-1]:.2e}" + ("" if val is None else f"  val {val:.2e}")
        self.progress.update(self.tasks[name], completed=step, metrics=metrics)


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
    """ValueError unless a file can be created where ``path`` would be written (its folder,
    or the nearest existing folder above it), found by creating and removing one."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"--out {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--out {path}: cannot write in {folder}")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise ValueError(f"--out {path}: cannot write in {folder} ({err.strerror or err})") from None


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
    one row per row of DATA, floats written exactly. A classifier's model writes the
    column `label` (the most probable class) and `p_<class>` for each class."""
    import torch

    model = load_model(model_file)
    names = _feature_names(model, model_file, data_file, features)
    X = torch.from_numpy(data.read(data_file, names)).to(model.dtype)
    if model.info.get("task") == "classify":
        header, labels, values = predictions(model, X)
        if out is None:
            click.echo(data.to_text(header, values, labels=labels), nl=False)
        else:
            data.write(out, header, values, labels=labels)
            ui.note(f"wrote {len(values)} predicted labels to {out}")
        return
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
        *_network_rows(model),
        ("dtype", str(model.dtype).removeprefix("torch.")),
        ("parameters", str(model.num_parameters())),
    ]
    if notes.get("features"):
        rows.append(("features", ", ".join(notes["features"])))
    if notes.get("target"):
        rows.append(("target", notes["target"]))
    multistage = hasattr(model, "stages")
    recipe = recipes.Recipe.from_dict(notes["recipe"]) if notes.get("recipe") and not multistage else None
    chosen = next((c for c in notes.get("selection", []) if c.get("chosen")), None)
    if recipe is not None and recipe.needs_validation:
        tried = notes.get("selection", [])
        if chosen is not None:
            kept = ", ".join(f"{steps} at grid {grid}" for grid, steps in chosen["schedule"]) or "closed form"
            what = chosen["label"] + (f", lamb {chosen['lamb']:g}" if chosen.get("lamb") else "")
            rows.append(("chosen", f"{what} (steps kept: {kept}) out of {len(tried)} candidates tried on the "
                                   "validation rows: the simplest not clearly worse than the best"))
        rows.append(("recipe", f"grids {_plain(recipe.grids)}, up to {recipe.steps} {recipe.optimizer} steps each, "
                               f"patience {recipe.early_stopping}, lamb {recipe.lamb}, seed {recipe.seed}"))
    elif recipe is not None:
        extras = (f", lamb {recipe.lamb}" if recipe.lamb_value else "")
        rows.append(("recipe", f"grids {_plain(recipe.grids)}, {recipe.steps} {recipe.optimizer} steps each, "
                               f"seed {recipe.seed}{extras}"))
    if notes.get("data"):
        rows.append(("data", f"{notes['data']} ({notes.get('rows', '?')} rows, "
                             f"validation fraction {notes.get('val_frac', 0)})"))
    if notes.get("classes"):
        rows.append(("classes", ", ".join(map(str, notes["classes"]))))
    if notes.get("validation"):
        v = notes["validation"]
        text = classifier_validation_text(v) if "accuracy" in v else _validation_text(v) if "rows" in v else (
            f"validation RMSE {v['rmse']:.4g} (R² {v['r2']:.3f}; "
            f"predicting the training mean: {v['baseline_rmse']:.4g})"
            + (", before the refit on every row" if v.get("refit") else ""))
        rows.append(("validation", text))
    state = model.fit_state
    if multistage:
        rows.append(("resumable", "no: a multi-stage fit (fit again)"))
    elif notes.get("task") == "classify":
        rows.append(("resumable", "no: a classifier (fit it again)"))
    elif recipe is not None and recipe.needs_validation:
        rows.append(("resumable", "no: chosen on validation rows (fit again, or --resume a fixed schedule)"))
    else:
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

    console = make_console(quiet=ui.quiet)
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
