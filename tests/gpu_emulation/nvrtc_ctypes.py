"""Test helper: NVRTC (CuPy's default CUDA compiler) through ctypes, and nvcc; no GPU needed.

``compile_with_nvrtc`` builds a program with the options gee_ref gives CuPy plus the two
CuPy adds itself (``-ftz=true`` and the architecture), and returns the PTX (for a
``compute_XX`` architecture) or the CUBIN (for ``sm_XX``, which also runs the assembler).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
import shutil
import site
import subprocess
import sysconfig
from pathlib import Path

CUPY_ADDED_OPTIONS = ("-ftz=true",)


def _candidates():
    found = ctypes.util.find_library("nvrtc")
    if found:
        yield found
    roots = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages()}
    for root in sorted(roots):
        yield from sorted(glob.glob(os.path.join(root, "nvidia", "*", "lib", "libnvrtc.so*")))
    for cuda in (os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if cuda:
            yield from sorted(glob.glob(os.path.join(cuda, "lib64", "libnvrtc.so*")))


def load_nvrtc():
    """libnvrtc as a ctypes library (from the system, a pip nvidia-* wheel or /usr/local/cuda), or None."""
    for path in _candidates():
        if "builtins" in os.path.basename(path) or ".alt." in os.path.basename(path):
            continue
        _load_builtins_beside(path)
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _load_builtins_beside(path: str) -> None:
    """Load libnvrtc-builtins from libnvrtc's own folder first: libnvrtc opens it by name at
    compile time, and a pip wheel's folder is not on the loader's search path."""
    for builtins in sorted(glob.glob(os.path.join(os.path.dirname(path), "libnvrtc-builtins.so*"))):
        if ".alt." not in os.path.basename(builtins):
            try:
                ctypes.CDLL(builtins, mode=ctypes.RTLD_GLOBAL)
            except OSError:
                continue


def version(nvrtc) -> tuple[int, int]:
    major, minor = ctypes.c_int(), ctypes.c_int()
    _check(nvrtc, nvrtc.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
    return major.value, minor.value


def supported_architectures(nvrtc) -> list[int]:
    count = ctypes.c_int()
    _check(nvrtc, nvrtc.nvrtcGetNumSupportedArchs(ctypes.byref(count)), "nvrtcGetNumSupportedArchs")
    archs = (ctypes.c_int * count.value)()
    _check(nvrtc, nvrtc.nvrtcGetSupportedArchs(archs), "nvrtcGetSupportedArchs")
    return list(archs)


def _check(nvrtc, result, what, log=""):
    if result != 0:
        nvrtc.nvrtcGetErrorString.restype = ctypes.c_char_p
        message = nvrtc.nvrtcGetErrorString(result).decode()
        raise AssertionError(f"{what} failed: {message}\n{log}")


def compile_with_nvrtc(nvrtc, source: str, name: str, options, arch: str) -> tuple[bytes, str]:
    """(PTX or CUBIN, compile log) of ``source``; an AssertionError with the log on failure."""
    program = ctypes.c_void_p()
    _check(nvrtc, nvrtc.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(),
                                           0, None, None), "nvrtcCreateProgram")
    try:
        all_options = [*options, *CUPY_ADDED_OPTIONS, f"--gpu-architecture={arch}"]
        c_options = (ctypes.c_char_p * len(all_options))(*[o.encode() for o in all_options])
        result = nvrtc.nvrtcCompileProgram(program, len(all_options), c_options)
        size = ctypes.c_size_t()
        nvrtc.nvrtcGetProgramLogSize(program, ctypes.byref(size))
        buffer = ctypes.create_string_buffer(size.value)
        nvrtc.nvrtcGetProgramLog(program, buffer)
        log = buffer.value.decode(errors="replace")
        _check(nvrtc, result, f"NVRTC compile of {name} with {' '.join(all_options)}", log)
        kind = "CUBIN" if arch.startswith("sm_") else "PTX"
        get_size, get = getattr(nvrtc, f"nvrtcGet{kind}Size"), getattr(nvrtc, f"nvrtcGet{kind}")
        _check(nvrtc, get_size(program, ctypes.byref(size)), f"nvrtcGet{kind}Size")
        output = ctypes.create_string_buffer(size.value)
        _check(nvrtc, get(program, output), f"nvrtcGet{kind}")
        return output.raw, log
    finally:
        nvrtc.nvrtcDestroyProgram(ctypes.byref(program))


def nvcc() -> str | None:
    return shutil.which("nvcc")


def compile_with_nvcc(source_path: Path, options, arch: str, out_dir: Path) -> str:
    """PTX text of ``nvcc --ptx`` on a .cu file; an AssertionError with nvcc's output on failure."""
    ptx = out_dir / f"{source_path.stem}-{'-'.join(o.strip('-').replace('=', '_') for o in options)}.ptx"
    command = [nvcc(), "--ptx", f"-arch={arch}", *options, *CUPY_ADDED_OPTIONS, str(source_path), "-o", str(ptx)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return ptx.read_text()
