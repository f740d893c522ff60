"""Test helper: gee_ref's CUDA kernels compiled by g++ and run on NumPy arrays, no GPU.

The .cu file is compiled as C++ with ``kernel_emulation.h`` force-included (it turns
``__global__``/``__device__`` into nothing and the thread indices into globals), one
shared library per (file, element type, index type). ``EmulatedKernel`` then stands in for the
``cupy.RawKernel`` that ``gee_ref.kernels.compiler.kernel`` returns: same call
``kernel(grid, block, args)``, NumPy arrays passed as pointers, and the kernel body run
once per emulated thread of a small grid (``EMULATED_GRID``), so that each grid-stride
loop really strides. Patch ``compiler.kernel`` with ``Emulation.kernel`` and the fused
wrappers of gee_ref run unchanged on NumPy arrays.

Each argument is checked against the kernel's parameter list, read from its
``extern "C" __global__ void name(...)`` line: an array for a pointer, of the element type it
points to (``real`` is the type the kernel was built for; a ``double*`` scratch array is
float64 whatever ``real`` is), and for a scalar the numpy scalar type CuPy maps to that C type
(``index_t``: numpy.int32 or numpy.int64, as the kernel was built).
"""
from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
from pathlib import Path

import numpy

from gee_ref.kernels import compiler

PRELUDE = Path(__file__).with_name("kernel_emulation.h")
EMULATED_GRID = (2, 3)  # blocks, threads per block: six threads, each striding by six
GXX_FLAGS = ("-std=c++17", "-O1", "-ffp-contract=off", "-fno-fast-math", "-shared", "-fPIC")


def gxx() -> str | None:
    """Path of g++, or None."""
    return shutil.which("g++")


def build_library(file: str, dtype, out_dir: Path, index=numpy.int64) -> ctypes.CDLL:
    """Compile one kernel file for one element and index type into a shared library and load it."""
    real = compiler.real_name(dtype)
    source = out_dir / file
    source.write_text(compiler.source_text(file))
    library = out_dir / f"{Path(file).stem}_{real}_i{compiler.index_bits(index)}.so"
    defines = [o for o in compiler.compile_options(dtype, index) if o.startswith("-D")]
    command = [gxx(), *GXX_FLAGS, "-x", "c++", "-include", str(PRELUDE), *defines, str(source), "-o", str(library)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"g++ failed on {file} ({' '.join(defines)}):\n{done.stderr}")
    return ctypes.CDLL(str(library))


#: C types of kernel parameters -> the numpy type of the array (pointers) or scalar passed
C_TYPES = {"double": numpy.float64, "float": numpy.float32, "long long": numpy.int64, "int": numpy.int32}
SCALAR_C_TYPES = {numpy.int64: ctypes.c_longlong, numpy.float64: ctypes.c_double, numpy.int32: ctypes.c_int}
_KERNEL_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)')


def kernel_parameters(source: str) -> dict:
    """{kernel name: [(C type, is pointer), ...]} of every extern "C" kernel in a .cu source."""
    kernels = {}
    for name, parameters in _KERNEL_SIGNATURE.findall(source):
        declared = []
        for parameter in parameters.split(","):
            words = parameter.replace("*", " * ").replace("const", " ").split()[:-1]  # drop the name
            pointer = "*" in words
            declared.append((" ".join(w for w in words if w != "*"), pointer))
        kernels[name] = declared
    return kernels


def _c_argument(value, c_type: str, pointer: bool, real, index):
    """A kernel argument as ctypes sees it, checked against its declared C type."""
    expected = numpy.dtype({"real": real, "index_t": index}.get(c_type) or C_TYPES[c_type])
    if pointer:
        if not isinstance(value, numpy.ndarray):
            raise TypeError(f"an array of {expected} for a {c_type}* parameter, got {type(value).__name__}")
        if value.dtype != expected:
            raise TypeError(f"array argument of dtype {value.dtype} for a {c_type}* parameter ({expected})")
        return ctypes.c_void_p(value.ctypes.data)
    if type(value) is not expected.type:
        raise TypeError(f"kernel argument {value!r} of type {type(value).__name__} for a {c_type} parameter: "
                        f"pass {expected.type.__name__} so that CuPy gets the C type right")
    return SCALAR_C_TYPES[expected.type](value)


class EmulatedKernel:
    """One kernel of an emulation library, called like a cupy.RawKernel."""

    def __init__(self, library: ctypes.CDLL, name: str, dtype, parameters, index=numpy.int64):
        self.library, self.dtype, self.parameters = library, numpy.dtype(dtype), parameters
        self.index = numpy.dtype(index)
        self.function = getattr(library, name)
        self.function.restype = None

    def __call__(self, grid, block, args):
        """Run every thread of EMULATED_GRID in turn (the grid asked for is not used)."""
        blocks, threads = EMULATED_GRID
        for b in range(blocks):
            for t in range(threads):
                self.run_thread(b, t, args)

    def run_thread(self, block: int, thread: int, args) -> None:
        """The kernel body of one thread of the EMULATED_GRID (its grid-stride share only)."""
        blocks, threads = EMULATED_GRID
        if len(args) != len(self.parameters):
            raise TypeError(f"{len(args)} kernel arguments for {len(self.parameters)} parameters")
        converted = [_c_argument(a, c_type, pointer, self.dtype, self.index)
                     for a, (c_type, pointer) in zip(args, self.parameters)]
        self.library.emulation_set_thread(block, thread, blocks, threads)
        self.function(*converted)


class Emulation:
    """The kernel files built on first use, once per (file, element type, index type);
    ``kernel`` replaces compiler.kernel."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.libraries = {}
        self.parameters = {file: kernel_parameters(compiler.source_text(file)) for file in compiler.SOURCES}

    def kernel(self, file: str, name: str, dtype, index=numpy.int64) -> EmulatedKernel:
        compiler.real_name(dtype)  # the ValueErrors compiler.kernel gives for another dtype or index
        compiler.index_bits(index)
        key = (file, numpy.dtype(dtype), numpy.dtype(index))
        if key not in self.libraries:
            folder = self.out_dir / f"i{compiler.index_bits(index)}"
            folder.mkdir(exist_ok=True)
            self.libraries[key] = build_library(file, dtype, folder, index)
        return EmulatedKernel(self.libraries[key], name, dtype, self.parameters[file][name], index)
