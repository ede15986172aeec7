"""The kernels' torch-free core (src/kanopy/csrc/spline_core.h), compiled on its own and
checked against the Cox-de Boor recurrence (tests/cpp/core_basis.cpp), at the native
vector width and at each narrower one the machine can run."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "tests" / "cpp" / "core_basis.cpp"
CORE = ROOT / "src" / "kanopy" / "csrc"
COMPILER = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return set(next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), []))


def _builds() -> list[tuple[str, list[str]]]:
    builds = [("native", ["-march=native"]), ("16-byte", ["-march=native", "-DKANOPY_SIMD_BYTES=16"])]
    if platform.machine() in ("x86_64", "AMD64") and {"avx2", "fma"} <= _cpu_flags():
        builds.append(("AVX2", ["-march=x86-64-v3"]))
    return builds


@pytest.mark.skipif(COMPILER is None, reason="needs a C++ compiler")
@pytest.mark.parametrize("name, flags", _builds(), ids=[name for name, _ in _builds()])
def test_core_basis_matches_de_boor(tmp_path, name, flags):
    program = tmp_path / "core_basis"
    subprocess.run([COMPILER, "-std=c++17", "-O3", *flags, f"-I{CORE}", str(SOURCE), "-o", str(program)],
                   check=True, capture_output=True, text=True, timeout=600)
    run = subprocess.run([str(program)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "0 failures"
    assert sum(line.startswith("ok") for line in lines) == 20  # orders 1-5 x 2 knot kinds x 2 dtypes
