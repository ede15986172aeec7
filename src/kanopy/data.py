"""Tables of numbers in files: CSV (TSV for .tsv/.tab) and Parquet (.parquet/.pq, when
pyarrow is installed), read by column name into float64 arrays.

Anything that is not a finite number in a column asked for is refused with a
:class:`DataError` naming the file, the row and the column. Rows count from 1 at the first
data row, as in a spreadsheet; in text files the line number is given as well. Floats are
written with ``repr`` (the shortest text that reads back to the same double), so a table
written by :func:`write` and read by :func:`read` gives back exactly the same numbers.
(NumPy is imported when a table is read or written, not with this module.)
"""

from __future__ import annotations

import csv
import difflib
import io
import math
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

PARQUET_SUFFIXES = (".parquet", ".pq")
TSV_SUFFIXES = (".tsv", ".tab")


class DataError(ValueError):
    """Data that cannot be used; the message names the file and where in it (``column``: the
    column at fault, when it is one)."""

    def __init__(self, message: str, column: str | None = None):
        super().__init__(message)
        self.column = column


def columns(path) -> list[str]:
    """The column names of a table file, in order."""
    path = _existing(path)
    if _is_parquet(path):
        return _parquet_columns(path)
    with _open_text(path) as f, _decoding(path):
        return _header(path, _reader(f, path))


def read(path, names) -> np.ndarray:
    """The columns ``names`` of a table file as a float64 array (rows, len(names))."""
    path = _existing(path)
    names = list(names)
    if not names:
        raise DataError(f"no columns asked for from {path}")
    if _is_parquet(path):
        return _read_parquet(path, names)
    return _read_text(path, names)


def read_labels(path, name) -> np.ndarray:
    """The column ``name`` of a table file as class labels (rows,): numbers (int64 when all are
    whole, else float64) when every entry is one, else text (str); a missing entry, NaN or
    inf is refused."""
    import numpy as np

    path = _existing(path)
    if _is_parquet(path):
        _column_indices(path, _parquet_columns(path), [name])
        column = _parquet().read_table(str(path), columns=[name]).column(name)
        values = column.to_pylist()
        rows = list(range(1, len(values) + 1))
    else:
        with _open_text(path) as f, _decoding(path):
            reader = _reader(f, path)
            header = _header(path, reader)
            index = _column_indices(path, header, [name])[0]
            values, rows = [], []
            for fields in reader:
                if not fields:
                    continue
                if len(fields) != len(header):
                    raise DataError(f"{path}: row {len(values) + 1} (line {reader.line_num}) has "
                                    f"{len(fields)} fields but the header has {len(header)}")
                values.append(fields[index].strip())
                rows.append(f"{len(values)} (line {reader.line_num})")
    if not values:
        raise DataError(f"{path} has no data rows")
    for value, row in zip(values, rows):
        if value is None or (isinstance(value, str) and not value):
            raise DataError(f"{path}: missing label at row {row}, column {name!r}", column=name)
    try:
        numbers = np.array([float(v) for v in values])
    except (TypeError, ValueError):
        return np.array([str(v) for v in values])
    _check_finite(path, numbers[:, None], [name], lambda row: f"row {rows[row]}")
    return numbers.astype(np.int64) if (numbers == np.round(numbers)).all() else numbers


def write(path, header, values, labels=None) -> None:
    """Write columns ``values`` (rows, len(header)) under ``header``: CSV (TSV for .tsv/.tab)
    or Parquet by the suffix, atomically (see :func:`kanopy.io.atomic_write`). With
    ``labels`` (rows,), the first name of ``header`` is their column (text or numbers as
    given) and ``values`` the columns after it."""
    import numpy as np

    from .io import atomic_write

    path = Path(path)
    names = list(header) if labels is None else list(header)[1:]
    values = np.asarray(values, dtype=np.float64).reshape(len(values), len(names))
    if _is_parquet(path):
        pa = _pyarrow(path, "write")
        columns = {} if labels is None else {header[0]: list(np.asarray(labels).tolist())}
        table = pa.table({**columns, **{name: values[:, j] for j, name in enumerate(names)}})
        atomic_write(path, lambda tmp: _parquet().write_table(table, str(tmp)))
        return
    text = to_text(header, values, delimiter=_delimiter(path), labels=labels)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline=""))


def to_text(header, values, delimiter: str = ",", labels=None) -> str:
    """CSV text of columns ``values`` under ``header``, floats exact (shortest repr); with
    ``labels``, a first column of them (as ``write``)."""
    import numpy as np

    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(header)
    rows = np.asarray(values, dtype=np.float64).tolist()
    if labels is None:
        for row in rows:
            out.write(delimiter.join(map(repr, row)) + "\n")
    else:
        for label, row in zip(np.asarray(labels).tolist(), rows):
            writer.writerow([label, *map(repr, row)])
    return out.getvalue()


