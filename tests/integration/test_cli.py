"""The `kanopy` command: round trips that reproduce the library bit for bit, one-line errors,
hostile model files refused, Ctrl-C that saves and resumes."""

import csv
import io
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import kanopy
from kanopy import KAN, cli

FIT = ["--width", "3", "--grids", "3,5", "--steps", "4"]


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def toy_rows(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 2, size=(n, 2))
    y = np.exp(np.sin(math.pi * X[:, 0]) + X[:, 1] ** 2 / 4)
    return X, y


def write_csv(path, header, rows):
    """CSV with floats as repr (exact), written here independently of kanopy.data."""
    with open(path, "w", newline="") as f:
        f.write(",".join(header) + "\n")
        for row in rows:
            f.write(",".join(v if isinstance(v, str) else repr(float(v)) for v in row) + "\n")
    return path


@pytest.fixture
def toy_csv(tmp_path):
    X, y = toy_rows()
    rows = [(a, "lab", b, t) for a, b, t in zip(X[:, 0], X[:, 1], y)]
    return write_csv(tmp_path / "train.csv", ["x1", "label", "x2", "y"], rows), X, y


def read_predictions(text):
    rows = list(csv.reader(text.splitlines()))
    assert rows[0] == ["prediction"]
    return np.array([float(r[0]) for r in rows[1:]])


def test_every_command_has_help():
    assert run("--help").exit_code == 0
    for name in cli.main.commands:
        for flag in ("--help", "-h"):
            result = run(name, flag)
            assert result.exit_code == 0 and result.stdout.startswith(f"Usage: main {name}"), name
            assert "--quiet" in result.stdout and "--debug" in result.stdout


def test_fit_then_predict_reproduces_the_library_bit_for_bit(toy_csv, tmp_path):
    data, X, y = toy_csv
    model_file = tmp_path / "m.kan"
    result = run("fit", data, "--target", "y", "--features", "x1,x2", *FIT, "--val-frac", "0", "--out", model_file,
                 "--quiet")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""

    to_stdout = run("predict", model_file, data)
    assert to_stdout.exit_code == 0
    assert run("predict", model_file, data, "--out", tmp_path / "p.csv", "--quiet").exit_code == 0
    assert (tmp_path / "p.csv").read_text() == to_stdout.stdout
    predicted = read_predictions(to_stdout.stdout)

    with torch.no_grad():
        loaded = kanopy.load(model_file)(torch.tensor(X)).numpy()[:, 0]
    assert np.array_equal(predicted, loaded)
    in_process = kanopy.KANRegressor(hidden=(3,), grids=(3, 5), steps=4, random_state=0).fit(X, y).predict(X)
    assert np.array_equal(predicted, in_process)  # the CLI and the estimator fit the same model
    assert float(np.sqrt(np.mean((predicted - y) ** 2))) < 0.05 * y.std()


def test_fit_reports_a_table_and_info_describes_the_model(toy_csv, tmp_path):
    data, _, _ = toy_csv
    result = run("fit", data, "--target", "y", "--features", "x2,x1", *FIT, "--out", tmp_path / "m.kan")
    assert result.exit_code == 0, result.output
    assert "48 training rows, 12 validation rows" in result.stdout
    table = [line for line in result.stdout.splitlines() if line.strip("│ ").split(" ")[0] in ("3", "5")]
    assert len(table) == 2 and all(line.count("e-0") >= 2 for line in table)  # train and val RMSE
    assert "saved" in result.stderr
    info = run("info", tmp_path / "m.kan")
    assert info.exit_code == 0
    for text in ("[2, 3, 1]", "x2, x1", "target", "grids 3,5, 4 lbfgs steps each", "lbfgs state after 4 steps"):
        assert text in info.stdout


def test_predict_uses_the_feature_names_the_model_was_fitted_on(toy_csv, tmp_path):
    data, X, _ = toy_csv
    run("fit", data, "--target", "y", "--features", "x2,x1", *FIT, "--out", tmp_path / "m.kan", "--quiet")
    shuffled = write_csv(tmp_path / "new.csv", ["x1", "x2"], X[:5])  # other column order, no target
    predicted = read_predictions(run("predict", tmp_path / "m.kan", shuffled).stdout)
    with torch.no_grad():
        expected = kanopy.load(tmp_path / "m.kan")(torch.tensor(X[:5, ::-1].copy())).numpy()[:, 0]
    assert np.array_equal(predicted, expected)


