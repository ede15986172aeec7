"""Side-by-side speed benchmark (issue 5): kanopy vs pykan 0.2.8 (speed() and default mode),
flashkan 0.2.0, inkan 0.5.2 and an MLP of equal width, all in one process.

Parts (``--only`` picks some):

* ``check``: kanopy's layer output against scipy.interpolate.BSpline, and its gradients
  against the pure-PyTorch backend in float64, on the layer-sweep configurations;
* ``layer-sweep``: one layer, batch x (in = out) x G, k = 3, float32 and float64;
* ``networks``: [2, 5, 1] and [4, 100, 100, 100, 1] on 1,000 samples (full batch);
* ``fit``: one LBFGS ``fit`` step at the science scale, kanopy vs pykan;
* ``regulariser``: kanopy's fit step and objective evaluation with the sparsity regulariser
  (lamb > 0) against the same without it (lamb = 0), and against the regularised step as it
  ran before the fused regulariser (autograd over the traced edge activations).

Timed tasks: forward (no grad), forward+backward (MSE to a fixed random target), a full
optimizer step (torch.optim.Adam(fused=True) on the trainable parameters, same for every implementation)
and the bytes saved for backward (saved_tensors_hooks, each storage counted once).
Within a configuration the implementations take turns (round-robin, rotating the start),
after warm-up; medians and min-max of the repeats are reported.

The kernels are built for the CPU they run on; the environment picks another build and the
ISA torch and the peers use, e.g. an AVX2 run on an AVX-512 machine:
    KANOPY_MARCH=x86-64-v3 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 python bench/speed.py

Writes the section `speed-<kernel ISA>` (`speed-headline-<ISA>` with --headline) of
docs/benchmarks.md, and docs/speed_vs_grid.png for a full run.
    python bench/speed.py                  # everything
    python bench/speed.py --headline       # the acceptance points: batch 1024, 64->64, float32, G 10 and 50
    python bench/speed.py --quick          # smoke run: few repeats, a few configurations
    python bench/speed.py --only check layer-sweep
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import gc
import io
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see _report.THREADS_NOTE; before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch._dynamo  # noqa: E402
import torch._inductor.config  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # noqa: E402

import kanopy  # noqa: E402
from kanopy import _extension, demo, kernels  # noqa: E402

PARTS = ("check", "layer-sweep", "networks", "fit", "regulariser")
TASKS = ("forward", "forward+backward", "optimizer step")
DTYPES = {"float32": torch.float32, "float64": torch.float64}
PLOT = _report.DOC.parent / "speed_vs_grid.png"
K = 3


# ------------------------------------------------------------------ implementations
@functools.lru_cache(maxsize=2)
def _pykan_model(widths: tuple, G: int, dtype):
    """One pykan model per configuration, shared by both modes (deep-copied for speed())."""
    from kan import KAN as PyKAN

    return PyKAN(width=list(widths), grid=G, k=K, seed=0, auto_save=False).to(dtype)


def _mlp(widths, dtype):
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.SiLU()]
    return nn.Sequential(*layers).to(dtype)


def _kanopy(widths, G, dtype, backend="auto"):
    if len(widths) == 2:
        model = kanopy.KANLayer(widths[0], widths[1], grid=G, k=K, dtype=dtype)
    else:
        model = kanopy.KAN(widths, grid=G, k=K, dtype=dtype, seed=0)
    model.backend = backend  # "auto": fused C++ kernels on CPU; "torch": pure PyTorch
    return model


def _flashkan(widths, G, dtype):
    import flashkan

    if len(widths) == 2:
        return flashkan.KANLayer(widths[0], widths[1], grid_size=G, spline_order=K).to(dtype)
    return flashkan.KANNetwork(list(widths), grid_size=G, spline_order=K).to(dtype)


def _inkan(widths, G, dtype):
    import inkan

    if len(widths) == 2:
        return inkan.KANLayer(widths[0], widths[1], grid_size=G, spline_order=K).to(dtype)
    return inkan.KANNetwork(list(widths), grid_size=G, spline_order=K).to(dtype)


@dataclass
class Impl:
    name: str
    build: object  # (widths, G, dtype) -> nn.Module mapping (N, in) to (N, out)
    compiled: bool = False  # uses torch.compile: its first call compiles, never judge speed by it


IMPLS = [
    Impl("kanopy", _kanopy),
    Impl("kanopy (torch backend)", lambda w, G, dt: _kanopy(w, G, dt, backend="torch")),
    Impl("flashkan", _flashkan, compiled=True),
    Impl("inkan", _inkan, compiled=True),
    Impl("pykan speed()", lambda w, G, dt: copy.deepcopy(_pykan_model(tuple(w), G, dt)).speed()),
    Impl("pykan default", lambda w, G, dt: _pykan_model(tuple(w), G, dt)),
    Impl("MLP", lambda w, G, dt: _mlp(w, dt)),
]


# ------------------------------------------------------------------ measuring
@dataclass
class Cell:
    """One implementation on one configuration and task."""

    times: list = field(default_factory=list)  # seconds per call
    note: str = ""  # why it was skipped / not available
    few: bool = False  # fewer repeats because one call was slow

    def text(self, scale=1e3) -> str:
        if not self.times:
            return self.note or "-"
        ms = [t * scale for t in self.times]
        n = f", n={len(ms)}" if self.few else ""
        return f"{_report.median(ms):.3g} ({_report.spread(ms)}{n})"

    @property
    def median(self):
        return _report.median(self.times) if self.times else None


def saved_bytes(fn, model) -> tuple[int, int]:
    """(all bytes, bytes of the model's own parameters/buffers) saved for backward by fn()."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    own = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    return sum(storages.values()), sum(n for p, n in storages.items() if p in own)


def task_call(task, model, x, target, opt):
    """The timed closure of one task."""
    if task == "forward":
        def call():
            with torch.no_grad():
                model(x)
    elif task == "forward+backward":
        def call():
            model.zero_grad(set_to_none=True)
            x.grad = None  # set when x requires grad (layer sweep)
            F.mse_loss(model(x), target).backward()
    else:
        def call():
            opt.zero_grad(set_to_none=True)
            x.grad = None
            F.mse_loss(model(x), target).backward()
            opt.step()
    return call


class Runner:
    """Times every implementation on a configuration, interleaved, with a time budget."""

    def __init__(self, impls, args):
        self.impls, self.args = impls, args
        self.slow = {}  # impl name -> list of (config key, seconds, label) that exceeded --skip-after

    def _dominated(self, name, key) -> bool:
        """A smaller-or-equal configuration already took longer than --skip-after per call."""
        return any(all(a <= b for a, b in zip(other, key)) for other, _, _ in self.slow.get(name, []))

    def skip_notes(self) -> str:
        """What made each skip, as a markdown list (the cells only say "skipped"), then a blank line."""
        lines = [f"- {name}: one {label} call took {seconds:.1f} s (> {self.args.skip_after:g} s), so it was "
                 "skipped there and on every configuration at least as large."
                 for name, hits in self.slow.items() for _, seconds, label in hits]
        return "\n".join(lines) + "\n\n" if lines else ""

    def run(self, widths, G, dtype, batch, label, key, x_grad, models=None):
        """Returns {task: {impl: Cell}} and {impl: (saved bytes, own bytes) or note}."""
        args, models = self.args, {} if models is None else models  # models: reused across batch sizes
        torch._dynamo.reset()  # compiled peers compile for this exact configuration (static shapes)
        gc.collect()
        g = torch.Generator().manual_seed(batch + G)
        x = (torch.rand(batch, widths[0], generator=g, dtype=dtype) * 2 - 1).requires_grad_(x_grad)
        target = torch.randn(batch, widths[-1], generator=g, dtype=dtype)
        cells = {t: {i.name: Cell() for i in self.impls} for t in TASKS}
        live = {}  # impl name -> (model, optimizer)
        for impl in self.impls:
            note = "skipped" if self._dominated(impl.name, key) else ""
            if not note:
                try:
                    torch.manual_seed(0)
                    if impl.name not in models:
                        models[impl.name] = impl.build(widths, G, dtype)
                    model = models[impl.name]
                    opt = _adam([p for p in model.parameters() if p.requires_grad])
                    live[impl.name] = (model, opt)
                except Exception as exc:  # noqa: BLE001 - report, don't stop the run
                    note = f"n/a ({type(exc).__name__}: {str(exc)[:60]})"
            for t in TASKS:
                cells[t][impl.name].note = note
        memory = {}
        for task in TASKS:
            calls, repeats = {}, {}
            for impl in self.impls:  # warm-up, and the number of repeats each one can afford
                if impl.name not in live:
                    continue
                model, opt = live[impl.name]
                call = task_call(task, model, x, target, opt)
                try:
                    seconds = _timed(call)
                    if impl.compiled or seconds <= args.slow:
                        seconds = _timed(call)  # second warm-up: the first compiled or built caches
                except Exception as exc:  # noqa: BLE001
                    for t in TASKS:
                        cells[t][impl.name].note = f"n/a ({type(exc).__name__}: {str(exc)[:60]})"
                    del live[impl.name]
                    continue
                if seconds > args.skip_after:
                    self.slow.setdefault(impl.name, []).append((key, seconds, f"{task} ({label})"))
                    for t in TASKS[TASKS.index(task):]:
                        cells[t][impl.name].note = "skipped"
                    del live[impl.name]
                    continue
                calls[impl.name] = call
                few = seconds > args.slow
                repeats[impl.name] = args.min_repeats if few else args.repeats
                cells[task][impl.name].few = few
            names = list(calls)
            for r in range(max(repeats.values(), default=0)):  # round-robin, rotating who goes first
                for name in names[r % len(names):] + names[: r % len(names)]:
                    if r < repeats[name]:
                        cells[task][name].times.append(_timed(calls[name]))
        for name, (model, opt) in live.items():  # bytes saved for backward: one forward with grad
            memory[name] = saved_bytes(lambda: model(x), model)
        for impl in self.impls:
            if impl.name not in memory:
                memory[impl.name] = cells[TASKS[-1]][impl.name].note or cells[TASKS[0]][impl.name].note
        return cells, memory


def _adam(params):
    """Adam for the optimizer-step task, the same for every implementation: torch's fused CPU
    kernel, one pass over each parameter. The default (per-op) Adam allocates two temporaries
    per parameter per step; above 32 MB (float64 256->256 at G=100) malloc maps each anew and
    faulting them in made Adam 6.5x slower in float64 than in float32, whoever the layer."""
    try:
        return torch.optim.Adam(params, lr=1e-3, fused=True)
    except (RuntimeError, ValueError):  # a parameter the fused kernel does not take
        return torch.optim.Adam(params, lr=1e-3)


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


# ------------------------------------------------------------------ correctness
def check_layer(batch, width, G, dtype, uniform=True, seed=0):
    """kanopy layer (backend auto) vs scipy.interpolate.BSpline, and its gradients vs the
    pure-PyTorch backend in float64. Returns (max abs err, relative err, grad relative err)."""
    from scipy.interpolate import BSpline

    g = torch.Generator().manual_seed(seed)
    layer = kanopy.KANLayer(width, width, grid=G, k=K, dtype=dtype)
    with torch.no_grad():  # random everything, so that no term is trivially zero
        layer.coef.copy_(torch.randn(layer.coef.shape, generator=g, dtype=dtype))
        layer.scale_base.copy_(torch.randn(layer.scale_base.shape, generator=g, dtype=dtype))
        layer.scale_sp.copy_(torch.randn(layer.scale_sp.shape, generator=g, dtype=dtype))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=g, dtype=dtype))
        layer.mask.copy_((torch.rand(layer.mask.shape, generator=g) < 0.8).to(dtype))
        if not uniform:
            interior = torch.sort(torch.rand(width, G + 1, generator=g, dtype=torch.float64) * 2 - 1, 1).values
            interior[:, 0], interior[:, -1] = -1.0, 1.0
            layer.knots = kanopy.basis.extend_knots(interior, K).to(dtype)
    lo, hi = (t.double() for t in layer.domain())
    x = (lo + (hi - lo) * torch.rand(batch, width, generator=g, dtype=torch.float64)).to(dtype)
    x[0], x[1] = layer.domain()  # the ends of the domain
    y = layer(x)

    # reference in float64 numpy from the layer's own (possibly float32) numbers
    X, knots = x.double().numpy(), layer.knots.double().numpy()
    coef, mask = layer.coef.detach().double().numpy(), layer.mask.double().numpy()
    sp, sb = layer.scale_sp.detach().double().numpy(), layer.scale_base.detach().double().numpy()
    ref = np.tile(layer.bias.detach().double().numpy(), (batch, 1))
    for i in range(width):
        xi = np.clip(X[:, i], knots[i, K], knots[i, -K - 1])
        B = BSpline.design_matrix(xi, knots[i], K).toarray()  # (N, G+k)
        silu = X[:, i] / (1 + np.exp(-X[:, i]))
        ref += B @ (coef[i] * (mask[i] * sp[i])) + np.outer(silu, mask[i] * sb[i])
    err = np.abs(y.detach().double().numpy() - ref).max()

    # gradients: fused backward vs torch backend in float64
    ref_layer = copy.deepcopy(layer).double()
    ref_layer.backend = "torch"
    up = torch.randn(batch, width, generator=g, dtype=torch.float64)
    xg, xr = x.detach().clone().requires_grad_(), x.detach().double().requires_grad_()
    layer(xg).backward(up.to(dtype))
    ref_layer(xr).backward(up)
    grad_err = max(float((a.grad.double() - b.grad).abs().max() / b.grad.abs().max())
                   for a, b in ((xg, xr), (layer.coef, ref_layer.coef), (layer.scale_sp, ref_layer.scale_sp),
                                (layer.scale_base, ref_layer.scale_base)))
    return err, err / np.abs(ref).max(), grad_err


