"""Multi-stage fitting: KAN stages that each fit what the stages before them left, down to
the rounding error of float64 (the multi-stage networks of Wang & Lai 2023, with KANs).

Stage 1 fits the target; stage s fits the residual of stages 1..s-1, normalised to zero mean
and unit variance, so every stage solves a well-scaled problem and its own solver's errors
become part of the next stage's target instead of a floor. The result is one model,
:class:`MultiStageKAN`: the sum of its stages, each a :class:`~kanopy.KAN` whose output map
(``out_scale``, ``out_shift``) carries the stage's scale, so every KAN tool works per stage
and the formula of the sum is the sum of the stages' formulas.

How a stage is fitted:

* one input: a spline stage ([1, n_out] KAN, no base branch) solved exactly, by banded QR
  least squares (scipy's ``make_lsq_spline``). Its grid comes from the target's frequency
  content: ``points_per_cycle`` intervals per cycle of the periodogram's peak, rounded up to a
  multiple of the previous stage's grid. The residual of a spline fit oscillates on its knot
  spacing, so each stage refines the last by the factor the residual asks for; with nested
  knots a stage never has to fit the kinks of its predecessor's knots (with other grids
  those kinks cost several digits).
* several inputs: stage 1 learns the structure: LBFGS with grid extension over ``grids``
  (grid updates on), then, with ``shrink``, greedy removal of the hidden nodes the function
  does not need (:func:`kanopy.prune.shrink`), then Levenberg-Marquardt while the grid
  doubles, as long as each doubling still improves the validation error ``min_gain``-fold.
  Later stages fit the residual with a network of the same shape by the same schedule.

A stage is kept only when it lowers the validation RMSE; fitting stops at the first stage
that does not, or once the residual is at float64's rounding level.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from . import basis, frequency
from .metrics import rms as _rms
from .metrics import rmse as _rmse
from .model import KAN
from .recipe import split
from .schedule import refine_and_fit
from .validation import as_matrix, as_xy, check_not_constant, check_rows

KIND = "multistage"  # the model kind in a model file's config (see kanopy.io)
STRUCTURE_K = 3  # spline order while a network stage learns its structure (cheaper than 5)
SHRINK_REFIT_STEPS = 10  # LM steps after removing a hidden node: enough to judge the removal
LM_MIN_ROWS, LM_ROWS_PER_PARAMETER = 2000, 16  # rows a Levenberg-Marquardt fit uses
_ROUNDING = 4 * torch.finfo(torch.float64).eps  # a residual below this times |y| is rounding


@dataclass
class StageReport:
    """What one stage did: its network, scale and errors (in the target's units)."""

    stage: int
    width: list
    grid: int
    k: int
    scale: float  # RMS of the residual the stage was fitted to
    params: int
    solver: str
    train_rmse: float  # of the model up to and including this stage
    val_rmse: float | None
    seconds: float
    kept: bool = True


class MultiStageKAN(nn.Module):
    """The sum of KAN stages: ``model(x) = stages[0](x) + stages[1](x) + ...``.

    Each stage is a :class:`~kanopy.KAN` with the stage's scale in its output map, so
    ``model.stages[s]`` can be plotted, pruned or snapped to symbols like any KAN, and the
    formula of the sum is the sum of the stages' formulas. :func:`fit_multistage` builds one;
    ``reports`` then lists what every stage did.

    Parameters
    ----------
    stages : iterable of KAN
        At least one; all with the same inputs, outputs and dtype.

    Raises
    ------
    ValueError
        For no stages, a stage that is not a KAN, or stages that disagree.

    Examples
    --------
    >>> import torch, kanopy
    >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
    >>> model(torch.zeros(3, 1, dtype=torch.float64)).shape
    torch.Size([3, 1])
    """

    def __init__(self, stages):
        super().__init__()
        stages = list(stages)
        if not stages:
            raise ValueError("a MultiStageKAN needs at least one stage")
        first = stages[0]
        for s, stage in enumerate(stages):
            if not isinstance(stage, KAN):
                raise ValueError(f"stage {s} is a {type(stage).__name__}, not a KAN")
            if (stage.n_inputs, stage.n_outputs, stage.dtype) != (first.n_inputs, first.n_outputs, first.dtype):
                raise ValueError(f"stage {s} maps {stage.n_inputs} -> {stage.n_outputs} inputs/outputs in "
                                 f"{stage.dtype}, stage 0 {first.n_inputs} -> {first.n_outputs} in {first.dtype}")
        self.stages = nn.ModuleList(stages)
        self.reports: list[StageReport] = []  # filled by fit_multistage (saved in info)
        self.info: dict = {}  # saved with the model, as KAN.info
        self.fit_state = None  # stages are fitted by fit_multistage, not resumed

    # ----------------------------------------------------------------- properties
    @property
    def n_inputs(self) -> int:
        return self.stages[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.stages[0].n_outputs

    @property
    def dtype(self) -> torch.dtype:
        return self.stages[0].dtype

    @property
    def device(self) -> torch.device:
        return self.stages[0].device

    @property
    def samples(self):
        return self.stages[0].samples

    def num_parameters(self) -> int:
        return sum(stage.num_parameters() for stage in self.stages)

    # -------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the sum of the stages, largest stage first.

        Small corrections are added to the running sum last.

        Parameters
        ----------
        x : torch.Tensor
            Inputs, shape ``(N, n_inputs)``.

        Returns
        -------
        torch.Tensor
            Shape ``(N, n_outputs)``.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
        >>> x = torch.rand(4, 1, dtype=torch.float64)
        >>> torch.equal(model(x), model.stages[0](x) + model.stages[1](x))
        True
        """
        out = self.stages[0](x)
        for stage in self.stages[1:]:
            out = out + stage(x)
        return out

    def predict(self, X) -> np.ndarray:
        """Predict for array-like X, as a float64 NumPy array.

        Parameters
        ----------
        X : array-like
            Inputs, shape ``(N, n_inputs)``.

        Returns
        -------
        numpy.ndarray
            Shape ``(N,)`` for one output, else ``(N, n_outputs)``.

        Raises
        ------
        ValueError
            When X is not a finite ``(N, n_inputs)`` matrix.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
        >>> model.predict([[0.0], [0.5]]).shape
        (2,)
        """
        X = as_matrix(X, "X", dtype=self.dtype, device=self.device, columns=self.n_inputs)
        with torch.no_grad():
            pred = self(X).cpu().numpy().astype(np.float64)
        return pred[:, 0] if self.n_outputs == 1 else pred

    def remember(self, X, max_samples: int = 2000) -> MultiStageKAN:
        """Keep (rows of) X in every stage for plots and symbolic fitting (see :meth:`KAN.remember`).

        Parameters
        ----------
        X : array-like
            Inputs, shape ``(N, n_inputs)``.
        max_samples : int, default 2000
            At most this many rows are kept.

        Returns
        -------
        MultiStageKAN
            The model itself.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
        >>> model.remember(torch.rand(10, 1, dtype=torch.float64)).samples.shape
        torch.Size([10, 1])
        """
        for stage in self.stages:
            stage.remember(X, max_samples)
        return self

    # --------------------------------------------------------------- KAN tools
    def prune(self, X=None, node_threshold: float = 1e-2, edge_threshold: float | None = None) -> MultiStageKAN:
        """Return a copy with every stage pruned on X (see :meth:`KAN.prune`).

        Scores are scale free, so one threshold means the same for every stage.

        Parameters
        ----------
        X : array-like, optional
            Inputs to score on; default the samples of the last fit.
        node_threshold : float, default 1e-2
            Hidden nodes scoring below this are removed.
        edge_threshold : float, optional
            Edges scoring below this are masked off.

        Returns
        -------
        MultiStageKAN
            The pruned copy.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([2, 3, 1], seed=0), kanopy.KAN([2, 3, 1], seed=1)])
        >>> pruned = model.prune(torch.rand(50, 2, dtype=torch.float64))
        >>> len(pruned.stages)
        2
        """
        pruned = MultiStageKAN([stage.prune(X, node_threshold=node_threshold, edge_threshold=edge_threshold)
                                for stage in self.stages])
        pruned.info = dict(self.info)
        return pruned

    def auto_symbolic(self, **options) -> list[dict]:
        """Snap the edges of every stage (:meth:`KAN.auto_symbolic`).

        Parameters
        ----------
        **options
            Those of :meth:`KAN.auto_symbolic`, applied per stage.

        Returns
        -------
        list of dict
            One result per stage.

        Examples
        --------
        >>> import torch, kanopy
        >>> x = torch.linspace(-1, 1, 100, dtype=torch.float64)[:, None]
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], seed=0), kanopy.KAN([1, 1], seed=1)]).remember(x)
        >>> [len(chosen) for chosen in model.auto_symbolic(names=["x", "x^2"])]
        [1, 1]
        """
        return [stage.auto_symbolic(**options) for stage in self.stages]

    def symbolic_formula(self, var_names=None, simplify: bool = True, **options) -> list:
        """Return one sympy expression per output: the sum over stages of their formulas.

        Every stage must be symbolic (each stage's output map carries its scale).

        Parameters
        ----------
        var_names : list of str, optional
            Names of the inputs; default ``x_1, x_2, ...``.
        simplify : bool, default True
            Expand and tidy the sum.
        **options
            Those of :meth:`KAN.symbolic_formula`, applied per stage.

        Returns
        -------
        list of sympy.Expr
            One expression per output.

        Raises
        ------
        ValueError
            When a stage has numeric edges left.

        Examples
        --------
        >>> import kanopy
        >>> stages = [kanopy.KAN([1, 1], seed=0), kanopy.KAN([1, 1], seed=1)]
        >>> for stage in stages:
        ...     stage.fix_symbolic(0, 0, 0, "x", fit=False)
        >>> kanopy.MultiStageKAN(stages).symbolic_formula(var_names=["t"])
        [2*t]
        """
        import sympy

        per_stage = [stage.symbolic_formula(var_names=var_names, simplify=simplify, **options)
                     for stage in self.stages]
        total = [sympy.Add(*terms) for terms in zip(*per_stage)]
        return [sympy.expand(e) if simplify else e for e in total]

    def plot(self, path=None, X=None, dpi: int = 150, **options):
        """Draw every stage (:meth:`KAN.plot`, titled with its scale), side by side.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            Save the figure there.
        X : array-like, optional
            Inputs to draw on; default the samples of the last fit.
        dpi : int, default 150
            Resolution of the panels.
        **options
            Passed to :meth:`KAN.plot` of each stage.

        Returns
        -------
        matplotlib.figure.Figure
            The figure.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
        >>> type(model.plot()).__name__
        'Figure'
        """
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        images = []
        for s, stage in enumerate(self.stages):
            scale = float(stage.out_scale.abs().max())
            panel = stage.plot(X=X, title=f"stage {s + 1}: scale {scale:.2e}", dpi=dpi, **options)
            canvas = panel.canvas
            canvas.draw()
            images.append(np.asarray(canvas.buffer_rgba()))
        height = max(image.shape[0] for image in images) / dpi
        widths = [image.shape[1] / dpi for image in images]
        fig = Figure(figsize=(sum(widths), height))
        FigureCanvasAgg(fig)
        left = 0.0
        for image, width in zip(images, widths):
            ax = fig.add_axes([left / sum(widths), 0, width / sum(widths), image.shape[0] / dpi / height])
            ax.imshow(image)
            ax.axis("off")
            left += width
        if path is not None:
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=dpi)
        return fig

    # ---------------------------------------------------------------------- files
    def config(self) -> dict:
        return {"kind": KIND, "stages": [stage.config() for stage in self.stages],
                "reports": [asdict(report) for report in self.reports]}

    @classmethod
    def from_config(cls, config: dict, device="cpu") -> MultiStageKAN:
        if config.get("kind") != KIND or not isinstance(config.get("stages"), list):
            raise ValueError("not a multi-stage model config")
        model = cls([KAN.from_config(stage, device=device) for stage in config["stages"]])
        model.reports = [StageReport(**report) for report in config.get("reports", [])]
        return model

    def save(self, path) -> None:
        """Write a safetensors model file (atomically); :func:`kanopy.load` reads it back.

        Parameters
        ----------
        path : str or pathlib.Path
            Where to write.

        Examples
        --------
        >>> import os, tempfile
        >>> import torch, kanopy
        >>> model = kanopy.MultiStageKAN([kanopy.KAN([1, 1], grid=5, seed=0), kanopy.KAN([1, 1], grid=10, seed=1)])
        >>> path = os.path.join(tempfile.mkdtemp(), "stages.kan")
        >>> model.save(path)
        >>> type(kanopy.load(path)).__name__
        'MultiStageKAN'
        """
        from .io import save_model

        save_model(self, path)

    def extra_repr(self) -> str:
        return f"stages={len(self.stages)}, params={self.num_parameters()}"


# ---------------------------------------------------------------------------- fitting
def fit_multistage(X, y, stages: int = 4, *, width=None, k: int = 5, seed: int = 0, X_val=None, y_val=None,
                   val_fraction: float = 0.2, grids=(3, 5, 10), steps: int = 20, shrink: bool = True,
                   lm_steps: int = 100, max_grid: int | None = None, min_gain: float = 2.0,
                   points_per_cycle: float = 9.0, structure_rows: int = 2000, grid_eps: float = 1.0,
                   log=None) -> MultiStageKAN:
    """Fit (X, y) with up to `stages` KAN stages, each on the normalised residual of the ones before.

    Stage 1 fits the target; stage `s` fits the residual of stages ``1..s-1``, normalised to
    zero mean and unit variance, so every stage solves a well-scaled problem (the multi-stage
    networks of Wang & Lai 2023, with KANs; see :mod:`kanopy.multistage`). One input: spline
    stages solved exactly by banded least squares, on grids chosen from the residual's
    frequency content. Several inputs: stage 1 learns the structure (LBFGS with grid extension,
    then, with `shrink`, greedy removal of unneeded hidden nodes, then Levenberg-Marquardt while
    doubling the grid helps); later stages fit the residual by the same schedule. A stage is
    kept only when it lowers the validation RMSE. Everything runs in float64.

    Parameters
    ----------
    X : array-like
        Inputs, shape ``(N, n)``.
    y : array-like
        Targets, shape ``(N,)`` or ``(N, n_out)``.
    stages : int, default 4
        The most stages.
    width : list, optional
        Of the networks for several inputs (default ``[n, 2 n + 1, n_out]``; ignored for one
        input, where stages are splines).
    k : int, default 5
        Spline order (5: the error falls as h^6 with the knot spacing h).
    seed : int, default 0
        Seed of the validation split and the networks.
    X_val, y_val : array-like, optional
        Validation data, which decide whether a stage or a grid doubling is kept; default
        `val_fraction` of the rows.
    val_fraction : float, default 0.2
        Rows held out when no validation data are given.
    grids : tuple of int, default (3, 5, 10)
        The LBFGS grid extension of a network stage.
    steps : int, default 20
        LBFGS steps per grid of a network stage.
    shrink : bool, default True
        Remove the hidden nodes stage 1 does not need (:func:`kanopy.prune.shrink`).
    lm_steps : int, default 100
        Most Levenberg-Marquardt steps per grid.
    max_grid : int, optional
        The finest grid (default: the largest whose parameters are at most a quarter of the
        training rows).
    min_gain : float, default 2.0
        A grid doubling must divide the validation RMSE by at least this.
    points_per_cycle : float, default 9.0
        Grid intervals per cycle of a residual's dominant frequency.
    structure_rows : int, default 2000
        Rows the structure search of a network stage uses.
    grid_eps : float, default 1.0
        Of the network stages' grids: 1 uniform, 0 at the data's quantiles (see ``KAN``).
    log : callable, optional
        Receives one line per stage (e.g. ``print``).

    Returns
    -------
    MultiStageKAN
        The kept stages; ``reports`` lists every stage tried (grid, scale, errors, time).

    Raises
    ------
    ValueError
        For bad data (NaN, inf, mismatched shapes), a bad `stages` or a `width` that does not
        match the data.

    Examples
    --------
    >>> import torch, kanopy
    >>> x = torch.linspace(-1, 1, 400, dtype=torch.float64)[:, None]
    >>> model = kanopy.fit_multistage(x, torch.sin(3 * x), stages=2)
    >>> [report.solver for report in model.reports]
    ['banded QR', 'banded QR']
    >>> float(model.reports[-1].val_rmse) < 1e-8
    True
    """
    X, y, X_val, y_val = _data(X, y, X_val, y_val, val_fraction, seed)
    if not isinstance(stages, int) or isinstance(stages, bool) or stages < 1:
        raise ValueError(f"stages must be a positive integer, got {stages!r}")
    n_in, n_out = X.shape[1], y.shape[1]
    if width is None:
        width = [n_in, 1] if n_in == 1 else [n_in, 2 * n_in + 1, n_out]
    width = list(width)
    if n_in > 1 and (width[0] != n_in or width[-1] != n_out):
        raise ValueError(f"width {width} must start with the {n_in} inputs and end with the {n_out} outputs")
    floor = _ROUNDING * float(y.abs().max())
    kept, reports = [], []
    residual, val_residual = y.clone(), y_val.clone()
    best_val = _rms(y_val)
    grid = None
    for s in range(stages):
        shift = residual.mean(dim=0)
        scale = (residual - shift).pow(2).mean(dim=0).sqrt()
        if float(scale.max()) <= floor:
            _say(log, f"stage {s + 1}: residual RMS {float(scale.max()):.2e} is at float64 rounding; done")
            break
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        target = (residual - shift) / scale  # (N, out): zero mean, unit variance
        t0 = time.perf_counter()
        if n_in == 1:
            previous, grid = grid, _spline_grid(X, target, grid, points_per_cycle, k, max_grid,
                                                float(scale.max()) / floor)
            if previous is not None and grid <= previous:
                _say(log, f"stage {s + 1}: no finer grid than {previous} for {X.shape[0]} rows; done")
                break
            stage, solver = _spline_stage(X, target, grid, k, seed + s), "banded QR"
        else:
            stage = _network_stage(X, target, X_val, (val_residual - shift) / scale, width, k, seed + s,
                                   grids, steps, shrink and s == 0, lm_steps, max_grid, min_gain, structure_rows,
                                   floor / float(scale.max()), grid_eps)
            width, solver = [sum(w) for w in stage.width], "LBFGS + LM"
        _fold(stage, scale, shift)
        with torch.no_grad():
            new_residual, new_val = residual - stage(X), val_residual - stage(X_val)
        val = _rms(new_val)
        report = StageReport(stage=s + 1, width=[sum(w) for w in stage.width], grid=stage.grid, k=stage.k,
                             scale=float(scale.max()), params=stage.num_parameters(), solver=solver,
                             train_rmse=_rms(new_residual), val_rmse=val, seconds=time.perf_counter() - t0)
        reports.append(report)
        if kept and not val < best_val:
            report.kept = False
            _say(log, _line(report) + "  (no better on validation: dropped; done)")
            break
        kept.append(stage)
        _say(log, _line(report))
        residual, val_residual, best_val = new_residual, new_val, val
    model = MultiStageKAN(kept)
    model.reports = reports
    model.remember(X)
    return model


def _data(X, y, X_val, y_val, val_fraction, seed):
    """Training and validation tensors (float64): given, or split off the training rows."""
    X = as_matrix(X, "X", dtype=torch.float64, device="cpu")
    y = as_matrix(y, "y", dtype=torch.float64, device="cpu")
    X, y = as_xy(X, y, X.shape[1], y.shape[1], dtype=torch.float64, device="cpu")
    check_rows(X.shape[0], "X")
    check_not_constant(y, "y")
    if (X_val is None) != (y_val is None):
        raise ValueError("give both X_val and y_val, or neither")
    if X_val is None:
        train, val = split(X.shape[0], val_fraction, seed)
        if val.numel() == 0:
            raise ValueError("multi-stage fitting needs validation data: give X_val and y_val or val_fraction > 0")
        X, y, X_val, y_val = X[train], y[train], X[val], y[val]
    else:
        X_val, y_val = as_xy(X_val, y_val, X.shape[1], y.shape[1], dtype=torch.float64, device="cpu",
                             names=("X_val", "y_val"))
    # random row order, so that the first n rows are a fair sample (structure search, LM)
    order = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(int(seed)))
    return X[order], y[order], X_val, y_val


def _spline_grid(X, target, previous, points_per_cycle, k, max_grid, needed) -> int:
    """Grid of a one-input spline stage: points_per_cycle intervals per cycle of the target's
    dominant frequency, a multiple of the previous stage's grid, at most max_grid. A stage
    refines no more than the residual needs to reach rounding (its scale shrinking `needed`
    fold): the error of a spline falls as h^(k+1), so m times finer gains m^(k+1)."""
    n = X.shape[0]
    cap = max_grid or max(k + 1, n // 4 - k)
    x = X[:, 0]
    span = float(x.max() - x.min())
    # resolvable frequencies: a grid over `cap` intervals holds cap / points_per_cycle cycles
    top = max(2.0, cap / points_per_cycle) / span
    cycles = max(frequency.dominant_frequency(x, target[:, o], max_frequency=top) for o in range(target.shape[1]))
    wanted = max(k + 1, math.ceil(points_per_cycle * cycles * span))
    if previous:
        enough = math.ceil((2 * needed) ** (1 / (k + 1)))
        wanted = previous * max(2, min(math.ceil(wanted / previous), enough))
    return int(min(wanted, cap))


def _spline_stage(X, target, grid, k, seed) -> KAN:
    """A [1, n_out] spline KAN (base branch off) fitted exactly: least squares by banded QR.
    Should the samples leave some knot intervals too empty for a unique fit (Schoenberg-
    Whitney), the grid is halved until they do not."""
    from numpy.linalg import LinAlgError
    from scipy.interpolate import make_lsq_spline

    order = torch.argsort(X[:, 0])
    while True:
        stage = KAN([1, target.shape[1]], grid=grid, k=k, seed=seed)
        stage.set_scaling(X, target)  # inputs -> [-1, 1]; the target is already normalised
        with torch.no_grad():
            x = ((X[order, 0] - stage.in_shift) / stage.in_scale).clamp(-1.0, 1.0).numpy()
            t = ((target[order] - stage.out_shift) / stage.out_scale).numpy()
            knots = stage.layers[0].knots[0].numpy()
            try:
                coef = np.asarray(make_lsq_spline(x, t, knots, k=k).c)  # (G + k, out)
            except (ValueError, LinAlgError):
                coef = None
        if coef is not None and np.isfinite(coef).all():
            break
        if grid <= k + 1:
            raise ValueError(f"too few distinct inputs ({len(np.unique(x))}) for a spline stage of order {k}")
        grid = max(k + 1, grid // 2)
    layer = stage.layers[0]
    with torch.no_grad():
        layer.coef.copy_(torch.from_numpy(coef).reshape(1, grid + k, -1))
        layer.scale_sp.fill_(1.0)
        layer.scale_base.zero_()
    layer.scale_base.requires_grad_(False)  # a pure spline: nothing for a later fit to turn on
    return stage


def _network_stage(X, target, X_val, t_val, width, k, seed, grids, steps, shrink, lm_steps, max_grid, min_gain,
                   structure_rows, floor, grid_eps):
    """A KAN of `width` fitted to target. Structure first, cheaply (cubic splines, the first
    `structure_rows` rows): LBFGS over `grids`, keeping the grid with the lowest validation
    RMSE (with few rows a fine grid overfits), optional shrink; then order k and
    Levenberg-Marquardt on finer and finer grids (see _lm_grid_extension)."""
    from .prune import shrink as shrink_nodes

    Xs, ts = X[:structure_rows], target[:structure_rows]
    stage = KAN(width, grid=grids[0], k=STRUCTURE_K, seed=seed, grid_eps=grid_eps)
    stage.set_scaling(X, target)
    stage = refine_and_fit(stage, Xs, ts, grids, steps, "lbfgs", score=lambda model: _rmse(model, X_val, t_val),
                           progress=False).model
    if shrink and len(stage.width) > 2:
        stage = shrink_nodes(stage, Xs, ts, refit_steps=SHRINK_REFIT_STEPS)
    if k != stage.k:
        stage = _with_order(stage, k)
    return _lm_grid_extension(stage, X, target, X_val, t_val, lm_steps, max_grid, min_gain, floor)


def _lm_grid_extension(stage, X, target, X_val, t_val, lm_steps, max_grid, min_gain, floor):
    """Levenberg-Marquardt at the current grid, then at grids 2-4 times finer (nested knots:
    the function is kept exactly) while that divides the validation RMSE min_gain-fold.
    Before each fit the knots move to the range every layer's inputs now take (LM moves
    hidden values, and beyond one interval outside its grid a spline is only linear). The
    refinement factor is what the error needs to reach `floor` (spline error ~ h^(k+1))."""
    cap = max_grid or _largest_grid(stage, X.shape[0] // 4)
    cover_inputs(stage, X)
    fit_lm(stage, X, target, lm_steps)
    best, best_val = stage, _rmse(stage, X_val, t_val)
    while best.grid < cap and best_val > floor:
        factor = min(4, max(2, math.ceil((2 * best_val / floor) ** (1 / (best.k + 1)))))
        trial = copy.deepcopy(best).refine(min(cap, factor * best.grid))
        cover_inputs(trial, X)
        fit_lm(trial, X, target, lm_steps)
        val = _rmse(trial, X_val, t_val)
        if not val < best_val:
            break
        gained = best_val / val
        best, best_val = trial, val
        if gained < min_gain:
            break
    return best


@torch.no_grad()
def cover_inputs(stage: KAN, X: torch.Tensor, rows: int = 4000) -> None:
    """Move the knots of every layer whose inputs on X leave its grid domain to their range
    (KANLayer.update_grid; on `rows` rows plus each input's extreme rows: a refit on all rows
    would cost a dense least-squares solve per input for nothing)."""
    x = (X - stage.in_shift) / stage.in_scale
    for l, layer in enumerate(stage.layers):
        lo, hi = layer.domain()
        margin = 1e-9 * (hi - lo)
        if bool(((x.min(dim=0).values < lo - margin) | (x.max(dim=0).values > hi + margin)).any()):
            extremes = torch.cat([x.argmin(dim=0), x.argmax(dim=0)])
            layer.update_grid(torch.cat([x[:rows], x[extremes]]))
        x = stage._nodes(layer(x), l)
    stage.fit_state = None


def fit_lm(stage: KAN, X: torch.Tensor, target: torch.Tensor, steps: int = 30):
    """Levenberg-Marquardt until a step improves the training RMSE by less than 1%, on the
    first max(LM_MIN_ROWS, LM_ROWS_PER_PARAMETER * parameters) rows (the rows are in random
    order): the per-sample Jacobian is the cost, and more rows than that do not move a fit
    of clean data."""

    def converged(step, history):
        r = history.train_rmse
        return len(r) >= 2 and r[-1] > 0.99 * r[-2]

    n = max(LM_MIN_ROWS, LM_ROWS_PER_PARAMETER * stage.num_parameters())
    return stage.fit(X[:n], target[:n], steps=steps, optimizer="lm", update_grid=False, progress=False,
                     callback=converged)


@torch.no_grad()
def _with_order(model: KAN, k: int) -> KAN:
    """A copy of `model` with splines of order k on the same knots: each edge's spline is
    projected (least squares on Gauss points of every interval) onto the order-k splines."""
    config = dict(model.config(), k=k)
    new = KAN.from_config(config, device=model.device)
    for name in ("in_shift", "in_scale", "out_shift", "out_scale"):
        getattr(new, name).copy_(getattr(model, name))
    for old, layer in zip(model.layers, new.layers):
        interior = old.knots[:, old.k: old.knots.shape[1] - old.k]  # (in, G+1)
        layer.knots = basis.extend_knots(interior, k).contiguous()
        points = basis.quadrature_points(layer.knots, k)  # (Q, in)
        layer.coef.data = basis.fit_coefficients(points, old.spline_values(points), layer.knots, k).contiguous()
        for name in ("scale_base", "scale_sp", "bias"):
            getattr(layer, name).copy_(getattr(old, name))
        layer.mask.copy_(old.mask)
        layer.symbolic = copy.deepcopy(old.symbolic)
    new.info, new.samples = dict(model.info), model.samples
    return new


def _largest_grid(stage, budget: int) -> int:
    """The largest grid at which the stage has at most `budget` parameters."""
    edges = sum(int(layer.mask.count_nonzero()) for layer in stage.layers)
    per_edge_extra = stage.k + 2  # coefficients beyond the grid size, plus the two scales
    return max(stage.grid, budget // max(edges, 1) - per_edge_extra)


@torch.no_grad()
def _fold(stage, scale, shift) -> None:
    """Put the stage's normalisation into its output map: stage(x) is then in target units."""
    stage.out_shift.copy_(stage.out_shift * scale + shift)
    stage.out_scale.mul_(scale)


def _line(report: StageReport) -> str:
    val = "-" if report.val_rmse is None else f"{report.val_rmse:.2e}"
    return (f"stage {report.stage}: width {report.width}, grid {report.grid}, k {report.k}, scale {report.scale:.2e}, "
            f"{report.params} params, {report.solver}: train RMSE {report.train_rmse:.2e}, val {val} "
            f"({report.seconds:.1f} s)")


def _say(log, text: str) -> None:
    if log is not None:
        log(text)
