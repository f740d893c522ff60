"""cupy.RawModule of the stand-in: the CUDA source compiled by g++ and run on the host.

The source is built as C++ behind ``tests/gpu_emulation/kernel_emulation.h`` (``__global__`` and the thread
indices emulated; tests/gpu_emulation/kernel_emulation.py), once per (code, options), with the ``-D``
macros of the NVRTC options (``-DREAL=float -DINDEX_BITS=32``); ``--fmad=false`` is matched by g++'s
``-ffp-contract=off``. ``get_function(name)`` gives a kernel called like a cupy.RawKernel,
``kernel(grid, block, args)``: each argument is checked against the kernel's C parameter list
(a device array for a pointer, the NumPy scalar type CuPy maps to the C type for a scalar);
a NumPy array is CuPy's ``TypeError: Unsupported type`` (cupy/cuda/function.pyx). The body
runs on the emulation's small grid of host threads, whatever grid was asked for, so that
each grid-stride loop strides.
"""
from __future__ import annotations

import atexit
import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy

from .. import kernel_emulation
from . import conversion

_REAL_TYPES = {"float": numpy.float32, "double": numpy.float64}
_INDEX_TYPES = {"32": numpy.int32, "64": numpy.int64}
_build_dir: Path | None = None
_libraries: dict = {}


def _directory() -> Path:
    global _build_dir
    if _build_dir is None:
        _build_dir = Path(tempfile.mkdtemp(prefix="cupy-standin-kernels-"))
        atexit.register(shutil.rmtree, _build_dir, True)
    return _build_dir


def _defines(options) -> list:
    return [o for o in options if o.startswith("-D")]


def _real_type(options):
    for option in options:
        match = re.fullmatch(r"-DREAL=(\w+)", option)
        if match:
            return _REAL_TYPES[match.group(1)]
    return numpy.float64


def _index_type(options):
    for option in options:
        match = re.fullmatch(r"-DINDEX_BITS=(32|64)", option)
        if match:
            return _INDEX_TYPES[match.group(1)]
    return numpy.int64


def _build(code: str, options: tuple):
    key = (code, options)
    if key not in _libraries:
        if kernel_emulation.gxx() is None:
            raise RuntimeError("the CuPy stand-in compiles raw kernels with g++, which is not installed")
        stem = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        source, library = _directory() / f"{stem}.cu", _directory() / f"{stem}.so"
        source.write_text(code)
        command = [kernel_emulation.gxx(), *kernel_emulation.GXX_FLAGS, "-x", "c++", "-include",
                   str(kernel_emulation.PRELUDE), *_defines(options), str(source), "-o", str(library)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"stand-in RawModule: g++ failed on the kernel source:\n{done.stderr}")
        import ctypes

        _libraries[key] = ctypes.CDLL(str(library))
    return _libraries[key]


class RawKernel:
    """One kernel of a stand-in RawModule, called as ``kernel(grid, block, args)``."""

    def __init__(self, emulated, name: str):
        self._emulated, self.name = emulated, name

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None, enable_cooperative_groups=False):
        if not isinstance(args, tuple):
            raise TypeError("kernel arguments must be a tuple")
        host_args = tuple(_kernel_value(a, self.name) for a in args)
        self._emulated(grid, block, host_args)


def _kernel_value(value, name):
    from .ndarray import ndarray

    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, numpy.ndarray):
        raise conversion.unsupported(value, f"raw kernel {name}")
    return value


class RawModule:
    """cupy.RawModule(code=..., options=...) compiled for the host."""

    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None:
            if path is None:
                raise TypeError("One of code and path must be given")
            code = Path(path).read_text()
        self.code, self.options, self.backend = code, tuple(options), backend
        self._library = _build(code, self.options)

    def get_function(self, name: str) -> RawKernel:
        parameters = kernel_emulation.kernel_parameters(self.code)
        if name not in parameters:
            raise RuntimeError(f"cuModuleGetFunction: CUDA_ERROR_NOT_FOUND: named symbol not found ({name})")
        emulated = kernel_emulation.EmulatedKernel(self._library, name, _real_type(self.options), parameters[name],
                                                   _index_type(self.options))
        return RawKernel(emulated, name)
