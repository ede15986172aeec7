"""Physics-informed solving of a PDE on a box with a KAN: :func:`solve` and its :class:`Solution`.

The recipe: the model's input map sends the box to [-1, 1]^d; collocation points (Sobol by
default) in the interior and on the faces that carry conditions; a schedule of phases
(:class:`Phase`), each an optimizer of :mod:`kanopy.optim` on the stacked residuals of
:class:`~kanopy.pde.objective.PDEObjective`, with grid extension (``KAN.refine``) and grid
updates on the collocation points between phases, and residual-adaptive resampling (the
points of a larger Sobol pool where the PDE residual is largest join the interior set).
The default schedule: LBFGS on a coarse grid to find the solution's shape, then
Levenberg-Marquardt (Gauss-Newton on the residuals, the natural-gradient method of PINN
practice) while the grid is extended.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch

from .. import jets
from ..model import KAN
from ..optim import OPTIMIZERS
from . import collocation
from .derivatives import Derivatives
from .objective import PDEObjective, Term

SIDES = {0: 0, 1: 1, "low": 0, "high": 1, "lo": 0, "hi": 1}


@dataclass
class Phase:
    """One phase of the schedule: an optimizer for up to `steps` steps on a grid.

    Parameters
    ----------
    optimizer : {"adam", "lbfgs", "lm"}
        The optimizer of :mod:`kanopy.optim`.
    steps : int
        Most steps (LM: accepted Gauss-Newton updates; LBFGS: calls of up to 20 iterations).
    grid : int, optional
        Extend (or coarsen) every layer to this many intervals first; None keeps the grid.
    options : dict
        Options of the optimizer (``lr`` for Adam and LBFGS, ``damping`` for LM).
    resample : bool, default False
        Add the worst-residual points of a fresh Sobol pool before the phase.

    Examples
    --------
    >>> from kanopy.pde import Phase
    >>> Phase("lm", 20, grid=10)
    Phase(optimizer='lm', steps=20, grid=10, options={}, resample=False)
    """

    optimizer: str
    steps: int
    grid: int | None = None
    options: dict = field(default_factory=dict)
    resample: bool = False


def default_schedule(k: int = 5) -> list[Phase]:
    """The schedule :func:`solve` uses unless told otherwise.

    Parameters
    ----------
    k : int, default 5
        The spline order (lower orders get one more grid doubling).

    Returns
    -------
    list of Phase
        LBFGS on a coarse grid to find the solution's shape, then Levenberg-Marquardt while
        the grid doubles, with residual-adaptive points added at each doubling.

    Examples
    --------
    >>> from kanopy.pde import default_schedule
    >>> [(phase.optimizer, phase.grid) for phase in default_schedule()]
    [('lbfgs', 5), ('lm', 5), ('lm', 10), ('lm', 20)]
    """
    grids = (5, 10, 20) if k >= 5 else (5, 10, 20, 40)
    return [Phase("lbfgs", 20, grid=grids[0])] + [Phase("lm", 40, grid=g, resample=i > 0) for i, g in enumerate(grids)]


@dataclass
class PDEHistory:
    """Per-step record of a PDE solve.

    Parameters
    ----------
    phase, optimizer, grid : list
        Per step: the phase's index, its optimizer and the model's grid.
    loss : list of float
        The weighted sum of mean squared residuals (interior plus conditions).
    residual_rmse : list of float
        RMS of the PDE residual on the interior points.
    boundary_rmse : list of float
        RMS of the condition residuals (Dirichlet, Neumann, initial, periodic), all together.
    error : list of float or None
        Relative L2 error against the exact solution on the check points (None without ``exact``).
    points : list of int
        Interior collocation points.
    seconds : list of float
        Time since the solve began.

    Examples
    --------
    >>> from kanopy.pde import PDEHistory
    >>> h = PDEHistory()
    >>> h.loss, len(h)
    ([], 0)
    """

    phase: list[int] = field(default_factory=list)
    optimizer: list[str] = field(default_factory=list)
    grid: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    residual_rmse: list[float] = field(default_factory=list)
    boundary_rmse: list[float] = field(default_factory=list)
    error: list[float | None] = field(default_factory=list)
    points: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.loss)

    def __getitem__(self, key: str) -> list:
        return getattr(self, key)


class Solution:
    """A solved PDE: call it on points; ``model`` is the KAN; ``history`` what training did.

    Parameters
    ----------
    model : KAN
        The network, inputs in the domain's coordinates.
    history : PDEHistory
        Per step: loss, residual RMSE, boundary RMSE, error against ``exact`` when given.
    domain : list of tuple
        The box, (low, high) per coordinate.
    points : torch.Tensor
        The interior collocation points at the end, (M, d).

    Examples
    --------
    >>> import math, torch
    >>> from kanopy import pde
    >>> def residual(x, u):  # u'' = -pi^2 sin(pi x): u = sin(pi x)
    ...     return u.laplacian + math.pi ** 2 * torch.sin(math.pi * x[:, 0])
    >>> sol = pde.solve(residual, domain=[(-1, 1)], dirichlet=0.0, width=[1, 1], n_interior=200,
    ...                 schedule=[pde.Phase("lm", 20, grid=20)])
    >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    >>> float((sol(x) - torch.sin(math.pi * x[:, 0])).abs().max()) < 1e-4
    True
    """

    def __init__(self, model: KAN, history: PDEHistory, domain, points: torch.Tensor):
        self.model, self.history, self.domain, self.points = model, history, domain, points

    @torch.no_grad()
    def __call__(self, x) -> torch.Tensor:
        """Evaluate u at points x (N, d): (N,).

        Parameters
        ----------
        x : array-like
            Points, shape (N, d).

        Returns
        -------
        torch.Tensor
            Shape (N,).

        Examples
        --------
        >>> import torch
        >>> from kanopy import KAN, pde
        >>> sol = pde.Solution(KAN([2, 1], seed=0), pde.PDEHistory(), [(-1, 1), (-1, 1)], torch.zeros(1, 2))
        >>> sol(torch.zeros(3, 2, dtype=torch.float64)).shape
        torch.Size([3])
        """
        x = self.model.sample_inputs(x)
        return self.model(x)[:, 0]

    def derivatives(self, x) -> Derivatives:
        """u and its input derivatives at points x, as a residual sees them.

        Parameters
        ----------
        x : array-like
            Points, shape (N, d).

        Returns
        -------
        Derivatives
            ``value``, ``grad``, ``laplacian``, ``hessian``, ``d(i, j)``, without a graph.

        Examples
        --------
        >>> import torch
        >>> from kanopy import KAN, pde
        >>> sol = pde.Solution(KAN([2, 1], seed=0), pde.PDEHistory(), [(-1, 1), (-1, 1)], torch.zeros(1, 2))
        >>> sol.derivatives(torch.zeros(3, 2, dtype=torch.float64)).laplacian.shape
        torch.Size([3])
        """
        x = self.model.sample_inputs(x)
        model = self.model

        def compute(level):
            with torch.no_grad():
                return jets.network_jet(model, x, level) if jets.supports(model) else _detached(
                    jets.autograd_jet(model, x, level))

        return Derivatives(compute, x.shape[1])

    def __repr__(self) -> str:
        h = self.history
        last = f", residual RMSE {h.residual_rmse[-1]:.2e}" if len(h) else ""
        return f"Solution(width={self.model.width}, grid={self.model.grid}, k={self.model.k}{last})"


def _detached(jet):
    return jets.Jet(*(None if t is None else t.detach() for t in (jet.value, jet.grad, jet.laplacian, jet.hessian)))


# ---------------------------------------------------------------------------- setup
def _faces(spec, name, d, default_axes):
    """A condition given as a callable/number, or {axis: g} / {(axis, side): g} -> [(axis, side, g)]."""
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [(a, s, spec) for a in default_axes for s in (0, 1)]
    out = []
    for key, g in spec.items():
        if isinstance(key, tuple):
            if len(key) != 2 or key[1] not in SIDES:
                raise ValueError(f"{name}: a face is (axis, side) with side 0/'low' or 1/'high', got {key!r}")
            axis, sides = key[0], [SIDES[key[1]]]
        else:
            axis, sides = key, [0, 1]
        if not isinstance(axis, int) or isinstance(axis, bool) or not 0 <= axis < d:
            raise ValueError(f"{name}: axis {axis!r} does not exist in a {d}-dimensional domain (0..{d - 1})")
        out += [(axis, s, g) for s in sides]
    return out


def _values(g, x, name) -> torch.Tensor:
    """g(x) for points x (M, d), checked: (M,)."""
    if callable(g):
        try:
            value = g(x)
        except Exception as err:  # noqa: BLE001 - the user's function: say which one failed
            raise ValueError(f"{name} could not be evaluated on points of shape {tuple(x.shape)}: {err}") from err
        value = torch.as_tensor(value, dtype=x.dtype)
    else:
        try:
            value = torch.full((x.shape[0],), float(g), dtype=x.dtype)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must be a number or a callable g(x) -> (N,), got {g!r}") from None
    if value.dim() == 0:
        value = value.expand(x.shape[0])
    if value.dim() == 2 and value.shape[1] == 1:
        value = value[:, 0]
    if value.shape != (x.shape[0],):
        raise ValueError(f"{name} returned shape {tuple(value.shape)} for {x.shape[0]} points; "
                         f"expected ({x.shape[0]},)")
    bad = ~torch.isfinite(value)
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"{name} is not finite at the point {x[row].tolist()}")
    return value.contiguous()


def _check_residual(r, x, name="residual"):
    if not isinstance(r, torch.Tensor):
        raise ValueError(f"the {name} must return a tensor of shape (N,), got {type(r).__name__}")
    if r.dim() == 2 and r.shape[1] == 1:
        r = r[:, 0]
    if r.shape != (x.shape[0],):
        raise ValueError(f"the {name} returned shape {tuple(r.shape)} for {x.shape[0]} points; "
                         f"expected ({x.shape[0]},)")
    bad = ~torch.isfinite(r.detach())
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(f"the {name} is {'NaN' if torch.isnan(r[row]) else 'inf'} at the point {x[row].tolist()} "
                         f"(row {row})")
    return r


def _interior_term(residual, points, weight):
    def build(us, xs, data):
        r = residual(xs[0], us[0])
        if not isinstance(r, torch.Tensor) or r.dim() == 2:
            r = _check_residual(r, xs[0])
        return r

    return Term("interior", (points,), build, weight)


def _value_term(name, points, target, weight):
    return Term(name, (points,), lambda us, xs, data: us[0].value - data[0], weight, data=(target,))


def _neumann_term(points, target, normal, weight):
    def build(us, xs, data):
        return (us[0].grad * data[1]).sum(-1) - data[0]

    return Term("neumann", (points,), build, weight, level=jets.GRADIENT, data=(target, normal))


def _periodic_term(low, high, axis, weight):
    def build(us, xs, data):
        a, b = us
        return torch.stack([a.value - b.value, a.d(axis) - b.d(axis)], dim=1)

    return Term(f"periodic {axis}", (low, high), build, weight, level=jets.GRADIENT)


# ---------------------------------------------------------------------------- solve
def solve(residual, domain, dirichlet=None, *, neumann=None, initial=None, periodic=(), time_axis=None,
          width=None, grid: int = 5, k: int = 5, seed: int = 0, n_interior: int = 1000,
          n_boundary: int | None = None, sampling: str = "sobol", boundary_weight: float | None = None,
          schedule=None, symbolic: bool = False, exact=None, n_check: int = 4096, base_fn: str = "silu",
          dtype=torch.float64) -> Solution:
    """Solve a PDE on a box with a physics-informed KAN.

    Minimises ``mean(residual^2)`` on interior collocation points plus ``boundary_weight``
    times the mean squared misfit of every condition on its face, by the schedule's phases.

    Parameters
    ----------
    residual : callable
        ``residual(x, u) -> (N,)``: the PDE's residual, zero at the solution, pointwise. `x` is
        (N, d); `u` offers ``u.value`` (N,), ``u.grad`` (N, d), ``u.laplacian`` (N,), ``u.hessian``
        (N, d, d) and ``u.d(i)``, ``u.d(i, j)``; only what it touches is computed.
    domain : list of (float, float)
        The box, (low, high) per coordinate; time, if any, is one of them.
    dirichlet : callable, float or dict, optional
        u = g on the faces: ``g(x) -> (N,)`` or a constant, on both faces of every axis that is
        neither periodic nor the time axis; or ``{axis: g}``, ``{(axis, "low"): g}``.
    neumann : callable, float or dict, optional
        The outward normal derivative du/dn = h on faces, given as `dirichlet`.
    initial : callable or float, optional
        u = u0 on the low face of the time axis (``time_axis``, default the last coordinate).
    periodic : iterable of int, default ()
        Axes along which u and its derivative along the axis match on the two faces.
    time_axis : int, optional
        The time coordinate (default the last one when `initial` is given).
    width : list, optional
        The KAN's layer sizes, ``[d, ..., 1]``; default ``[d, 10, 1]``.
    grid, k : int, default 5 and 5
        The initial grid and the spline order of the KAN (the schedule extends the grid);
        order 5 reaches a given accuracy on far coarser grids than cubic splines.
    seed : int, default 0
        Seed of the network's initialisation and of the collocation points.
    n_interior : int, default 1000
        Interior collocation points (residual-adaptive resampling adds more).
    n_boundary : int, optional
        Points per face; default ``4 * sqrt(n_interior)`` (at least 64).
    sampling : {"sobol", "uniform"}, default "sobol"
        How collocation points are drawn.
    boundary_weight : float, optional
        Weight of every condition's mean squared misfit against the interior's mean squared
        residual. Default: 100 when the residual uses second derivatives (their residual is
        ~frequency^2 times the solution's own errors: with weight 1 the boundary misfit
        dominated the error of the Poisson benchmark), else 1 (first-order equations such as
        advection, where 10 or 100 made LBFGS settle on a wrong solution).
    schedule : list of Phase, optional
        The training phases; default :func:`default_schedule`.
    symbolic : bool, default False
        After the schedule, snap every edge to a library function (``KAN.auto_symbolic``) and
        train the formulas' constants on the same residuals (LBFGS); the snapped model is
        kept when every edge snapped and its loss is lower than the numeric one. A closed-form
        solution then comes out to rounding error, and ``sol.model.symbolic_formula()`` gives it.
    exact : callable, optional
        ``exact(x) -> (N,)``: the known solution, to record the relative L2 error per step.
    n_check : int, default 4096
        Points (Sobol, another seed) on which that error is measured.
    base_fn : str, default "silu"
        The residual base function of the KAN's edges.
    dtype : torch.dtype, default torch.float64
        The network's floating-point type.

    Returns
    -------
    Solution
        Call it on points; ``.model`` is the :class:`~kanopy.KAN`, ``.history`` a :class:`PDEHistory`.

    Raises
    ------
    ValueError
        For an empty or inverted domain, a residual or condition of the wrong shape or not
        finite, an axis that does not exist, a width that does not fit the domain, or a bad option.

    Examples
    --------
    >>> import math, torch
    >>> from kanopy import pde
    >>> def residual(x, u):  # u'' = -pi^2 sin(pi x) on [-1, 1], u(+-1) = 0
    ...     return u.laplacian + math.pi ** 2 * torch.sin(math.pi * x[:, 0])
    >>> sol = pde.solve(residual, domain=[(-1, 1)], dirichlet=0.0, width=[1, 1], n_interior=200,
    ...                 schedule=[pde.Phase("lm", 20, grid=20)])
    >>> x = torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    >>> float((sol(x) - torch.sin(math.pi * x[:, 0])).abs().max()) < 1e-4
    True
    >>> sol.history.residual_rmse[-1] < 1e-2
    True
    """
    lo, hi = collocation.check_domain(domain, dtype)
    d = lo.numel()
    if not callable(residual):
        raise ValueError(f"residual must be a callable residual(x, u), got {residual!r}")
    width = [d, 10, 1] if width is None else width
    first = width[0] if isinstance(width[0], int) else None
    if first != d or width[-1] != 1:
        raise ValueError(f"width must run from the domain's {d} coordinates to 1 output, got {width!r}")
    for name, value in (("n_interior", n_interior), ("n_check", n_check)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if boundary_weight is not None and not (isinstance(boundary_weight, (int, float)) and boundary_weight > 0
                                            and math.isfinite(boundary_weight)):
        raise ValueError(f"boundary_weight must be a positive number, got {boundary_weight!r}")
    periodic = sorted(set(periodic))
    for axis in periodic:
        if not isinstance(axis, int) or not 0 <= axis < d:
            raise ValueError(f"periodic axis {axis!r} does not exist in a {d}-dimensional domain (0..{d - 1})")
    if time_axis is None and initial is not None:
        time_axis = d - 1
    if time_axis is not None and not (isinstance(time_axis, int) and 0 <= time_axis < d):
        raise ValueError(f"time_axis {time_axis!r} does not exist in a {d}-dimensional domain (0..{d - 1})")
    space_axes = [a for a in range(d) if a not in periodic and a != time_axis]
    schedule = default_schedule(k) if schedule is None else list(schedule)
    for phase in schedule:
        if not isinstance(phase, Phase) or phase.optimizer not in OPTIMIZERS:
            raise ValueError(f"schedule entries must be Phase(optimizer in {sorted(OPTIMIZERS)}, ...), got {phase!r}")
    per_face = max(64, int(4 * math.sqrt(n_interior))) if n_boundary is None else int(n_boundary)
    if per_face < 1:
        raise ValueError(f"n_boundary must be a positive integer, got {n_boundary!r}")

    model = KAN(width, grid=grid, k=k, seed=seed, dtype=dtype, base_fn=base_fn)
    with torch.no_grad():
        model.in_shift.copy_((lo + hi).to(dtype) / 2)
        model.in_scale.copy_((hi - lo).to(dtype) / 2)
    lo, hi = lo.to(dtype), hi.to(dtype)

    # collocation points and terms; every draw has its own seed derived from `seed`
    points = collocation.interior(lo, hi, n_interior, seed, sampling)
    terms = [_interior_term(residual, points, 1.0)]
    draw = iter(range(1, 10**6))
    for axis, side, g in _faces(dirichlet, "dirichlet", d, space_axes):
        x = collocation.face(lo, hi, axis, side, per_face, seed + 1000 * next(draw), sampling)
        terms.append(_value_term(f"dirichlet {axis}{'+' if side else '-'}", x, _values(g, x, "dirichlet"),
                                 boundary_weight))
    for axis, side, h in _faces(neumann, "neumann", d, space_axes):
        x = collocation.face(lo, hi, axis, side, per_face, seed + 1000 * next(draw), sampling)
        normal = torch.zeros_like(x)
        normal[:, axis] = 1.0 if side else -1.0
        terms.append(_neumann_term(x, _values(h, x, "neumann"), normal, boundary_weight))
    if initial is not None:
        x = collocation.face(lo, hi, time_axis, 0, per_face * 2, seed + 1000 * next(draw), sampling)
        terms.append(_value_term("initial", x, _values(initial, x, "initial"), boundary_weight))
    for axis in periodic:
        low = collocation.face(lo, hi, axis, 0, per_face, seed + 1000 * next(draw), sampling)
        high = low.clone()
        high[:, axis] = hi[axis]
        terms.append(_periodic_term(low, high, axis, boundary_weight))
    if len(terms) == 1:
        raise ValueError("no boundary or initial condition: give dirichlet, neumann, initial or periodic")

    probe = PDEObjective(model, terms)
    try:
        with torch.no_grad():  # the first evaluation checks the residual's shape and values
            u = probe.derivatives(points, jets.VALUE)
            _check_residual(residual(points, u), points)
            terms[0].level = u.level
        if boundary_weight is None:  # see the docstring: conditions weigh more against second derivatives
            for term in terms[1:]:
                term.weight = 100.0 if u.level >= jets.LAPLACIAN else 1.0
    finally:
        probe.release()
    check = exact_values = None
    if exact is not None:
        check = collocation.interior(lo, hi, n_check, seed + 7919, sampling)
        exact_values = _values(exact, check, "exact")

    history = PDEHistory()
    t0 = time.perf_counter()
    for index, phase in enumerate(schedule):
        if phase.grid is not None and phase.grid != model.grid:
            model.refine(phase.grid)
        if phase.resample:
            points = _resample(model, terms[0], lo, hi, seed + 31 * (index + 1), sampling)
        if phase.grid is not None or phase.resample:
            model.update_grid(points)  # knots to the range each layer sees on the collocation points
        objective = PDEObjective(model, terms)  # binds the parameters as they are now (refine replaces them)
        try:
            _run_phase(objective, phase, index, history, t0, check, exact_values, terms)
        finally:
            objective.release()
    model.remember(points)
    if symbolic:
        model = _snap(model, terms, len(schedule), history, t0, check, exact_values)
    model.info["pde"] = {"domain": [[float(a), float(b)] for a, b in zip(lo, hi)]}
    return Solution(model, history, [(float(a), float(b)) for a, b in zip(lo, hi)], points)


def _run_phase(objective, phase, index, history, t0, check, exact_values, terms):
    opt = OPTIMIZERS[phase.optimizer](**phase.options)
    stalled = 0
    previous = math.inf
    for _ in range(phase.steps):
        loss = float(opt.step(objective))
        if not math.isfinite(loss):
            raise ValueError(f"the PDE loss became {loss} in phase {index} ({phase.optimizer}); "
                             "check the residual, or use smaller steps")
        parts = objective.last_parts
        interior = parts.get("interior", math.nan)
        others = [v for n, v in parts.items() if n != "interior"]
        history.phase.append(index)
        history.optimizer.append(phase.optimizer)
        history.grid.append(objective.model.grid)
        history.loss.append(loss)
        history.residual_rmse.append(interior)
        history.boundary_rmse.append(math.sqrt(sum(v * v for v in others) / max(1, len(others))))
        history.points.append(terms[0].size)
        if check is not None:
            with torch.no_grad():
                pred = objective.model(check)[:, 0]
            history.error.append(float((pred - exact_values).norm() / exact_values.norm().clamp_min(1e-300)))
        else:
            history.error.append(None)
        history.seconds.append(time.perf_counter() - t0)
        # a phase ends early once its optimizer stops making progress (work-bounded, not timed)
        stalled = stalled + 1 if loss >= previous * (1 - 1e-4) else 0
        previous = min(previous, loss)
        if stalled >= 6 or loss == 0.0:
            break


SNAP_STEPS = 60  # LBFGS steps on the snapped formulas' constants


def _snap(model, terms, index, history, t0, check, exact_values):
    """The model with every edge snapped and its constants trained on the PDE, when that
    lowers the loss; otherwise the numeric model."""
    numeric = copy.deepcopy(model)
    objective = PDEObjective(model, terms)
    try:
        before = objective.sum_of_squares()
    finally:
        objective.release()
    chosen = model.auto_symbolic()
    if not chosen or any(fit is None for fit in chosen.values()):
        return numeric
    objective = PDEObjective(model, terms)
    try:
        _run_phase(objective, Phase("lbfgs", SNAP_STEPS), index, history, t0, check, exact_values, terms)
        after = objective.sum_of_squares()
    finally:
        objective.release()
    if not after < before:
        return numeric
    return model


@torch.no_grad()
def _resample(model, term, lo, hi, seed, sampling, pool_factor: int = 4, share: float = 0.25):
    """Residual-adaptive refinement: from a pool of pool_factor * M fresh points, the
    share * M with the largest |residual| join the interior points."""
    points = term.points[0]
    m = points.shape[0]
    pool = collocation.interior(lo, hi, pool_factor * m, seed, sampling)
    probe = Term("probe", (pool,), term.build, 1.0, level=term.level)
    objective = PDEObjective(model, [probe])
    try:
        with torch.set_grad_enabled(not objective.fast):
            r = objective.term_rows(probe).detach().abs().reshape(pool.shape[0], -1).amax(dim=1)
    finally:
        objective.release()
    chosen = pool[torch.topk(r, max(1, int(share * m))).indices]
    term.points = (torch.cat([points, chosen]),)
    return term.points[0]
