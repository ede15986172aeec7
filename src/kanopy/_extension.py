"""Lazy build of the fused C++ kernels (csrc/spline.cpp) with torch's extension tooling.

Built once at first use into the user's cache directory (``$XDG_CACHE_HOME/kanopy`` or
``~/.cache/kanopy``), keyed by the source, torch, Python and the CPU, so a cache shared by
different machines never hands one the other's code. Set ``KANOPY_NO_EXTENSION=1`` to skip
it; without a compiler kanopy warns once and uses its pure-PyTorch kernels.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
import warnings
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc"
SOURCE = CSRC / "spline.cpp"
HEADERS = [CSRC / "spline_core.h", CSRC / "lbfgs.h"]
CFLAGS = ["-O3", "-march=native", "-fopenmp"]
_state: dict = {}


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "kanopy" / "extensions"


def _cpu_signature() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build_key() -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), *(header.read_bytes() for header in HEADERS), torch.__version__.encode(), sys.version.encode(),
                 platform.machine().encode(), " ".join(CFLAGS).encode(), _cpu_signature().encode()):
        h.update(part)
    return h.hexdigest()[:16]


def ops():
    """torch.ops.kanopy when the fused kernels are available, else None (warned once)."""
    if "ops" in _state:
        return _state["ops"]
    _state["ops"] = None
    if os.environ.get("KANOPY_NO_EXTENSION", "") not in ("", "0"):
        return None
    try:
        from torch.utils.cpp_extension import load

        key = _build_key()
        build = cache_dir() / key
        build.mkdir(parents=True, exist_ok=True)
        load(name=f"kanopy_spline_{key}", sources=[str(SOURCE)], extra_cflags=CFLAGS,
             extra_include_paths=[str(CSRC)],
             extra_ldflags=["-fopenmp"], build_directory=str(build), is_python_module=False, verbose=False)
        _state["ops"] = torch.ops.kanopy
    except Exception as err:  # no compiler, no headers, read-only cache...
        lines = [line for line in str(err).splitlines() if "error" in line.lower()] or str(err).splitlines()[:1]
        warnings.warn(f"kanopy: fused CPU kernels unavailable ({type(err).__name__}: {' | '.join(lines[:3])[:500]}); "
                      "using the pure-PyTorch kernels", RuntimeWarning, stacklevel=2)
    return _state["ops"]