def run_checks(configs, dtypes):
    tol = {torch.float32: 1e-4, torch.float64: 1e-11}  # output error / max |output|; gradients: 10x
    rows, ok = [], True
    for dtype in dtypes:
        for uniform in (True, False):  # non-uniform knots (not benchmarked): the smallest configs only
            configs_here = configs if uniform else [c for c in configs if c[:2] == min(c[:2] for c in configs)]
            results = [check_layer(b, w, G, dtype, uniform) for b, w, G in configs_here]
            worst = max(range(len(results)), key=lambda c: results[c][1])
            rel, grad = results[worst][1], max(r[2] for r in results)
            passed = rel <= tol[dtype] and grad <= 10 * tol[dtype]
            ok &= passed
            b, w, G = configs_here[worst]
            rows.append([_dtype_name(dtype), "uniform" if uniform else "non-uniform", len(configs_here),
                         f"{max(r[0] for r in results):.2e}", f"{rel:.2e} (batch {b}, {w}->{w}, G={G})",
                         f"{grad:.2e}", f"{'ok' if passed else 'FAIL'} (tol {tol[dtype]:.0e} / {10 * tol[dtype]:.0e})"])
            print("check", rows[-1], flush=True)
    return rows, ok


# ------------------------------------------------------------------ parts
def _dtype_name(dtype):
    return str(dtype).replace("torch.", "")


