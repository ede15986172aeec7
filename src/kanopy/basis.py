"""B-spline knots, local basis evaluation and least-squares coefficient fitting.

Pure functions on tensors; no state. Conventions used throughout kanopy:

* one knot vector per input, ``knots`` of shape (in, G + 2k + 1): G intervals on the
  *domain* ``[knots[:, k], knots[:, G + k]]`` plus k extension intervals on each side;
* a spline of order k on those knots has G + k coefficients;
* outside the domain a spline continues its end polynomial piece for one more interval
  (so points just beyond the data keep full accuracy), then *linearly* with the value and
  slope reached there: an input far outside the grid keeps a sensible, differentiable edge
  function instead of silently dropping to zero or blowing up.

Only k + 1 basis functions are nonzero at any point (local support). ``local_basis``
returns those values and the index of the first one; every kernel builds on it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from . import blas

MAX_ORDER = 5


def check_order(k: int) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_ORDER:
        raise ValueError(f"spline order k must be an integer in 1..{MAX_ORDER}, got {k!r}")


def check_grid_size(grid: int) -> None:
    if not isinstance(grid, int) or isinstance(grid, bool) or grid < 1:
        raise ValueError(f"grid (number of spline intervals) must be a positive integer, got {grid!r}")


def extend_knots(interior: torch.Tensor, k: int) -> torch.Tensor:
    """(in, G+1) increasing interior knots -> (in, G+2k+1) knots with k uniform extension
    intervals of width (hi - lo) / G on each side."""
    G = interior.shape[1] - 1
    h = (interior[:, -1:] - interior[:, :1]) / G  # (in, 1)
    steps = torch.arange(1, k + 1, dtype=interior.dtype, device=interior.device)
    left = interior[:, :1] - h * steps.flip(0)  # (in, k)
    right = interior[:, -1:] + h * steps  # (in, k)
    return torch.cat([left, interior, right], dim=1)


def uniform_knots(lo, hi, grid: int, k: int, n_inputs: int, *, dtype, device=None) -> torch.Tensor:
    """Uniform knots on [lo, hi] for every input: (n_inputs, grid + 2k + 1).

    ``lo``/``hi`` may be floats or (n_inputs,) tensors."""
    lo = torch.as_tensor(lo, dtype=dtype, device=device).expand(n_inputs)
    hi = torch.as_tensor(hi, dtype=dtype, device=device).expand(n_inputs)
    t = torch.linspace(0, 1, grid + 1, dtype=dtype, device=device)
    interior = lo[:, None] + (hi - lo)[:, None] * t[None, :]
    return extend_knots(interior, k)


def domain(knots: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(lo, hi) of the spline domain, each (in,)."""
    return knots[:, k], knots[:, -k - 1]


def is_uniform(knots: torch.Tensor) -> bool:
    """True when every input's knots are equally spaced (possibly a different spacing per input),
    up to rounding of the knots' dtype."""
    rtol = max(1e-9, 64 * torch.finfo(knots.dtype).eps)
    gaps = knots.diff(dim=1)
    return bool(torch.all((gaps - gaps[:, :1]).abs() <= rtol * gaps[:, :1].abs()))


def check_knots(knots: torch.Tensor, k: int) -> None:
    if knots.dim() != 2 or knots.shape[1] < 2 * k + 2:
        raise ValueError(f"knots must have shape (in, G + 2k + 1) with G >= 1, got {tuple(knots.shape)}")
    if not torch.isfinite(knots).all():
        raise ValueError("knots contain NaN or inf")
    if not (knots.diff(dim=1) > 0).all():
        raise ValueError("knots must be strictly increasing along each input")


def _interval(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool) -> torch.Tensor:
    """Index j of the knot interval [t_j, t_{j+1}) holding x, clamped to the domain
    intervals k .. G+k-1. x: (N, in) inside the domain."""
    G = knots.shape[1] - 2 * k - 1
    if uniform:
        h = (knots[:, G + k] - knots[:, k]) / G  # (in,) from the whole domain: see _cardinal_values
        j = torch.floor((x - knots[:, k]) / h).long() + k
    else:
        # searchsorted wants the sorted rows first: (in, G+1) boundaries vs (in, N) values
        bounds = knots[:, k : G + k + 1].contiguous()
        j = torch.searchsorted(bounds, x.t().contiguous(), right=True).t() - 1 + k
    return j.clamp(k, G + k - 1)


