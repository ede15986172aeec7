"""Epochs over data larger than a batch: peak memory and throughput of `fit(epochs=, batch_size=)`.

A regression generated here: N rows (default 2,000,000) of 8 float32 inputs uniform on
[-1, 1], target sum_i sin(2 x_i) / (1 + i) + x_0 x_1 + 0.05 noise, held as one float32 tensor
(and, with --numpy, as numpy arrays). A float32 [8, 8, 1] KAN (grid 5) trains on it with Adam
for 3 epochs of 4096-row batches in a seeded shuffled order, grid updates on the first
batches as by default.

Memory is the process's peak resident set (VmHWM of /proc/self/status, reset through
/proc/self/clear_refs just before the fit) minus the resident set before the data existed:
it holds the data, the model and whatever the fit adds (one batch, the epoch's permutation,
4 bytes a row). The acceptance bound is 1.5 x (data bytes) + model bytes (parameters,
buffers and Adam's two moments).

Writes the `epochs` section of docs/benchmarks.md.
    python bench/epochs.py [--rows 2000000] [--batch-size 4096] [--epochs 3] [--numpy]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

from kanopy import KAN  # noqa: E402
from kanopy.fit import fit  # noqa: E402

MIB = 2**20


def status(field: str) -> int:
    """A memory figure of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set


def make_data(n: int, seed: int, block: int = 65536):
    """(X (N, 8), y (N, 1)) float32, filled block by block (small temporaries only)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.empty(n, 8, dtype=torch.float32)
    y = torch.empty(n, 1, dtype=torch.float32)
    for start in range(0, n, block):
        x = torch.rand(min(block, n - start), 8, generator=g, dtype=torch.float32) * 2 - 1
        target = (torch.sin(2 * x) / torch.arange(1, 9, dtype=torch.float32)).sum(1) + x[:, 0] * x[:, 1]
        X[start : start + block] = x
        y[start : start + block, 0] = target + 0.05 * torch.randn(x.shape[0], generator=g, dtype=torch.float32)
    return X, y


def release_free_memory() -> None:
    """Hand memory freed by Python and torch back to the system (glibc keeps it otherwise, and
    the resident set would count it)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def model_bytes(model) -> int:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return 3 * params + buffers  # parameters and Adam's first and second moments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--numpy", action="store_true", help="hand the data to fit as numpy arrays")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()

    warm = KAN([8, 8, 1], grid=5, seed=0, dtype="float32")  # kernels loaded, thread pools up
    Xw, yw = make_data(5000, seed=1)
    fit(warm, Xw, yw, epochs=1, batch_size=args.batch_size, optimizer="adam", progress=False)
    del warm, Xw, yw
    release_free_memory()
    before_data = status("VmRSS")

    X, y = make_data(args.rows, seed=0)
    data_bytes = X.numel() * X.element_size() + y.numel() * y.element_size()
    if args.numpy:
        X, y = X.numpy(), y.numpy()
    model = KAN([8, 8, 1], grid=5, seed=0, dtype="float32")
    with torch.no_grad():
        y_std = float(torch.as_tensor(y).std())
    release_free_memory()
    reset_peak()
    with_data = status("VmRSS")
    t0 = time.perf_counter()
    history = fit(model, X, y, epochs=args.epochs, batch_size=args.batch_size, optimizer="adam", progress=False)
    seconds = time.perf_counter() - t0
    peak = status("VmHWM")

    used = peak - before_data
    bound = 1.5 * data_bytes + model_bytes(model)
    rows_seen = args.rows * args.epochs
    with torch.no_grad():  # RMSE on the last 100,000 rows, in chunks
        tail = slice(args.rows - 100_000, args.rows)
        pred = model(torch.as_tensor(X[tail]))
        rmse = float(torch.sqrt(torch.mean((pred - torch.as_tensor(y[tail])) ** 2)))
    rows = [[f"{args.rows:,}", "numpy" if args.numpy else "tensor", f"{data_bytes / MIB:.1f}",
             f"{model_bytes(model) / 1024:.1f} KiB", f"{(with_data - before_data) / MIB:.1f}",
             f"{used / MIB:.1f}", f"{(peak - with_data) / MIB:.1f}", f"{used / data_bytes:.2f}",
             f"{bound / MIB:.1f}", "yes" if used <= bound else "NO", f"{len(history)}", f"{seconds:.1f}",
             f"{rows_seen / seconds:,.0f}", f"{rmse / y_std:.3f}"]]
    headers = ["rows", "data as", "data MiB", "model", "RSS with data MiB", "peak over start MiB",
               "fit adds MiB", "peak / data", "bound MiB", "within", "steps", "seconds", "rows/s", "RMSE / std"]
    text = _report.table(headers, rows)
    print(text)
    if args.no_write:
        return
    command = "python bench/epochs.py" + (f" --rows {args.rows}" if args.rows != 2_000_000 else "") + (
        " --numpy" if args.numpy else "")
    _report.write_section("epochs", f"""## Epochs over data larger than a batch (issue 13)

`{command}` at commit {_report.commit()}, on {_report.machine()} (ISA: avx512f, avx2).
A float32 [8, 8, 1] KAN (grid 5) trained with Adam, {args.epochs} epochs of {args.batch_size}-row
batches in a seeded shuffled order, on a generated float32 regression with 8 inputs. "peak over
start" is the process's peak resident set during the fit (VmHWM, reset just before it) minus
the resident set before the data existed; the bound is 1.5 x the data's bytes plus the model
(parameters, buffers, Adam's moments). The fit itself adds one batch and the epoch's
permutation (4 bytes a row) to the data. RMSE / std: on the last 100,000 rows, relative to the
target's standard deviation (noise alone: {0.05 / y_std:.3f}).

{text}
""")


if __name__ == "__main__":
    main()
