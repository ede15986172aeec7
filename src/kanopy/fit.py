"""The training loop: batches, objective, optimizer, grid-update schedule, history, progress.

fit -> batches (which rows a step sees), losses + objectives (what is minimised), optim (how).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings

import torch

from . import losses
from .batches import ArrayStream, Converter, LoaderStream, is_batches
from .history import History
from .objectives import DataObjective, NonFinite, Objective  # noqa: F401  (Objective: the protocol's base)
from .optim import OPTIMIZERS
from .progress import StepProgress

DEFAULT_LR = {"lbfgs": 1.0, "adam": 1e-2, "lm": 1e-3}  # for LM: the initial damping
DEFAULT_STEPS = 200


def fit(
    model,
    X,
    y=None,
    steps: int | None = None,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    batch_size: int | None = None,
    epochs: int | None = None,
    loss="mse",
    sample_weight=None,
    lamb: float = 0.0,
    lamb_l1: float = 1.0,
    lamb_entropy: float = 2.0,
    lamb_coef: float = 0.0,
    lamb_coefdiff: float = 0.0,
    update_grid: bool = True,
    grid_update_every: int = 5,
    stop_grid_update_step: int = 50,
    X_val=None,
    y_val=None,
    patience: int | None = None,
    progress: bool = True,
    seed: int = 0,
    resume: bool = False,
    callback=None,
    optimizer_options: dict | None = None,
) -> History:
    """Train ``model`` on (X, y); returns a :class:`History`.

    Data: arrays (X (N, n_inputs), y as the loss wants it, optional ``sample_weight`` (N,)),
    or, with y None, a ``torch.utils.data.DataLoader`` or any iterable of (X, y) or
    (X, y, sample_weight) batches. Data stay where they are; batches move to the model's
    device and dtype.

    Steps and epochs: one step is one optimizer step on one batch. Without ``batch_size``
    every step takes all the rows; with it the rows are walked through in epochs of
    ceil(N / batch_size) batches, each epoch in a seeded shuffled order (see
    :mod:`kanopy.batches`); a loader's pass is an epoch. Give ``steps`` (default 200) or
    ``epochs``, not both: ``epochs=E`` runs until E epochs have ended (a fit resumed
    mid-epoch first finishes that epoch, which counts as one).

    loss: "mse" (default), "huber", "cross_entropy" (multi-class logits, integer labels),
    "bce" (binary logits), a :class:`kanopy.losses.Loss`, or a callable ``loss(pred, y)``
    returning a scalar or (N,) per-sample values (first-order optimizers only); see
    :mod:`kanopy.losses`.

    optimizer: "lbfgs" (strong-Wolfe line search; a step is up to 20 iterations, as pykan),
    "adam", or "lm" (Levenberg-Marquardt, least-squares losses; a step is one accepted damped
    Gauss-Newton update, for small models). ``lr`` is the learning rate (for "lm": the
    initial damping). With ``lamb > 0`` the sparsity regulariser of the KAN paper is added
    (not with "lm", which minimises a sum of squares).
    Grids move to the step's batch every ``grid_update_every`` steps before
    ``stop_grid_update_step``.

    Early stopping: with ``patience=P`` (validation data required) the validation loss is
    compared after every step with the best so far (the state the fit started from counts);
    after P steps without a strict improvement the fit stops, and at its end (stopped or
    not) the model's parameters and buffers (knots, masks...) are put back to the best
    validation state. ``fit_state`` then describes that state too, with the optimizer state
    and batch position as they were then (step = ``history.best_step``): ``resume=True``
    continues from the best state as if the fit had been asked for ``best_step`` steps (a
    resumed fit starts a new patience window from there).

    Non-finite losses or gradients: the step is undone (the model is as after the last
    finite step), a RuntimeWarning names the step, ``history.nonfinite_step`` records it and
    the fit stops.

    ``resume=True`` continues the previous fit of this model (its optimizer state, step count
    and batch position), e.g. after ``kanopy.load``. ``callback(step, history)`` may return
    True to stop early.

    Ctrl-C (KeyboardInterrupt) is re-raised after the model, its ``fit_state`` and the history
    are put back to the end of the last completed step, so the model can be saved and resumed
    as if the fit had been asked for that many steps.
    """
    loss = losses.get(loss)
    _check_options(steps, epochs, optimizer, batch_size, loss, lamb, grid_update_every, stop_grid_update_step)
    loss.check_model(model.n_outputs)
    start_step, opt, position, seed = _optimizer_state(model, optimizer, lr, seed, resume, optimizer_options)
    convert = Converter(loss, model.n_inputs, model.n_outputs, model.dtype, model.device)
    stream = _stream(X, y, sample_weight, batch_size, convert, seed)
    if getattr(stream, "once", False) and epochs is not None and epochs > 1:
        raise ValueError("an iterator of batches can be read once: pass a DataLoader or a list of batches "
                         "to train several epochs")
    val = _validation(X_val, y_val, convert, patience)
    if resume and position[1] and stream.layout is not None and model.fit_state.get("layout") != stream.layout:
        position = (position[0] + 1, 0)  # other rows or batch size: the saved epoch's order does not apply
    objective = DataObjective(model, loss, dict(lamb=lamb, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy,
                                                lamb_coef=lamb_coef, lamb_coefdiff=lamb_coefdiff))
    history = History(loss_name=loss.name, metric_name=loss.metric_name)
    stop_epoch = None if epochs is None else position[0] + epochs
    batches = stream.batches(*position, stop_epoch)
    if epochs is None:
        steps = DEFAULT_STEPS if steps is None else steps
        batches = itertools.islice(batches, steps)
        total = steps
    else:
        total = None if stream.count is None else epochs * stream.count - position[1]
    now = (start_step, position)  # (steps done, position of the next batch) of the model's state
    checkpoint = best = None  # the state before the current step; the best validation state so far
    if patience is not None:
        best = _State(model, objective, opt, *now, 0, value=objective.score(*val)[0])
    t0 = time.perf_counter()
    display = StepProgress(total, enabled=progress)
    try:
        with display:
            for batch in batches:
                step = now[0]
                checkpoint = _State(model, objective, opt, *now, len(history))
                if update_grid and step < stop_grid_update_step and step % grid_update_every == 0:
                    model.update_grid(batch.X)
                    objective.refresh()
                    if opt.name == "lbfgs":
                        opt.reset()  # old curvature pairs describe the old splines
                objective.set_batch(batch.X, batch.y, batch.weight)
                loss_value, failure = _step(opt, objective)
                if failure is not None:
                    checkpoint.restore(model, objective, opt)
                    history.nonfinite_step = step + 1
                    history.message = (f"step {step + 1}: {failure}; the model was put back to its state after "
                                       f"step {step} and the fit stopped")
                    warnings.warn(history.message, RuntimeWarning, stacklevel=2)
                    break
                measure = objective.measure(loss_value)
                val_loss, val_metric = objective.score(*val) if val else (None, None)
                history.add(step + 1, batch, measure.data, objective.metric(measure), val_loss, val_metric,
                            measure.reg, time.perf_counter() - t0)
                now = (step + 1, batch.next_position())
                display.advance(history.summary(), _where(batch, stop_epoch))
                stop = callback is not None and callback(step + 1, history)
                if best is not None:
                    if val_loss < best.value:
                        best = _State(model, objective, opt, *now, len(history), value=val_loss)
                    elif step + 1 - best.step >= patience:
                        history.stopped_early = True
                        break
                if stop:
                    break
                checkpoint = None  # the step is complete: an interrupt from here on undoes nothing
            else:
                if epochs is None and len(history) < steps:
                    history.message = f"the data ran out after {len(history)} of {steps} steps"
                    warnings.warn(history.message, RuntimeWarning, stacklevel=2)
            checkpoint = None
    except KeyboardInterrupt:
        if checkpoint is not None:  # undo the unfinished step
            checkpoint.restore(model, objective, opt)
            history.truncate(checkpoint.history_length)
            now = (checkpoint.step, checkpoint.position)
        raise
    else:
        if best is not None:
            history.best_step = best.step
            if best.step != now[0]:
                best.restore(model, objective, opt)
                now = (best.step, best.position)
    finally:
        objective.release()
        model.fit_state = {
            "optimizer": opt.name,
            "options": _options_of(opt),
            "step": now[0],
            "state": opt.state_dict(),
            "seed": seed,
            "position": list(now[1]),
            "layout": stream.layout,
        }
    return history


def _step(opt, objective) -> tuple[float | None, str | None]:
    """One optimizer step: (its loss, None), or (None, what was not finite)."""
    try:
        loss = opt.step(objective)
    except NonFinite as err:
        return None, str(err)
    if not math.isfinite(loss):
        return None, f"the training loss is {loss}"
    if not bool(torch.isfinite(objective.theta).all()):
        return None, "the parameters became non-finite (a non-finite gradient)"
    return loss, None


class _State:
    """The training state after ``step`` steps, with the batch position that follows: the
    parameters, the buffers (grids move during a fit) and the optimizer state; O(parameters),
    small next to a step's work. ``value``: its validation loss, for early stopping."""

    def __init__(self, model, objective, opt, step, position, history_length, value=None):
        self.step, self.position, self.history_length, self.value = step, tuple(position), history_length, value
        self.theta = objective.theta.clone()
        self.buffers = {name: b.clone() for name, b in model.named_buffers()}
        self.opt_state = _cloned(opt.state_dict())

    @torch.no_grad()
    def restore(self, model, objective, opt) -> None:
        for name, value in self.buffers.items():
            model.get_buffer(name).copy_(value)
        objective.theta.copy_(self.theta)
        objective.refresh()
        opt.load_state_dict(_cloned(self.opt_state))


