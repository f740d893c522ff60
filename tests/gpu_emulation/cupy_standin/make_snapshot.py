"""Regenerate ``cupy_names.json``: the names CuPy 14.2 really has, for the stand-in's strictness.

Run against an installed CuPy (no GPU needed, only its namespace is read)::

    PYTHONPATH=/tmp/cupysite python tests/gpu_emulation/cupy_standin/make_snapshot.py

Not run in CI: the JSON it writes is committed. For every Python-level function it also records
the parameters (name, kind, whether it has a default), so that the stand-in can refuse a keyword
CuPy does not take; Cython methods and ufuncs have no inspectable signature and get none.
"""
from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("cupy_names.json")
LAZY_CUDA_NAMES = ("cusolver", "cusparse", "curand", "cublas", "jitify", "cufft")
KIND_CODES = {inspect.Parameter.POSITIONAL_ONLY: "p", inspect.Parameter.POSITIONAL_OR_KEYWORD: "pk",
              inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.KEYWORD_ONLY: "k",
              inspect.Parameter.VAR_KEYWORD: "**"}


def parameters(obj):
    """[[name, kind code, has default], ...] of a callable, or None when it has no signature."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    return [[p.name, KIND_CODES[p.kind], p.default is not inspect.Parameter.empty]
            for p in signature.parameters.values()]


def kind_of(obj, numpy):
    if type(obj).__name__ == "ufunc":
        return "ufunc"
    if inspect.ismodule(obj):
        return "module"
    if isinstance(obj, type):
        return "type"
    if callable(obj):
        return "function"
    return "constant"


def describe_module(module, numpy):
    """{name: {"kind": ..., "parameters": ... (functions), "nin"/"nout" (ufuncs)}} of public names."""
    names = {}
    for name in sorted(n for n in dir(module) if not n.startswith("_")):
        obj = getattr(module, name)
        entry = {"kind": kind_of(obj, numpy)}
        if entry["kind"] == "function":
            entry["parameters"] = parameters(obj)
        elif entry["kind"] == "ufunc":
            entry["nin"], entry["nout"] = obj.nin, obj.nout
        names[name] = entry
    return names


def methods(cls):
    """{name: parameters or None} of a class's attributes, the special ones included."""
    return {name: parameters(getattr(cls, name)) if callable(getattr(cls, name, None)) else None
            for name in sorted(dir(cls)) if not (name.startswith("_") and not name.startswith("__"))}


def compact_json(snapshot: dict) -> str:
    """JSON with one line per name: small, and a diff shows which names changed."""
    lines = ["{"]
    for i, (section, content) in enumerate(sorted(snapshot.items())):
        comma = "," if i < len(snapshot) - 1 else ""
        if isinstance(content, dict):
            inner = [f"{json.dumps(k)}:{json.dumps(v, separators=(',', ':'))}" for k, v in sorted(content.items())]
            lines.append(f"{json.dumps(section)}:{{\n" + ",\n".join(inner) + f"}}{comma}")
        else:
            lines.append(f"{json.dumps(section)}:{json.dumps(content, separators=(',', ':'))}{comma}")
    return "\n".join(lines) + "\n}\n"


def main() -> int:
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]  # our modules are not CuPy's
    import numpy

    import cupy
    from cupy._core import _routines_linalg

    # names CuPy imports lazily on first access (a module __getattr__): touch them so dir() lists them
    cupy.random.Generator  # noqa: B018
    for lazy in LAZY_CUDA_NAMES:
        try:
            getattr(cupy.cuda, lazy)
        except Exception:  # a CUDA library missing on this machine: then CuPy lacks it here too
            pass

    snapshot = {
        "cupy_version": cupy.__version__,
        "cupy": describe_module(cupy, numpy),
        "cupy.linalg": describe_module(cupy.linalg, numpy),
        "cupy.random": describe_module(cupy.random, numpy),
        "cupy.random.Generator": methods(cupy.random.Generator),
        "cupy.ndarray": sorted(dir(cupy.ndarray)),
        "cupy.ufunc": sorted(n for n in dir(cupy.add) if not n.startswith("_")),
        "cupy.cuda": sorted(n for n in dir(cupy.cuda) if not n.startswith("_")),
        "cupy.cuda.runtime": sorted(n for n in dir(cupy.cuda.runtime) if not n.startswith("_")),
        "cupy.cuda.memory": sorted(n for n in dir(cupy.cuda.memory) if not n.startswith("_")),
        "cupy.cuda.Device": sorted(n for n in dir(cupy.cuda.Device) if not n.startswith("_")),
        "cupy.cuda.Stream": sorted(n for n in dir(cupy.cuda.Stream) if not n.startswith("_")),
        "cupy.cuda.MemoryPool": sorted(n for n in dir(cupy.cuda.MemoryPool) if not n.startswith("_")),
        "cupy.cuda.MemoryHook": sorted(n for n in dir(cupy.cuda.MemoryHook) if not n.startswith("_")),
        "cupy.RawModule": sorted(n for n in dir(cupy.RawModule) if not n.startswith("_")),
        "cupy._core._routines_linalg": {n: getattr(_routines_linalg, n) for n in dir(_routines_linalg)
                                         if n.startswith("COMPUTE_TYPE_")},
    }
    OUT.write_text(compact_json(snapshot))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes) from CuPy {cupy.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
