"""Progress bars for training loops (rich), silent when disabled. Bars are drawn on an
interactive terminal (or notebook) only: redrawn into a file or a pipe they would leave
blank lines or escape codes behind."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


def interactive(console: Console) -> bool:
    """Whether bars on ``console`` can redraw in place (a terminal or a notebook)."""
    return console.is_terminal or console.is_jupyter


def bars(console: Console | None = None, enabled: bool = True) -> Progress:
    """A transient rich Progress (description, bar, count, a ``metrics`` field, clock) on
    ``console`` (default: stdout), disabled unless ``enabled`` and the console is interactive."""
    console = console or Console()
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), console=console, transient=True,
                    disable=not (enabled and interactive(console)))


class StepProgress:
    def __init__(self, total: int, enabled: bool = True, description: str = "fit"):
        self.enabled = enabled and (total is None or total > 0)  # None: unknown length
        self.total = total
        self.description = description
        self._progress = None

    def __enter__(self):
        if self.enabled:
            self._progress = bars()
            self._progress.__enter__()
            self._task = self._progress.add_task(self.description, total=self.total, metrics="")
        return self

    def update(self, train_rmse: float, val_rmse: float | None = None) -> None:
        if self._progress is None:
            return
        metrics = f"train {train_rmse:.2e}" + ("" if val_rmse is None else f"  val {val_rmse:.2e}")
        self._progress.update(self._task, advance=1, metrics=metrics)

    def advance(self, metrics: str, where: str | None = None) -> None:
        """One step more, showing ``metrics`` and, in place of the description, ``where``
        (e.g. "epoch 2/3 batch 17/489")."""
        if self._progress is None:
            return
        self._progress.update(self._task, advance=1, metrics=metrics, description=where or self.description)

    def __exit__(self, *exc):
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None
        return False
