"""The formula side of the `kanopy` command: discover, formula, plot."""

import numpy as np
import sympy
from click.testing import CliRunner
from test_cli import write_csv

import kanopy
from kanopy import cli


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args], catch_exceptions=False)


def additive_csv(tmp_path, n=400):
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(n, 2))
    y = np.sin(3 * X[:, 0]) + X[:, 1] ** 2
    return write_csv(tmp_path / "data.csv", ["a", "b", "t"], np.column_stack([X, y])), X, y


def test_discover_prints_the_formula(tmp_path):
    path, X, y = additive_csv(tmp_path)
    result = run("discover", path, "--target", "t", "--effort", "6000", "--python")
    assert result.exit_code == 0, result.output
    assert "work units" in result.stderr and "cut the search short" not in result.stderr
    namespace = {}
    exec(result.stdout[result.stdout.index("import numpy"):], namespace)
    np.testing.assert_allclose(namespace["t"](X[:, 0], X[:, 1]), y, rtol=1e-9, atol=1e-12)


def test_fit_formula_plot_round_trip(tmp_path):
    path, X, y = additive_csv(tmp_path)
    model_file = tmp_path / "m.kan"
    assert run("fit", path, "--target", "t", "--width", "1", "--grids", "5,10", "--steps", "20",
               "--optimizer", "lm", "--out", model_file, "-q").exit_code == 0
    refused = run("formula", model_file)
    assert refused.exit_code == 1 and "give --data" in refused.stderr and "Traceback" not in refused.output
    snapped = tmp_path / "sym.kan"
    result = run("formula", model_file, "--data", path, "--out", snapped)
    assert result.exit_code == 0, result.output
    a, b = sympy.symbols("a b")
    expr = sympy.sympify(result.stdout.split("=", 1)[1], locals={"a": a, "b": b})
    assert sympy.simplify(expr - (sympy.sin(3 * a) + b**2)) == 0
    latex = run("formula", snapped, "--latex")
    assert latex.exit_code == 0 and r"\sin" in latex.stdout
    picture = tmp_path / "net.png"
    assert run("plot", snapped, "-o", picture, "--data", path).exit_code == 0
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = kanopy.load(snapped)
    assert all(n is not None for row in loaded.layers[0].symbolic.names for n in row)


def test_discover_documents_its_default_effort_and_reports_a_time_cap(tmp_path, monkeypatch):
    from kanopy.discovery import DEFAULT_EFFORT
    from kanopy.discovery import budget as budget_module

    assert f"[default: {DEFAULT_EFFORT}]" in run("discover", "--help").stdout.replace("\n", " ")

    class Ticking:  # a clock that advances a second per reading: the cap is hit at a fixed point
        now = 0.0

        def perf_counter(self):
            self.now += 1.0
            return self.now

    monkeypatch.setattr(budget_module, "time", Ticking())
    path, X, y = additive_csv(tmp_path)
    result = run("discover", path, "--target", "t", "--budget", "30")
    assert result.exit_code == 0, result.output
    assert "--budget of 30 s cut the search short" in result.stderr
    bad = run("discover", path, "--target", "t", "--effort", "0")
    assert bad.exit_code != 0 and "--effort" in bad.output