def _sweep_configs(args):
    return [(b, w, G) for w in args.widths for G in args.grids for b in args.batches]


def layer_sweep(runner, args):
    """{(task, dtype, batch, width, G): {impl: Cell}} and {(dtype, batch, width, G): memory}.
    The two dtypes of a point run back to back, so that machine drift hits both alike."""
    times, memory = {}, {}
    for w in args.widths:
        for G in args.grids:
            models = {dname: {} for dname in args.dtypes}  # built once, used for both batch sizes
            for b in args.batches:
                for dname in args.dtypes:
                    dtype = DTYPES[dname]
                    label = f"batch {b}, {w}->{w}, G={G}, {dname}"
                    key = (b, w, G, dtype.itemsize)
                    cells, mem = runner.run([w, w], G, dtype, b, label, key, x_grad=not args.no_input_grad,
                                            models=models[dname])
                    for task in TASKS:
                        times[(task, dname, b, w, G)] = cells[task]
                    memory[(dname, b, w, G)] = mem
                    print(label, {i: c.text() for i, c in cells["forward+backward"].items()}, flush=True)
    return times, memory


def networks(runner, args):
    rows_by_task, memory = {t: [] for t in TASKS}, []
    for widths in args.nets:
        for G in args.net_grids:
            for dname in args.dtypes:
                dtype = DTYPES[dname]
                label = f"{widths}, G={G}, {dname}"
                key = (args.n, max(widths), G, dtype.itemsize, len(widths))
                cells, mem = runner.run(widths, G, dtype, args.n, label, key, x_grad=False)
                for task in TASKS:
                    rows_by_task[task].append([str(widths), G, dname] + [cells[task][i.name].text() for i in runner.impls])
                memory.append([str(widths), G, dname] + [_mb(mem[i.name]) for i in runner.impls])
                print(label, {i: c.text() for i, c in cells["forward+backward"].items()}, flush=True)
    return rows_by_task, memory


