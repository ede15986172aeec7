"""BLAS and LAPACK calls whose results do not depend on the number of threads.

The BLAS/LAPACK of torch's x86 wheels (MKL) splits matrix products, factorizations and
least-squares solves differently for each number of threads, and rounds differently for
each split: a fit differs in its last bits between a run on one core and one on two, and a
search that decides on such numbers (which formula is simpler, which error is lower) no
longer reproduces from its seed. Inside ``sequential()`` MKL runs single-threaded for the
calls made from this thread (``mkl_set_num_threads_local``: a thread-local setting, put
back on exit), so they give the same bits whatever the process's thread count; torch's own
kernels and kanopy's fused kernels keep their threads (but for a pool first started within
the block: it has one thread until the block ends). Without MKL (other builds) it does
nothing.
"""

from __future__ import annotations

import ctypes
import os
from contextlib import contextmanager

import torch

_setter: list = []  # [the C function, or None], looked up once


def _local_thread_setter():
    if not _setter:
        function = None
        try:
            library = ctypes.CDLL(os.path.join(os.path.dirname(torch.__file__), "lib", "libtorch_cpu.so"))
            function = library.MKL_Set_Num_Threads_Local  # the C interface (by value)
            function.restype, function.argtypes = ctypes.c_int, [ctypes.c_int]
        except (OSError, AttributeError):
            function = None
        _setter.append(function)
    return _setter[0]


@contextmanager
def sequential():
    """MKL single-threaded for the calls this thread makes within the block."""
    setter = _local_thread_setter()
    if setter is None:
        yield
        return
    threads = torch.get_num_threads()  # (torch sizes its pool on this thread first, from MKL's count)
    previous = setter(1)
    try:
        yield
    finally:
        setter(previous)
        # a library that starts its threads within the block (kanopy's fused kernels, on
        # their first call) sizes them from MKL's count, 1: give this thread back its count
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