def local_basis(
    x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The k+1 nonzero B-spline basis values at x.

    x: (N, in); knots: (in, G+2k+1).
    Returns ``values`` (N, in, k+1) and ``start`` (N, in) long: values[n, i, r] is basis
    function number start[n, i] + r (0-based, of G + k) of input i at x[n, i].
    Differentiable in x (pure torch ops), including the linear extrapolation outside the domain.
    """
    if uniform is None:
        uniform = is_uniform(knots)
    lo, hi = domain(knots, k)
    j = _interval(torch.minimum(torch.maximum(x, lo), hi).detach(), knots, k, uniform)  # (N, in)
    # the end pieces reach one interval beyond the domain, then the spline goes on linearly
    xc = torch.minimum(torch.maximum(x, 2 * lo - knots[:, k + 1]), 2 * hi - knots[:, -k - 2])
    if uniform:
        values, slopes = _cardinal_values(xc, knots, j, k)
    else:
        values, slopes = _de_boor_values(xc, knots, j, k)
    values = values + slopes * (x - xc).unsqueeze(-1)  # (x - xc) is zero up to there
    return values, j - k


def _cardinal_values(xc, knots, j, k):
    """Uniform knots: the recurrence in the local coordinate f in [0, 1)."""
    # spacing from the whole domain, positions from its left end: in float32, one gap
    # (knots[k+1] - knots[k]) carries two roundings that j steps of it would multiply
    G = knots.shape[1] - 2 * k - 1
    h = (knots[:, G + k] - knots[:, k]) / G  # (in,)
    t_j = knots[:, k] + h * (j - k)  # (N, in) left end of the interval
    f = ((xc - t_j) / h).unsqueeze(-1)  # (N, in, 1)
    ones = torch.ones_like(f)
    prev = ones  # degree 0: (N, in, 1)
    for d in range(1, k + 1):
        r = torch.arange(d + 1, dtype=xc.dtype, device=xc.device)  # (d+1,)
        padded = torch.nn.functional.pad(prev, (1, 1))  # (N, in, d+2)
        if d == k:
            slopes = (padded[..., :-1] - padded[..., 1:]) / h[:, None]
        prev = ((f + d - r) * padded[..., :-1] + (r + 1 - f) * padded[..., 1:]) / d
    if k == 0:  # pragma: no cover - order 0 is rejected by check_order
        slopes = torch.zeros_like(prev)
    return prev, slopes


def _de_boor_values(xc, knots, j, k):
    """General knots: Cox-de Boor on the 2k+2 knots around the interval."""
    N, n_in = xc.shape
    offsets = torch.arange(-k, k + 2, device=xc.device)  # (2k+2,)
    idx = j.unsqueeze(-1) + offsets  # (N, in, 2k+2)
    # T[..., m] = t_{j-k+m}, so t_{j+s} = T[..., k+s]
    T = knots.unsqueeze(0).expand(N, n_in, -1).gather(2, idx)
    x = xc.unsqueeze(-1)
    prev = torch.ones_like(x)  # (N, in, 1)
    for d in range(1, k + 1):
        left = T[..., k - d : k + 1]  # t_{j-d+r},   r = 0..d
        right = T[..., k : k + d + 1]  # t_{j+r}
        right1 = T[..., k + 1 : k + d + 2]  # t_{j+r+1}
        left1 = T[..., k - d + 1 : k + 2]  # t_{j-d+r+1}
        den1 = right - left
        den2 = right1 - left1
        padded = torch.nn.functional.pad(prev, (1, 1))  # (N, in, d+2)
        if d == k:
            slopes = k * (padded[..., :-1] / den1 - padded[..., 1:] / den2)
        prev = (x - left) / den1 * padded[..., :-1] + (right1 - x) / den2 * padded[..., 1:]
    return prev, slopes


def local_basis_derivatives(
    x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k+1 nonzero basis values at x and their first and second derivatives in x.

    Closed form (de Boor's derivative recurrence, B'_{i,d} = d B_{i,d-1} / (t_{i+d} - t_i)
    - d B_{i+1,d-1} / (t_{i+d+1} - t_{i+1}), applied once and twice), with the same
    continuation outside the domain as :func:`local_basis`: beyond the end pieces the value goes
    on linearly, the first derivative is the slope reached there and the second is zero.

    x: (N, in); knots: (in, G+2k+1). Returns ``values``, ``d1``, ``d2`` (N, in, k+1) and
    ``start`` (N, in), indexed as :func:`local_basis`. Pure torch ops: differentiable in the
    knots' coefficients downstream and usable under torch.func.
    """
    if uniform is None:
        uniform = is_uniform(knots)
    lo, hi = domain(knots, k)
    j = _interval(torch.minimum(torch.maximum(x, lo), hi).detach(), knots, k, uniform)  # (N, in)
    xc = torch.minimum(torch.maximum(x, 2 * lo - knots[:, k + 1]), 2 * hi - knots[:, -k - 2])
    if uniform:
        values, d1, d2 = _cardinal_derivatives(xc, knots, j, k)
    else:
        N, n_in = x.shape
        offsets = torch.arange(-k, k + 2, device=x.device)  # (2k+2,)
        T = knots.unsqueeze(0).expand(N, n_in, -1).gather(2, j.unsqueeze(-1) + offsets)  # t_{j-k+m}
        values, d1, d2 = _de_boor_derivatives(xc, T, k)
    values = values + d1 * (x - xc).unsqueeze(-1)  # (x - xc) is zero up to the end pieces
    d2 = torch.where((x == xc).unsqueeze(-1), d2, torch.zeros_like(d2))
    return values, d1, d2, j - k


@functools.cache
def _cardinal_polynomials(k: int) -> np.ndarray:
    """(k+1 powers, 3 (k+1)): the monomial coefficients, in the local coordinate f of an
    interval, of the k+1 cardinal B-splines nonzero there, then of their first and second
    derivatives in f (the same recurrence as _cardinal_values, on polynomials)."""
    prev = [np.array([1.0])]  # degree 0: one function, the polynomial 1
    for d in range(1, k + 1):
        padded = [np.zeros(1)] + prev + [np.zeros(1)]
        cur = []
        for r in range(d + 1):  # ((f + d - r) * left + (r + 1 - f) * right) / d
            left, right = padded[r], padded[r + 1]
            term = np.polynomial.polynomial.polyadd(np.polynomial.polynomial.polymul([d - r, 1.0], left),
                                                    np.polynomial.polynomial.polymul([r + 1, -1.0], right))
            cur.append(term / d)
        prev = cur
    values = np.zeros((k + 1, k + 1))
    for r, poly in enumerate(prev):
        values[: len(poly), r] = poly
    powers = np.arange(k + 1, dtype=np.float64)[:, None]
    first = np.zeros_like(values)
    first[:-1] = values[1:] * powers[1:]
    second = np.zeros_like(values)
    second[:-1] = first[1:] * powers[1:]
    return np.concatenate([values, first, second], axis=1)


def _cardinal_derivatives(xc, knots, j, k):
    """Uniform knots: the basis and its derivatives as polynomials of the local coordinate f
    (one small matrix product; few elementwise ops to differentiate through)."""
    G = knots.shape[1] - 2 * k - 1
    h = (knots[:, G + k] - knots[:, k]) / G  # (in,)
    f = (xc - (knots[:, k] + h * (j - k))) / h  # (N, in) in [0, 1)
    columns = [torch.ones_like(f), f]
    for _ in range(k - 1):
        columns.append(columns[-1] * f)
    powers = torch.stack(columns, dim=-1)  # (N, in, k+1): 1, f, ..., f^k
    table = torch.tensor(_cardinal_polynomials(k), dtype=xc.dtype, device=xc.device)  # a copy of the cache
    values, d1, d2 = (powers @ table).split(k + 1, dim=-1)  # each (N, in, k+1), derivatives in f
    return values, d1 / h[:, None], d2 / (h * h)[:, None]


def _de_boor_derivatives(xc, T, k):
    """Values and first two derivatives of the k+1 basis functions on T[..., m] = t_{j-k+m}."""
    x = xc.unsqueeze(-1)
    pad = torch.nn.functional.pad
    levels = [torch.ones_like(x)]  # basis values of degree 0..k, (N, in, d+1) each
    dens = []
    for d in range(1, k + 1):
        den1 = T[..., k : k + d + 1] - T[..., k - d : k + 1]  # t_{i+d} - t_i for i = j-d+r
        den2 = T[..., k + 1 : k + d + 2] - T[..., k - d + 1 : k + 2]  # t_{i+d+1} - t_{i+1}
        padded = pad(levels[-1], (1, 1))  # (N, in, d+2)
        levels.append((x - T[..., k - d : k + 1]) / den1 * padded[..., :-1]
                      + (T[..., k + 1 : k + d + 2] - x) / den2 * padded[..., 1:])
        dens.append((den1, den2))

    def differentiate(q, d):  # derivatives of degree-(d-1) functions -> of degree d
        den1, den2 = dens[d - 1]
        padded = pad(q, (1, 1))
        return d * (padded[..., :-1] / den1 - padded[..., 1:] / den2)

    d1 = differentiate(levels[k - 1], k)
    d2 = differentiate(differentiate(levels[k - 2], k - 1), k) if k >= 2 else torch.zeros_like(d1)
    return levels[k], d1, d2


def dense_basis(x: torch.Tensor, knots: torch.Tensor, k: int) -> torch.Tensor:
    """All G + k basis values: (N, in, G+k). For references, tests and least squares."""
    values, start = local_basis(x, knots, k)
    n_basis = knots.shape[1] - k - 1
    idx = start.unsqueeze(-1) + torch.arange(k + 1, device=x.device)  # (N, in, k+1)
    out = torch.zeros(*x.shape, n_basis, dtype=values.dtype, device=values.device)
    return out.scatter(2, idx, values)


def evaluate(x: torch.Tensor, knots: torch.Tensor, coef: torch.Tensor, k: int) -> torch.Tensor:
    """Splines per (input, output): x (N, in), coef (in, G+k, out) -> (N, in, out)."""
    values, start = local_basis(x, knots, k)
    idx = start.unsqueeze(-1) + torch.arange(k + 1, device=x.device)  # (N, in, k+1)
    rows = torch.arange(x.shape[1], device=x.device)[None, :, None]
    return torch.einsum("nir,niro->nio", values, coef[rows, idx])


def quadrature_points(knots: torch.Tensor, k: int, per_interval: int | None = None) -> torch.Tensor:
    """Gauss-Legendre points inside every domain interval: (G * m, in), m = k + 1 by default.

    A least-squares fit on them is a discrete L2 projection onto the spline space; it is
    exact for any function already in that space."""
    m = per_interval or k + 1
    nodes, _ = _gauss_legendre(m, knots.dtype, knots.device)  # (m,) in (0, 1)
    G = knots.shape[1] - 2 * k - 1
    a = knots[:, k : k + G]  # (in, G) interval starts
    w = knots[:, k + 1 : k + G + 1] - a
    pts = a.unsqueeze(-1) + w.unsqueeze(-1) * nodes  # (in, G, m)
    return pts.reshape(knots.shape[0], -1).t().contiguous()


def _gauss_legendre(m: int, dtype, device):
    import numpy as np

    nodes, weights = np.polynomial.legendre.leggauss(m)
    nodes = torch.as_tensor((nodes + 1) / 2, dtype=dtype, device=device)
    weights = torch.as_tensor(weights / 2, dtype=dtype, device=device)
    return nodes, weights


def fit_coefficients(
    x: torch.Tensor, y: torch.Tensor, knots: torch.Tensor, k: int, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Least-squares spline coefficients, one problem per input with many right-hand sides.

    x: (N, in) sample points, y: (N, in, out) target values of each edge,
    weights: optional (N, in) nonnegative sample weights.
    Returns coef (in, G+k, out).
    """
    A = dense_basis(x, knots, k).transpose(0, 1)  # (in, N, G+k)
    B = y.transpose(0, 1)  # (in, N, out)
    if weights is not None:
        sw = weights.sqrt().t().unsqueeze(-1)  # (in, N, 1)
        A, B = A * sw, B * sw
    return solve_least_squares(A, B)


def solve_least_squares(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Batched min ||A X - B|| for A (b, N, p), B (b, N, q), robust to rank deficiency.

    On CPU LAPACK's gelsd (SVD, minimum-norm when rank deficient; gelsy, faster, gives
    results that vary in the last bits from run to run, which breaks reproducibility), on one
    thread: MKL's threaded gelsd rounds differently with different numbers of threads, and a
    fit must give the same bits on one core (``taskset -c 0``) as on many.
    Elsewhere a tiny ridge row block keeps QR well posed."""
    if A.device.type == "cpu":
        rcond = torch.finfo(A.dtype).eps * max(A.shape[-2:])
        with blas.sequential():
            return torch.linalg.lstsq(A, B, rcond=rcond, driver="gelsd").solution
    p = A.shape[-1]
    scale = A.abs().amax(dim=(-2, -1), keepdim=True).clamp_min(torch.finfo(A.dtype).tiny)
    ridge = torch.eye(p, dtype=A.dtype, device=A.device) * scale * math.sqrt(torch.finfo(A.dtype).eps)
    A_aug = torch.cat([A, ridge.expand(A.shape[0], p, p)], dim=-2)
    B_aug = torch.cat([B, B.new_zeros(B.shape[0], p, B.shape[-1])], dim=-2)
    return torch.linalg.lstsq(A_aug, B_aug).solution
