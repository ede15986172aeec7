"""Lazy build of the fused C++ kernels (csrc/spline.cpp) with torch's extension tooling.

Built once at first use into the user's cache directory (``$XDG_CACHE_HOME/kanopy`` or
``~/.cache/kanopy``), keyed by the sources (spline.cpp and every header of csrc/), torch,
Python, the CPU and the build options, so a cache shared by different machines never hands one
the other's code (csrc/README.md maps the sources). The kernels' vector width and register
blocking follow the instruction set they are compiled for (csrc/simd.h): ``-march=native`` by
default. Environment variables:

* ``KANOPY_NO_EXTENSION=1``: skip the build; kanopy uses its pure-PyTorch kernels (as it
  does, after one warning, when there is no compiler);
* ``KANOPY_MARCH``: the target instead of ``native``, e.g. ``x86-64-v3`` for an AVX2 + FMA
  build on an AVX-512 machine;
* ``KANOPY_SIMD_BYTES`` (16, 32 or 64): vectors of that many bytes instead of the target's
  widest, e.g. to test the narrow-width code on any machine.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import sys
import warnings
from pathlib import Path

import torch

CSRC = Path(__file__).parent / "csrc"
SOURCE = CSRC / "spline.cpp"
HEADERS = sorted(CSRC.glob("*.h"))  # all of them: the build key changes when any header does
SIMD_BYTES = ("16", "32", "64")
# CPU time of one build on an AMD EPYC (Zen 4) core, said before a build starts. Measured
# (user + system, cold cache): 72 s for the AVX-512 build, 67 s for AVX2 (x86-64-v3); the
# wall time is as long on an idle core and grows with the load (5 min 47 s at load 13 on 2 cores).
BUILD_SECONDS = 70
_state: dict = {}


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "kanopy" / "extensions"


def build_options() -> tuple[str, str | None]:
    """(target for -march, forced vector bytes or None), from the environment; ValueError when
    either is malformed."""
    march = os.environ.get("KANOPY_MARCH", "").strip() or "native"
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", march):
        raise ValueError(f"KANOPY_MARCH must name a compiler target such as x86-64-v3, got {march!r}")
    simd = os.environ.get("KANOPY_SIMD_BYTES", "").strip() or None
    if simd is not None and simd not in SIMD_BYTES:
        raise ValueError(f"KANOPY_SIMD_BYTES must be one of {', '.join(SIMD_BYTES)}, got {simd!r}")
    return march, simd


def cflags(march: str, simd: str | None) -> list[str]:
    # -fno-trapping-math: without it GCC keeps the base functions' clamps (csrc/base.h) as
    # branches for targets without masked vectors (AVX2, NEON) and their loops stay scalar:
    # 2-3x slower narrow layers on AVX2. It changes no value; kanopy never enables FP traps.
    flags = ["-O3", f"-march={march}", "-fopenmp", "-fno-trapping-math"]
    return flags + ([f"-DKANOPY_SIMD_BYTES={simd}"] if simd else [])


def _cpu_signature() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _build_key(flags: list[str]) -> str:
    h = hashlib.sha256()
    for part in (SOURCE.read_bytes(), *(header.read_bytes() for header in HEADERS), torch.__version__.encode(),
                 sys.version.encode(), platform.machine().encode(), " ".join(flags).encode(),
                 _cpu_signature().encode()):
        h.update(part)
    return h.hexdigest()[:16]


def _expected_target(march: str, simd: str | None) -> str:
    """The instruction set and width a build will have, in words, for the message before it
    (csrc/simd.h decides; the loaded kernels say what they got: describe())."""
    flags = set(_cpu_signature().split())
    if march == "native" and platform.machine() in ("x86_64", "AMD64"):
        march = "x86-64-v4" if "avx512f" in flags else "x86-64-v3" if {"avx2", "fma"} <= flags else "x86-64"
    isa, width = {"x86-64-v4": ("AVX-512", "64"), "x86-64-v3": ("AVX2", "32")}.get(march, (None, "16"))
    if isa is None:
        isa = "NEON" if platform.machine() in ("aarch64", "arm64") and march == "native" else f"-march={march}"
    return f"{isa} ({simd or width}-byte vectors)"


def _load_built(library: Path) -> bool:
    """Load a library already in the cache, without torch's build step: the key names the
    sources' content, so it is current. The build step (ninja, under a lock file in the build
    folder) rewrites build.ninja with this checkout's source paths, and a checkout elsewhere
    with the same sources then recompiled for ~70 s; a build killed midway left its lock file,
    and every later load waited on it forever. False when there is none, or it does not load
    (a link cut short): then it is built."""
    if not library.exists():
        return False
    try:
        torch.ops.load_library(str(library))
    except OSError:
        return False
    return True


def ops():
    """torch.ops.kanopy when the fused kernels are available, else None (warned once)."""
    if "ops" in _state:
        return _state["ops"]
    _state["ops"] = None
    if os.environ.get("KANOPY_NO_EXTENSION", "") not in ("", "0"):
        return None
    try:
        from torch.utils.cpp_extension import load

        march, simd = build_options()
        flags = cflags(march, simd)
        key = _build_key(flags)
        name = f"kanopy_spline_{key}"
        build = cache_dir() / key
        build.mkdir(parents=True, exist_ok=True)
        library = build / f"{name}.so"
        if not _load_built(library):
            print(f"kanopy: compiling the fused CPU kernels for {_expected_target(march, simd)}, once, "
                  f"about {BUILD_SECONDS} s...", file=sys.stderr, flush=True)
            load(name=name, sources=[str(SOURCE)], extra_cflags=flags, extra_include_paths=[str(CSRC)],
                 extra_ldflags=["-fopenmp"], build_directory=str(build), is_python_module=False, verbose=False)
        _state["ops"] = torch.ops.kanopy
    except Exception as err:  # no compiler, no headers, read-only cache...
        lines = [line for line in str(err).splitlines() if "error" in line.lower()] or str(err).splitlines()[:1]
        warnings.warn(f"kanopy: fused CPU kernels unavailable ({type(err).__name__}: {' | '.join(lines[:3])[:500]}); "
                      "using the pure-PyTorch kernels", RuntimeWarning, stacklevel=2)
    return _state["ops"]


def simd() -> dict | None:
    """What the loaded kernels were compiled for: {"isa", "vector_bytes", "registers"}, or None."""
    if ops() is None:
        return None
    isa, vector_bytes, registers = torch.ops.kanopy.simd_info()
    return {"isa": isa, "vector_bytes": int(vector_bytes), "registers": int(registers)}


def describe() -> str:
    """One line, e.g. "AVX-512 (64-byte vectors, 32 registers)", or why there are no kernels."""
    info = simd()
    if info is None:
        return "not available (pure-PyTorch kernels)"
    return f"{info['isa']} ({info['vector_bytes']}-byte vectors, {info['registers']} registers)"
