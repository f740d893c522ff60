"""Layer 2. Fused CuPy kernels, and the switch that says whether they run (``dispatch`` decides
for each call; ``gee_ref.autograd.functional`` asks it). May import backend and ops.

"Fused" means one hand-written CUDA kernel doing what the plain ``xp`` code of an op does
in many array operations: the LIF neuron over all T time steps (``lif.cu``, one thread
per neuron, its membrane potential held in a register; one kernel forward, one
backward), the gathers im2col and col2im of a convolution (``im2col.cu``, one thread
per output element, reading the input through its strides), and batch normalisation
(``batch_norm.cu``: per-channel sums in two stages without barriers, then one
elementwise pass forward and one backward). They run only on CuPy arrays of float32 or
float64; everything else takes the plain path.

The plain ``xp`` code in ``gee_ref/ops`` (``ops/lif.py``, ``ops/im2col.py``,
``ops/batch_norm.py``) stays the
reference: each kernel follows its equations in the same order of operations, and is
checked against it three ways (tests/test_kernels_*.py): the same .cu source compiled
by g++ behind a small emulation prelude and compared with the NumPy ops on the CPU; the
source compiled by NVRTC (CuPy's compiler) for float and double, so that compile errors
show without a GPU; and on a GPU, fused against plain CuPy (float64 within 1e-10
relative, float32 within 1e-5, spikes equal).

Off by default until that GPU test has passed; on with ``set_enabled(True)`` or with the
environment variable ``GEE_REF_FUSED_KERNELS=1``. ``using(flag)`` switches them for a
``with`` block (tests, benchmarks).
"""
from __future__ import annotations

import contextlib
import os

import numpy

from gee_ref import backend

#: The dtypes the kernels are compiled for (``real`` = float or double).
KERNEL_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))

_enabled = os.environ.get("GEE_REF_FUSED_KERNELS", "0") == "1"


def set_enabled(flag: bool) -> None:
    """Take the fused kernels (True) or the plain xp code (False) from now on."""
    if not isinstance(flag, bool):
        raise ValueError(f"set_enabled expects True or False, got {flag!r}")
    global _enabled
    _enabled = flag


def enabled() -> bool:
    """Whether the fused kernels are switched on."""
    return _enabled


@contextlib.contextmanager
def using(flag: bool):
    """Switch the fused kernels on or off inside a ``with`` block, then restore the setting."""
    previous = _enabled
    set_enabled(flag)
    try:
        yield
    finally:
        set_enabled(previous)


def applies(array) -> bool:
    """True when the kernels are on and ``array`` is a CuPy array of float32 or float64."""
    return (_enabled and backend.get_array_module(array) is not numpy
            and numpy.dtype(array.dtype) in KERNEL_DTYPES)
