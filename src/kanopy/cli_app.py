"""The framework of the ``kanopy`` command (cli.py and cli_symbolic.py hold the subcommands).

Every subcommand is registered with :func:`command`, which gives it the shared conventions:

* ``-h``/``--help``; ``-q``/``--quiet`` (no progress bars, reports or notes: results and
  errors only); ``--debug`` (show the traceback of an error);
* results on stdout; progress bars, notes and errors on stderr;
* exit status 0 on success; 1 with a one-line ``error: ...`` and no traceback when the
  input is bad (or anything else fails); 2 with a one-line ``error: ...`` for usage errors
  (an unknown option, a bad option value: what click finds); 130 after Ctrl-C.

Importing this module does not import PyTorch: ``kanopy --help`` and ``--version`` answer
at once; each subcommand imports what it needs.

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

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from . import data
from . import progress as bars
from . import recipe as recipes

EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


class _Group(click.Group):
    """The ``kanopy`` group: usage errors as one ``error: ...`` line (exit status 2), like
    every other error of the command."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as err:
            where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            click.echo(f"error: {' '.join(err.format_message().split())}{where}", err=True)
            sys.exit(EXIT_USAGE)
        except click.ClickException as err:
            click.echo(f"error: {' '.join(err.format_message().split())}", err=True)
            sys.exit(err.exit_code)
        except click.Abort:
            click.echo("error: aborted", err=True)
            sys.exit(EXIT_ERROR)
        sys.exit(code if isinstance(code, int) else 0)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
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
        self.out = console(highlight=False, soft_wrap=True)
        self.err = console(stderr=True, highlight=False, soft_wrap=True, quiet=quiet)

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
        """Bars on stderr: only on a terminal (in a file or a pipe they would leave blank lines)."""
        return bars.bars(console=self.err, enabled=not self.quiet)


# the width of tables written to a file or a pipe (no terminal to fit; unless $COLUMNS says)
FILE_WIDTH = 160


def console(**options) -> Console:
    """A rich Console; off a terminal its tables keep their natural width (up to FILE_WIDTH)
    instead of rich's 80 columns, which cut the candidate table's numbers short."""
    out = Console(**options)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = FILE_WIDTH
    return out


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
    """Comma-separated positive integers, e.g. ``3,10,20``; with ``auto`` also the word
    "auto", with ``none`` also "none" (an empty tuple)."""

    name = "INTS"

    def __init__(self, auto: bool = False, none: bool = False):
        self.auto, self.none = auto, none

    def convert(self, value, param, ctx):
        if isinstance(value, tuple) or (self.auto and value == recipes.AUTO):
            return value
        word = str(value).strip().lower()
        if self.auto and word == recipes.AUTO:
            return recipes.AUTO
        if self.none and word == "none":
            return ()
        try:
            items = tuple(int(v) for v in str(value).split(",") if v.strip())
        except ValueError:
            items = ()
        if not items or any(v < 1 for v in items):
            words = "".join(f" or '{w}'" for w, on in (("auto", self.auto), ("none", self.none)) if on)
            self.fail(f"{value!r} is not a comma-separated list of positive integers{words}", param, ctx)
        return items


class NumberOrAuto(click.ParamType):
    """A number >= 0, or "auto"."""

    name = "NUMBER"

    def convert(self, value, param, ctx):
        if value == recipes.AUTO or isinstance(value, float):
            return value
        if str(value).strip().lower() == recipes.AUTO:
            return recipes.AUTO
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if not 0 <= number < float("inf"):
            self.fail(f"{value!r} is not a number >= 0 or 'auto'", param, ctx)
        return number


class Patience(click.ParamType):
    """A positive integer, "none" or "auto"."""

    name = "STEPS"

    def convert(self, value, param, ctx):
        word = str(value).strip().lower()
        if word in (recipes.AUTO, "none"):
            return recipes.AUTO if word == recipes.AUTO else None
        try:
            number = int(word)
        except ValueError:
            number = 0
        if number < 1:
            self.fail(f"{value!r} is not a positive integer, 'none' or 'auto'", param, ctx)
        return number


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


def check_rows(n: int, name: str) -> None:
    from .validation import check_rows as check

    check(n, name)


def training_table(data_file, target, features):
    """(feature names, tensor of the feature columns then the target) of DATA, checked."""
    import torch

    from .validation import check_not_constant

    chosen = features is not None
    features = features or [name for name in data.columns(data_file) if name != target]
    if target in features:
        raise ValueError(f"--features includes the target column {target!r}")
    if not features:
        raise ValueError(f"{data_file} has no feature columns besides the target {target!r}")
    try:
        table = data.read(data_file, [*features, target])
    except data.DataError as err:
        if err.column == target and "is not a number" in str(err):
            raise data.DataError(f"{err}: the target column must hold numbers for regression (for class labels: "
                                 "--task classify)") from None
        if chosen or "is not a number" not in str(err):
            raise
        raise data.DataError(f"{err} (the features default to every column but the target; "
                             "choose them with --features)") from None
    check_rows(len(table), str(data_file))
    check_not_constant(table[:, -1], f"the target column {target!r}")
    return features, torch.from_numpy(table)