def refused(result, *fragments):
    """Exit 1, one line on stderr naming the problem, nothing on stdout, no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    return lines[0]


BAD_DATA = {  # name: (rows of x1,x2,y; arguments; fragments of the message)
    "unknown target": ([(1, 2, 3), (2, 1, 4), (3, 3, 5)], ["--target", "z"], ["no column 'z'"]),
    "unknown feature": ([(1, 2, 3), (2, 1, 4), (3, 3, 5)], ["--target", "y", "--features", "x1,x9"],
                        ["no column 'x9'"]),
    "non-numeric": ([(1, 2, 3), (2, "abc", 4), (3, 3, 5)], ["--target", "y"],
                    ["'abc' at row 2 (line 3), column 'x2'"]),
    "missing value": ([(1, 2, 3), ("", 1, 4), (3, 3, 5)], ["--target", "y"],
                      ["missing value at row 2 (line 3), column 'x1'"]),
    "NaN": ([(1, 2, 3), (2, 1, 4), (3, 3, "nan")], ["--target", "y"], ["NaN at row 3 (line 4), column 'y'"]),
    "inf": ([(1, 2, 3), (2, "-inf", 4), (3, 3, 5)], ["--target", "y"], ["inf at row 2 (line 3), column 'x2'"]),
    "empty": ([], ["--target", "y"], ["has no data rows"]),
    "one row": ([(1, 2, 3)], ["--target", "y", "--val-frac", "0"], ["too few rows", "got 1 sample"]),
    "no room to validate": ([(1, 2, 3), (2, 1, 4)], ["--target", "y"], ["2 rows are too few to hold out"]),
    "constant target": ([(1, 2, 3), (2, 1, 3), (3, 3, 3)], ["--target", "y"], ["target column 'y' is constant"]),
    "target as feature": ([(1, 2, 3), (2, 1, 4)], ["--target", "y", "--features", "x1,y"], ["--features includes"]),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_input_to_fit_is_one_line_naming_the_place_and_writes_nothing(tmp_path, case):
    rows, args, fragments = BAD_DATA[case]
    data = write_csv(tmp_path / "d.csv", ["x1", "x2", "y"], [[str(v) for v in row] for row in rows])
    refused(run("fit", data, *args, *FIT, "--out", tmp_path / "m.kan"), *fragments)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_empty_files_missing_files_and_bad_places_to_write(tmp_path, monkeypatch):
    (tmp_path / "empty.csv").write_text("")
    refused(run("fit", tmp_path / "empty.csv", "--target", "y"), "empty.csv is empty")
    refused(run("fit", tmp_path / "absent.csv", "--target", "y"), "absent.csv: no such file")
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [(1, 2), (2, 3), (3, 5)])
    refused(run("predict", tmp_path / "absent.kan", data), "no such model file")
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)  # a folder we may not write in
    refused(run("fit", data, "--target", "y", "--out", tmp_path / "sub" / "m.kan"), "cannot write in")


def test_usage_errors_are_one_line_naming_the_option_with_exit_status_2(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [(1, 2), (2, 3), (3, 5)])
    for args, fragment in ((["fit", data], "Missing option '--target'"),
                           (["fit", data, "--target", "y", "--grids", "3,x"], "Invalid value for '--grids'"),
                           (["fit", data, "--target", "y", "--width", "0"], "Invalid value for '--width'"),
                           (["fit", data, "--target", "y", "--lamb", "-1"], "Invalid value for '--lamb'"),
                           (["fit", data, "--target", "y", "--patience", "0"], "Invalid value for '--patience'"),
                           (["fit", data, "--target", "y", "--val-frac", "1"], "Invalid value for '--val-frac'"),
                           (["fit", data, "--target", "y", "--out", tmp_path], "'--out'"),
                           (["fit", data, "--target", "y", "--no-such-option"], "No such option"),
                           (["no-such-command"], "No such command")):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], result.stderr
        assert "--help" in lines[0] and result.stdout == "" and "Traceback" not in result.output
    refused(run("fit", data, "--target", "y", "--grids", "10,3"), "grids must be", "increasing")


def test_the_readme_states_the_exit_statuses_the_command_uses():
    readme = " ".join((Path(__file__).resolve().parents[2] / "README.md").read_text().split())
    assert (cli.EXIT_ERROR, cli.EXIT_USAGE, cli.EXIT_INTERRUPTED) == (1, 2, 130)
    assert "bad input ends with exit status 1" in readme
    assert "a usage error (an unknown option, a bad option value) with exit status 2" in readme
    assert "Ctrl-C with 130" in readme


def test_predict_with_the_wrong_features_is_refused(toy_csv, tmp_path):
    data, X, y = toy_csv
    model = KAN([2, 2, 1], grid=3, seed=0)  # saved from Python: no feature names
    model.save(tmp_path / "plain.kan")
    refused(run("predict", tmp_path / "plain.kan", data), "expects 2 features", "has 4 columns", "--features")
    refused(run("predict", tmp_path / "plain.kan", data, "--features", "x1"),
            "--features names 1 columns but", "expects 2 features")
    ok = run("predict", tmp_path / "plain.kan", data, "--features", "x1,x2")
    with torch.no_grad():
        assert np.array_equal(read_predictions(ok.stdout), model(torch.tensor(X)).numpy()[:, 0])
    run("fit", data, "--target", "y", "--features", "x1,x2", *FIT, "--out", tmp_path / "m.kan", "--quiet")
    lacking = write_csv(tmp_path / "lacking.csv", ["x1", "y"], [(1, 2)])
    refused(run("predict", tmp_path / "m.kan", lacking), "no column 'x2'")


class Payload:
    """Unpickling this would create a file."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_posing_as_a_model_is_refused_and_never_runs(toy_csv, tmp_path):
    data, _, _ = toy_csv
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.kan"
    evil.write_bytes(pickle.dumps(Payload(marker)))
    refused(run("predict", evil, data), "pickle", "refused")
    refused(run("info", evil), "pickle")
    refused(run("fit", data, "--target", "y", "--resume", evil, "--out", tmp_path / "new.kan"), "pickle")
    done = subprocess.run([sys.executable, "-m", "kanopy", "predict", str(evil), str(data)], capture_output=True,
                          text=True, timeout=600)  # a guard against a hang, not a speed check
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "pickle" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists() and not (tmp_path / "new.kan").exists()


