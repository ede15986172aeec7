"""Collocation points of a box domain: the interior and the faces, Sobol or uniform, seeded.

A domain is a list of (low, high) per coordinate (time, when there is one, is a coordinate
like the others). Sobol points come from ``torch.quasirandom.SobolEngine`` (scrambled with
the seed), uniform ones from a ``torch.Generator``: the same seed gives the same points.
"""

from __future__ import annotations

import math

import torch

SAMPLINGS = ("sobol", "uniform")


def check_domain(domain, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """[(low, high), ...] -> (low (d,), high (d,)); ValueError for an empty or inverted box."""
    try:
        pairs = [tuple(float(v) for v in pair) for pair in domain]
    except (TypeError, ValueError):
        raise ValueError(f"domain must be a list of (low, high) pairs, one per coordinate, got {domain!r}") from None
    if not pairs:
        raise ValueError("domain is empty: give one (low, high) pair per coordinate")
    for axis, pair in enumerate(pairs):
        if len(pair) != 2:
            raise ValueError(f"domain[{axis}] must be a (low, high) pair, got {domain[axis]!r}")
        lo, hi = pair
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError(f"domain[{axis}] = {pair} is not finite")
        if not lo < hi:
            kind = "empty (low == high)" if lo == hi else "inverted (low > high)"
            raise ValueError(f"domain[{axis}] = {pair} is {kind}: give (low, high) with low < high")
    lo = torch.tensor([p[0] for p in pairs], dtype=dtype)
    hi = torch.tensor([p[1] for p in pairs], dtype=dtype)
    return lo, hi


def unit_points(n: int, d: int, seed: int, sampling: str = "sobol", dtype=torch.float64) -> torch.Tensor:
    """n points in [0, 1]^d: (n, d)."""
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if d == 0:
        return torch.zeros(n, 0, dtype=dtype)
    if sampling == "sobol":
        engine = torch.quasirandom.SobolEngine(d, scramble=True, seed=int(seed))
        return engine.draw(n, dtype=dtype)
    return torch.rand(n, d, generator=torch.Generator().manual_seed(int(seed)), dtype=dtype)


def interior(lo, hi, n: int, seed: int, sampling: str = "sobol") -> torch.Tensor:
    """n points inside the box: (n, d)."""
    return lo + (hi - lo) * unit_points(n, lo.numel(), seed, sampling, lo.dtype)


def face(lo, hi, axis: int, side: int, n: int, seed: int, sampling: str = "sobol") -> torch.Tensor:
    """n points on the face ``x[axis] = lo[axis]`` (side 0) or ``hi[axis]`` (side 1): (n, d)."""
    d = lo.numel()
    others = [a for a in range(d) if a != axis]
    unit = unit_points(n, d - 1, seed, sampling, lo.dtype)  # (n, d - 1)
    points = torch.empty(n, d, dtype=lo.dtype)
    points[:, others] = lo[others] + (hi[others] - lo[others]) * unit
    points[:, axis] = (hi if side else lo)[axis]
    return points


def mesh(lo, hi, points_per_axis) -> torch.Tensor:
    """A tensor-product grid including the faces: (prod(points_per_axis), d)."""
    axes = [torch.linspace(float(a), float(b), int(m), dtype=lo.dtype) for a, b, m in zip(lo, hi, points_per_axis)]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(axes))
