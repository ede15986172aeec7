"""The `kanopy` command: round trips that reproduce the library bit for bit, one-line errors,
hostile model files refused, Ctrl-C that saves and resumes."""

import csv
import math
import pickle
import subprocess
import sys

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


def test_usage_errors_name_the_option_without_a_traceback(tmp_path):
    data = write_csv(tmp_path / "d.csv", ["x", "y"], [(1, 2), (2, 3), (3, 5)])
    for args, fragment in ((["fit", data], "Missing option '--target'"),
                           (["fit", data, "--target", "y", "--grids", "3,x"], "Invalid value for '--grids'"),
                           (["fit", data, "--target", "y", "--width", "0"], "Invalid value for '--width'"),
                           (["fit", data, "--target", "y", "--val-frac", "1"], "Invalid value for '--val-frac'"),
                           (["fit", data, "--target", "y", "--out", tmp_path], "'--out'")):
        result = run(*args)
        assert result.exit_code == 2 and fragment in result.stderr and "Traceback" not in result.output
    refused(run("fit", data, "--target", "y", "--grids", "10,3"), "grids must be", "increasing")


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
    refused(run("fit", three, "--target", "y", "--resume", tmp_path / "plain.kan"), "has 2 inputs but 3 features")
    refused(run("fit", data, "--target", "y", "--features", "x1,x2", "--resume", tmp_path / "plain.kan"),
            "does not match the recipe", "width [2, 2, 1], not [2, 5, 1]")


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