def test_debug_shows_the_traceback(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [(1, 2), (2, 3), (3, 5)])
    result = run("fit", data, "--target", "nope", "--debug")
    assert result.exit_code == 1 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ")


def interrupt_at(monkeypatch, grid, step):
    """Ctrl-C right after the given step of the fit (the fit undoes that step)."""
    original = cli._StepBars.__call__

    def call(self, g, s, history):
        original(self, g, s, history)
        if (g, s) == (grid, step):
            raise KeyboardInterrupt

    monkeypatch.setattr(cli._StepBars, "__call__", call)


def test_ctrl_c_saves_the_fit_so_far_and_resume_finishes_it_exactly(toy_csv, tmp_path, monkeypatch):
    data, X, _ = toy_csv
    args = ["fit", data, "--target", "y", "--features", "x1,x2", *FIT]
    assert run(*args, "--out", tmp_path / "whole.kan", "--quiet").exit_code == 0

    with monkeypatch.context() as patch:
        interrupt_at(patch, 5, 3)
        result = run(*args, "--out", tmp_path / "part.kan", "--quiet")
    assert result.exit_code == 130
    assert result.stderr.strip() == (f"error: interrupted at grid 5 after 2 of 4 steps; saved the model so far to "
                                     f"{tmp_path / 'part.kan'} (continue with --resume {tmp_path / 'part.kan'})")
    part = kanopy.load(tmp_path / "part.kan")
    assert part.grid == 5 and part.fit_state["step"] == 2

    resumed = run("fit", data, "--resume", tmp_path / "part.kan", "--out", tmp_path / "part.kan")
    assert resumed.exit_code == 0, resumed.output
    assert "resuming" in resumed.stderr and "grid 5, 2 of 4 steps done" in resumed.stderr
    with torch.no_grad():
        a = kanopy.load(tmp_path / "part.kan")(torch.tensor(X))
        b = kanopy.load(tmp_path / "whole.kan")(torch.tensor(X))
    assert torch.equal(a, b)


