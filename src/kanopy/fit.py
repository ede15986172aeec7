"""The training loop: objective, optimizer, grid-update schedule, history, progress."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from . import kernels, regularization
from .optim import OPTIMIZERS
from .progress import StepProgress
from .validation import as_xy

DEFAULT_LR = {"lbfgs": 1.0, "adam": 1e-2, "lm": 1e-3}  # for LM: the initial damping


@dataclass
class History:
    """Per-step record of a fit. ``val_rmse`` holds None when no validation data was given.

    With early stopping (``patience``), ``best_step`` is the step whose state the model was
    put back to (0, or the step a resumed fit started from, when no step improved on it) and
    ``stopped_early`` says whether the fit ended because its patience ran out."""

    step: list[int] = field(default_factory=list)
    train_rmse: list[float] = field(default_factory=list)
    val_rmse: list[float | None] = field(default_factory=list)
    reg: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_step: int | None = None
    stopped_early: bool = False

    def __getitem__(self, key: str) -> list:
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.step)

    def to_dict(self) -> dict:
        out = {k: list(getattr(self, k)) for k in _PER_STEP}
        out.update(best_step=self.best_step, stopped_early=self.stopped_early)
        return out


_PER_STEP = ("step", "train_rmse", "val_rmse", "reg", "seconds")


class Objective:
    """Loss of a model on a batch, as a function of one flat vector ``theta``.

    While it lives, every trainable parameter of the model is a view into ``theta``, so an
    optimizer that updates theta in place updates the model; ``release`` undoes that."""

    def __init__(self, model, reg_options: dict):
        self.model = model
        self.reg = {k: v for k, v in reg_options.items() if k != "lamb"}
        self.lamb = reg_options.get("lamb", 0.0)
        self.names = [n for n, p in model.named_parameters() if p.requires_grad]
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.theta = torch.cat([p.detach().reshape(-1) for p in self.params])
        offset = 0
        for p in self.params:
            p.data = self.theta[offset : offset + p.numel()].view_as(p)
            offset += p.numel()
        self.X = self.y = None
        # one C++ call per evaluation for a plain KAN and a pure MSE objective
        self.fused = None if self.lamb else kernels.FusedObjective.build(model)

    def release(self) -> None:
        for p in self.params:
            p.data = p.data.clone()

    def set_batch(self, X: torch.Tensor, y: torch.Tensor) -> None:
        self.X, self.y = X, y

    def parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mse, regulariser) on the current batch, differentiable."""
        if self.lamb:
            traces = self.model.trace(self.X)
            pred = traces[-1].outputs * self.model.out_scale + self.model.out_shift
            reg = regularization.sparsity(traces, self.reg["lamb_l1"], self.reg["lamb_entropy"])
            reg = reg + regularization.coefficients(
                self.model.layers, self.reg["lamb_coef"], self.reg["lamb_coefdiff"])
        else:
            pred = self.model(self.X)
            reg = pred.new_zeros(())
        return torch.mean((pred - self.y) ** 2), reg

    def refresh(self) -> None:
        """Call after the model's tensors changed in place or were replaced (grid updates)."""
        if self.fused is not None:
            self.fused.refresh()

    def evaluate(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.fused is not None:
            mse, grads = self.fused(self.X, self.y)
            return mse, torch.cat([grads[name].reshape(-1) for name in self.names])
        with torch.enable_grad():
            mse, reg = self.parts()
            loss = mse + self.lamb * reg
            grads = torch.autograd.grad(loss, self.params, allow_unused=True)
        flat = torch.cat([
            (g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, self.params)
        ])
        return loss.detach(), flat

    @torch.no_grad()
    def residuals(self) -> torch.Tensor:
        return (self.model(self.X) - self.y).reshape(-1)

    def residuals_jacobian(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Residuals (M,) and their Jacobian (M, P), one row per sample and output,
        by per-sample reverse mode (torch.func) over the pure-torch kernels."""
        from torch.func import functional_call, jacrev, vmap

        sizes = [p.numel() for p in self.params]
        shapes = [p.shape for p in self.params]
        model = self.model

        def single(theta, x):
            values = theta.split(sizes)
            params = {n: v.view(s) for n, v, s in zip(self.names, values, shapes)}
            return functional_call(model, params, (x.unsqueeze(0),)).squeeze(0)

        theta = self.theta.detach()
        with model.using_backend("torch"):  # torch.func needs the pure-torch kernels
            J = vmap(jacrev(single), in_dims=(None, 0), chunk_size=4096)(theta, self.X)  # (N, m, P)
        return self.residuals(), J.reshape(-1, theta.numel())


def fit(
    model,
    X,
    y,
    steps: int = 200,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    batch_size: int | None = None,
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
    """Train ``model`` on (X, y) for ``steps`` optimizer steps; returns a :class:`History`.

    optimizer: "lbfgs" (strong-Wolfe line search; a step is up to 20 iterations, as pykan),
    "adam", or "lm" (Levenberg-Marquardt; a step is one accepted damped Gauss-Newton update,
    for small models). ``lr`` is the learning rate (for "lm": the initial damping).
    ``batch_size`` None means full batch. With ``lamb > 0`` the sparsity regulariser of the
    KAN paper is added (not with "lm", which minimises a sum of squares).
    Grids move to the data every ``grid_update_every`` steps before ``stop_grid_update_step``.
    ``resume=True`` continues the previous fit of this model (its optimizer state, step count
    and batch sampling), e.g. after ``kanopy.load``. ``callback(step, history)`` may return
    True to stop early.

    Early stopping: with ``patience=P`` (validation data required) the validation RMSE is
    compared after every step with the best so far (the state the fit started from counts);
    after P steps without a strict improvement the fit stops, and at its end (stopped or
    not) the model's parameters and buffers (knots, masks...) are put back to the best
    validation state. ``fit_state`` then describes that state too, with the optimizer state
    and batch sampling as they were then (step = ``history.best_step``): ``resume=True``
    continues from the best state as if the fit had been asked for ``best_step`` steps (a
    resumed fit starts a new patience window from there).

    Ctrl-C (KeyboardInterrupt) is re-raised after the model, its ``fit_state`` and the history
    are put back to the end of the last completed step, so the model can be saved and resumed
    as if the fit had been asked for that many steps.
    """
    _check_options(steps, optimizer, batch_size, lamb, grid_update_every, stop_grid_update_step)
    factory = dict(dtype=model.dtype, device=model.device)
    X, y = as_xy(X, y, model.n_inputs, model.n_outputs, **factory)
    has_val = X_val is not None or y_val is not None
    if patience is not None:
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
        if not has_val:
            raise ValueError("patience (early stopping) needs validation data: give X_val and y_val")
    if has_val:
        if X_val is None or y_val is None:
            raise ValueError("give both X_val and y_val, or neither")
        X_val, y_val = as_xy(X_val, y_val, model.n_inputs, model.n_outputs, names=("X_val", "y_val"), **factory)

    start_step, opt, generator = _optimizer_state(model, optimizer, lr, seed, resume, optimizer_options)
    objective = Objective(model, dict(lamb=lamb, lamb_l1=lamb_l1, lamb_entropy=lamb_entropy,
                                      lamb_coef=lamb_coef, lamb_coefdiff=lamb_coefdiff))
    history = History()
    n = X.shape[0]
    full_batch = batch_size is None or batch_size >= n
    t0 = time.perf_counter()
    display = StepProgress(steps, enabled=progress)
    checkpoint = None
    best = None  # early stopping: the best validation state so far
    if patience is not None:
        best = _Snapshot(model, objective, opt, generator, start_step, _rmse(model, X_val, y_val))
    try:
        with display:
            for i in range(steps):
                step = start_step + i
                grid_step = update_grid and step < stop_grid_update_step and step % grid_update_every == 0
                checkpoint = _Checkpoint(i, model, objective, opt, generator, grid_step)
                if full_batch:
                    Xb, yb = X, y
                else:
                    idx = torch.randperm(n, generator=generator)[:batch_size].to(model.device)
                    Xb, yb = X[idx], y[idx]
                if grid_step:
                    model.update_grid(Xb)
                    objective.refresh()
                    if opt.name == "lbfgs":
                        opt.reset()  # old curvature pairs describe the old splines
                objective.set_batch(Xb, yb)
                loss = opt.step(objective)
                train_rmse, reg = _train_metrics(objective, loss, lamb)
                val_rmse = _rmse(model, X_val, y_val) if has_val else None
                history.step.append(step + 1)
                history.train_rmse.append(train_rmse)
                history.val_rmse.append(val_rmse)
                history.reg.append(reg)
                history.seconds.append(time.perf_counter() - t0)
                display.update(train_rmse, val_rmse)
                stop = callback is not None and callback(step + 1, history)
                if best is not None:
                    if val_rmse < best.value:
                        best = _Snapshot(model, objective, opt, generator, step + 1, val_rmse)
                    elif step + 1 - best.step >= patience:
                        history.stopped_early = True
                        break
                if stop:
                    break
            checkpoint = None
    except KeyboardInterrupt:
        if checkpoint is not None:  # undo the unfinished step
            checkpoint.restore(model, objective, opt, generator, history)
        raise
    else:
        if best is not None:
            history.best_step = best.step
            if best.step != start_step + len(history):
                best.restore(model, objective, opt, generator)
    finally:
        objective.release()
        model.fit_state = {
            "optimizer": opt.name,
            "options": _options_of(opt),
            "step": start_step + len(history) if history.best_step is None else history.best_step,
            "state": opt.state_dict(),
            "rng": generator.get_state(),
        }
    return history


class _Snapshot:
    """The whole training state after ``step`` steps, with its validation RMSE ``value``:
    parameters, buffers (grids move during a fit), optimizer state and batch generator."""

    def __init__(self, model, objective, opt, generator, step, value):
        self.step, self.value = step, value
        self.theta = objective.theta.clone()
        self.buffers = {name: b.clone() for name, b in model.named_buffers()}
        self.opt_state = _cloned(opt.state_dict())
        self.rng = generator.get_state()

    @torch.no_grad()
    def restore(self, model, objective, opt, generator) -> None:
        for name, value in self.buffers.items():
            model.get_buffer(name).copy_(value)
        objective.theta.copy_(self.theta)
        objective.refresh()
        opt.load_state_dict(_cloned(self.opt_state))
        generator.set_state(self.rng)


class _Checkpoint:
    """What a step may change, copied before it (a Ctrl-C then undoes the step): the
    parameters, the optimizer state, the batch generator and, on grid-update steps, the
    buffers. Small next to a step's work: O(parameters), the LBFGS memory included."""

    def __init__(self, index, model, objective, opt, generator, grid_step):
        self.index = index
        self.theta = objective.theta.clone()
        self.opt_state = _cloned(opt.state_dict())
        self.rng = generator.get_state()
        self.buffers = {name: b.clone() for name, b in model.named_buffers()} if grid_step else {}

    @torch.no_grad()
    def restore(self, model, objective, opt, generator, history) -> None:
        for name, value in self.buffers.items():
            model.get_buffer(name).copy_(value)
        objective.theta.copy_(self.theta)
        opt.load_state_dict(self.opt_state)
        generator.set_state(self.rng)
        for key in _PER_STEP:
            del getattr(history, key)[self.index:]


def _cloned(state):
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {k: _cloned(v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_cloned(v) for v in state)
    return state


def _check_options(steps, optimizer, batch_size, lamb, every, stop):
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a nonnegative integer, got {steps!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)}")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    if lamb < 0:
        raise ValueError(f"lamb must be >= 0, got {lamb!r}")
    if lamb > 0 and optimizer == "lm":
        raise ValueError("optimizer 'lm' minimises a sum of squares; use 'lbfgs' or 'adam' with lamb > 0")
    if not isinstance(every, int) or every < 1:
        raise ValueError(f"grid_update_every must be a positive integer, got {every!r}")
    if not isinstance(stop, int) or stop < 0:
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
    """(first step number, optimizer, batch generator), fresh or continued from model.fit_state."""
    generator = torch.Generator()
    if resume:
        state = model.fit_state
        if not state:
            raise ValueError("resume=True but the model has no saved optimizer state to continue from")
        if state["optimizer"] != optimizer:
            raise ValueError(f"cannot resume: the saved state is for optimizer {state['optimizer']!r}, "
                             f"not {optimizer!r}")
        opt = OPTIMIZERS[optimizer](**state["options"])
        opt.load_state_dict(_on_device(state["state"], model.device))
        generator.set_state(state["rng"])
        return int(state["step"]), opt, generator
    options = dict(optimizer_options or {})
    key = "damping" if optimizer == "lm" else "lr"
    options.setdefault(key, DEFAULT_LR[optimizer] if lr is None else lr)
    generator.manual_seed(int(seed))
    return 0, OPTIMIZERS[optimizer](**options), generator


def _on_device(state, device):
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: _on_device(v, device) for k, v in state.items()}
    return state


@torch.no_grad()
def _train_metrics(objective, loss, lamb):
    """(train RMSE, regulariser) at the point the step ended on."""
    if lamb:
        mse, reg = objective.parts()
        return float(mse.sqrt()), float(reg)
    return max(loss, 0.0) ** 0.5, 0.0


@torch.no_grad()
def _rmse(model, X, y) -> float:
    return float(torch.sqrt(torch.mean((model(X) - y) ** 2)))
