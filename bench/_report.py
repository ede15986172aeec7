"""Shared helpers of the benchmark scripts: machine description, medians, and writing one
section of docs/benchmarks.md (between markers, so each script owns its own section)."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = "# kanopy benchmarks\n\nEach section is written by the script it names; rerun the command to refresh it.\n"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, "
            f"Python {sys.version.split()[0]}{gpu}")


def load_average() -> str:
    """The 1-minute load average, as text: on a shared machine it says how busy the cores were."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def isa() -> str:
    """The CPU's vector extensions that matter here, from /proc/cpuinfo (e.g. "avx2 avx512f")."""
    try:
        flags = set()
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags.update(line.split(":", 1)[1].split())
        found = [f for f in ("avx2", "fma", "avx512f", "neon", "asimd", "sve") if f in flags]
        return " ".join(found) or "none of avx2/avx512f/neon"
    except OSError:
        return platform.machine()


# environment variables that choose the kernels' build or the ISA torch runs on: part of a command
ENV_KNOBS = ("KANOPY_MARCH", "KANOPY_SIMD_BYTES", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")


def command(script: str) -> str:
    """The command line that reproduces this run, environment knobs included."""
    env = " ".join(f"{name}={os.environ[name]}" for name in ENV_KNOBS if os.environ.get(name))
    line = f"python {script}" + ("" if len(sys.argv) == 1 else " " + " ".join(sys.argv[1:]))
    return f"{env} {line}" if env else line


def kernels_isa() -> tuple[str, str]:
    """(what kanopy's kernels were built for, torch's CPU capability), building the kernels."""
    from kanopy import _extension

    return _extension.describe(), torch.backends.cpu.get_cpu_capability()


def isa_key(description: str) -> str:
    """Section key from the kernels' description: "AVX2+FMA (32-byte vectors, 16 registers)" -> "avx2-fma-32"."""
    isa, _, rest = description.partition(" (")
    width = rest.split("-byte")[0] if "-byte" in rest else ""
    name = "".join(c if c.isalnum() else "-" for c in isa.lower()).strip("-")
    return "-".join(part for part in (name, width) if part)


def build_line(kernels: str, torch_isa: str) -> str:
    """One markdown line naming the ISA of everything that ran."""
    mkl = os.environ.get("MKL_ENABLE_INSTRUCTIONS")
    return (f"CPU flags: {isa()}. kanopy kernels: {kernels}; torch (and the peers) on its `{torch_isa}` "
            f"kernels{', MKL limited to ' + mkl if mkl else ''}.")


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=DOC.parent.parent, timeout=5)
        return out.stdout.strip() or "uncommitted"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def median(values):
    return statistics.median(values)


def spread(values) -> str:
    """min-max range as text."""
    return f"{min(values):.3g}-{max(values):.3g}"


def table(headers, rows) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_section(name: str, markdown: str) -> None:
    """Replace (or append) the section `name` of docs/benchmarks.md."""
    start, end = f"<!-- bench:{name}:start -->", f"<!-- bench:{name}:end -->"
    text = DOC.read_text() if DOC.exists() else HEADER
    block = f"{start}\n{markdown.strip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        _, after = rest.split(end, 1)
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)


# torch's OpenMP threads spin while they wait; on a machine whose cores other processes also
# use, a spinning thread takes the core from the one doing the work, and small fused-kernel
# calls ran 20-60x slower (kanopy's LBFGS step on [2, 1], 1,200 rows: 5 ms passive, 280 ms
# spinning, 2 threads, load ~7 on 2 cores). Benchmarks that set it say so with this line.
THREADS_NOTE = ("OMP_WAIT_POLICY=PASSIVE (set by the script before torch loads: waiting OpenMP threads sleep "
                "instead of spinning, which on a shared machine otherwise steals the cores from the work).")
