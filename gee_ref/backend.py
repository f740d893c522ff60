"""Backend: NumPy on the CPU or CuPy on the GPU, behind one ``xp`` code path.

Every other layer of gee_ref asks this module for its array module instead of
importing numpy or cupy directly (the Chainer idiom)::

    xp = backend.get_array_module(x)      # numpy or cupy, whichever holds x
    xp = backend.xp_for("gpu")            # by device name

It also fixes the dtype policy (float32 to train, float64 to check numbers),
hands out seeded random generators on either device, and moves arrays between
host and device. On the GPU, float32 matrix products may use TF32 tensor cores
(``set_tf32``), an explicit option that is off by default.
"""
from __future__ import annotations

import hashlib

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
    batched 3-D ``matmul`` (``gee_ref.evolution.population``'s stacked individuals) stays strict float32.
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
