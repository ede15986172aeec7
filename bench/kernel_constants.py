"""The fused kernels' tuning constants, each against a smaller and a larger value, side by side in
one process (src/kanopy/csrc/README.md, "Tuning constants", quotes the table this prints).

Every variant is the csrc/ sources with one constant's definition rewritten (and the op
namespace renamed, kanopy_kBlock_16..., so that all variants load into one process, and
only the order k = 3 the cases use instantiated, a fifth of the compile), built once into the
cache (``$XDG_CACHE_HOME/kanopy/bench``, two builds at a time). Timed task: forward +
backward of one layer through ``spline_layer`` (x, coef, scale_sp and scale_base requiring
gradients), on shapes that take each path of the kernels (csrc/README.md, "Dispatch"). The
variants take turns within each round (the start rotating), after warm-up; medians of the
rounds.

    flock /tmp/kanopy-bench.lock .venv/bin/python bench/kernel_constants.py
    flock /tmp/kanopy-bench.lock .venv/bin/python bench/kernel_constants.py --only kBlock --rounds 9
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))
import _report  # noqa: E402

from kanopy import KANLayer, _extension  # noqa: E402

CSRC = ROOT / "src" / "kanopy" / "csrc"

# (constant, values tried besides the built one); each is one `constexpr <type> <name> = ...;`
CONSTANTS = {
    "kBlock": ("16", "64"),
    "kMaxBlock": ("2", "6"),
    "kSuperBytes": ("16384", "65536"),
    "kMaxSuperBlocks": ("4", "16"),
    "kSliceBasis": ("1 << 16", "1 << 20"),
    "kPassSamples": ("512", "8192"),
    "kMinGroupSamples": ("64", "1024"),
}

# (label, in, out, grid, samples, dtype): the path each takes is in csrc/README.md, "Dispatch"
CASES = [
    ("[2, 5] G=5, 1000 samples, f64 (super-blocks, small)", 2, 5, 5, 1000, torch.float64),
    ("4 -> 1 G=10, 10000 samples, f64 (one output)", 4, 1, 10, 10000, torch.float64),
    ("64 -> 64 G=10, 1024 samples, f32 (super-blocks)", 64, 64, 10, 1024, torch.float32),
    ("64 -> 64 G=50, 1024 samples, f32 (super-blocks)", 64, 64, 50, 1024, torch.float32),
    ("256 -> 256 G=100, 1024 samples, f64 (by output slices)", 256, 256, 100, 1024, torch.float64),
]


def _variant_source(name: str | None, value: str | None, namespace: str, into: Path) -> None:
    """csrc/ copied into `into`, with `name` defined as `value` and the op namespace renamed."""
    for path in CSRC.iterdir():
        if path.suffix in (".h", ".cpp"):
            shutil.copy(path, into / path.name)
    if name is not None:
        pattern = re.compile(rf"(constexpr\s+[\w:]+\s+{name}\s*=\s*)[^;]+;")
        hits = [p for p in into.iterdir() if pattern.search(p.read_text())]
        if len(hits) != 1 or len(pattern.findall(hits[0].read_text())) != 1:
            raise SystemExit(f"{name}: expected one definition in csrc/, found {len(hits)} files")
        hits[0].write_text(pattern.sub(rf"\g<1>{value};", hits[0].read_text()))
    cpp = into / "spline.cpp"
    text = cpp.read_text()
    orders = re.compile(r"^ *case [1245]: f\(std::integral_constant<int, [1245]>\{\}\); break;\n", re.M)
    if "TORCH_LIBRARY(kanopy," not in text or len(orders.findall(text)) != 4:
        raise SystemExit("spline.cpp: TORCH_LIBRARY(kanopy, ...) or by_order's cases not found")
    text = orders.sub("", text)  # order 3 only (the cases below): a fifth of the compile
    cpp.write_text(text.replace("TORCH_LIBRARY(kanopy,", f"TORCH_LIBRARY({namespace},"))


def _namespace(name: str | None, value: str | None) -> str:
    """The op namespace of a variant, from the variant alone (so its build is reused by any run)."""
    return "kanopy_built" if name is None else f"kanopy_{name}_" + re.sub(r"\W+", "_", value)


def _build(job) -> str | None:
    """Build one variant (in a worker process); returns the path of its library (with
    build=False: the path if it is built, else None)."""
    name, value, *rest = job
    build_it = rest[0] if rest else True
    from torch.utils.cpp_extension import load

    namespace = _namespace(name, value)
    march, simd = _extension.build_options()
    flags = _extension.cflags(march, simd)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp)
        _variant_source(name, value, namespace, src)
        digest = hashlib.sha256(" ".join(flags).encode() + _extension._cpu_signature().encode()
                                + torch.__version__.encode())
        for path in sorted(src.iterdir()):
            digest.update(path.read_bytes())
        key = digest.hexdigest()[:16]
        build = _extension.cache_dir().parent / "bench" / key
        lib = build / f"{namespace}_{key}.so"
        if not lib.exists():
            if not build_it:
                return None
            build.mkdir(parents=True, exist_ok=True)
            load(name=f"{namespace}_{key}", sources=[str(src / "spline.cpp")], extra_cflags=flags,
                 extra_include_paths=[str(src)], extra_ldflags=["-fopenmp"], build_directory=str(build),
                 is_python_module=False, verbose=False)
        return str(lib)


def _layer_call(namespace, layer, x):
    op = getattr(torch.ops, namespace).spline_layer
    kind = {"zero": 0, "identity": 1, "silu": 2, "tanh": 3}[layer.base_fn]

    def call():
        xr = x.detach().requires_grad_()
        y = op(xr, layer.knots, layer.coef, layer.scale_sp, layer.scale_base, layer.mask, layer.bias, layer.k,
               layer.uniform, kind)
        y.sum().backward()

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(CONSTANTS), default=list(CONSTANTS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=0, help="calls per timing (default: about 20 ms of work)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--build-only", action="store_true", help="build the variants (untimed, no lock needed)")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    parser.add_argument("--built-only", action="store_true", help="time only the variants already built")
    args = parser.parse_args()

    variants = [("as built", None, None)] + [(f"{n} = {v}", n, v) for n in args.only for v in CONSTANTS[n]]
    if args.built_only:  # time the variants built so far, build nothing
        libs = [_build((name, value, False)) for _, name, value in variants]
        variants = [v for v, lib in zip(variants, libs) if lib]
        libs = [lib for lib in libs if lib]
    else:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            libs = pool.map(_build, [(name, value) for _, name, value in variants], chunksize=1)
    if args.build_only:
        return
    for lib in libs:
        torch.ops.load_library(lib)
    torch.set_num_threads(args.threads)
    builtin = {n: re.search(rf"constexpr\s+[\w:]+\s+{n}\s*=\s*([^;]+);",
                            "".join(p.read_text() for p in sorted(CSRC.glob("*.h")))).group(1)
               for n in args.only}
    lines = [
        "## Tuning constants of the fused kernels (csrc/README.md)",
        "",
        f"`{_report.command('bench/kernel_constants.py')}` at {_report.commit()}, under "
        "`flock /tmp/kanopy-bench.lock`. " + _report.machine() + f"; timed on {args.threads} thread(s). "
        + _report.build_line(*_report.kernels_isa()),
        "",
        f"ms per forward + backward of one layer (`spline_layer`, k = 3), medians of {args.rounds} rounds, "
        "the variants interleaved in one process; in brackets the time relative to the built values ("
        + ", ".join(f"{n} = {v}" for n, v in builtin.items()) + "). Each variant is built for order 3 only.",
        "",
        "| case | " + " | ".join(label for label, _, _ in variants) + " |",
        "|" + "---|" * (len(variants) + 1),
    ]
    print("\n".join(lines), flush=True)
    for label, n_in, n_out, grid, n, dtype in CASES:
        layer = KANLayer(n_in, n_out, grid=grid, dtype=dtype, generator=torch.Generator().manual_seed(0))
        x = torch.rand(n, n_in, generator=torch.Generator().manual_seed(1), dtype=dtype) * 2 - 1
        calls = [_layer_call(_namespace(name, value), layer, x) for _, name, value in variants]
        for call in calls:  # warm-up (thread-local buffers, page faults)
            call()
            call()
        start = time.perf_counter()
        calls[0]()
        once = time.perf_counter() - start
        reps = args.calls or max(1, int(0.02 / max(once, 1e-6)))
        times = [[] for _ in calls]
        for r in range(args.rounds):
            for j in range(len(calls)):
                v = (j + r) % len(calls)
                start = time.perf_counter()
                for _ in range(reps):
                    calls[v]()
                times[v].append((time.perf_counter() - start) / reps)
        med = [statistics.median(t) * 1e3 for t in times]
        cells = [f"{med[0]:.3f}"] + [f"{m:.3f} ({m / med[0]:.2f}x)" for m in med[1:]]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
        print(lines[-1], flush=True)
    if not args.no_write:
        _report.write_section("kernel-constants", "\n".join(lines))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
