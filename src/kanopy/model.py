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
    """Kolmogorov-Arnold Network: a learnable univariate function on every edge, sums at the nodes.

    Every edge ``i -> j`` of layer ``l`` computes ``scale_base * b(x_i) + scale_sp * spline(x_i)``
    (a B-spline of order `k` on `grid` intervals plus a residual base function `b`); a node sums
    its incoming edges, a multiplication node multiplies `mult_arity` subnodes. The model is a
    PyTorch ``nn.Module`` mapping raw inputs ``(N, n_inputs)`` to ``(N, n_outputs)``; optional
    data scaling (:meth:`set_scaling`) lives in buffers and is folded into formulas.

    Parameters
    ----------
    width : list
        Layer sizes from inputs to outputs, at least two entries. An entry is an int (that many
        sum nodes) or ``[n_sum, n_mult]`` (MultKAN multiplication nodes, hidden layers only).
    grid : int, default 3
        Grid intervals of every spline; :meth:`refine` extends it later.
    k : int, default 3
        Spline order (3: cubic).
    seed : int, default 0
        Seed of the initial coefficients and base scales (a private ``torch.Generator``; global
        state is untouched).
    dtype : torch.dtype or {"float64", "float32"}, default torch.float64
        Floating-point type of every parameter and buffer.
    device : str or torch.device, default "cpu"
        Where the parameters live.
    base_fn : str, default "silu"
        The residual base function `b` of every edge.
    grid_range : tuple of float, default (-1.0, 1.0)
        Initial domain of the splines (in scaled inputs).
    grid_eps : float, default 1.0
        Blend of uniform (1) and quantile (0) knots used by grid updates.
    noise_scale : float, default 0.3
        Amplitude of the random initial splines (divided by `grid`).
    scale_base_mu, scale_base_sigma : float, default 0.0 and 1.0
        The initial base scales are ``(mu + sigma * U(-1, 1)) / sqrt(n_in)``.
    mult_arity : int, default 2
        Factors per multiplication node.
    input_bound : float or None, default None
        When set, scaled inputs are clamped to ``[-input_bound, input_bound]``, so the network is
        constant beyond (the default recipe uses 1.1).
    **layer_options
        Passed to every :class:`KANLayer`, e.g. ``sp_trainable=False``, ``sb_trainable=False``,
        ``bias_trainable=True``, ``scale_sp``.

    Raises
    ------
    ValueError
        For a bad `width`, `dtype`, `grid`, `k`, `mult_arity` or `input_bound`.

    See Also
    --------
    kanopy.KANRegressor : a KAN chosen and fitted by the default recipe (scikit-learn API).
    kanopy.discover : from data to a formula in one call.

    Examples
    --------
    >>> import torch, kanopy
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
    >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
    >>> model = kanopy.KAN([2, 3, 1], grid=5, seed=0)
    >>> model(X).shape
    torch.Size([200, 1])
    >>> history = model.fit(X, y, steps=20, progress=False)
    >>> history.train_rmse[-1] < history.train_rmse[0]
    True
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
        """The floating-point type of the parameters and buffers.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 1], dtype="float32").dtype
        torch.float32
        """
        return self.in_shift.dtype

    @property
    def device(self) -> torch.device:
        """The device the parameters live on.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 1]).device
        device(type='cpu')
        """
        return self.in_shift.device

    @property
    def n_inputs(self) -> int:
        """Number of input variables (``width[0]``).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([3, 2, 1]).n_inputs
        3
        """
        return self.width[0][0]

    @property
    def n_outputs(self) -> int:
        """Number of outputs (``width[-1]``).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([3, 2, 4]).n_outputs
        4
        """
        return self.width[-1][0]

    @property
    def grid(self) -> int:
        """Number of grid intervals (the finest, if layers differ).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 1], grid=5).refine(10).grid
        10
        """
        return max(layer.grid for layer in self.layers)

    @property
    def k(self) -> int:
        """The spline order.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 1], k=3).k
        3
        """
        return self.layers[0].k

    def num_parameters(self) -> int:
        """Count the trainable numbers that act on the output: those of active edges only.

        Masked (pruned) edges do not count; per edge: the spline coefficients and the trainable
        scales, plus trainable biases.

        Returns
        -------
        int
            The parameter count.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([1, 1], grid=5, k=3).num_parameters()  # 5 + 3 coefficients, 2 scales
        10
        """
        total = 0
        for layer in self.layers:
            active = int(layer.mask.count_nonzero())
            per_edge = layer.coef.shape[1] * layer.coef.requires_grad
            per_edge += layer.scale_base.requires_grad + layer.scale_sp.requires_grad
            total += active * per_edge + layer.out_dim * layer.bias.requires_grad
        return total

    @property
    def backend(self) -> str:
        """Kernels of every layer: "auto", "fused" or "torch".

        "auto" uses the fused C++ kernels on the CPU when they are available, "fused" requires them,
        "torch" is pure PyTorch (any device, higher-order derivatives, ``torch.func``). Setting an
        unknown name raises ValueError.

        Examples
        --------
        >>> import kanopy
        >>> model = kanopy.KAN([2, 1])
        >>> model.backend
        'auto'
        >>> model.backend = "torch"
        """
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
        """Switch the kernels temporarily, in a ``with`` block.

        Parameters
        ----------
        name : {"auto", "fused", "torch"}
            The kernels to use inside the block; the previous choice comes back after it.

        Yields
        ------
        KAN
            The model itself.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 1], seed=0)
        >>> x = torch.zeros(4, 2, dtype=torch.float64)
        >>> with model.using_backend("torch"):
        ...     y = model(x)
        >>> model.backend
        'auto'
        """
        previous = self.backend
        self.backend = name
        try:
            yield self
        finally:
            self.backend = previous

    # -------------------------------------------------------------------- forward
    def scaled_inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Map raw inputs to what the first layer sees.

        Parameters
        ----------
        x : torch.Tensor
            Raw inputs, shape ``(N, n_inputs)``.

        Returns
        -------
        torch.Tensor
            ``(x - in_shift) / in_scale``, clamped to ``[-input_bound, input_bound]`` when that is set.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([1, 1], input_bound=1.1)
        >>> model.scaled_inputs(torch.tensor([[0.5], [3.0]], dtype=torch.float64))
        tensor([[0.5000],
                [1.1000]], dtype=torch.float64)
        """
        x = (x - self.in_shift) / self.in_scale
        return x if self.input_bound is None else x.clamp(-self.input_bound, self.input_bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the network.

        Parameters
        ----------
        x : torch.Tensor
            Raw inputs, shape ``(N, n_inputs)``, in the model's dtype and device.

        Returns
        -------
        torch.Tensor
            Outputs, shape ``(N, n_outputs)``, in the data's units (output scaling undone).

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> model(torch.zeros(5, 2, dtype=torch.float64)).shape
        torch.Size([5, 1])
        """
        x = self.scaled_inputs(x)
        for l, layer in enumerate(self.layers):
            x = self._nodes(layer(x), l)
        return x * self.out_scale + self.out_shift

    def layout(self, l: int) -> NodeLayout:
        """Describe how layer `l`'s output subnodes feed the nodes of level ``l + 1``.

        Parameters
        ----------
        l : int
            Layer index, from 0.

        Returns
        -------
        kanopy.nodes.NodeLayout
            The subnode layout (sum nodes first, then the factors of each multiplication node).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, [1, 1], 1]).layout(0).n_subnodes  # one sum node, one product of two
        3
        """
        return NodeLayout(*self.width[l + 1], self.mult_arity)

    def _nodes(self, subnodes: torch.Tensor, l: int) -> torch.Tensor:
        """Layer l's subnode values (N, n_subnodes) -> node values (N, n_nodes) of level l + 1."""
        return self.layout(l).combine(subnodes)

    def trace(self, x: torch.Tensor) -> list[LayerTrace]:
        """Record every layer's inputs, edge activations and outputs.

        Used by plots, regularisation and pruning.

        Parameters
        ----------
        x : torch.Tensor
            Raw inputs, shape ``(N, n_inputs)``.

        Returns
        -------
        list of LayerTrace
            One per layer: ``inputs`` (N, in), ``edges`` (N, in, out_subnodes) and ``outputs``
            (N, out_nodes); the last layer's outputs are before output scaling.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> [t.edges.shape for t in model.trace(torch.zeros(4, 2, dtype=torch.float64))]
        [torch.Size([4, 2, 3]), torch.Size([4, 3, 1])]
        """
        x = self.scaled_inputs(x)
        traces = []
        for l, layer in enumerate(self.layers):
            edges = layer.edge_values(x)
            out = self._nodes(edges.sum(dim=1) + layer.bias, l)
            traces.append(LayerTrace(inputs=x, edges=edges, outputs=out))
            x = out
        return traces

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """List the input each layer sees.

        Parameters
        ----------
        x : torch.Tensor
            Raw inputs, shape ``(N, n_inputs)``.

        Returns
        -------
        list of torch.Tensor
            Per layer, shape ``(N, in_l)``.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> [t.shape for t in model.layer_inputs(torch.zeros(4, 2, dtype=torch.float64))]
        [torch.Size([4, 2]), torch.Size([4, 3])]
        """
        x = self.scaled_inputs(x)
        inputs = []
        for l, layer in enumerate(self.layers):
            inputs.append(x)
            x = self._nodes(layer(x), l)
        return inputs

    # ---------------------------------------------------------------- grid moves
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> KAN:
        """Move every layer's knots to the distribution of its inputs.

        The splines are refitted by least squares so the functions are kept; any saved optimizer
        state (``fit_state``) is cleared.

        Parameters
        ----------
        x : torch.Tensor
            Raw input samples, shape ``(N, n_inputs)``.
        grid_eps : float, optional
            Blend of uniform (1) and quantile (0) knots; default: each layer's own ``grid_eps``.

        Returns
        -------
        KAN
            The model itself.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([1, 1], grid=5, seed=0)
        >>> x = torch.linspace(0, 0.5, 100, dtype=torch.float64)[:, None]
        >>> model.update_grid(x).layers[0].domain()[1]  # the knots now span the data
        tensor([0.5000], dtype=torch.float64)
        """
        x = self.scaled_inputs(x)
        for l, layer in enumerate(self.layers):
            layer.update_grid(x, grid_eps)
            x = self._nodes(layer(x), l)
        self.fit_state = None
        return self

    def refine(self, grid: int) -> KAN:
        """Extend the grid: every layer to `grid` intervals, the functions kept.

        When `grid` is a multiple of the current one the new spline space contains the old and the
        network's outputs change only by rounding; otherwise by a least-squares projection. Any saved
        optimizer state is cleared.

        Parameters
        ----------
        grid : int
            The new number of grid intervals.

        Returns
        -------
        KAN
            The model itself, so that ``model.refine(10).fit(X, y)`` chains.

        Raises
        ------
        ValueError
            If `grid` is not a positive integer.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 3, 1], grid=5, seed=0)
        >>> x = torch.rand(50, 2, dtype=torch.float64) * 2 - 1
        >>> with torch.no_grad():
        ...     before = model(x)
        ...     after = model.refine(10)(x)
        >>> float((after - before).abs().max()) < 1e-10
        True
        """
        for layer in self.layers:
            layer.refine(grid)
        self.fit_state = None
        return self

    # ------------------------------------------------------------------ training
    def fit(self, X, y=None, **options):
        """Train the network on (X, y), or on batches.

        One step is one optimizer step on one batch: one LBFGS call of up to 20 iterations, one Adam
        update, or one accepted Levenberg-Marquardt update. MSE on a plain network (with or without
        ``lamb``) runs through the fused C++ objective. After the fit the model keeps up to 2,000
        evenly spaced rows of X (``model.samples``) for symbolic fitting and plots. The options are
        those of :func:`kanopy.fit.fit`.

        Parameters
        ----------
        X : array-like or torch.Tensor or iterable
            Inputs, shape ``(N, n_inputs)``; or, with `y` None, a ``DataLoader`` or any iterable of
            ``(X, y)`` or ``(X, y, sample_weight)`` batches.
        y : array-like or torch.Tensor, optional
            Targets as the loss wants them: ``(N, n_outputs)`` or ``(N,)`` for regression, integer
            labels for "cross_entropy".
        **options
            Keyword options of :func:`kanopy.fit.fit`, chiefly: ``steps`` (default 200) or
            ``epochs``; ``optimizer`` ("lbfgs", "adam", "lm"); ``lr``; ``batch_size``; ``loss``
            ("mse", "huber", "cross_entropy", "bce", or a callable); ``sample_weight``; ``lamb``,
            ``lamb_l1``, ``lamb_entropy`` (the sparsity regulariser); ``update_grid``,
            ``grid_update_every``, ``stop_grid_update_step``; ``X_val``, ``y_val``, ``patience``
            (early stopping, keeping the best validation state); ``progress`` (a bar, on a terminal
            only); ``seed``; ``resume`` (continue the last fit, optimizer state included);
            ``callback(step, history)`` (return True to stop).

        Returns
        -------
        History
            The per-step record: losses, metrics, validation figures, ``best_step``...

        Raises
        ------
        ValueError
            For bad data (NaN, inf, wrong shapes, empty) or bad options, naming the problem.

        Warns
        -----
        RuntimeWarning
            When a loss or gradient is not finite: the step is undone and the fit stops
            (``history.nonfinite_step``).

        See Also
        --------
        kanopy.fit.fit : the training loop and the full description of every option.

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 3, 1], grid=3, seed=0)
        >>> for grid in (3, 5):
        ...     history = model.refine(grid).fit(X, y, steps=10, progress=False)
        >>> len(history), history.loss_name
        (10, 'mse')

        Early stopping on validation data keeps the best validation state:

        >>> history = model.fit(X[:150], y[:150], X_val=X[150:], y_val=y[150:], patience=3,
        ...                     steps=20, progress=False)
        >>> history.best_step is not None
        True
        """
        from .batches import is_batches
        from .fit import fit

        history = fit(self, X, y, **options)
        if y is not None:
            self.remember(X)
        elif is_batches(X) and iter(X) is not X:  # samples from the first batch of a re-iterable
            self.remember(next(iter(X))[0])
        return history

    @torch.no_grad()
    def set_scaling(self, X: torch.Tensor, y: torch.Tensor) -> KAN:
        """Standardise the data the network sees, in buffers folded into formulas.

        Each input column's ``[min, max]`` maps to ``[-1, 1]``; each target to mean 0 and standard
        deviation 1 (population, ``correction=0``); a constant column keeps scale 1. Stored in
        ``in_shift``, ``in_scale``, ``out_shift``, ``out_scale``, so predictions and formulas stay in
        the data's units.

        Parameters
        ----------
        X : torch.Tensor
            Inputs, shape ``(N, n_inputs)``.
        y : torch.Tensor
            Targets, shape ``(N, n_outputs)`` or ``(N,)``.

        Returns
        -------
        KAN
            The model itself.

        Examples
        --------
        >>> import torch, kanopy
        >>> X = torch.tensor([[0.0], [10.0]], dtype=torch.float64)
        >>> model = kanopy.KAN([1, 1]).set_scaling(X, 3 * X)
        >>> model.scaled_inputs(X)
        tensor([[-1.],
                [ 1.]], dtype=torch.float64)
        """
        X = X.to(self.dtype).reshape(-1, self.n_inputs)
        lo, hi = X.min(dim=0).values, X.max(dim=0).values
        half = (hi - lo) / 2
        self.in_shift.copy_((hi + lo) / 2)
        self.in_scale.copy_(torch.where(half > 0, half, torch.ones_like(half)))
        if y is None:  # outputs left unscaled (a classifier's logits)
            self.out_shift.zero_()
            self.out_scale.fill_(1.0)
            return self
        y = y.to(self.dtype).reshape(-1, self.n_outputs)
        std = y.std(dim=0, correction=0)
        self.out_shift.copy_(y.mean(dim=0))
        self.out_scale.copy_(torch.where(std > 0, std, torch.ones_like(std)))
        return self

    def sample_inputs(self, X=None) -> torch.Tensor:
        """Return inputs to work on: X checked and converted, or the samples of the last fit.

        Parameters
        ----------
        X : array-like, optional
            Inputs, shape ``(N, n_inputs)``; converted to the model's dtype and device.

        Returns
        -------
        torch.Tensor
            X as a tensor, or ``model.samples`` when X is None.

        Raises
        ------
        ValueError
            When X is None and the model was never fitted (no samples), or X is not a finite
            ``(N, n_inputs)`` matrix.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 1]).sample_inputs([[0.1, 0.2]])
        tensor([[0.1000, 0.2000]], dtype=torch.float64)
        """
        if X is None:
            if self.samples is None:
                raise ValueError("no samples: pass X, or fit the model first")
            return self.samples
        from .validation import as_matrix

        return as_matrix(X, "X", dtype=self.dtype, device=self.device, columns=self.n_inputs)

    def remember(self, X, max_samples: int = 2000) -> KAN:
        """Keep (evenly spaced rows of) X as the samples that symbolic fitting and plots use.

        :meth:`fit` calls it; call it yourself after training by other means.

        Parameters
        ----------
        X : array-like
            Inputs, shape ``(N, n_inputs)``.
        max_samples : int, default 2000
            At most this many rows are kept.

        Returns
        -------
        KAN
            The model itself.

        Examples
        --------
        >>> import torch, kanopy
        >>> model = kanopy.KAN([2, 1]).remember(torch.rand(5000, 2, dtype=torch.float64))
        >>> model.samples.shape
        torch.Size([1667, 2])
        """
        from .validation import as_matrix

        if getattr(X, "ndim", 0) == 2 and X.shape[0] > max_samples:  # rows first: X may be large
            X = X[:: -(-X.shape[0] // max_samples)]
        X = as_matrix(X, "X", dtype=self.dtype, device=self.device, columns=self.n_inputs)
        step = max(1, -(-X.shape[0] // max_samples))
        self.samples = X[::step].detach().clone()
        return self

    # ------------------------------------------------------------------ pruning
    def attribution(self, X=None):
        """Score every node and edge by its importance (KAN 2.0 attribution).

        Parameters
        ----------
        X : array-like, optional
            Inputs to score on; default: the samples of the last fit.

        Returns
        -------
        kanopy.prune.Attribution
            ``nodes`` (per level, inputs first) and ``edges`` (per layer, ``(in, out_subnodes)``).

        Raises
        ------
        ValueError
            When X is None and the model was never fitted.

        See Also
        --------
        kanopy.prune.attribution : the scores' definition.

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> history = model.fit(X, y, steps=5, progress=False)
        >>> [s.shape for s in model.attribution().nodes]
        [torch.Size([2]), torch.Size([3]), torch.Size([1])]
        """
        from . import prune

        return prune.attribution(self, self.sample_inputs(X))

    def prune(self, X=None, node_threshold: float = 1e-2, edge_threshold: float | None = None) -> KAN:
        """Return a smaller copy without the hidden nodes (and edges) that score low.

        Parameters
        ----------
        X : array-like, optional
            Inputs to score on; default: the samples of the last fit.
        node_threshold : float, default 1e-2
            Hidden nodes whose attribution score is below this are removed (every hidden layer keeps
            at least its best node).
        edge_threshold : float, optional
            When given, edges scoring below it are masked off too.

        Returns
        -------
        KAN
            The pruned copy; removed contributions are folded into biases as their mean. The model
            itself is not changed.

        Raises
        ------
        ValueError
            When X is None and the model was never fitted.

        See Also
        --------
        kanopy.prune.shrink : greedy removal of the nodes the function does not need, with refits.

        Examples
        --------
        >>> import torch, kanopy
        >>> X = torch.rand(200, 2, dtype=torch.float64) * 2 - 1
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> with torch.no_grad():
        ...     model.layers[1].mask[1:] = 0  # hidden nodes 2 and 3 no longer reach the output
        >>> model.prune(X).width
        [[2, 0], [1, 0], [1, 0]]
        """
        from . import prune

        return prune.prune(self, self.sample_inputs(X), node_threshold=node_threshold, edge_threshold=edge_threshold)

    # ------------------------------------------------------------------ symbolic
    def suggest_symbolic(self, l: int, i: int, j: int, top: int = 5, **options):
        """Rank library functions ``c * f(a * x + b) + d`` as fits of one edge, best first.

        Parameters
        ----------
        l, i, j : int
            The edge: layer `l`, from input node `i` to output subnode `j`.
        top : int, default 5
            How many candidates to return.
        **options
            ``names`` (library functions to try; default all of ``kanopy.symbolic.library``),
            ``X`` (inputs to sample the edge on; default the samples of the last fit),
            ``weight_simple`` (how much simplicity counts against R^2), ``floor``.

        Returns
        -------
        list of kanopy.symbolic.fit1d.Fit1D
            Each with ``name``, the affine parameters ``a, b, c, d``, ``r2`` and ``complexity``.

        Raises
        ------
        ValueError
            For an edge that does not exist, or without samples.

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 1], grid=5, seed=0)
        >>> history = model.fit(X, y, steps=10, progress=False)
        >>> [fit.name for fit in model.suggest_symbolic(0, 1, 0, top=2, names=["x", "x^2", "sin"])]
        ['sin', 'x']
        """
        from .symbolic import snap

        return snap.suggest(self, l, i, j, top=top, **options)

    def fix_symbolic(self, l: int, i: int, j: int, name: str, **options):
        """Snap one edge to the library function `name`, its affine parameters fitted.

        The edge becomes ``c * f(a * x + b) + d``; `a`, `b`, `c`, `d` keep training in later fits.

        Parameters
        ----------
        l, i, j : int
            The edge: layer `l`, from input node `i` to output subnode `j`.
        name : str
            A function of ``kanopy.symbolic.library`` (e.g. "sin", "x^2", "exp").
        **options
            ``X`` (inputs to fit on; default the samples of the last fit); ``fit=False`` sets
            a = c = 1, b = d = 0 instead of fitting.

        Returns
        -------
        kanopy.symbolic.fit1d.Fit1D or None
            The fit (None with ``fit=False``).

        Raises
        ------
        ValueError
            For an unknown function or edge, or a function that cannot be evaluated on the edge's
            inputs.

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 1], grid=5, seed=0)
        >>> history = model.fit(X, y, steps=10, progress=False)
        >>> model.fix_symbolic(0, 0, 0, "x^2").r2 > 0.999
        True
        """
        from .symbolic import snap

        return snap.fix(self, l, i, j, name, **options)

    def unfix_symbolic(self, l: int, i: int, j: int) -> None:
        """Make a symbolic edge numeric (a spline) again.

        Parameters
        ----------
        l, i, j : int
            The edge: layer `l`, from input node `i` to output subnode `j`.

        Returns
        -------
        None

        Raises
        ------
        ValueError
            For an edge that does not exist.

        Examples
        --------
        >>> import kanopy
        >>> model = kanopy.KAN([1, 1], seed=0)
        >>> model.fix_symbolic(0, 0, 0, "sin", fit=False)
        >>> model.unfix_symbolic(0, 0, 0)
        >>> model.layers[0].plain
        True
        """
        from .symbolic import snap

        snap.unfix(self, l, i, j)

    def auto_symbolic(self, r2_threshold: float = 0.99, weight_simple: float = 1.0, **options) -> dict:
        """Snap every numeric edge whose best library fit reaches ``R^2 >= r2_threshold``.

        Other edges stay numeric; run :meth:`fit` afterwards to tune the symbolic edges'
        parameters, then :meth:`symbolic_formula`.

        Parameters
        ----------
        r2_threshold : float, default 0.99
            The R^2 an edge's best candidate must reach to be snapped.
        weight_simple : float, default 1.0
            How much simplicity counts against accuracy when ranking candidates.
        **options
            ``names`` (library functions to try; default all), ``X`` (inputs; default the samples
            of the last fit), ``floor``.

        Returns
        -------
        dict
            ``{(l, i, j): Fit1D or None}`` for every edge tried (None: left numeric).

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 1], grid=5, seed=0)
        >>> history = model.fit(X, y, steps=10, progress=False)
        >>> chosen = model.auto_symbolic(names=["x", "x^2", "sin"])
        >>> sorted(fit.name for fit in chosen.values())
        ['sin', 'x^2']
        """
        from .symbolic import snap

        return snap.auto(self, r2_threshold=r2_threshold, weight_simple=weight_simple, **options)

    def symbolic_formula(self, var_names=None, simplify: bool = True, round_digits: int | None = None,
                         X=None, y=None, tolerance: float = 1e-6) -> list:
        """Return one sympy expression per output, in the given variable names and original units.

        Every active edge must be symbolic (:meth:`auto_symbolic`, :meth:`fix_symbolic`). Constants
        are rounded to simple values (0, integers, fractions, multiples of pi...) where that changes
        the outputs by at most `tolerance` times their spread, measured against `y` when given, else
        against the model itself on `X` or its samples (without samples, only constants within 1e-9
        of a simple value are rounded). With `round_digits`, constants are instead rounded to that
        many significant digits.

        Parameters
        ----------
        var_names : list of str, optional
            Names of the inputs; default ``x_1, x_2, ...``.
        simplify : bool, default True
            Tidy the expressions with sympy.
        round_digits : int, optional
            Round every constant to this many significant digits instead.
        X : array-like, optional
            Inputs to check the rounding against; default the samples of the last fit.
        y : array-like, optional
            Targets to check the rounding against; default the model's own outputs on X.
        tolerance : float, default 1e-6
            The change in outputs (relative to their spread) a rounding may cause.

        Returns
        -------
        list of sympy.Expr
            One expression per output.

        Raises
        ------
        ValueError
            When an active edge is not symbolic yet.

        Examples
        --------
        >>> import torch, kanopy
        >>> g = torch.Generator().manual_seed(0)
        >>> X = torch.rand(200, 2, generator=g, dtype=torch.float64) * 2 - 1
        >>> y = X[:, :1] ** 2 + torch.sin(3 * X[:, 1:])
        >>> model = kanopy.KAN([2, 1], grid=5, seed=0)
        >>> history = model.fit(X, y, steps=10, progress=False)
        >>> chosen = model.auto_symbolic(names=["x", "x^2", "sin"])
        >>> [expr] = model.symbolic_formula(var_names=["a", "b"], round_digits=2)
        >>> expr  # doctest: +SKIP
        1.0*a**2 - 1.0*sin(3.0*b + 3.1) + 0.00021
        >>> sorted(str(s) for s in expr.free_symbols)
        ['a', 'b']
        """
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
        """Draw the network with every edge's curve, opacity by importance.

        Parameters
        ----------
        path : str or pathlib.Path, optional
            Save the figure there (format from the suffix: .png, .pdf, .svg...).
        X : array-like, optional
            Inputs to draw the curves on; default the samples of the last fit, or the grid domains.
        **options
            ``var_names``, ``output_names``, ``title``, ``dpi``, ``width_inches``: see
            :func:`kanopy.plot.plot_model`.

        Returns
        -------
        matplotlib.figure.Figure
            The figure (not attached to pyplot: nothing global changes).

        Examples
        --------
        >>> import kanopy
        >>> fig = kanopy.KAN([2, 3, 1], seed=0).plot(var_names=["x", "y"])
        >>> type(fig).__name__
        'Figure'
        """
        from .plot import plot_model

        return plot_model(self, path, X=X, **options)

    # --------------------------------------------------------------------- files
    def config(self) -> dict:
        """Describe the architecture as plain data (JSON-able).

        Returns
        -------
        dict
            ``width``, ``k``, ``grids`` (per layer), ``dtype``, ``seed``, ``mult_arity``,
            ``input_bound``, ``options`` and the ``symbolic`` edges' names; :meth:`from_config`
            builds the same architecture from it.

        Examples
        --------
        >>> import kanopy
        >>> config = kanopy.KAN([2, 3, 1], grid=5).config()
        >>> config["width"], config["grids"]
        ([[2, 0], [3, 0], [1, 0]], [5, 5])
        """
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
    def from_config(cls, config: dict, device="cpu") -> KAN:
        """Build a KAN of the architecture `config` describes (the values are set by a state dict).

        Parameters
        ----------
        config : dict
            As returned by :meth:`config`.
        device : str or torch.device, default "cpu"
            Where to put the parameters.

        Returns
        -------
        KAN
            A new model with the described shapes and symbolic edges.

        Raises
        ------
        ValueError
            When the config is inconsistent (e.g. the number of grids and of layers differ).

        Examples
        --------
        >>> import kanopy
        >>> model = kanopy.KAN([2, 3, 1], grid=5).refine(10)
        >>> copy = kanopy.KAN.from_config(model.config())
        >>> copy.load_state_dict(model.state_dict())
        <All keys matched successfully>
        """
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
        """Write a model file: safetensors tensors plus JSON metadata, atomically.

        Never pickle. :func:`kanopy.load` reads it back; an interrupted save never leaves a
        half-written file. See :mod:`kanopy.io` for the format.

        Parameters
        ----------
        path : str or pathlib.Path
            Where to write (the folder is created when missing).
        include_fit_state : bool, default True
            Also store the optimizer state, so that ``fit(..., resume=True)`` continues after
            loading.

        Returns
        -------
        None

        Examples
        --------
        >>> import os, tempfile, torch, kanopy
        >>> model = kanopy.KAN([2, 3, 1], seed=0)
        >>> path = os.path.join(tempfile.mkdtemp(), "model.kan")
        >>> model.save(path)
        >>> x = torch.rand(5, 2, dtype=torch.float64)
        >>> torch.equal(kanopy.load(path)(x), model(x))
        True
        """
        from .io import save_model

        save_model(self, path, include_fit_state=include_fit_state)

    def extra_repr(self) -> str:
        """The network's shape in its ``repr`` (PyTorch's hook for modules).

        Returns
        -------
        str
            Width, grid, spline order and dtype.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KAN([2, 3, 1], grid=5).extra_repr()
        'width=[[2, 0], [3, 0], [1, 0]], grid=5, k=3, dtype=torch.float64'
        """
        return f"width={self.width}, grid={self.grid}, k={self.k}, dtype={self.dtype}"
