"""Step 0 of bench/gpu_first.sh: what the GPU machine is, and whether CuPy really computes on it.

    python -m bench.gpu_environment OUT.json

Exit status 3, and nothing more done, unless CuPy imports, sees a device and computes on it a
sum whose exact value is known (the reason CuPy gave is printed). Otherwise it writes OUT.json
and a short account on stdout:

- the device (name, compute capability, memory) and the versions: CUDA runtime and driver,
  NVRTC, CuPy, NumPy, PyTorch with its CUDA and cuDNN;
- PyTorch's float32 precision (``bench.torch_precision``) as a fresh process finds it and
  after the bench's strict setting, and gee_ref's own switches (TF32, fused kernels);
- every fused kernel built through CuPy (``gee_ref.kernels.compiler``), for float and double
  and 32- and 64-bit indices, with the seconds each module took to build and what CUDA
  reports for each kernel (``RawKernel.attributes``): registers and local memory per thread
  (local memory beyond zero means spilled registers), static shared memory.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time

import numpy

from gee_ref import backend, kernels
from gee_ref.cli.errors import ArgumentParser
from gee_ref.kernels import compiler
from gee_ref.storage import atomic

EXIT_NO_GPU = 3
KERNEL_ATTRIBUTES = ("num_regs", "local_size_bytes", "shared_size_bytes", "max_threads_per_block",
                     "binary_version", "ptx_version")


def computes_on_device(cupy) -> dict:
    """Sum 0 + 1 + ... + (n - 1) on the device and compare it with n (n - 1) / 2, exactly."""
    n = 1 << 20
    started = time.perf_counter()
    total = int(cupy.arange(n, dtype=cupy.int64).sum())
    seconds = time.perf_counter() - started
    if total != n * (n - 1) // 2:
        raise RuntimeError(f"CuPy computed sum(range({n})) = {total}, expected {n * (n - 1) // 2}")
    return {"sum_of_range": total, "first_call_seconds": round(seconds, 3)}


def _answer(function, *args):
    """function(*args), or the error it raised, in one line."""
    try:
        return function(*args)
    except Exception as error:  # a version query that this CuPy or stand-in lacks
        return f"unavailable ({type(error).__name__}: {' '.join(str(error).split())})"


def device_and_versions(cupy) -> dict:
    properties = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = properties["name"]
    return {
        "device": {"name": name.decode() if isinstance(name, bytes) else str(name),
                   "compute_capability": str(cupy.cuda.Device().compute_capability),
                   "memory_gib": round(properties.get("totalGlobalMem", 0) / 2**30, 1),
                   "multiprocessors": properties.get("multiProcessorCount")},
        "versions": {"python": platform.python_version(), "numpy": numpy.__version__,
                     "cupy": getattr(cupy, "__version__", None),
                     "cuda_runtime": _answer(lambda: cupy.cuda.runtime.runtimeGetVersion()),
                     "cuda_driver": _answer(lambda: cupy.cuda.runtime.driverGetVersion()),
                     "nvrtc": _answer(lambda: cupy.cuda.nvrtc.getVersion())},
        "cupy_is_the_standin": "gpu_emulation" in str(getattr(cupy, "__file__", "")),
        "nvidia_smi": _nvidia_smi(),
    }


def _nvidia_smi():
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm",
                               "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"unavailable ({type(error).__name__})"
    return done.stdout.strip() or done.stderr.strip()


def torch_settings() -> dict:
    """PyTorch's versions and its float32 precision, as found and after the strict setting."""
    try:
        import torch
    except ImportError:
        return {"installed": False}
    from bench import torch_precision

    info = {"installed": True, "version": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": _answer(lambda: torch.backends.cudnn.version()),
            "sees_cuda": torch.cuda.is_available()}
    if info["sees_cuda"]:
        info["device"] = torch.cuda.get_device_name(0)
    info["precision_at_start"] = _answer(torch_precision.effective, torch)
    info["precision_strict"] = _answer(torch_precision.set_tf32, torch, False)
    return info