def test_ctrl_c_without_out_says_nothing_was_saved(toy_csv, tmp_path, monkeypatch):
    data, _, _ = toy_csv
    interrupt_at(monkeypatch, 3, 1)
    result = run("fit", data, "--target", "y", "--features", "x1,x2", *FIT)
    assert result.exit_code == 130 and "nothing saved" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


def test_resume_extends_a_finished_fit_and_refuses_other_data(toy_csv, tmp_path):
    data, X, _ = toy_csv
    base = ["fit", data, "--target", "y", "--features", "x1,x2", "--width", "3", "--steps", "4", "--quiet"]
    run(*base, "--grids", "3,5", "--out", tmp_path / "whole.kan")
    run(*base, "--grids", "3", "--out", tmp_path / "short.kan")
    assert run("fit", data, "--resume", tmp_path / "short.kan", "--grids", "3,5", "--out", tmp_path / "more.kan",
               "--quiet").exit_code == 0
    with torch.no_grad():
        assert torch.equal(kanopy.load(tmp_path / "more.kan")(torch.tensor(X)),
                           kanopy.load(tmp_path / "whole.kan")(torch.tensor(X)))
    refused(run("fit", data, "--resume", tmp_path / "short.kan", "--target", "x1"),
            "--target x1 differs from the y that", "was fitted with")
    refused(run("fit", data, "--resume", tmp_path / "short.kan", "--width", "4"), "--width 4 differs from the 3")
    KAN([2, 2, 1], grid=3).save(tmp_path / "plain.kan")  # from Python: no record of its data or recipe
    three = write_csv(tmp_path / "three.csv", ["x1", "x2", "x3", "y"], [(1, 2, 3, 4), (2, 1, 0, 3), (0, 0, 1, 1)])
    refused(run("fit", three, "--target", "y", "--width", "2", "--grids", "3", "--resume", tmp_path / "plain.kan"),
            "has 2 inputs but 3 features")
    refused(run("fit", data, "--target", "y", "--features", "x1,x2", "--width", "5", "--grids", "3", "--resume",
                tmp_path / "plain.kan"), "does not match the recipe", "width [2, 2, 1], not [2, 5, 1]")
    refused(run("fit", data, "--target", "y", "--features", "x1,x2", "--resume", tmp_path / "plain.kan"),
            "--resume continues a fixed schedule", "give --width and --grids")