# ------------------------------------------------------------------------------ text files
def _read_text(path: Path, names: list[str]) -> np.ndarray:
    import numpy as np

    with _open_text(path) as f, _decoding(path):
        reader = _reader(f, path)
        header = _header(path, reader)
        index = _column_indices(path, header, names)
        rows, lines = [], []
        for fields in reader:
            if not fields:  # a blank line
                continue
            if len(fields) != len(header):
                raise DataError(f"{path}: row {len(rows) + 1} (line {reader.line_num}) has "
                                f"{len(fields)} fields but the header has {len(header)}")
            try:
                rows.append([float(fields[i]) for i in index])
            except ValueError:
                raise _bad_field(path, fields, index, names, len(rows) + 1, reader.line_num) from None
            lines.append(reader.line_num)
    if not rows:
        raise DataError(f"{path} has no data rows (only a header)")
    values = np.array(rows, dtype=np.float64)
    _check_finite(path, values, names, lambda row: f"row {row + 1} (line {lines[row]})")
    return values


def _header(path: Path, reader) -> list[str]:
    header = next(reader, None)
    if header is None:
        raise DataError(f"{path} is empty (no header line)")
    return [name.strip() for name in header]


@contextmanager
def _decoding(path: Path):
    """Errors of reading the text itself, as DataError."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); is it a CSV file?") from None
    except csv.Error as err:
        raise DataError(f"{path}: {err}") from None


def _bad_field(path, fields, index, names, row, line) -> DataError:
    for i, name in zip(index, names):
        text = fields[i]
        try:
            float(text)
        except ValueError:
            where = f"row {row} (line {line}), column {name!r}"
            if not text.strip():
                return DataError(f"{path}: missing value at {where}", column=name)
            return DataError(f"{path}: {_clip(text)!r} at {where} is not a number", column=name)
    return DataError(f"{path}: row {row} (line {line}) cannot be read")  # pragma: no cover


# --------------------------------------------------------------------------------- Parquet
def _read_parquet(path: Path, names: list[str]) -> np.ndarray:
    import numpy as np

    pa = _pyarrow(path, "read")
    _column_indices(path, _parquet_columns(path), names)
    table = _parquet().read_table(str(path), columns=names)
    if table.num_rows == 0:
        raise DataError(f"{path} has no data rows")
    out = np.empty((table.num_rows, len(names)))
    for j, name in enumerate(names):
        column = table.column(name)
        if column.null_count:
            row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
            raise DataError(f"{path}: missing value at row {row + 1}, column {name!r}")
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
            out[:, j] = column.to_numpy(zero_copy_only=False).astype(np.float64)
        elif pa.types.is_decimal(kind):
            out[:, j] = [float(v) for v in column.to_pylist()]
        elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
            for row, text in enumerate(column.to_pylist()):
                try:
                    out[row, j] = float(text)
                except ValueError:
                    raise DataError(f"{path}: {_clip(text)!r} at row {row + 1}, column {name!r} "
                                    "is not a number", column=name) from None
        else:
            raise DataError(f"{path}: column {name!r} holds {kind}, not numbers")
    _check_finite(path, out, names, lambda row: f"row {row + 1}")
    return out


def _parquet_columns(path: Path) -> list[str]:
    pa = _pyarrow(path, "read")
    try:
        return list(_parquet().read_schema(str(path)).names)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({str(err).splitlines()[0][:200]})") from None


def _pyarrow(path: Path, verb: str):
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DataError(f"to {verb} Parquet ({path}) install pyarrow: pip install pyarrow") from None
    return pyarrow


def _parquet():
    import pyarrow.parquet

    return pyarrow.parquet


# ---------------------------------------------------------------------------------- shared
def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a data file")
    return path


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in PARQUET_SUFFIXES


def _delimiter(path: Path) -> str:
    return "\t" if path.suffix.lower() in TSV_SUFFIXES else ","


def _reader(f, path: Path):
    return csv.reader(f, delimiter=_delimiter(path), skipinitialspace=True)


def _open_text(path: Path):
    return open(path, newline="", encoding="utf-8-sig")  # utf-8-sig: drop a byte-order mark


def _column_indices(path: Path, header: list[str], names: list[str]) -> list[int]:
    index = []
    for name in names:
        found = [i for i, h in enumerate(header) if h == name]
        if not found:
            hint = difflib.get_close_matches(name, header, n=1)
            hint = f"; did you mean {hint[0]!r}?" if hint else ""
            shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
            raise DataError(f"{path} has no column {name!r} (its columns: {shown}){hint}"
                            f"{_delimiter_hint(path, header)}")
        if len(found) > 1:
            raise DataError(f"{path}: column name {name!r} appears {len(found)} times in the header")
        index.append(found[0])
    return index


def _delimiter_hint(path: Path, header: list[str]) -> str:
    """A hint when the header reads as one column holding another delimiter (e.g. a CSV
    written with ';', as spreadsheets do in locales with a decimal comma)."""
    if len(header) != 1:
        return ""
    expected = _delimiter(path)
    for delimiter, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'"), (",", "commas")):
        if delimiter != expected and delimiter in header[0]:
            kind = "tab-separated" if expected == "\t" else "comma-separated"
            return (f"; the header reads as one column: is the file separated by {name}? kanopy reads {kind} "
                    f"values for {path.suffix or 'this suffix'} (tab-separated for .tsv/.tab, Parquet for .parquet)")
    return ""


def _check_finite(path: Path, values: np.ndarray, names: list[str], where) -> None:
    import numpy as np

    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        kind = "NaN" if math.isnan(values[row, col]) else "inf"
        raise DataError(f"{path} contains {kind} at {where(row)}, column {names[col]!r}")


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
