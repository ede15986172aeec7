"""Data files: exact float round trips, and refusals that name the file, row and column."""

import sys

import numpy as np
import pytest

from kanopy import data
from kanopy.data import DataError
from kanopy.validation import check_finite, check_not_constant, check_rows

AWKWARD = [0.1, 1 / 3, -0.0, 5e-324, 1e-300, 2.2250738585072014e-308, 1.7976931348623157e308, -123456789.125, 1e22]


def test_written_floats_read_back_bit_for_bit(tmp_path):
    rng = np.random.default_rng(0)
    values = np.column_stack([rng.standard_normal(40) * 10.0 ** rng.integers(-30, 30, 40), rng.random(40)])
    values[: len(AWKWARD), 0] = AWKWARD
    for name in ("t.csv", "t.tsv"):
        data.write(tmp_path / name, ["a", "b"], values)
        back = data.read(tmp_path / name, ["a", "b"])
        assert back.view(np.int64).tolist() == values.view(np.int64).tolist()  # bits, so -0.0 counts
        assert data.columns(tmp_path / name) == ["a", "b"]
    assert (tmp_path / "t.tsv").read_text().splitlines()[0] == "a\tb"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.tsv"]  # no temporary files left


def test_columns_are_picked_by_name_from_ordinary_csv(tmp_path):
    text = ('\ufeffid, x , "label",y\n'  # byte-order mark, spaces around names, quoted names
            '1, 0.5 ,"a, b",2e3\n'
            "\n"  # blank lines are skipped
            '2,-1.25,"two\nlines",  -7\n'
            "3,1E-2,c,0\n")
    path = tmp_path / "d.csv"
    path.write_text(text, encoding="utf-8")
    assert data.columns(path) == ["id", "x", "label", "y"]
    np.testing.assert_array_equal(data.read(path, ["y", "x"]), [[2000.0, 0.5], [-7.0, -1.25], [0.0, 0.01]])


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("text,names,message", [
    ("x,y\n1,2\n3,oops\n", ["x", "y"], "d.csv: 'oops' at row 2 (line 3), column 'y' is not a number"),
    ("x,y\n1,2\n,4\n", ["x", "y"], "d.csv: missing value at row 2 (line 3), column 'x'"),
    ("x,y\n1,2\n3,4\n5,nan\n", ["x", "y"], "d.csv contains NaN at row 3 (line 4), column 'y'"),
    ("x,y\n1,2\n-inf,4\n", ["y", "x"], "d.csv contains inf at row 2 (line 3), column 'x'"),
    ('x,note,y\n1,"a\nb",2\n3,c,x\n', ["x", "y"], "'x' at row 2 (line 4), column 'y'"),  # lines of quoted fields
    ("x,y\n1,2\n3\n", ["x", "y"], "d.csv: row 2 (line 3) has 1 fields but the header has 2"),
    ("x,y\n", ["x"], "d.csv has no data rows"),
    ("", ["x"], "d.csv is empty (no header line)"),
    ("x1,x2,y\n1,2,3\n", ["x1", "x3"], "d.csv has no column 'x3' (its columns: x1, x2, y)"),
    ("temperature,y\n1,2\n", ["temprature"], "no column 'temprature' (its columns: temperature, y); "
                                               "did you mean 'temperature'?"),
    ("x,x,y\n1,2,3\n", ["x", "y"], "column name 'x' appears 2 times"),
])
def test_bad_text_data_is_refused_naming_the_place(tmp_path, text, names, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        data.read(path, names)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unused_columns_may_hold_anything(tmp_path):
    path = write(tmp_path, "name,x,y\nalice,1,2\n,3,nan\n")
    np.testing.assert_array_equal(data.read(path, ["x"]), [[1.0], [3.0]])


def test_missing_files_directories_and_binary_files_are_refused(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.read(tmp_path / "absent.csv", ["x"])
    with pytest.raises(DataError, match="is a directory"):
        data.columns(tmp_path)
    (tmp_path / "blob.csv").write_bytes(b"\x80\x04\x95\x00\xff\xfe binary")
    with pytest.raises(DataError, match="not UTF-8 text"):
        data.read(tmp_path / "blob.csv", ["x"])


def test_parquet_round_trip_and_refusals(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    values = np.array([AWKWARD, np.arange(len(AWKWARD), dtype=float)]).T
    data.write(tmp_path / "v.parquet", ["a", "b"], values)
    assert data.columns(tmp_path / "v.parquet") == ["a", "b"]
    back = data.read(tmp_path / "v.parquet", ["b", "a"])
    assert back[:, ::-1].view(np.int64).tolist() == values.view(np.int64).tolist()

    table = pa.table({"i": [1, 2, 3], "s": ["1.5", "2", "x"], "n": [1.0, None, 3.0], "f": [0.5, float("inf"), 1]})
    pq.write_table(table, str(tmp_path / "t.parquet"))
    np.testing.assert_array_equal(data.read(tmp_path / "t.parquet", ["i"]), [[1.0], [2.0], [3.0]])
    for names, message in ((["s"], "'x' at row 3, column 's' is not a number"),
                           (["n"], "missing value at row 2, column 'n'"),
                           (["f"], "contains inf at row 2, column 'f'"),
                           (["z"], "has no column 'z'")):
        with pytest.raises(DataError, match=message):
            data.read(tmp_path / "t.parquet", names)
    (tmp_path / "fake.parquet").write_text("x,y\n1,2\n")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        data.read(tmp_path / "fake.parquet", ["x"])


def test_parquet_without_pyarrow_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now fails
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataError, match="install pyarrow"):
        data.read(tmp_path / "t.parquet", ["x"])


def test_array_checks_name_row_and_column():
    X = np.zeros((5, 3))
    X[3, 2] = np.inf
    with pytest.raises(ValueError, match="X contains inf at row 3, column 2$"):
        check_finite(X, "X")
    with pytest.raises(ValueError, match="X contains inf at row 3, column 'c'"):
        check_finite(X, "X", ["a", "b", "c"])
    with pytest.raises(ValueError, match="got 1 sample, need at least 2"):
        check_rows(1, "X")
    with pytest.raises(ValueError, match=r"y \(column 'v'\) is constant \(every row is 2.5\)"):
        check_not_constant(np.array([[1.0, 2.5], [2.0, 2.5]]), "y", ["u", "v"])
    check_not_constant(np.array([1.0, 1.5]), "y")  # not constant: no error