def test_parquet_data(toy_csv, tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    data, X, y = toy_csv
    pq.write_table(pa.table({"x1": X[:, 0], "x2": X[:, 1], "y": y}), str(tmp_path / "d.parquet"))
    assert run("fit", tmp_path / "d.parquet", "--target", "y", *FIT, "--val-frac", "0", "--out", tmp_path / "m.kan",
               "--quiet").exit_code == 0
    assert run("predict", tmp_path / "m.kan", tmp_path / "d.parquet", "--out", tmp_path / "p.parquet").exit_code == 0
    predicted = pq.read_table(str(tmp_path / "p.parquet")).column("prediction").to_numpy()
    in_process = kanopy.KANRegressor(hidden=(3,), grids=(3, 5), steps=4).fit(X, y).predict(X)
    assert np.array_equal(predicted, in_process)


def test_a_closed_pipe_ends_predict_quietly(toy_csv, tmp_path, monkeypatch):
    data, _, _ = toy_csv
    run("fit", data, "--target", "y", "--features", "x1,x2", *FIT, "--out", tmp_path / "m.kan", "--quiet")

    def closed(*args, **kwargs):
        raise BrokenPipeError(32, "Broken pipe")  # what writing to `| head` raises once head is done

    monkeypatch.setattr(cli.data, "to_text", closed)
    result = run("predict", tmp_path / "m.kan", data)
    assert result.exit_code == 1 and result.stderr == ""


# --------------------------------------------------------------------- the default recipe
def diabetes_csv(path):
    """scikit-learn's diabetes table (442 rows, 10 features; bundled, no download) as CSV."""
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    bunch = sklearn_datasets.load_diabetes()
    return write_csv(path, [*bunch.feature_names, "target"], np.column_stack([bunch.data, bunch.target])), bunch


def test_default_fit_on_diabetes_beats_the_mean_and_info_shows_the_validation_error(tmp_path):
    data, bunch = diabetes_csv(tmp_path / "diabetes.csv")
    result = run("fit", data, "--target", "target", "--out", tmp_path / "d.kan")
    assert result.exit_code == 0, result.output
    assert "mean" in result.stdout and "linear" in result.stdout and "*" in result.stdout  # the candidates, one chosen
    model = kanopy.load(tmp_path / "d.kan")
    validation = model.info["validation"]
    # the same split, recomputed here: the reported error is the saved model's on the held-out rows
    _, val_rows = kanopy.recipe.split(442, 0.2, 0)
    X_val, y_val = torch.tensor(bunch.data[val_rows]), torch.tensor(bunch.target[val_rows])
    with torch.no_grad():
        rmse = float(torch.sqrt(torch.mean((model(X_val)[:, 0] - y_val) ** 2)))
    assert validation["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert rmse < 0.8 * float(y_val.std(correction=0))  # well below predicting a constant
    assert rmse < validation["baseline_rmse"]
    assert f"validation RMSE {rmse:.4g}" in result.stderr
    info = run("info", tmp_path / "d.kan")
    assert info.exit_code == 0
    for text in (f"{rmse:.4g}", "validation", "chosen", "candidates tried"):
        assert text in info.stdout, text
    with torch.no_grad():  # far outside the training range the inputs are clamped: bounded predictions
        far = model(torch.tensor(bunch.data[:5] * 50))[:, 0]
    span = bunch.target.max() - bunch.target.min()
    assert bool(((far > bunch.target.min() - span / 2) & (far < bunch.target.max() + span / 2)).all())


def test_a_fit_interrupted_during_the_search_saves_the_best_so_far(toy_csv, tmp_path, monkeypatch):
    data, X, _ = toy_csv
    from kanopy import selection

    original = selection.Search._record

    def record(self, candidate, t0):
        out = original(self, candidate, t0)
        if len(self.candidates) == 3:  # mean, linear, then one network
            raise KeyboardInterrupt
        return out

    monkeypatch.setattr(selection.Search, "_record", record)
    result = run("fit", data, "--target", "y", "--features", "x1,x2", "--out", tmp_path / "m.kan", "--quiet")
    assert result.exit_code == 130
    assert "interrupted during the search, after 3 candidates; saved the model so far" in result.stderr
    saved = kanopy.load(tmp_path / "m.kan")
    assert [c["label"] for c in saved.info["selection"]] == ["mean", "linear", "[2, 1]"]
    assert sum(c["chosen"] for c in saved.info["selection"]) == 1
    refused(run("fit", data, "--resume", tmp_path / "m.kan"), "--resume continues a fixed schedule")


def test_the_default_recipe_needs_validation_rows(toy_csv):
    data, _, _ = toy_csv
    refused(run("fit", data, "--target", "y", "--val-frac", "0"), "--val-frac 0 leaves no validation rows")
    refused(run("fit", data, "--target", "y", "--width", "2", "--grids", "3", "--patience", "3", "--val-frac", "0"),
            "--val-frac 0")


def test_lamb_and_patience_reach_the_fit_like_the_estimators(toy_csv, tmp_path):
    data, X, y = toy_csv
    args = ["fit", data, "--target", "y", "--features", "x1,x2", "--width", "2", "--grids", "3,5", "--steps", "6"]
    assert run(*args, "--lamb", "0.01", "--val-frac", "0", "--out", tmp_path / "l.kan", "--quiet").exit_code == 0
    model = kanopy.load(tmp_path / "l.kan")
    assert model.info["recipe"]["lamb"] == 0.01
    same = kanopy.KANRegressor(hidden=(2,), grids=(3, 5), steps=6, lamb=0.01, patience=None).fit(X, y)
    with torch.no_grad():
        assert np.array_equal(model(torch.tensor(X)).numpy()[:, 0], same.predict(X))
    plain = kanopy.KANRegressor(hidden=(2,), grids=(3, 5), steps=6, lamb=0.0, patience=None).fit(X, y)
    assert not np.allclose(plain.predict(X), same.predict(X))  # the regulariser changed the fit

    result = run(*args, "--patience", "2", "--out", tmp_path / "p.kan", "--quiet")  # early stopping, best state
    assert result.exit_code == 0, result.output
    stopped = kanopy.load(tmp_path / "p.kan")
    assert stopped.info["recipe"]["patience"] == 2 and "selection" in stopped.info


# ---------------------------------------------------------------------- rough edges
def test_an_unwritable_out_is_refused_before_the_fit(toy_csv, tmp_path, monkeypatch):
    data, _, _ = toy_csv
    monkeypatch.setattr(kanopy.KAN, "fit", lambda *a, **k: pytest.fail("the fit ran before --out was checked"))
    refused(run("fit", data, "--target", "y", "--out", data / "m.kan"), "is not a folder")  # under a file

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", no_space)  # what os.access cannot see (full, read-only...)
    refused(run("fit", data, "--target", "y", "--out", tmp_path / "sub" / "m.kan"), "cannot write in",
            "No space left on device")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.csv"]


def test_a_text_target_is_named_as_the_target_and_a_text_feature_gets_the_features_hint(tmp_path):
    rows = [(1, 2, "setosa"), (2, 1, "virginica"), (3, 3, "setosa")]
    data = write_csv(tmp_path / "d.csv", ["x1", "x2", "species"], [[str(v) for v in row] for row in rows])
    line = refused(run("fit", data, "--target", "species", "--task", "regress"),
                   "'setosa' at row 1 (line 2), column 'species'", "the target column must hold numbers")
    assert "--features" not in line
    rows = [(1, "a", 3), (2, "b", 4), (3, "c", 5)]
    data = write_csv(tmp_path / "e.csv", ["x1", "name", "y"], [[str(v) for v in row] for row in rows])
    refused(run("fit", data, "--target", "y"), "column 'name'", "choose them with --features")


def test_a_semicolon_separated_file_gets_a_delimiter_hint(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1;x2;y\n1,5;2;3\n2;1;4\n")
    refused(run("fit", path, "--target", "y"), "no column 'y'", "separated by semicolons")


def test_more_parameters_than_rows_is_warned_before_the_fit(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["x1", "x2", "y"], [(1, 2, 3), (2, 1, 4), (3, 3, 5.5)])
    result = run("fit", data, "--target", "y", "--width", "5", "--grids", "3,10,20", "--steps", "2")
    assert result.exit_code == 0, result.output
    # [2, 5, 1]: 15 edges of 20 + 3 coefficients and 2 scales at grid 20, for 2 training rows (1 validates)
    assert "warning: the network has 375 parameters for 2 training rows" in result.stderr
    result = run("fit", data, "--target", "y")  # the default recipe builds nothing that large
    assert result.exit_code == 0, result.output
    assert "parameters for" not in result.stderr
    assert "no network predicted the validation rows clearly better than the mean" in result.stderr


def test_progress_bars_leave_no_blank_lines_in_a_file_or_pipe(toy_csv, tmp_path):
    data, _, _ = toy_csv
    with open(tmp_path / "err.txt", "w") as err, open(tmp_path / "out.txt", "w") as out:
        done = subprocess.run([sys.executable, "-m", "kanopy", "fit", str(data), "--target", "y", "--features", "x1,x2",
                               *FIT], stdout=out, stderr=err, timeout=600, env={**os.environ, "COLUMNS": "100"})
    assert done.returncode == 0, (tmp_path / "err.txt").read_text()
    for name in ("err.txt", "out.txt"):
        text = (tmp_path / name).read_text()
        assert text.strip() and "" not in text.splitlines() and "\x1b" not in text, (name, text)
    assert "validation RMSE" in (tmp_path / "err.txt").read_text()


def test_progress_bars_draw_on_a_terminal_only():
    from rich.console import Console

    from kanopy import progress

    assert progress.bars(Console(file=io.StringIO(), force_terminal=True)).disable is False
    assert progress.bars(Console(file=io.StringIO())).disable is True  # not a terminal
    assert progress.bars(Console(file=io.StringIO(), force_terminal=True), enabled=False).disable is True


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["fit", "--help"], ["discover", "--help"]])
def test_help_and_version_do_not_import_torch(args):
    code = ("import sys\n"
            "from kanopy.cli import main\n"
            f"try:\n    main({args!r})\nexcept SystemExit as end:\n    assert end.code in (0, None), end.code\n"
            "heavy = sorted(m for m in ('torch', 'numpy', 'sympy', 'scipy') if m in sys.modules)\n"
            "print('imported:', ','.join(heavy))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "imported:"  # nothing heavy: answers in a fraction of a second


def test_info_shows_the_validation_error_of_a_model_saved_from_the_estimator(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, size=(120, 2))
    y = X[:, 0] - 2 * X[:, 1] + 0.1 * rng.standard_normal(120)
    est = kanopy.KANRegressor(steps=5, lamb=0.0).fit(X, y)
    est.model_.save(tmp_path / "e.kan")
    info = run("info", tmp_path / "e.kan")
    assert info.exit_code == 0
    assert f"validation RMSE {est.validation_rmse_:.4g}" in info.stdout and "before the refit" in info.stdout
    assert "chosen" in info.stdout and "resumable" in info.stdout


def test_the_candidate_table_keeps_its_numbers_whole_in_a_file_or_pipe(toy_csv, tmp_path, monkeypatch):
    data, _, _ = toy_csv
    monkeypatch.delenv("COLUMNS", raising=False)  # no terminal and no width asked: rich would cut at 80 columns
    result = run("fit", data, "--target", "y", "--features", "x1,x2", "--steps", "4", "--out", tmp_path / "m.kan")
    assert result.exit_code == 0, result.output
    assert "…" not in result.stdout, result.stdout
    saved = kanopy.load(tmp_path / "m.kan").info["selection"]
    rows = [line for line in result.stdout.splitlines() if line.count("│") >= 9]  # the candidate rows
    assert len(rows) == len(saved)
    for line, candidate in zip(rows, saved):
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        assert cells[1] == candidate["label"] and cells[-2] == f"{candidate['val_rmse']:.3e}", (line, candidate)
    assert max(len(line) for line in result.stdout.splitlines()) <= cli.FILE_WIDTH


def test_stages_fit_a_multistage_model_to_rounding_error_and_info_describes_it(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 400)
    data = write_csv(tmp_path / "wave.csv", ["x", "y"], zip(x, np.sin(3 * x)))
    out = tmp_path / "wave.kan"
    result = run("fit", data, "--target", "y", "--stages", "3", "--out", out)
    assert result.exit_code == 0, result.output
    model = kanopy.load(out)
    assert isinstance(model, kanopy.MultiStageKAN) and model.info["stages"] == 3
    fresh = torch.linspace(-0.95, 0.95, 1001, dtype=torch.float64)[:, None]  # inside the training rows
    with torch.no_grad():
        assert float((model(fresh) - torch.sin(3 * fresh)).pow(2).mean().sqrt()) < 1e-9  # against the closed form
    info = run("info", out).output
    assert "stage 1" in info and "validation RMSE" in info and "multi-stage" in info


def test_stages_refuse_options_of_the_single_network_schedule_and_write_nothing(toy_csv, tmp_path):
    data, _, _ = toy_csv
    out = tmp_path / "never.kan"
    for extra in (["--grids", "3,5"], ["--width", "2"], ["--dtype", "float32"], ["--val-frac", "0"]):
        result = run("fit", data, "--target", "y", "--features", "x1,x2", "--stages", "2", *extra, "--out", out)
        assert result.exit_code == 1, result.output
        assert "--stages" in result.output and not out.exists()
