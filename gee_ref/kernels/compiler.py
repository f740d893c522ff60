"""Build the fused kernels with CuPy (NVRTC) and launch them over any number of elements.

Each .cu file ships inside the package and is written for an element type ``real``,
fixed at compile time by ``-DREAL=float`` or ``-DREAL=double``, and an index type ``index_t``,
``-DINDEX_BITS=32`` (int) or ``-DINDEX_BITS=64`` (long long). A file is compiled once per
(element type, index type) (``cupy.RawModule``, cached here and in CuPy's own disk cache).

The index type is decided on the host, per launch, by ``index_type``: 32 bits whenever every
index the kernel can form (the largest array offset, plus the overshoot of one grid stride)
fits in an int, 64 bits otherwise. The kernels divide and take remainders per element, and a
GPU does that several times faster in 32 bits.

Fused multiply-add is switched off (``--fmad=false``): NVRTC would otherwise contract
``a * b + c`` into one rounding, where the plain xp code (one CuPy kernel per operation)
rounds twice, and spikes near the threshold could then differ.

Launches use 256 threads per block and a grid-stride loop in every kernel (each thread
steps by the total number of threads), so the grid may be smaller than the work: at most
``MAX_BLOCKS`` blocks, any element count that fits in a ``long long``.
"""
from __future__ import annotations

import functools
import importlib.resources
import re

import numpy

from gee_ref import backend

SOURCES = ("lif.cu", "im2col.cu", "batch_norm.cu")
PRELUDE = "index_type.cuh"  # the index type every kernel file uses
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535
REAL_NAMES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}
INDEX_BITS = {numpy.dtype(numpy.int32): 32, numpy.dtype(numpy.int64): 64}
INT32_MAX = 2**31 - 1


def source_text(file: str) -> str:
    """The CUDA source of one of the package's kernel files, after the index type they share
    (``index_type.cuh``)."""
    if file not in SOURCES:
        raise ValueError(f"unknown kernel file {file!r}: expected one of {', '.join(SOURCES)}")
    folder = importlib.resources.files("gee_ref.kernels")
    return folder.joinpath(PRELUDE).read_text() + folder.joinpath(file).read_text()


def real_name(dtype) -> str:
    """The C type of ``real`` for an array dtype: "float" or "double"."""
    try:
        return REAL_NAMES[numpy.dtype(dtype)]
    except (KeyError, TypeError):
        raise ValueError(f"fused kernels support float32 and float64, got dtype {dtype!r}") from None


def kernel_names(file: str) -> tuple:
    """The names of the ``extern "C"`` kernels of one .cu file, in source order."""
    return tuple(re.findall(r'extern "C" __global__ void (\w+)\(', source_text(file)))


def index_bits(index) -> int:
    """32 or 64 for the index type numpy.int32 or numpy.int64."""
    try:
        return INDEX_BITS[numpy.dtype(index)]
    except (KeyError, TypeError):
        raise ValueError(f"kernel indices are numpy.int32 or numpy.int64, got {index!r}") from None


def index_type(largest: int):
    """numpy.int32 when every index a launch forms (at most ``largest``, plus one grid stride of
    at most MAX_BLOCKS x THREADS_PER_BLOCK past the end) fits in an int, else numpy.int64."""
    if largest + MAX_BLOCKS * THREADS_PER_BLOCK <= INT32_MAX:
        return numpy.int32
    return numpy.int64


def compile_options(dtype, index=numpy.int64) -> tuple:
    """The NVRTC options for an element and an index type (the GPU architecture is CuPy's to add)."""
    return (f"-DREAL={real_name(dtype)}", f"-DINDEX_BITS={index_bits(index)}", "--fmad=false")


@functools.lru_cache(maxsize=None)
def _module(file: str, dtype: numpy.dtype, index: numpy.dtype):
    cupy = backend.xp_for("gpu")  # DeviceUnavailableError without CuPy and a GPU
    return cupy.RawModule(code=source_text(file), options=compile_options(dtype, index))


@functools.lru_cache(maxsize=None)
def _kernel(file: str, name: str, dtype: numpy.dtype, index: numpy.dtype):
    return _module(file, dtype, index).get_function(name)


def kernel(file: str, name: str, dtype, index=numpy.int64):
    """The compiled kernel ``name`` of ``file`` for arrays of ``dtype`` and indices of type
    ``index`` (numpy.int32 or numpy.int64, from ``index_type``): a cupy.RawKernel."""
    real_name(dtype)  # a ValueError for a dtype without a kernel
    index_bits(index)
    return _kernel(file, name, numpy.dtype(dtype), numpy.dtype(index))


def launch_geometry(count: int) -> tuple[int, int]:
    """(blocks, threads per block) for ``count`` elements: enough blocks, at most MAX_BLOCKS."""
    if count < 0:
        raise ValueError(f"element count must be >= 0, got {count}")
    blocks = (count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return max(1, min(blocks, MAX_BLOCKS)), THREADS_PER_BLOCK


def launch(run, count: int, args: tuple) -> None:
    """Run a kernel over ``count`` elements (nothing to do for none).

    Scalars in ``args`` must be numpy scalars of the kernel's parameter types
    (the kernel's index type for ``index_t``, numpy.float64 for ``double``, numpy.int32 for ``int``).
    """
    if count == 0:
        return
    blocks, threads = launch_geometry(count)
    run((blocks,), (threads,), args)