def fit_steps(args):
    """Seconds per fit(steps=1) call (one LBFGS step of up to 20 iterations), fresh model each time."""
    from kan import KAN as PyKAN

    X64, y64 = demo.toy_data(args.n, seed=1)
    rows = []
    for dname in args.dtypes:
        dtype = DTYPES[dname]
        X, y = X64.to(dtype), y64.to(dtype)
        dataset = {"train_input": X, "train_label": y, "test_input": X, "test_label": y}

        def kanopy_step():  # -> (seconds, train RMSE after the step)
            model = kanopy.KAN([2, 5, 1], grid=args.fit_grid, k=K, dtype=dtype, seed=0)
            start = time.perf_counter()
            history = model.fit(X, y, steps=1, optimizer="lbfgs", progress=False, update_grid=False)
            return time.perf_counter() - start, history.train_rmse[-1]

        def pykan_step(speed):
            model = PyKAN(width=[2, 5, 1], grid=args.fit_grid, k=K, seed=0, auto_save=False).to(dtype)
            if speed:
                model.speed()
            with contextlib.redirect_stderr(io.StringIO()):  # its tqdm bar
                start = time.perf_counter()
                results = model.fit(dataset, opt="LBFGS", steps=1, update_grid=False)
                return time.perf_counter() - start, float(results["train_loss"][-1])

        runs = {"kanopy": kanopy_step, "pykan speed()": lambda: pykan_step(True),
                "pykan default": lambda: pykan_step(False)}
        cells, rmse = {name: Cell() for name in runs}, {}
        for fn in runs.values():  # warm-up
            fn()
        names = list(runs)
        for r in range(args.fit_repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                seconds, rmse[name] = runs[name]()  # same start every time: same RMSE
                cells[name].times.append(seconds)
        base = cells["kanopy"].median
        for name, cell in cells.items():
            rows.append([dname, name, cell.text(scale=1.0), f"{cell.median / base:.2f}", f"{rmse[name]:.3e}"])
        print("fit", dname, {n: c.text() for n, c in cells.items()}, flush=True)
    return rows


@contextlib.contextmanager
def _unfused_when_regularised():
    """The objective as before the fused regulariser: with lamb > 0 no fused objective, so
    fit evaluates it by autograd over model.trace (the (N, in, out) edge activations)."""
    build = kernels.FusedObjective.__dict__["build"]

    def plain_only(cls, model, reg=None):
        return None if reg and reg.get("lamb") else build.__func__(cls, model, reg)

    kernels.FusedObjective.build = classmethod(plain_only)
    try:
        yield
    finally:
        kernels.FusedObjective.build = build


REG_CASES = [("[2, 5, 1], G=10", [2, 5, 1], 10, 1000), ("[8, 8, 1], G=5", [8, 8, 1], 5, 2000),
             ("[16, 16, 16, 1], G=10", [16, 16, 16, 1], 10, 3000)]


REG_STEPS = 5  # fit steps per timed fit
REG_SLOW_REPEATS = 3  # repeats of the unfused (autograd) fits, 20-30x slower


def regulariser(args):
    """Seconds per fit step (a fit of REG_STEPS LBFGS steps of up to 20 iterations each) and
    per objective evaluation: lamb = 0, lamb = 0.01 (fused) and lamb = 0.01 by autograd (as
    before), interleaved."""
    rows = []
    dtype = torch.float64
    reg = dict(lamb_l1=1.0, lamb_entropy=2.0, lamb_coef=0.0, lamb_coefdiff=0.0)
    for label, widths, G, n in REG_CASES:
        g = torch.Generator().manual_seed(0)
        X = torch.rand(n, widths[0], generator=g, dtype=dtype) * 2 - 1
        y = torch.sin(X.sum(1, keepdim=True)) + X[:, :1] ** 2

        def per_step(lamb, unfused=False):
            model = kanopy.KAN(widths, grid=G, k=K, dtype=dtype, seed=0)
            with _unfused_when_regularised() if unfused else contextlib.nullcontext():
                start = time.perf_counter()
                model.fit(X, y, steps=REG_STEPS, lamb=lamb, progress=False, update_grid=False)
            return (time.perf_counter() - start) / REG_STEPS

        model = kanopy.KAN(widths, grid=G, k=K, dtype=dtype, seed=0)
        objectives = {lamb: kernels.FusedObjective.build(model, dict(lamb=lamb, **reg)) for lamb in (0.0, 0.01)}
        runs = {"fit step, lamb=0": lambda: per_step(0.0), "fit step, lamb=0.01": lambda: per_step(0.01),
                "fit step, lamb=0.01 unfused (before)": lambda: per_step(0.01, unfused=True)}
        evals = {f"evaluation, lamb={lamb:g}": (lambda f=f: _timed(lambda: f(X, y))) for lamb, f in objectives.items()}
        cells = {name: Cell() for name in (*runs, *evals)}
        cells["fit step, lamb=0.01 unfused (before)"].few = True
        for fn in (*runs.values(), *evals.values()):
            fn()  # warm-up
        names = list(runs)
        for r in range(args.fit_repeats):
            for name in names[r % len(names):] + names[: r % len(names)]:
                if "unfused" not in name or r < REG_SLOW_REPEATS:
                    cells[name].times.append(runs[name]())
            for _ in range(5):
                for name, fn in evals.items():
                    cells[name].times.append(fn())
        step_base, eval_base = cells["fit step, lamb=0"].median, cells["evaluation, lamb=0"].median
        for name, cell in cells.items():
            base = eval_base if name.startswith("evaluation") else step_base
            rows.append([label, n, name, cell.text(), f"{cell.median / base:.2f}"])
        print("regulariser", label, {k: c.text() for k, c in cells.items()}, flush=True)
    return rows


# ------------------------------------------------------------------ report
def _mb(entry) -> str:
    if isinstance(entry, str):
        return entry or "-"
    total, own = entry
    return f"{total / 2**20:.3g} ({(total - own) / 2**20:.3g})"


def _ratio(a, b) -> str:
    return f"{a / b:.2f}x" if a and b else "not measured"


def _ms(seconds) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds else "-"


def headline(times, memory, impls):
    """The acceptance numbers of issue 5, as explicit ratios (> 1: kanopy is faster/smaller)."""
    rows = []
    fb = "forward+backward"
    for G in (10, 50):
        cells = times.get((fb, "float32", 1024, 64, G))
        if not cells:
            rows.append([f"fwd+bwd, batch 1024, 64->64, float32, G={G}", "not measured", "", ""])
            continue
        ours = cells["kanopy"].median if "kanopy" in cells else None
        peers = [(cells[n].median, n) for n in ("flashkan", "inkan") if cells.get(n) and cells[n].median]
        if peers:
            best, name = min(peers)
            rows.append([f"fwd+bwd, batch 1024, 64->64, float32, G={G}: kanopy vs faster of flashkan/inkan ({name})",
                         _ms(ours), _ms(best), _ratio(best, ours)])
        pyk = cells["pykan speed()"].median if "pykan speed()" in cells else None
        rows.append([f"fwd+bwd, batch 1024, 64->64, float32, G={G}: kanopy vs pykan speed()",
                     _ms(ours), _ms(pyk), _ratio(pyk, ours)])
    mem = memory.get(("float32", 1024, 64, 50))
    if mem and all(isinstance(mem.get(n), tuple) for n in ("kanopy", "flashkan")):
        (k_all, k_own), (f_all, f_own) = mem["kanopy"], mem["flashkan"]
        rows.append(["bytes saved for backward, batch 1024, 64->64, float32, G=50: kanopy vs flashkan (all)",
                     f"{k_all / 2**20:.3g} MiB", f"{f_all / 2**20:.3g} MiB", _ratio(f_all, k_all)])
        rows.append(["... same, activations only (parameters and buffers left out)",
                     f"{(k_all - k_own) / 2**20:.3g} MiB", f"{(f_all - f_own) / 2**20:.3g} MiB",
                     _ratio(f_all - f_own, k_all - k_own)])
    else:
        rows.append(["bytes saved for backward, batch 1024, 64->64, float32, G=50: kanopy vs flashkan",
                     "not measured", "", ""])
    for task in TASKS:
        pairs = [(cells.get("kanopy"), times.get((task, "float32", *rest), {}).get("kanopy"))
                 for (t, d, *rest), cells in times.items() if t == task and d == "float64"]
        ratios = [c64.median / c32.median for c64, c32 in pairs if c64 and c32 and c64.median and c32.median]
        if ratios:
            rows.append([f"kanopy float64 / float32 time, {task}, over the layer sweep ({len(ratios)} points)",
                         f"median {np.median(ratios):.2f}", f"range {min(ratios):.2f}-{max(ratios):.2f}", ""])
    return _report.table(["what", "kanopy", "other", "other / kanopy"], rows)


def plot(times, impls, args):
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    batch = max(args.batches)
    fig, axes = plt.subplots(1, len(args.widths), figsize=(5.5 * len(args.widths), 4), squeeze=False)
    for ax, w in zip(axes[0], args.widths):
        for impl in impls:
            pts = [(G, times[("forward+backward", "float32", batch, w, G)][impl.name].median) for G in args.grids
                   if ("forward+backward", "float32", batch, w, G) in times]
            pts = [(G, t * 1e3) for G, t in pts if t]
            if pts:
                ax.plot(*zip(*pts), marker="o", label=impl.name)
        ax.set(xscale="log", yscale="log", xlabel="grid size G", ylabel="ms per call",
               title=f"forward+backward, batch {batch}, {w}->{w}, float32")
        ax.set_xticks(args.grids, [str(G) for G in args.grids])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.grid(alpha=0.3, which="both")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=110)
    plt.close(fig)


