"""KANLayer: a learnable univariate function on every edge, summed at the outputs.

Edge i -> j computes ``mask_ij * (scale_base_ij * b(x_i) + scale_sp_ij * spline_ij(x_i))``;
output j is the sum over i plus ``bias_j``.
"""

from __future__ import annotations

import torch
from torch import nn

from . import basis, kernels
from .functions import BASE_FUNCTIONS
from .symbolic.edges import SymbolicEdges


class KANLayer(nn.Module):
    """One KAN layer: ``in_dim * out_dim`` edges, each a learnable univariate function.

    Edge ``i -> j`` computes ``mask_ij * (scale_base_ij * b(x_i) + scale_sp_ij * spline_ij(x_i))``
    and output `j` is the sum over `i` plus ``bias_j``. Trainable tensors: ``coef``
    ``(in, G+k, out)`` (spline coefficients), ``scale_base`` and ``scale_sp`` ``(in, out)``,
    ``bias`` ``(out,)``; buffers: ``knots`` ``(in, G+2k+1)`` and ``mask`` ``(in, out)``.
    Edges snapped to formulas live in ``symbolic``. :class:`KAN` builds its layers; build one
    yourself to use it inside your own module.

    Parameters
    ----------
    in_dim, out_dim : int
        Number of inputs and outputs.
    grid : int, default 5
        Grid intervals `G` of every spline.
    k : int, default 3
        Spline order.
    base_fn : str, default "silu"
        The residual base function `b` (see ``kanopy.functions.BASE_FUNCTIONS``).
    grid_range : tuple of float, default (-1.0, 1.0)
        The initial domain of the splines.
    grid_eps : float, default 1.0
        Blend of uniform (1) and quantile (0) knots in :meth:`update_grid`.
    noise_scale : float, default 0.3
        Amplitude of the random initial splines (divided by `grid`).
    scale_base_mu, scale_base_sigma : float, default 0.0 and 1.0
        Initial base scales ``(mu + sigma * U(-1, 1)) / sqrt(in_dim)``.
    scale_sp : float, default 1.0
        Initial spline scale (divided by ``sqrt(in_dim)``).
    sp_trainable, sb_trainable, bias_trainable : bool, default True, True, False
        Which of ``scale_sp``, ``scale_base`` and ``bias`` train.
    generator : torch.Generator, optional
        Source of the random initialisation.
    dtype : torch.dtype, default torch.float32
        Type of the parameters (:class:`KAN` passes float64 by default).
    device : str or torch.device, optional
        Where the parameters live.

    Raises
    ------
    ValueError
        For non-positive sizes, a bad grid, order, base function, grid range or grid_eps.

    Examples
    --------
    >>> import torch, kanopy
    >>> layer = kanopy.KANLayer(3, 2, grid=5, dtype=torch.float64)
    >>> layer(torch.zeros(4, 3, dtype=torch.float64)).shape
    torch.Size([4, 2])
    >>> layer.coef.shape  # (in, G + k, out)
    torch.Size([3, 8, 2])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid: int = 5,
        k: int = 3,
        base_fn: str = "silu",
        grid_range=(-1.0, 1.0),
        grid_eps: float = 1.0,
        noise_scale: float = 0.3,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        scale_sp: float = 1.0,
        sp_trainable: bool = True,
        sb_trainable: bool = True,
        bias_trainable: bool = False,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device=None,
    ):
        super().__init__()
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        basis.check_grid_size(grid)
        basis.check_order(k)
        if base_fn not in BASE_FUNCTIONS:
            raise ValueError(f"unknown base_fn {base_fn!r}; choose one of {sorted(BASE_FUNCTIONS)}")
        lo, hi = (float(v) for v in grid_range)
        if not lo < hi:
            raise ValueError(f"grid_range must be (low, high) with low < high, got {grid_range!r}")
        if not 0.0 <= grid_eps <= 1.0:
            raise ValueError(f"grid_eps must be in [0, 1], got {grid_eps!r}")
        self.in_dim, self.out_dim, self.k = in_dim, out_dim, k
        self.base_fn = base_fn
        self.grid_eps = grid_eps
        factory = dict(dtype=dtype, device=device)

        self.register_buffer("knots", basis.uniform_knots(lo, hi, grid, k, in_dim, **factory))
        self.register_buffer("mask", torch.ones(in_dim, out_dim, **factory))
        # small random splines, as in the KAN paper: noise ~ U(-1/2, 1/2) * noise_scale / G
        noise = (torch.rand(in_dim, grid + k, out_dim, generator=generator, dtype=dtype) - 0.5)
        self.coef = nn.Parameter((noise * noise_scale / grid).to(device))
        unit = torch.rand(in_dim, out_dim, generator=generator, dtype=dtype) * 2 - 1
        sb = (scale_base_mu + scale_base_sigma * unit) / in_dim**0.5
        self.scale_base = nn.Parameter(sb.to(device), requires_grad=sb_trainable)
        self.scale_sp = nn.Parameter(
            torch.full((in_dim, out_dim), scale_sp / in_dim**0.5, **factory), requires_grad=sp_trainable
        )
        self.bias = nn.Parameter(torch.zeros(out_dim, **factory), requires_grad=bias_trainable)
        self.symbolic = SymbolicEdges(in_dim, out_dim, **factory)  # edges snapped to formulas
        self.backend = "auto"  # kernels to use: "auto", "fused" or "torch" (see kanopy.kernels)
        self._uniform_key = None
        self._uniform = True

    # ----------------------------------------------------------------- properties
    @property
    def grid(self) -> int:
        """Number of grid intervals `G`.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KANLayer(1, 1, grid=7).grid
        7
        """
        return self.knots.shape[1] - 2 * self.k - 1

    @property
    def uniform(self) -> bool:
        """Whether every input's knots are equally spaced (cached on the knots' version).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KANLayer(1, 1).uniform
        True
        """
        key = (self.knots.data_ptr(), self.knots._version, self.knots.shape)
        if key != self._uniform_key:
            self._uniform = basis.is_uniform(self.knots)
            self._uniform_key = key
        return self._uniform

    @property
    def plain(self) -> bool:
        """Whether every edge is a spline plus base branch (no symbolic edges).

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KANLayer(2, 1).plain
        True
        """
        return self.symbolic.count == 0

    def numeric_mask(self) -> torch.Tensor:
        """Mask of the edges computed by splines: active and not symbolic.

        Returns
        -------
        torch.Tensor
            Shape ``(in, out)``, 1 for numeric active edges, else 0.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KANLayer(2, 1).numeric_mask()
        tensor([[1.],
                [1.]])
        """
        return self.mask if self.plain else self.mask * (1 - self.symbolic.active)

    def domain(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The interval each input's spline covers.

        Returns
        -------
        tuple of torch.Tensor
            ``(low, high)``, each of shape ``(in,)``.

        Examples
        --------
        >>> import kanopy
        >>> kanopy.KANLayer(1, 1).domain()
        (tensor([-1.]), tensor([1.]))
        """
        return basis.domain(self.knots, self.k)

    def base(self, x: torch.Tensor) -> torch.Tensor:
        """The residual base function applied elementwise.

        Parameters
        ----------
        x : torch.Tensor
            Any shape.

        Returns
        -------
        torch.Tensor
            ``b(x)``, the same shape.

        Examples
        --------
        >>> import torch, kanopy
        >>> kanopy.KANLayer(1, 1, base_fn="silu").base(torch.tensor([0.0]))
        tensor([0.])
        """
        return BASE_FUNCTIONS[self.base_fn](x)

    # -------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the layer (fused C++ kernels on the CPU when available).

        Parameters
        ----------
        x : torch.Tensor
            Inputs, shape ``(N, in)``.

        Returns
        -------
        torch.Tensor
            Outputs, shape ``(N, out)``.

        Examples
        --------
        >>> import torch, kanopy
        >>> kanopy.KANLayer(3, 2)(torch.zeros(4, 3)).shape
        torch.Size([4, 2])
        """
        y = kernels.layer_forward(x, self.knots, self.coef, self.scale_sp, self.scale_base, self.numeric_mask(),
                                  self.bias, self.k, self.uniform, self.base_fn, self.backend)
        return y if self.plain else y + self.symbolic(x, self.mask)

    def spline_values(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the raw spline of every edge (no scales, no mask).

        Parameters
        ----------
        x : torch.Tensor
            Inputs, shape ``(N, in)``.

        Returns
        -------
        torch.Tensor
            Shape ``(N, in, out)``.

        Examples
        --------
        >>> import torch, kanopy
        >>> kanopy.KANLayer(3, 2).spline_values(torch.zeros(4, 3)).shape
        torch.Size([4, 3, 2])
        """
        return basis.evaluate(x, self.knots, self.coef, self.k)

    def edge_values(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the activation of every edge, ``phi_ij(x_i)``.

        Built only on request (plots, pruning, regularisation); :meth:`forward` never stores it.

        Parameters
        ----------
        x : torch.Tensor
            Inputs, shape ``(N, in)``.

        Returns
        -------
        torch.Tensor
            Shape ``(N, in, out)``; summed over inputs, plus the bias, it is the layer's output.

        Examples
        --------
        >>> import torch, kanopy
        >>> layer = kanopy.KANLayer(3, 2)
        >>> x = torch.rand(4, 3)
        >>> torch.allclose(layer.edge_values(x).sum(dim=1) + layer.bias, layer(x), atol=1e-6)
        True
        """
        mask = self.numeric_mask()
        coef = self.coef * (mask * self.scale_sp).unsqueeze(1)
        edges = basis.evaluate(x, self.knots, coef, self.k) + self.base(x).unsqueeze(-1) * (mask * self.scale_base)
        return edges if self.plain else edges + self.symbolic.edge_values(x, self.mask)

    # ---------------------------------------------------------------- grid moves
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> None:
        """Move the knots to the distribution of x and refit the splines to keep them.

        Knots are ``grid_eps * uniform + (1 - grid_eps) * sample quantiles`` over ``[min x, max x]``
        (the default ``grid_eps = 1`` keeps them uniform over the data's range: as accurate as
        quantile knots on our benchmarks and faster to evaluate; pykan uses 0.02); an input whose
        samples are all equal keeps its knots. Coefficients are refit by least squares on the
        samples (plus a light set of quadrature points, so that no interval is left undetermined).

        Parameters
        ----------
        x : torch.Tensor
            Samples, shape ``(N, in)``.
        grid_eps : float, optional
            Overrides the layer's ``grid_eps``.

        Examples
        --------
        >>> import torch, kanopy
        >>> layer = kanopy.KANLayer(1, 1, dtype=torch.float64)
        >>> layer.update_grid(torch.linspace(0, 2, 50, dtype=torch.float64)[:, None])
        >>> layer.domain()
        (tensor([0.], dtype=torch.float64), tensor([2.], dtype=torch.float64))
        """
        eps = self.grid_eps if grid_eps is None else grid_eps
        G, k = self.grid, self.k
        xs = torch.sort(x.detach().to(self.knots.dtype), dim=0).values  # (N, in)
        lo, hi = xs[0], xs[-1]
        u = torch.linspace(0, 1, G + 1, dtype=xs.dtype, device=xs.device)
        uniform = lo[:, None] + (hi - lo)[:, None] * u  # (in, G+1)
        adaptive = _quantiles(xs, G + 1)  # (in, G+1)
        interior = eps * uniform + (1 - eps) * adaptive
        interior[:, 0], interior[:, -1] = lo, hi
        interior = _enforce_min_gap(interior, uniform)
        new_knots = basis.extend_knots(interior, k)
        degenerate = ~(hi - lo > 1e-12 * hi.abs().clamp_min(1.0))  # constant inputs keep their grid
        new_knots[degenerate] = self.knots[degenerate]
        if torch.equal(new_knots, self.knots):
            # the knots stay (a first layer's inputs span the range its scaling maps to [-1, 1]):
            # a refit would only round the splines, at the cost of a least-squares solve per input
            return
        self._refit(new_knots, data=xs)

    @torch.no_grad()
    def refine(self, grid: int) -> KANLayer:
        """Extend the grid: `G` to `grid` intervals over the same domain, the edge functions kept.

        New knots interpolate the old ones, so when `grid` is a multiple of `G` the new spline space
        contains the old one and the functions are kept to rounding error.

        Parameters
        ----------
        grid : int
            The new number of intervals.

        Returns
        -------
        KANLayer
            The layer itself.

        Raises
        ------
        ValueError
            If `grid` is not a positive integer.

        Examples
        --------
        >>> import torch, kanopy
        >>> layer = kanopy.KANLayer(1, 1, grid=5, dtype=torch.float64)
        >>> x = torch.linspace(-1, 1, 9, dtype=torch.float64)[:, None]
        >>> with torch.no_grad():
        ...     before = layer(x)
        ...     after = layer.refine(10)(x)
        >>> layer.grid, bool(torch.allclose(before, after, atol=1e-12))
        (10, True)
        """
        basis.check_grid_size(grid)
        k, G = self.k, self.grid
        old_interior = self.knots[:, k : G + k + 1]  # (in, G+1)
        pos = torch.linspace(0, G, grid + 1, dtype=self.knots.dtype, device=self.knots.device)
        left = pos.floor().long().clamp(max=G - 1)
        frac = pos - left
        interior = old_interior[:, left] * (1 - frac) + old_interior[:, left + 1] * frac
        self._refit(basis.extend_knots(interior, k))
        return self

    def _refit(self, new_knots: torch.Tensor, data: torch.Tensor | None = None) -> None:
        """Least-squares coefficients on new_knots that reproduce the current raw splines."""
        quad = basis.quadrature_points(new_knots, self.k)  # (Q, in)
        points, weights = quad, None
        if data is not None:
            # quadrature points only regularise: 1% of the data's total weight
            n, q = data.shape[0], quad.shape[0]
            points = torch.cat([data, quad])
            weights = torch.cat([torch.ones_like(data), torch.full_like(quad, 0.01 * n / q)])
        targets = self.spline_values(points)  # (P, in, out)
        coef = basis.fit_coefficients(points, targets, new_knots, self.k, weights)
        self.knots = new_knots.contiguous()
        if coef.shape == self.coef.shape:
            self.coef.copy_(coef)  # keep the Parameter (and any view of it an optimizer holds)
        else:
            self.coef = nn.Parameter(coef.contiguous(), requires_grad=self.coef.requires_grad)

    def extra_repr(self) -> str:
        return f"in={self.in_dim}, out={self.out_dim}, grid={self.grid}, k={self.k}, base_fn={self.base_fn!r}"


def _quantiles(xs: torch.Tensor, m: int) -> torch.Tensor:
    """m evenly spaced sample quantiles of sorted xs (N, in), linear interpolation: (in, m)."""
    n = xs.shape[0]
    pos = torch.linspace(0, n - 1, m, dtype=xs.dtype, device=xs.device)
    left = pos.floor().long().clamp(max=n - 2) if n > 1 else pos.long()
    if n == 1:
        return xs[left].t()
    frac = (pos - left).unsqueeze(-1)
    return (xs[left] * (1 - frac) + xs[left + 1] * frac).t()


def _enforce_min_gap(interior: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Repeated sample values can make quantile knots coincide; blend such inputs towards the
    uniform grid just enough that every gap is at least 1e-3 of the uniform spacing."""
    h = (uniform[:, 1] - uniform[:, 0]).unsqueeze(1)  # (in, 1)
    gaps = interior.diff(dim=1)
    bad = (gaps < 1e-3 * h).any(dim=1)
    if bad.any():
        # a blend w*uniform + (1-w)*quantiles has gaps >= w*h; w = 1e-2 suffices
        w = 1e-2
        interior[bad] = w * uniform[bad] + (1 - w) * interior[bad]
    return interior
