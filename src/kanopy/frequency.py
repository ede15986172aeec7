"""Frequency content of scattered samples: how finely a residual oscillates along each input.

Multi-stage fitting sizes each stage's grid from the residual it must fit (Wang & Lai 2023
scale their first layer by about 3x the residual's number of sign changes; the peak of a
periodogram is the cleaner estimate). Samples are scattered, not on a uniform grid, so the
periodogram is the least-squares (Lomb-Scargle) one: at each frequency, the share of the
variance that one sinusoid explains, on frequencies up to what the sample density resolves.

Pure functions on tensors or arrays; frequencies are in cycles per unit of the input.
"""

from __future__ import annotations

import numpy as np
import torch

OVERSAMPLING = 2  # frequency steps per 1/range (a peak is ~1/range wide)
SAMPLES_PER_CYCLE = 16  # of the highest frequency asked for: enough to locate a peak
_CHUNK = 2_000_000  # samples x frequencies evaluated at once (a few 16 MB temporaries)


def sign_changes(x, r) -> int:
    """Number of sign changes of r along sorted x (zeros skipped): Wang & Lai's estimate."""
    x, r = _as_arrays(x, r)
    signs = np.sign(r[np.argsort(x, kind="stable")])
    signs = signs[signs != 0]
    return int(np.count_nonzero(signs[1:] != signs[:-1]))


def periodogram(x, r, max_frequency: float | None = None, n_frequencies: int | None = None):
    """(frequencies, power) of the least-squares (Lomb-Scargle) periodogram of r(x), x and r
    of shape (N,): power[f] is the fraction of r's variance explained by the best sinusoid
    a cos(2 pi f x) + b sin(2 pi f x) (1 for a pure sinusoid at f, ~2/N for noise).

    Frequencies run from 1/range up to ``max_frequency`` (default: half the mean sample
    density, N / (2 range), the Nyquist frequency of evenly spread samples), in steps of
    1 / (OVERSAMPLING range). At most SAMPLES_PER_CYCLE samples per cycle of the top
    frequency are used (every m-th row): more only cost time."""
    x, r = _as_arrays(x, r)
    span = float(x.max() - x.min()) if x.size else 0.0
    if span <= 0 or x.size < 4:
        return np.zeros(0), np.zeros(0)
    top = x.size / (2 * span) if max_frequency is None else float(max_frequency)
    thin = max(1, int(x.size // (SAMPLES_PER_CYCLE * top * span)))
    x, r = x[::thin], r[::thin]
    count = n_frequencies or max(1, int(np.ceil((top - 1 / span) * OVERSAMPLING * span)) + 1)
    freqs = np.linspace(1 / span, max(top, 1 / span), count)
    centred = r - r.mean()
    total = float(centred @ centred)
    if total == 0:
        return freqs, np.zeros_like(freqs)
    xt = torch.from_numpy(x - x.min())  # shifting x changes only the phase
    rt = torch.from_numpy(centred)
    step = max(1, _CHUNK // x.size)
    power = []
    for i in range(0, freqs.size, step):
        omega = torch.from_numpy(2 * np.pi * freqs[i:i + step])
        phase = omega[:, None] * xt[None, :]  # (F, N)
        c, s = torch.cos(phase), torch.sin(phase)
        yc, ys = c @ rt, s @ rt  # (F,)
        cc, ss, cs = (c * c).sum(1), (s * s).sum(1), (c * s).sum(1)
        det = (cc * ss - cs * cs).clamp_min(torch.finfo(torch.float64).tiny)
        # explained sum of squares of the 2-parameter least-squares fit [yc ys] M^-1 [yc ys]^T
        power.append((ss * yc * yc - 2 * cs * yc * ys + cc * ys * ys) / det)
    return freqs, torch.cat(power).numpy() / total


def dominant_frequency(x, r, max_frequency: float | None = None) -> float:
    """The frequency of the periodogram's highest peak (cycles per unit of x); 0 when r is
    constant or there are too few samples."""
    freqs, power = periodogram(x, r, max_frequency)
    if power.size == 0 or not power.any():
        return 0.0
    return float(freqs[int(np.argmax(power))])


def _as_arrays(x, r):
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64).reshape(-1)
    r = np.asarray(r.detach().cpu() if hasattr(r, "detach") else r, dtype=np.float64).reshape(-1)
    if x.shape != r.shape:
        raise ValueError(f"x and r must have the same number of samples, got {x.size} and {r.size}")
    return x, r
