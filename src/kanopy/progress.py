"""A progress bar for training loops (rich), silent when disabled."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class StepProgress:
    def __init__(self, total: int, enabled: bool = True, description: str = "fit"):
        self.enabled = enabled and (total is None or total > 0)  # None: unknown length
        self.total = total
        self.description = description
        self._progress = None

    def __enter__(self):
        if self.enabled:
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"), TimeElapsedColumn(), transient=True,
            )
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
