"""The per-step record of a fit."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-step record of a fit.

    ``loss`` is the training loss named ``loss_name`` (its data term, without the
    regulariser ``reg``) on the step's batch, ``metric`` the task's metric named
    ``metric_name`` ("rmse" for regression, "accuracy" for classification) on that batch,
    both where the optimizer measured its loss (Adam: before its update; LBFGS, LM: where the
    step ended); ``val_loss`` and ``val_metric`` on the validation data after the step (None
    without). ``epoch`` and ``batch`` (1-based) say where in the data the step was.
    ``train_rmse`` and ``val_rmse`` are the metric's lists for regression (None entries for
    classification).

    With early stopping (``patience``), ``best_step`` is the step whose state the model was
    put back to (0, or the step a resumed fit started from, when no step improved on it) and
    ``stopped_early`` says whether the fit ended because its patience ran out. A fit stopped
    by a non-finite loss or gradient names the step in ``nonfinite_step``; ``message`` says
    why a fit ended before its steps were done (None otherwise)."""

    loss_name: str = "mse"
    metric_name: str = "rmse"
    step: list[int] = field(default_factory=list)
    epoch: list[int] = field(default_factory=list)
    batch: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    metric: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    val_metric: list[float | None] = field(default_factory=list)
    reg: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False
    nonfinite_step: int | None = None
    message: str | None = None

    PER_STEP = ("step", "epoch", "batch", "loss", "metric", "val_loss", "val_metric", "reg", "seconds")

    @property
    def train_rmse(self) -> list:
        return self.metric if self.metric_name == "rmse" else [None] * len(self.step)

    @property
    def val_rmse(self) -> list:
        return self.val_metric if self.metric_name == "rmse" else [None] * len(self.step)

    def __getitem__(self, key: str) -> list:
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.step)

    def add(self, step, batch, loss, metric, val_loss, val_metric, reg, seconds) -> None:
        values = (step, batch.epoch + 1, batch.index + 1, loss, metric, val_loss, val_metric, reg, seconds)
        for key, value in zip(self.PER_STEP, values):
            getattr(self, key).append(value)

    def summary(self) -> str:
        """The last step's figures: "train 1.2e-03  val 1.5e-03" (RMSE), or the loss and metric."""
        val = self.val_metric[-1]
        if self.metric_name == "rmse":
            return f"train {self.metric[-1]:.2e}" + ("" if val is None else f"  val {val:.2e}")
        text = f"{self.loss_name} {self.loss[-1]:.3e}  {self.metric_name} {self.metric[-1]:.4f}"
        return text + ("" if val is None else f"  val {self.metric_name} {val:.4f}")

    def truncate(self, length: int) -> None:
        for key in self.PER_STEP:
            del getattr(self, key)[length:]

    def to_dict(self) -> dict:
        out = {k: list(getattr(self, k)) for k in self.PER_STEP}
        out.update(train_rmse=list(self.train_rmse), val_rmse=list(self.val_rmse), loss_name=self.loss_name,
                   metric_name=self.metric_name, best_step=self.best_step, stopped_early=self.stopped_early,
                   nonfinite_step=self.nonfinite_step, message=self.message)
        return out
