"""A seeded search run twice in this process and once pinned to one core (`taskset`): the
tests that use it show that the search depends on no clock and no thread count, so that its
seed gives the same result on a slow machine, a busy one and one with a single core.

A script prints one JSON value (bit patterns as hex where they matter); the pinned run is a
fresh interpreter that asserts it has one thread.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys

import pytest


def run_here(script: str):
    """The JSON value `script` prints, run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(script, {"__name__": "__reproduction__"})
    return json.loads(out.getvalue())


def run_pinned(script: str):
    """The JSON value `script` prints, run in a fresh interpreter pinned to one core (skips
    the test without taskset or without a second core to compare against)."""
    cores = os.sched_getaffinity(0)
    if shutil.which("taskset") is None or len(cores) < 2:
        pytest.skip("needs taskset and two cores to compare against one core")
    pinned = subprocess.run(["taskset", "-c", str(min(cores)), sys.executable, "-c",
                             "import torch; assert torch.get_num_threads() == 1\n" + script],
                            capture_output=True, text=True, timeout=600)
    assert pinned.returncode == 0, pinned.stderr[-2000:]
    return json.loads(pinned.stdout)


def assert_reproduced(script: str, check=None):
    """Twice here (with this process's threads) and once on one core: the same value.
    `check(value)`, when given, asserts what the value must be, before the pinned run (which
    may skip)."""
    first, second = run_here(script), run_here(script)
    assert first == second
    if check is not None:
        check(first)
    assert run_pinned(script) == first
