"""Matrix products and CuPy's cuBLAS compute type (cupy/_core/_routines_linalg.pyx).

``get_compute_type(dtype)`` is COMPUTE_TYPE_DEFAULT until set, or COMPUTE_TYPE_TF32 for float32
when the environment has ``CUPY_TF32=1``; ``set_compute_type`` takes the TF32/BF16 types only
on a device of compute capability 8.0 or more (the stand-in reports 9.0). Under TF32 a
float32 2-D product (``dot``, ``matmul`` and ``@`` of matrices and vectors) rounds its inputs
to TF32's 10-bit mantissa (round to nearest, ties to even) and accumulates in float32, as
the tensor cores do; a batched product (more than 2 dimensions) stays strict float32, as
CuPy's strided-batched GEMM path does.
"""
from __future__ import annotations

import os

import numpy

COMPUTE_TYPES = {"COMPUTE_TYPE_TBD": 0, "COMPUTE_TYPE_DEFAULT": 1, "COMPUTE_TYPE_PEDANTIC": 2,
                 "COMPUTE_TYPE_FP16": 3, "COMPUTE_TYPE_FP32": 4, "COMPUTE_TYPE_FP64": 5,
                 "COMPUTE_TYPE_BF16": 6, "COMPUTE_TYPE_TF32": 7}
TF32, DEFAULT, TBD = COMPUTE_TYPES["COMPUTE_TYPE_TF32"], COMPUTE_TYPES["COMPUTE_TYPE_DEFAULT"], 0
COMPUTE_CAPABILITY = "90"  # the device the stand-in pretends to be (a Hopper, like an H100)

_compute_types = [TBD, TBD, TBD]  # float16, float32, float64


def _index(dtype) -> int:
    char = numpy.dtype(dtype).char
    if char == "e":
        return 0
    if char in "fF":
        return 1
    if char in "dD":
        return 2
    raise TypeError(f"dtype is not supported: {dtype}")


def get_compute_type(dtype) -> int:
    index = _index(dtype)
    if _compute_types[index] == TBD:
        tf32 = numpy.dtype(dtype).char in "fF" and int(os.getenv("CUPY_TF32", "0")) > 0
        set_compute_type(dtype, TF32 if tf32 else DEFAULT)
    return _compute_types[index]


def set_compute_type(dtype, compute_type) -> None:
    if compute_type not in COMPUTE_TYPES.values():
        raise ValueError(f"Unknown compute type: {compute_type}")
    if compute_type in (COMPUTE_TYPES["COMPUTE_TYPE_BF16"], TF32) and int(COMPUTE_CAPABILITY) < 80:
        raise RuntimeError("TF32 and BF16 compute types need compute capability 8.0 or more")
    _compute_types[_index(dtype)] = compute_type


def reset() -> None:
    _compute_types[:] = [TBD, TBD, TBD]


def round_to_tf32(values: numpy.ndarray) -> numpy.ndarray:
    """float32 values rounded to 10 mantissa bits (13 low bits dropped, to nearest, ties to even)."""
    bits = numpy.ascontiguousarray(values, dtype=numpy.float32).view(numpy.uint32)
    lowest_kept = (bits >> numpy.uint32(13)) & numpy.uint32(1)
    rounded = (bits + numpy.uint32(0x0FFF) + lowest_kept) & numpy.uint32(0xFFFFE000)
    finite = numpy.isfinite(values)
    return numpy.where(finite, rounded.view(numpy.float32), values)


def operands(a: numpy.ndarray, b: numpy.ndarray):
    """The inputs a 2-D product really multiplies: TF32-rounded under COMPUTE_TYPE_TF32."""
    if (a.dtype == numpy.float32 and b.dtype == numpy.float32 and a.ndim <= 2 and b.ndim <= 2
            and get_compute_type(numpy.float32) == TF32):
        return round_to_tf32(a), round_to_tf32(b)
    return a, b