def kernel_report(log=print) -> list:
    """Every fused kernel built through CuPy, with its build time and CUDA's attributes; a
    module that does not build is one entry with the compiler's message."""
    report = []
    for file in compiler.SOURCES:
        for dtype in compiler.REAL_NAMES:
            for index in compiler.INDEX_BITS:
                started = time.perf_counter()
                try:
                    built = [(name, compiler.kernel(file, name, dtype, index)) for name in compiler.kernel_names(file)]
                except Exception as error:  # a compile error: recorded, and the other modules still built
                    message = f"{type(error).__name__}: {' '.join(str(error).split())[:2000]}"
                    report.append({"file": file, "real": compiler.real_name(dtype),
                                   "index_bits": compiler.index_bits(index), "build_error": message})
                    log(f"  {file} {compiler.real_name(dtype)} {compiler.index_bits(index)}-bit indices: {message[:300]}")
                    continue
                seconds = round(time.perf_counter() - started, 2)
                for name, kernel in built:
                    entry = {"file": file, "kernel": name, "real": compiler.real_name(dtype),
                             "index_bits": compiler.index_bits(index), "module_build_seconds": seconds}
                    try:
                        attributes = kernel.attributes
                        entry.update({k: attributes.get(k) for k in KERNEL_ATTRIBUTES})
                    except Exception as error:  # the stand-in's g++ build has no CUDA attributes
                        entry["attributes"] = f"unavailable ({type(error).__name__})"
                    report.append(entry)
                entries = report[-len(built):]
                described = ", ".join(f"{e['kernel']} {e['num_regs']} registers/{e['local_size_bytes']} B local"
                                      for e in entries) if "num_regs" in entries[0] else entries[0]["attributes"]
                log(f"  {file} {compiler.real_name(dtype)} {compiler.index_bits(index)}-bit indices: "
                    f"built in {seconds} s; {described}")
    return report


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m bench.gpu_environment",
                            description="Check that CuPy computes on the GPU, and record the machine.")
    parser.add_argument("out", help="the JSON file to write")
    args = parser.parse_args(argv)
    if not backend.gpu_available():
        print(f"error: no usable GPU: {backend.gpu_unavailable_reason()}", file=sys.stderr)
        return EXIT_NO_GPU
    cupy = backend.xp_for("gpu")
    try:
        check = computes_on_device(cupy)
    except Exception as error:
        print(f"error: CuPy sees a device but does not compute on it ({type(error).__name__}: {error})",
              file=sys.stderr)
        return EXIT_NO_GPU
    record = {"schema": "gee_ref-gpu-environment/1", "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "device_check": check, **device_and_versions(cupy), "torch": torch_settings(),
              "gee_ref": {"tf32": backend.tf32_enabled(), "fused_kernels": kernels.enabled(),
                          "environment": {k: os.environ.get(k) for k in ("GEE_REF_FUSED_KERNELS",
                                          "GEE_REF_REQUIRE_GPU", "CUPY_CACHE_DIR", "CUPY_ACCELERATORS")}}}
    print(f"device: {record['device']['name']} (compute capability {record['device']['compute_capability']}, "
          f"{record['device']['memory_gib']} GiB){' [the CuPy stand-in]' if record['cupy_is_the_standin'] else ''}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in record["versions"].items()))
    print(f"torch: {json.dumps(record['torch'])}")
    atomic.write_text(args.out, json.dumps(record, indent=1) + "\n")  # kept if a kernel build hangs
    print("fused kernels:")
    record["kernels"] = kernel_report()
    atomic.write_text(args.out, json.dumps(record, indent=1) + "\n")
    failed = [f"{k['file']} {k['real']} {k['index_bits']}-bit" for k in record["kernels"] if "build_error" in k]
    if failed:
        print(f"error: fused kernels that did not build: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    from gee_ref.cli.errors import run_main

    run_main(main)