def sweep_tables(times, memory, impls, args):
    out = []
    heads = ["batch", "in=out", "G"] + [i.name for i in impls]
    for dname in args.dtypes:
        for task in TASKS:
            rows = [[b, w, G] + [times[(task, dname, b, w, G)][i.name].text() for i in impls]
                    for w in args.widths for G in args.grids for b in args.batches]
            out.append(f"#### {task}, {dname}: ms per call, median (min-max)\n\n{_report.table(heads, rows)}")
        rows = [[b, w, G] + [_mb(memory[(dname, b, w, G)][i.name]) for i in impls]
                for w in args.widths for G in args.grids for b in args.batches]
        out.append(f"#### bytes saved for backward, {dname}: MiB in all (activations only)\n\n"
                   f"{_report.table(heads, rows)}")
    return "\n\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 repeats, batch 1024, 64->64, G in {10, 50}")
    parser.add_argument("--headline", action="store_true",
                        help="the acceptance points only: layer sweep at batch 1024, 64->64, float32, G in {10, 50}, "
                             "the check, the fit step and the regulariser")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--impls", nargs="+", choices=[i.name for i in IMPLS], metavar="NAME",
                        help=f"subset of {[i.name for i in IMPLS]} (default: all)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--min-repeats", type=int, default=3, help="repeats when one call takes > --slow s")
    parser.add_argument("--slow", type=float, default=0.5, help="seconds per call above which fewer repeats run")
    parser.add_argument("--skip-after", type=float, default=None,
                        help="seconds per call above which an implementation is skipped here and on larger "
                             "configurations (default 10, --quick: 1)")
    parser.add_argument("--no-input-grad", action="store_true",
                        help="layer sweep: x without requires_grad (default: with, as for an inner layer)")
    parser.add_argument("--fit-repeats", type=int, default=20)
    parser.add_argument("--fit-grid", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()
    args.batches, args.widths, args.grids = [256, 1024], [64, 256], [5, 10, 20, 50, 100]
    args.dtypes, args.n = list(DTYPES), 1000
    args.nets, args.net_grids = [[2, 5, 1], [4, 100, 100, 100, 1]], [10, 50]
    if args.quick:
        args.repeats, args.fit_repeats = 3, 3
    if args.quick or args.headline:
        args.batches, args.widths, args.grids = [1024], [64], [10, 50]
        args.nets, args.net_grids = [[2, 5, 1]], [10]
    if args.headline:
        args.dtypes = ["float32"]
        args.only = [part for part in args.only if part != "networks"]
    if args.skip_after is None:
        args.skip_after = 1.0 if args.quick else 10.0
    torch.set_num_threads(args.threads)
    torch._inductor.config.compile_threads = 1  # no background compile workers competing for the cores
    impls = [i for i in IMPLS if not args.impls or i.name in args.impls]
    _extension.ops()  # build the C++ kernels now, outside any timing
    kernels_isa, torch_isa = _report.kernels_isa()
    print(f"kanopy fused kernels: {kernels_isa}; torch CPU capability: {torch_isa}", flush=True)

    load, start = _report.load_average(), time.perf_counter()
    sections = []
    times, memory, checks_ok = {}, {}, True
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)  # pykan writes under ./model when asked to; keep the checkout clean
        try:
            if "check" in args.only:
                rows, checks_ok = run_checks(_sweep_configs(args), [DTYPES[d] for d in args.dtypes])
                sections.append(("Correctness (kanopy, same run)", (
                    "kanopy layer with random coefficients, scales, bias and mask (backend auto), inputs "
                    "uniform on the spline domain, vs `scipy.interpolate.BSpline.design_matrix` in float64 "
                    "on the layer's own knots and parameters; gradients (x, coef, scale_sp, scale_base) vs "
                    "the pure-PyTorch backend in float64. Uniform knots (as benchmarked): every layer-sweep configuration; "
                    "random non-uniform knots: the smallest batch and width."
                    f"{'' if checks_ok else ' **A CHECK FAILED.**'}\n\n"
                    + _report.table(["dtype", "knots", "configs", "max abs error", "max error / max abs output (worst config)",
                                     "gradient rel. error", "status"], rows))))
            if "layer-sweep" in args.only:
                sweep_runner = Runner(impls, args)
                times, memory = layer_sweep(sweep_runner, args)
            if "networks" in args.only:
                net_runner = Runner(impls, args)
                net_rows, net_mem = networks(net_runner, args)
            if "fit" in args.only:
                fit_rows = fit_steps(args)
            if "regulariser" in args.only:
                reg_rows = regulariser(args)
        finally:
            os.chdir(cwd)
    elapsed = time.perf_counter() - start

    if times:
        sections.append(("Headline (issue 5 acceptance points)", (
            "Ratios > 1 mean kanopy is faster (or saves fewer bytes).\n\n" + headline(times, memory, impls))))
        if not (args.no_write or args.headline or args.quick):  # the plot is of the full sweep
            plot(times, impls, args)
        sections.append(("Layer sweep", (
            f"One layer, in = out, k = 3, uniform grid on [-1, 1], x uniform on [-1, 1] "
            f"{'without requires_grad' if args.no_input_grad else 'with requires_grad (as for an inner layer)'}. "
            f"pykan runs as a one-layer `KAN(width=[in, out])`.\n\n"
            f"![forward+backward time against G]({PLOT.name})\n\n{sweep_runner.skip_notes()}"
            + sweep_tables(times, memory, impls, args))))
    if "networks" in args.only:
        heads = ["widths", "G", "dtype"] + [i.name for i in impls]
        body = "\n\n".join(f"#### {task}: ms per call, median (min-max)\n\n{_report.table(heads, net_rows[task])}"
                           for task in TASKS)
        sections.append(("Networks", (
            f"{args.n} samples uniform on [-1, 1], full batch, input without grad. MLP: Linear+SiLU with the "
            f"same widths.\n\n{net_runner.skip_notes()}{body}\n\n#### bytes saved for backward: MiB in all (activations only)\n\n"
            + _report.table(heads, net_mem))))
    if "fit" in args.only:
        sections.append(("One LBFGS fit step at the science scale", (
            f"[2, 5, 1], G = {args.fit_grid}, {args.n} samples of exp(sin(pi x) + y^2), full batch, "
            "seconds per `fit` call with one step (a fresh model each time, so every step starts from the "
            "same initialisation). kanopy: `model.fit(X, y, steps=1, optimizer=\"lbfgs\", progress=False, "
            "update_grid=False)`; pykan: `model.fit(dataset, opt=\"LBFGS\", steps=1, update_grid=False)` "
            "(its step also evaluates the test set, here the training set again). Both LBFGS steps run up to "
            "20 iterations with a strong-Wolfe line search; the iteration counts are not forced equal, so the "
            "train RMSE reached after the step is given too.\n\n"
            + _report.table(["dtype", "implementation", "s per step, median (min-max)", "time / kanopy",
                             "train RMSE after the step"], fit_rows))))
    if "regulariser" in args.only:
        sections.append(("Sparsity regulariser: fit step and evaluation, lamb > 0 against lamb = 0", (
            f"float64, full batch, x uniform on [-1, 1], y = sin(sum x) + x_1^2; fit step: the time of "
            f"`model.fit(X, y, steps={REG_STEPS}, lamb=lamb, update_grid=False)` on a fresh model over {REG_STEPS} "
            "(a step is one LBFGS call of up to 20 iterations with a strong-Wolfe line search; the objectives "
            "differ, so the evaluations per step may too); evaluation: one call of the fused objective (loss "
            "and gradient, `kernels.FusedObjective`), 5 per round. "
            "\"unfused (before)\": the regularised objective by autograd over `model.trace`, as fit computed it "
            "before the regulariser joined the fused kernels. Interleaved; ratio to lamb = 0 in the last column.\n\n"
            + _report.table(["model", "samples", "what", "ms, median (min-max)", "time / lamb=0"], reg_rows))))
    markdown = f"""## Speed ({kernels_isa.split(" (")[0]} kernels, torch {torch_isa}): kanopy vs pykan 0.2.8, flashkan 0.2.0, inkan 0.5.2 and an MLP

`{_report.command("bench/speed.py")}` (commit {_report.commit()}, took {elapsed / 60:.1f} min).
Machine: {_report.machine()}, 1-minute load average {load} at the start. {_report.build_line(kernels_isa, torch_isa)}
{_report.THREADS_NOTE}

One process; within each configuration the implementations take turns call by call (rotating
who goes first) after warm-up (two calls; flashkan and inkan compile with torch.compile on their
first call, reset for every configuration so each compiles for its exact shapes). Times are
medians of {args.repeats} calls with the min-max range; where one call took more than
{args.slow} s only {args.min_repeats} calls ran (marked n={args.min_repeats}); an implementation whose call took more
than {args.skip_after:g} s is skipped there and on every configuration at least as large (the measured
time is listed). Optimizer step: `torch.optim.Adam(lr=1e-3, fused=True)` on the trainable parameters, MSE
loss. Bytes saved for backward: `torch.autograd.graph.saved_tensors_hooks` over one forward with
grad, each storage counted once, parameters and buffers included (in brackets: without them).
pykan "speed()" is `model.speed()` (no symbolic branch, no saved activations); "default" is
pykan as constructed (`auto_save=False`). All implementations run float64 via `.to(torch.float64)`.

""" + "\n\n".join(f"### {title}\n\n{body}" for title, body in sections)
    print(markdown)
    if not args.no_write:
        _report.write_section(("speed-headline-" if args.headline else "speed-") + _report.isa_key(kernels_isa), markdown)
    if not checks_ok:
        sys.exit("kanopy's outputs did not match the reference: see the correctness table")


if __name__ == "__main__":
    main()