def _stream(X, y, sample_weight, batch_size, convert, seed):
    if y is None:
        if not is_batches(X):
            raise ValueError("y is missing: give targets y, or batches of (X, y) (e.g. a DataLoader) as X")
        if sample_weight is not None:
            raise ValueError("with batches of data, give each batch's weights in it: (X, y, sample_weight)")
        if batch_size is not None:
            raise ValueError("batch_size is for arrays; a DataLoader or iterable of batches brings its own batches")
        return LoaderStream(X, convert)
    return ArrayStream(X, y, sample_weight, batch_size, seed, convert)


def _validation(X_val, y_val, convert, patience):
    """(X_val, y_val) converted, or None."""
    if patience is not None and not (isinstance(patience, int) and not isinstance(patience, bool) and patience >= 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    if X_val is None and y_val is None:
        if patience is not None:
            raise ValueError("patience (early stopping) needs validation data: give X_val and y_val")
        return None
    if X_val is None or y_val is None:
        raise ValueError("give both X_val and y_val, or neither")
    X_val = convert.inputs(X_val, "X_val")
    y_val = convert.targets(y_val, "y_val")
    if X_val.shape[0] != y_val.shape[0]:
        raise ValueError(f"X_val and y_val have different numbers of rows ({X_val.shape[0]} vs {y_val.shape[0]})")
    return X_val, y_val


def _where(batch, stop_epoch) -> str:
    epochs = "" if stop_epoch is None else f"/{stop_epoch}"
    count = "" if batch.count is None else f"/{batch.count}"
    return "fit" if batch.count == 1 else f"epoch {batch.epoch + 1}{epochs} batch {batch.index + 1}{count}"


def _cloned(state):
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {k: _cloned(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cloned(v) for v in state)
    return state


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_options(steps, epochs, optimizer, batch_size, loss, lamb, every, stop):
    if steps is not None and not _is_count(steps):
        raise ValueError(f"steps must be a nonnegative integer, got {steps!r}")
    if epochs is not None and not _is_count(epochs):
        raise ValueError(f"epochs must be a nonnegative integer, got {epochs!r}")
    if steps is not None and epochs is not None:
        raise ValueError("give steps or epochs, not both (a step is one batch; an epoch, one pass over the data)")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    if batch_size is not None and (not _is_count(batch_size) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if lamb < 0:
        raise ValueError(f"lamb must be >= 0, got {lamb!r}")
    if optimizer == "lm" and lamb > 0:
        raise ValueError("optimizer 'lm' minimises a sum of squares; use 'lbfgs' or 'adam' with lamb > 0")
    if optimizer == "lm" and not loss.least_squares:
        raise ValueError(f"optimizer 'lm' minimises a sum of squares, and loss {loss.name!r} is not one; "
                         "use 'lbfgs' or 'adam' (or loss='mse')")
    if not _is_count(every) or every < 1:
        raise ValueError(f"grid_update_every must be a positive integer, got {every!r}")
    if not _is_count(stop):
        raise ValueError(f"stop_grid_update_step must be a nonnegative integer, got {stop!r}")


def _options_of(opt) -> dict:
    names = {"lbfgs": ("lr", "max_iter", "max_eval", "history_size", "tolerance_grad", "tolerance_change"),
             "adam": ("lr", "eps"), "lm": ("initial_damping", "max_tries")}[opt.name]
    options = {name: getattr(opt, name) for name in names}
    if opt.name == "adam":
        options["betas"] = list(opt.betas)
    if opt.name == "lm":
        options["damping"] = options.pop("initial_damping")
    return options


def _optimizer_state(model, optimizer, lr, seed, resume, optimizer_options):
    """(first step number, optimizer, batch position, seed of the batch order), fresh or
    continued from model.fit_state."""
    if resume:
        state = model.fit_state
        if not state:
            raise ValueError("resume=True but the model has no saved optimizer state to continue from")
        if state["optimizer"] != optimizer:
            raise ValueError(f"cannot resume: the saved state is for optimizer {state['optimizer']!r}, "
                             f"not {optimizer!r}")
        opt = OPTIMIZERS[optimizer](**state["options"])
        opt.load_state_dict(_on_device(state["state"], model.device))
        position = tuple(int(v) for v in state.get("position", (0, 0)))
        return int(state["step"]), opt, position, int(state.get("seed", seed))
    options = dict(optimizer_options or {})
    key = "damping" if optimizer == "lm" else "lr"
    options.setdefault(key, DEFAULT_LR[optimizer] if lr is None else lr)
    return 0, OPTIMIZERS[optimizer](**options), (0, 0), int(seed)


def _on_device(state, device):
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: _on_device(v, device) for k, v in state.items()}
    return state
