"""Build the fused kernels with CuPy (NVRTC) and launch them over any number of elements.

Each .cu file ships inside the package and is written for an element type ``real``,
fixed at compile time by ``-DREAL=float`` or ``-DREAL=double``. A file is compiled once
per element type (``cupy.RawModule``, cached here and in CuPy's own disk cache).

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

import numpy

from gee_ref import backend

SOURCES = ("lif.cu", "im2col.cu", "batch_norm.cu")
THREADS_PER_BLOCK = 256
MAX_BLOCKS = 65535
REAL_NAMES = {numpy.dtype(numpy.float32): "float", numpy.dtype(numpy.float64): "double"}


def source_text(file: str) -> str:
    """The CUDA source of one of the package's kernel files."""
    if file not in SOURCES:
        raise ValueError(f"unknown kernel file {file!r}: expected one of {', '.join(SOURCES)}")
    return importlib.resources.files("gee_ref.kernels").joinpath(file).read_text()


def real_name(dtype) -> str:
    """The C type of ``real`` for an array dtype: "float" or "double"."""
    try:
        return REAL_NAMES[numpy.dtype(dtype)]
    except (KeyError, TypeError):
        raise ValueError(f"fused kernels support float32 and float64, got dtype {dtype!r}") from None


def compile_options(dtype) -> tuple:
    """The NVRTC options for an element type (the GPU architecture is CuPy's to add)."""
    return (f"-DREAL={real_name(dtype)}", "--fmad=false")


@functools.lru_cache(maxsize=None)
def _module(file: str, dtype: numpy.dtype):
    cupy = backend.xp_for("gpu")  # DeviceUnavailableError without CuPy and a GPU
    return cupy.RawModule(code=source_text(file), options=compile_options(dtype))


@functools.lru_cache(maxsize=None)
def _kernel(file: str, name: str, dtype: numpy.dtype):
    return _module(file, dtype).get_function(name)


def kernel(file: str, name: str, dtype):
    """The compiled kernel ``name`` of ``file`` for arrays of ``dtype`` (a cupy.RawKernel)."""
    real_name(dtype)  # a ValueError for a dtype without a kernel
    return _kernel(file, name, numpy.dtype(dtype))


def launch_geometry(count: int) -> tuple[int, int]:
    """(blocks, threads per block) for ``count`` elements: enough blocks, at most MAX_BLOCKS."""
    if count < 0:
        raise ValueError(f"element count must be >= 0, got {count}")
    blocks = (count + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    return max(1, min(blocks, MAX_BLOCKS)), THREADS_PER_BLOCK


def launch(run, count: int, args: tuple) -> None:
    """Run a kernel over ``count`` elements (nothing to do for none).

    Scalars in ``args`` must be numpy scalars of the kernel's parameter types
    (numpy.int64 for ``long long``, numpy.float64 for ``double``, numpy.int32 for ``int``).
    """
    if count == 0:
        return
    blocks, threads = launch_geometry(count)
    run((blocks,), (threads,), args)
