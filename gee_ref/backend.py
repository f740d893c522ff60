"""Backend: NumPy on the CPU or CuPy on the GPU, behind one ``xp`` code path.

Every other layer of gee_ref asks this module for its array module instead of
importing numpy or cupy directly (the Chainer idiom)::

    xp = backend.get_array_module(x)      # numpy or cupy, whichever holds x
    xp = backend.xp_for("gpu")            # by device name

It also fixes the dtype policy (float32 to train, float64 to check numbers),
hands out seeded random generators on either device, and moves arrays between
host and device. On the GPU, float32 matrix products may use TF32 tensor cores
(``set_tf32``), an explicit option that is off by default.

On the CPU it also sets how glibc's allocator treats large blocks (``tune_host_allocator``,
done once when this module is imported; ``GEE_REF_MALLOC_TUNING=0`` leaves glibc as it is).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import sys

import numpy

DEVICES = ("cpu", "gpu")
TRAIN_DTYPE = numpy.float32   # networks are trained in float32
CHECK_DTYPE = numpy.float64   # gradient checks and golden vectors use float64


class DeviceUnavailableError(RuntimeError):
    """Raised when the GPU is asked for but CuPy or a CUDA device is missing."""


_cupy_failure = None  # why the last _import_cupy() found no usable GPU (None: it found one)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _import_cupy():
    """Return the cupy module if it imports and sees at least one GPU, else None.

    Why it could not be used (CuPy's own error, in one line) is kept for
    ``gpu_unavailable_reason``: a missing GPU must be explainable, not only skipped.
    """
    global _cupy_failure
    try:
        import cupy
    except Exception as error:  # ImportError, or a CUDA library that fails to load
        _cupy_failure = f"CuPy does not import ({_one_line(error)})"
        return None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # no driver, a driver older than the CUDA runtime, ...
        _cupy_failure = f"CuPy {getattr(cupy, '__version__', '?')} imports, but CUDA fails ({_one_line(error)})"
        return None
    if count < 1:
        _cupy_failure = f"CuPy {getattr(cupy, '__version__', '?')} imports, but CUDA sees no device"
        return None
    _cupy_failure = None
    return cupy


def gpu_available() -> bool:
    """True when CuPy is installed and a CUDA device answers."""
    return _import_cupy() is not None


def gpu_unavailable_reason():
    """Why the GPU cannot be used, in one line (CuPy's own error), or None when it can."""
    return None if _import_cupy() is not None else _cupy_failure


def xp_for(device: str):
    """The array module for a device name: ``numpy`` for "cpu", ``cupy`` for "gpu"."""
    if device not in DEVICES:
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(DEVICES)}")
    if device == "cpu":
        return numpy
    cupy = _import_cupy()
    if cupy is None:
        raise DeviceUnavailableError(
            f"device 'gpu' was asked for, but {_cupy_failure} "
            "(install gee_ref[gpu] on a machine with an NVIDIA GPU, or use --device cpu)")
    return cupy


def get_array_module(*arrays):
    """numpy or cupy, whichever holds the given arrays (numpy when none is a cupy array)."""
    for a in arrays:
        module = type(a).__module__
        if module.startswith("cupy"):
            import cupy
            return cupy
    return numpy


def device_of(array) -> str:
    """"gpu" for a cupy array, "cpu" otherwise."""
    return "gpu" if get_array_module(array) is not numpy else "cpu"


def to_host(array):
    """A numpy copy (or view) of an array living on either device."""
    if get_array_module(array) is numpy:
        return numpy.asarray(array)
    return array.get()


def to_device(array, device: str):
    """The array on the named device (no copy when it is already there)."""
    xp = xp_for(device)
    if xp is numpy:
        return to_host(array)
    return xp.asarray(array)


def cpu_blocks(xp, length: int, size: int) -> list:
    """Slices of ``range(length)`` of ``size`` each (at least 1) on the CPU, where the ops walk
    their arrays in cache-sized blocks; one slice of everything on a GPU, whose memory is not a
    cache. The ops choose ``size``; the rule for the device is here."""
    if xp.__name__ != "numpy":
        return [slice(0, length)]
    size = max(1, size)
    return [slice(start, min(start + size, length)) for start in range(0, length, size)]


def derive_seed(*keys) -> int:
    """A 63-bit seed from a tuple of keys, e.g. (run seed, generation, index).

    Deterministic across processes and machines (a hash, not Python's salted
    ``hash``), so an evaluation's random numbers never depend on which worker ran it.
    """
    text = "/".join(str(k) for k in keys).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def rng(seed, device: str = "cpu"):
    """A seeded random Generator on the device (numpy's or cupy's ``default_rng``)."""
    return xp_for(device).random.default_rng(seed)


def synchronize(xp) -> None:
    """Wait for queued GPU work (no-op on NumPy); only for timing and tests."""
    if xp is not numpy:
        xp.cuda.Device().synchronize()


# CuPy's compute types for cuBLAS (cupy/_core/_routines_linalg.pxd); looked up by name first.
_CUPY_COMPUTE_TYPE_DEFAULT, _CUPY_COMPUTE_TYPE_TF32 = 1, 7


def set_tf32(enabled: bool) -> None:
    """Let CuPy's float32 matrix products run on TF32 tensor cores (True) or in strict float32.

    TF32 keeps float32's range but rounds the GEMM inputs to a 10-bit mantissa (about 3
    decimal digits); PyTorch calls the same switch ``allow_tf32``. Off by default, because the
    reference numbers of gee_ref are float32 and float64. Needs CuPy and a GPU of compute
    capability 8.0 or more (Ampere, Hopper); NumPy on the CPU has no TF32. CuPy applies the
    switch to its 2-D products (``dot``, ``matmul`` of matrices: every layer of a network); its
    batched 3-D ``matmul`` (a population's stacked individuals, ``gee_ref.nn.population``) stays strict float32.
    """
    cupy = _import_cupy()
    if cupy is None:
        raise DeviceUnavailableError("TF32 is a GPU option: CuPy with a CUDA GPU is needed (or leave --tf32 off)")
    from cupy._core import _routines_linalg as linalg

    if enabled and int(cupy.cuda.Device().compute_capability) < 80:
        raise DeviceUnavailableError(
            f"TF32 needs a GPU of compute capability 8.0 or more, this one is {cupy.cuda.Device().compute_capability}")
    tf32 = getattr(linalg, "COMPUTE_TYPE_TF32", _CUPY_COMPUTE_TYPE_TF32)
    default = getattr(linalg, "COMPUTE_TYPE_DEFAULT", _CUPY_COMPUTE_TYPE_DEFAULT)
    linalg.set_compute_type(numpy.float32, tf32 if enabled else default)


def tf32_enabled() -> bool:
    """Whether CuPy's float32 matrix products currently use TF32 (False without CuPy)."""
    cupy = _import_cupy()
    if cupy is None:
        return False
    from cupy._core import _routines_linalg as linalg

    return linalg.get_compute_type(numpy.float32) == getattr(linalg, "COMPUTE_TYPE_TF32", _CUPY_COMPUTE_TYPE_TF32)


# ---------------------------------------------------------------------------- the host allocator

#: mallopt's parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
#: The environment variables through which a user sets glibc's allocator; when any is set, it wins.
GLIBC_MALLOC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def tune_host_allocator(environ=None) -> str:
    """Tell glibc to keep the memory that NumPy frees, so that the next step reuses it.

    A training step allocates the same large temporaries on every step (activations, the
    surrogate's and batch norm's buffers, gradients: tens of MB each). By default glibc serves
    every block above its mmap threshold (128 KiB, rising with use to at most 32 MiB) with a
    fresh ``mmap`` and unmaps it when freed, and hands the top of its heap back to the system
    once more than twice that threshold is free there. The next step then gets fresh pages,
    which the kernel has to fault in and zero: measured as a fifth of a small net's step in
    system time on this project's CPUs (issue 15). Two ``mallopt`` settings stop that:

    * ``M_MMAP_MAX = 0``: no block is served by ``mmap``; large ones come from the heap;
    * ``M_TRIM_THRESHOLD = -1``: freed memory at the top of the heap is never handed back.

    The cost: the process keeps its peak memory (the resident set does not shrink after a
    step). The setting is skipped, and the reason returned, when ``GEE_REF_MALLOC_TUNING=0``,
    when glibc's own variables (``GLIBC_MALLOC_VARIABLES`` or a malloc entry of
    ``GLIBC_TUNABLES``) are set (the user's choice wins), and on a C library other than glibc.
    Numbers are not changed: only where NumPy's memory comes from.
    """
    environ = os.environ if environ is None else environ
    if environ.get("GEE_REF_MALLOC_TUNING", "1").strip() == "0":
        return "off (GEE_REF_MALLOC_TUNING=0)"
    chosen = [name for name in GLIBC_MALLOC_VARIABLES if name in environ]
    if "malloc" in environ.get("GLIBC_TUNABLES", ""):
        chosen.append("GLIBC_TUNABLES")
    if chosen:
        return f"left to the environment ({', '.join(chosen)})"
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return f"not glibc ({sys.platform}, {platform.libc_ver()[0] or 'unknown C library'}): left as it is"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "glibc without mallopt: left as it is"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if mallopt(_M_MMAP_MAX, 0) != 1 or mallopt(_M_TRIM_THRESHOLD, -1) != 1:
        return "mallopt refused: left as it is"
    return "tuned (M_MMAP_MAX=0, M_TRIM_THRESHOLD=-1: freed memory is kept for reuse)"


host_allocator = tune_host_allocator()  # what was done, in words (the benchmarks record it)
