"""Run a gee_ref command line with the CuPy stand-in installed as ``cupy``.

    python tests/gpu_emulation/cupy_standin/run.py [--counts] -m gee_ref.train --device gpu ...
    python tests/gpu_emulation/cupy_standin/run.py [--counts] path/to/script.py ...

``--counts`` prints, when the command ends, one line on stderr with the host/device
crossings the run made (transfers.py). Only this process has the stand-in: workers a
command starts in other processes (a Dask cluster) do not.
"""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[2]
REPO = TESTS.parent
USAGE = "usage: run.py [--counts] -m MODULE [ARGS...] | run.py [--counts] SCRIPT [ARGS...]"


def main(argv: list[str]) -> int:
    counts = bool(argv) and argv[0] == "--counts"
    argv = argv[1:] if counts else argv
    if not argv or (argv[0] == "-m" and len(argv) < 2):
        print(f"error: {USAGE}", file=sys.stderr)
        return 2
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]  # the stand-in's modules by package only
    for path in (str(REPO), str(TESTS)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from gpu_emulation import cupy_standin

    cupy_standin.install()
    try:
        if argv[0] == "-m":
            sys.argv = [argv[1], *argv[2:]]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = list(argv)
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    finally:
        if counts:
            seen = cupy_standin.transfers.counts()
            print("cupy stand-in: " + ", ".join(f"{k}={v}" for k, v in seen.items())
                  + f", host_syncs={cupy_standin.transfers.host_syncs(seen)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
