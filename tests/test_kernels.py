"""The fused kernels at every vector width agree with the pure-PyTorch backend, and their
results do not depend on the number of threads."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import kernel_agreement
import pytest
import torch
from conftest import fused_available, uniform_samples

from kanopy import KAN, KANLayer, _extension, kernels

pytestmark = pytest.mark.skipif(not fused_available(), reason="no compiler for the fused kernels")

TOLERANCE = {"float64": 1e-12, "float32": 1e-5}  # relative, see kernel_agreement
HERE = Path(__file__).resolve().parent


def _variants():
    """Builds besides the native one: (label, environment). On an x86 CPU with AVX2 the 32-byte
    build is a real AVX2 one (x86-64-v3: 16 vector registers, so its smaller register blocks)."""
    flags = set(_extension._cpu_signature().split())
    x86_avx2 = platform.machine() in ("x86_64", "AMD64") and {"avx2", "fma"} <= flags
    wide = ("AVX2 build", {"KANOPY_MARCH": "x86-64-v3"}) if x86_avx2 else ("32-byte build", {"KANOPY_SIMD_BYTES": "32"})
    return [("16-byte build", {"KANOPY_SIMD_BYTES": "16"}), wide]


@pytest.fixture(scope="module")
def variant_errors():
    """kernel_agreement's errors of each variant build, built and checked in subprocesses side
    by side (a build takes a minute; cached after the first)."""
    runs = []
    for label, env in _variants():
        env = {**os.environ, **env}
        env.pop("KANOPY_NO_EXTENSION", None)
        runs.append((label, subprocess.Popen([sys.executable, str(HERE / "kernel_agreement.py")], env=env,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = {}
    for label, proc in runs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, f"{label}: {err[-2000:]}"
        results[label] = json.loads(out.strip().splitlines()[-1])
    return results


def _check(errors):
    for dtype, tol in TOLERANCE.items():
        for operation, error in errors[dtype].items():
            assert error <= tol, f"{errors['simd']}, {dtype}, {operation}: {error:.2e} > {tol:.0e}"


def test_native_build_agrees_with_torch():
    _check(kernel_agreement.errors())


@pytest.mark.parametrize("label", [label for label, _ in _variants()])
def test_narrower_builds_agree_with_torch(variant_errors, label):
    errors = variant_errors[label]
    native = _extension.simd()
    if label.startswith("16"):
        assert errors["simd"].endswith(f"(16-byte vectors, {native['registers']} registers)")
    _check(errors)


def test_simd_info_names_the_build():
    info = _extension.simd()
    assert info["vector_bytes"] in (16, 32, 64) and info["registers"] in (16, 32)
    assert _extension.describe().startswith(info["isa"])


def _outputs():
    """Every fused result a fit uses, on shapes that take each parallel path: layers with one
    input and with many (groups of samples or not), one output, a wide layer on a fine grid
    (forward by output slices), and the fused objective of networks, with the regulariser
    (its |phi| sums on each forward path) and without."""
    out = []
    for (in_dim, out_dim, grid, n) in [(1, 4, 5, 5000), (3, 6, 10, 3000), (20, 5, 5, 900), (4, 1, 7, 2000),
                                       (8, 200, 100, 1500)]:
        layer = KANLayer(in_dim, out_dim, grid=grid, dtype=torch.float64, generator=torch.Generator().manual_seed(1),
                         bias_trainable=True)
        x = uniform_samples(n, in_dim, seed=2, lo=-1.3, hi=1.3).requires_grad_()
        y = layer(x)
        (y * torch.linspace(-1, 1, out_dim, dtype=y.dtype)).sum().backward()
        out += [y.detach(), x.grad, layer.coef.grad, layer.scale_sp.grad, layer.scale_base.grad, layer.bias.grad]
    X = uniform_samples(3000, 3, seed=4)
    for widths, grid in kernel_agreement.NETWORKS:
        model = KAN(widths, grid=grid, seed=0)
        for reg in (None, kernel_agreement.REG):
            loss, grads = kernels.FusedObjective.build(model, reg)(X[:, :widths[0]], X[:, :widths[-1]] ** 2)
            out += [loss, *grads.values()]
    return out


def test_results_do_not_depend_on_the_number_of_threads():
    previous = torch.get_num_threads()
    try:
        results = {}
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            results[threads] = _outputs()
    finally:
        torch.set_num_threads(previous)
    for threads in (2, 3):
        for a, b in zip(results[1], results[threads]):
            assert torch.equal(a, b), f"{threads} threads differ from 1"


FIT = """
import sys, torch
torch.set_num_threads(int(sys.argv[1]))
from kanopy import KAN
g = torch.Generator().manual_seed(0)
X = torch.rand(2000, 2, generator=g, dtype=torch.float64) * 2 - 1
y = torch.exp(torch.sin(3.14159 * X[:, :1]) + X[:, 1:] ** 2)
model = KAN([2, 5, 1], grid=5, seed=0)
model.fit(X, y, steps=12, progress=False)
model.refine(10)
model.fit(X, y, steps=4, progress=False)
print(torch.cat([p.detach().reshape(-1) for p in model.parameters()]).numpy().tobytes().hex())
"""


def test_a_fit_is_the_same_on_one_thread_and_two():
    """As under `taskset -c 0`: a fit with grid updates and a refinement, in fresh processes
    with one thread and with two, gives bitwise the same parameters."""
    runs = [subprocess.run([sys.executable, "-c", FIT, str(threads)], capture_output=True, text=True, timeout=600)
            for threads in (1, 2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout
