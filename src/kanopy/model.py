"""KAN: a stack of KANLayers, with optional multiplication nodes and input/output scaling."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import sympy
import torch
from torch import nn

from . import basis, kernels
from .layer import KANLayer
from .nodes import NodeLayout

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def normalize_width(width) -> list[list[int]]:
    """width entries are ints (sum nodes) or [n_sum, n_mult]; returns [[n_sum, n_mult], ...]."""
    if not isinstance(width, (list, tuple)) or len(width) < 2:
        raise ValueError(f"width must list at least 2 layer sizes (inputs and outputs), got {width!r}")
    out = []
    for pos, entry in enumerate(width):
        pair = [entry, 0] if isinstance(entry, int) and not isinstance(entry, bool) else entry
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in pair)
            or sum(pair) < 1
        ):
            raise ValueError(
                f"width[{pos}] must be a positive int or [n_sum, n_mult] of nonnegative ints, got {entry!r}"
            )
        out.append([int(pair[0]), int(pair[1])])
    if out[0][1] or out[-1][1]:
        raise ValueError("the input and output layers cannot have multiplication nodes")
    return out


@dataclass
class LayerTrace:
    """What one layer saw and produced for a batch (only built on request)."""

    inputs: torch.Tensor  # (N, in)
    edges: torch.Tensor  # (N, in, out_subnodes): phi_ij(x_i)
    outputs: torch.Tensor  # (N, out_nodes), after multiplication nodes


class KAN(nn.Module):
    """Kolmogorov-Arnold Network.

    >>> model = KAN([2, 5, 1], grid=5, seed=0)
    >>> y = model(torch.rand(10, 2, dtype=torch.float64))
    """

    def __init__(
        self,
        width,
        grid: int = 3,
        k: int = 3,
        seed: int = 0,
        dtype: torch.dtype | str = torch.float64,
        device="cpu",
        base_fn: str = "silu",
        grid_range=(-1.0, 1.0),
        grid_eps: float = 1.0,
        noise_scale: float = 0.3,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        mult_arity: int = 2,
        input_bound: float | None = None,
        **layer_options,
    ):
        super().__init__()
        dtype = DTYPES.get(dtype, dtype) if isinstance(dtype, str) else dtype
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if not isinstance(mult_arity, int) or mult_arity < 2:
            raise ValueError(f"mult_arity must be an integer >= 2, got {mult_arity!r}")
        basis.check_grid_size(grid)
        basis.check_order(k)
        self.width = normalize_width(width)
        self.mult_arity = mult_arity
        self.seed = seed
        # input_bound b: scaled inputs are clamped to [-b, b], so the network is constant beyond
        # (kanopy.recipe scales the training inputs to [-1, 1] and uses b = 1.1: predictions
        # extrapolate naturally 5% of the range beyond the data, then stay put). Training assumes
        # its scaled inputs lie inside [-b, b], as those do: the fused training objective
        # evaluates the network without the clamp.
        if input_bound is not None and not (isinstance(input_bound, (int, float)) and input_bound > 0):
            raise ValueError(f"input_bound must be a positive number or None, got {input_bound!r}")
        self.input_bound = None if input_bound is None else float(input_bound)
        self.options = dict(
            base_fn=base_fn, grid_range=[float(v) for v in grid_range], grid_eps=grid_eps,
            noise_scale=noise_scale, scale_base_mu=scale_base_mu, scale_base_sigma=scale_base_sigma,
            **layer_options,
        )
        generator = torch.Generator().manual_seed(int(seed))
        layers = []
        for l in range(len(self.width) - 1):
            n_in = sum(self.width[l])  # nodes
            n_out = NodeLayout(*self.width[l + 1], mult_arity).n_subnodes
            layers.append(KANLayer(n_in, n_out, grid=grid, k=k, generator=generator, dtype=dtype, device=device,
                                   **self.options))
        self.layers = nn.ModuleList(layers)
        n_in, n_out = self.width[0][0], self.width[-1][0]
        factory = dict(dtype=dtype, device=device)
        # affine maps applied to raw inputs and outputs (identity unless data scaling is set)
        self.register_buffer("in_shift", torch.zeros(n_in, **factory))
        self.register_buffer("in_scale", torch.ones(n_in, **factory))
        self.register_buffer("out_shift", torch.zeros(n_out, **factory))
        self.register_buffer("out_scale", torch.ones(n_out, **factory))
        self.fit_state: dict | None = None  # optimizer state for resuming, set by fit()
        # inputs to fit symbolic edges on and to draw: a subset of the last fitted data (not saved)
        self.samples: torch.Tensor | None = None
        self.info: dict = {}  # what the model was fitted on (feature names, target, recipe): saved

    # ----------------------------------------------------------------- properties
    @property
    def dtype(self) -> torch.dtype:
        return self.in_shift.dtype

    @property
    def device(self) -> torch.device:
        return self.in_shift.device

    @property
    def n_inputs(self) -> int:
        return self.width[0][0]

    @property
    def n_outputs(self) -> int:
        return self.width[-1][0]

    @property
    def grid(self) -> int:
        """Number of grid intervals (the finest, if layers differ)."""
        return max(layer.grid for layer in self.layers)

    @property
    def k(self) -> int:
        return self.layers[0].k

    def num_parameters(self) -> int:
        """Trainable numbers that act on the output: active edges only."""
        total = 0
        for layer in self.layers:
            active = int(layer.mask.count_nonzero())
            per_edge = layer.coef.shape[1] * layer.coef.requires_grad
            per_edge += layer.scale_base.requires_grad + layer.scale_sp.requires_grad
            total += active * per_edge + layer.out_dim * layer.bias.requires_grad
        return total

    @property
    def backend(self) -> str:
        return self.layers[0].backend

    @backend.setter
    def backend(self, name: str) -> None:
        """Kernels for every layer: "auto" (fused C++ on CPU when available), "fused", "torch"
        (pure PyTorch: any device, higher-order derivatives, torch.func)."""
        if name not in kernels.BACKENDS:
            raise ValueError(f"backend must be one of {kernels.BACKENDS}, got {name!r}")
        for layer in self.layers:
            layer.backend = name

    @contextmanager
    def using_backend(self, name: str):
        """Temporarily switch kernels, e.g. ``with model.using_backend("torch"): ...``."""
        previous = self.backend
        self.backend = name
        try:
            yield self
        finally:
            self.backend = previous

    # -------------------------------------------------------------------- forward
    def scaled_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs (N, n_inputs) -> what the first layer sees: scaled, and clamped to
        [-input_bound, input_bound] when that is set."""
        x = (x - self.in_shift) / self.in_scale
        return x if self.input_bound is None else x.clamp(-self.input_bound, self.input_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, n_inputs) -> (N, n_outputs)."""
        x = self.scaled_inputs(x)
        for l, layer in enumerate(self.layers):
            x = self._nodes(layer(x), l)
        return x * self.out_scale + self.out_shift

    def layout(self, l: int) -> NodeLayout:
        """How layer l's output subnodes feed the nodes of level l + 1."""
        return NodeLayout(*self.width[l + 1], self.mult_arity)

    def _nodes(self, subnodes: torch.Tensor, l: int) -> torch.Tensor:
        """Layer l's subnode values (N, n_subnodes) -> node values (N, n_nodes) of level l + 1."""
        return self.layout(l).combine(subnodes)

    def trace(self, x: torch.Tensor) -> list[LayerTrace]:
        """Per-layer inputs, edge activations (N, in, out) and outputs, for plots,
        regularisation and pruning. The last layer's outputs are before output scaling."""
        x = self.scaled_inputs(x)
        traces = []
        for l, layer in enumerate(self.layers):
            edges = layer.edge_values(x)
            out = self._nodes(edges.sum(dim=1) + layer.bias, l)
            traces.append(LayerTrace(inputs=x, edges=edges, outputs=out))
            x = out
        return traces

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input each layer sees for x: a list of (N, in_l)."""
        x = self.scaled_inputs(x)
        inputs = []
        for l, layer in enumerate(self.layers):
            inputs.append(x)
            x = self._nodes(layer(x), l)
        return inputs

    # ---------------------------------------------------------------- grid moves
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> "KAN":
        """Move every layer's knots to the distribution of its inputs for samples x."""
        x = self.scaled_inputs(x)
        for l, layer in enumerate(self.layers):
            layer.update_grid(x, grid_eps)
            x = self._nodes(layer(x), l)
        self.fit_state = None
        return self

    def refine(self, grid: int) -> "KAN":
        """Grid extension: every layer to ``grid`` intervals, functions kept. Returns the model."""
        for layer in self.layers:
            layer.refine(grid)
        self.fit_state = None
        return self

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, **options):
        """Train on (X, y), or on batches (a DataLoader) as X; see :func:`kanopy.fit.fit` for the
        options. Returns a History."""
        from .batches import is_batches
        from .fit import fit

        history = fit(self, X, y, **options)
        if y is not None:
            self.remember(X)
        elif is_batches(X) and iter(X) is not X:  # samples from the first batch of a re-iterable
            self.remember(next(iter(X))[0])
        return history

    @torch.no_grad()
    def set_scaling(self, X: torch.Tensor, y: torch.Tensor) -> "KAN":
        """Standardise the data the network sees: each input column's [min, max] -> [-1, 1],
        each target to mean 0 and standard deviation 1 (population, ``correction=0``); a
        constant column keeps scale 1. Stored in in_shift/in_scale/out_shift/out_scale and
        folded into formulas, so predictions stay in the data's units."""
        X, y = X.to(self.dtype).reshape(-1, self.n_inputs), y.to(self.dtype).reshape(-1, self.n_outputs)
        lo, hi = X.min(dim=0).values, X.max(dim=0).values
        half = (hi - lo) / 2
        self.in_shift.copy_((hi + lo) / 2)
        self.in_scale.copy_(torch.where(half > 0, half, torch.ones_like(half)))
        std = y.std(dim=0, correction=0)
        self.out_shift.copy_(y.mean(dim=0))
        self.out_scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))
        return self

    def sample_inputs(self, X=None) -> torch.Tensor:
        """X checked and converted to the model's dtype and device, or, when X is None, the
        samples kept by the last fit (``remember``); ValueError when there are none."""
        if X is None:
            if self.samples is None:
                raise ValueError("no samples: pass X, or fit the model first")
            return self.samples
        from .validation import as_matrix

        return as_matrix(X, "X", dtype=self.dtype, device=self.device, columns=self.n_inputs)

    def remember(self, X, max_samples: int = 2000) -> "KAN":
        """Keep (evenly spaced rows of) X as the samples that symbolic fitting and plots use."""
        from .validation import as_matrix

        if getattr(X, "ndim", 0) == 2 and X.shape[0] > max_samples:  # rows first: X may be large
            X = X[:: -(-X.shape[0] // max_samples)]
        X = as_matrix(X, "X", dtype=self.dtype, device=self.device, columns=self.n_inputs)
        step = max(1, -(-X.shape[0] // max_samples))
        self.samples = X[::step].detach().clone()
        return self

    # ------------------------------------------------------------------ pruning
    def attribution(self, X=None):
        """KAN 2.0 importance scores of every node and edge on inputs X (default: the samples
        of the last fit): see :mod:`kanopy.prune`."""
        from . import prune

        return prune.attribution(self, self.sample_inputs(X))

    def prune(self, X=None, node_threshold: float = 1e-2, edge_threshold: float | None = None) -> "KAN":
        """A smaller copy without the hidden nodes (and, with edge_threshold, the edges)
        scoring below the thresholds on X (default: the samples of the last fit)."""
        from . import prune

        return prune.prune(self, self.sample_inputs(X), node_threshold=node_threshold, edge_threshold=edge_threshold)

    # ------------------------------------------------------------------ symbolic
    def suggest_symbolic(self, l: int, i: int, j: int, top: int = 5, **options):
        """Candidates c * f(a x + b) + d for edge (l, i, j), best first (see symbolic.snap)."""
        from .symbolic import snap

        return snap.suggest(self, l, i, j, top=top, **options)

    def fix_symbolic(self, l: int, i: int, j: int, name: str, **options):
        """Snap edge (l, i, j) to the library function `name` (affine parameters fitted)."""
        from .symbolic import snap

        return snap.fix(self, l, i, j, name, **options)

    def unfix_symbolic(self, l: int, i: int, j: int) -> None:
        from .symbolic import snap

        snap.unfix(self, l, i, j)

    def auto_symbolic(self, r2_threshold: float = 0.99, weight_simple: float = 1.0, **options) -> dict:
        """Snap every numeric edge whose best candidate reaches R^2 >= r2_threshold."""
        from .symbolic import snap

        return snap.auto(self, r2_threshold=r2_threshold, weight_simple=weight_simple, **options)

    def symbolic_formula(self, var_names=None, simplify: bool = True, round_digits: int | None = None,
                         X=None, y=None, tolerance: float = 1e-6) -> list:
        """One sympy expression per output, in the given variable names and original units.

        Constants are rounded to simple values (0, integers, fractions, multiples of pi...)
        where that changes the outputs by at most `tolerance` times their spread (measured
        against y when given, else against the model itself on X or its samples; without any
        samples only constants within 1e-9 of a simple value are rounded); with
        `round_digits`, constants are instead rounded to that many significant digits."""
        from .symbolic import constants, formula

        exprs = formula.model_expressions(self, var_names)
        if round_digits is not None:
            exprs = [e.xreplace({f: sympy.Float(float(f), round_digits) for f in e.atoms(sympy.Float)})
                     for e in exprs]
        else:
            X = self.samples if X is None else torch.as_tensor(X, dtype=self.dtype, device=self.device)
            if X is None:  # no data to check against: only constants a rounding error away
                exprs = [constants.snap_floats(e) for e in exprs]
            else:
                with torch.no_grad():
                    reference = self(X) if y is None else torch.as_tensor(y, dtype=self.dtype).reshape(X.shape[0], -1)
                variables = formula.symbols_for(var_names or [f"x_{i + 1}" for i in range(self.n_inputs)],
                                                (self.samples > 0).all(dim=0).tolist()
                                                if self.samples is not None else None)
                exprs = [constants.round_constants(e, variables, X, reference[:, o], floor=tolerance)[0]
                         for o, e in enumerate(exprs)]
        if simplify:  # simplifying can merge constants into new Floats (0.998 * 1.001**2 -> 1.0)
            exprs = [formula.tidy(e) for e in exprs]
            if round_digits is None:
                exprs = [formula.tidy(constants.snap_floats(e)) for e in exprs]
        return exprs

    def plot(self, path=None, X=None, **options):
        """Draw the network with every edge's curve (see :func:`kanopy.plot.plot_model`);
        saves to `path` when given. Returns the matplotlib Figure."""
        from .plot import plot_model

        return plot_model(self, path, X=X, **options)

    # --------------------------------------------------------------------- files
    def config(self) -> dict:
        """Plain-data description of the architecture (JSON-able)."""
        return {
            "width": self.width,
            "k": self.k,
            "grids": [layer.grid for layer in self.layers],
            "dtype": str(self.dtype).removeprefix("torch."),
            "seed": self.seed,
            "mult_arity": self.mult_arity,
            "input_bound": self.input_bound,
            "options": self.options,
            "symbolic": [layer.symbolic.names for layer in self.layers],
        }

    @classmethod
    def from_config(cls, config: dict, device="cpu") -> "KAN":
        grids = config["grids"]
        model = cls(
            config["width"], grid=grids[0], k=config["k"], seed=config.get("seed", 0), dtype=config["dtype"],
            device=device, mult_arity=config.get("mult_arity", 2), input_bound=config.get("input_bound"),
            **config.get("options", {}),
        )
        if len(grids) != len(model.layers):
            raise ValueError(f"config lists {len(grids)} grids for {len(model.layers)} layers")
        for layer, grid in zip(model.layers, grids):
            if layer.grid != grid:
                layer.refine(grid)  # shapes only: the values come from the state dict
        for layer, names in zip(model.layers, config.get("symbolic") or []):
            layer.symbolic.set_names(names)
        return model

    def save(self, path, include_fit_state: bool = True) -> None:
        """Write a safetensors model file (atomically); see :mod:`kanopy.io`."""
        from .io import save_model

        save_model(self, path, include_fit_state=include_fit_state)

    def extra_repr(self) -> str:
        return f"width={self.width}, grid={self.grid}, k={self.k}, dtype={self.dtype}"
