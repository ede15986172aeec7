"""The per-step record of a fit."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class History:
    """Per-step record of a fit, returned by :meth:`KAN.fit`.

    ``loss`` is the training loss named ``loss_name`` (its data term, without the regulariser
    ``reg``) on the step's batch, ``metric`` the task's metric named ``metric_name`` ("rmse" for
    regression, "accuracy" for classification) on that batch, both where the optimizer measured
    its loss (Adam: before its update; LBFGS, LM: where the step ended); ``val_loss`` and
    ``val_metric`` on the validation data after the step (None without). ``epoch`` and ``batch``
    (1-based) say where in the data the step was. ``history["loss"]`` is ``history.loss``.

    Parameters
    ----------
    loss_name : str, default "mse"
        Name of the loss.
    metric_name : str, default "rmse"
        Name of the metric: "rmse" or "accuracy".
    step, epoch, batch : list of int
        Per step: the step number (counting a resumed fit's earlier steps), the epoch and the
        batch (1-based).
    loss, metric : list of float
        Per step: the training loss and metric on the step's batch.
    val_loss, val_metric : list of float or None
        Per step: on the validation data (None without).
    reg : list of float
        Per step: the sparsity regulariser (0 without ``lamb``).
    seconds : list of float
        Per step: time since the fit began.
    best_step : int or None
        With early stopping (``patience``): the step whose state the model was put back to (0,
        or the step a resumed fit started from, when no step improved on it).
    stopped_early : bool
        Whether the fit ended because its patience ran out.
    nonfinite_step : int or None
        The step whose loss or gradient was not finite (the fit stopped there).
    message : str or None
        Why a fit ended before its steps were done (None otherwise).

    Examples
    --------
    >>> import torch, kanopy
    >>> X = torch.rand(100, 1, dtype=torch.float64)
    >>> history = kanopy.KAN([1, 1], seed=0).fit(X, X ** 2, steps=5, progress=False)
    >>> len(history), history.step
    (5, [1, 2, 3, 4, 5])
    >>> history.train_rmse == history.metric
    True
    """

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
        """The training RMSE per step (None entries for classification).

        Examples
        --------
        >>> from kanopy import History
        >>> History(metric_name="accuracy", step=[1], metric=[0.9]).train_rmse
        [None]
        """
        return self.metric if self.metric_name == "rmse" else [None] * len(self.step)

    @property
    def val_rmse(self) -> list:
        """The validation RMSE per step (None entries for classification or without validation data).

        Examples
        --------
        >>> from kanopy import History
        >>> History(step=[1], val_metric=[0.5]).val_rmse
        [0.5]
        """
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
        """Summarise the last step's figures in one line.

        Returns
        -------
        str
            "train 1.2e-03  val 1.5e-03" for regression (RMSE), else the loss and metric.

        Examples
        --------
        >>> from kanopy import History
        >>> History(step=[1], metric=[1.234e-3], val_metric=[None]).summary()
        'train 1.23e-03'
        """
        val = self.val_metric[-1]
        if self.metric_name == "rmse":
            return f"train {self.metric[-1]:.2e}" + ("" if val is None else f"  val {val:.2e}")
        text = f"{self.loss_name} {self.loss[-1]:.3e}  {self.metric_name} {self.metric[-1]:.4f}"
        return text + ("" if val is None else f"  val {self.metric_name} {val:.4f}")

    def truncate(self, length: int) -> None:
        for key in self.PER_STEP:
            del getattr(self, key)[length:]

    def to_dict(self) -> dict:
        """Return the record as plain data (JSON-able).

        Returns
        -------
        dict
            Every per-step list, ``train_rmse``, ``val_rmse`` and the fit's outcome fields.

        Examples
        --------
        >>> from kanopy import History
        >>> sorted(History().to_dict())[:3]
        ['batch', 'best_step', 'epoch']
        """
        out = {k: list(getattr(self, k)) for k in self.PER_STEP}
        out.update(train_rmse=list(self.train_rmse), val_rmse=list(self.val_rmse), loss_name=self.loss_name,
                   metric_name=self.metric_name, best_step=self.best_step, stopped_early=self.stopped_early,
                   nonfinite_step=self.nonfinite_step, message=self.message)
        return out
