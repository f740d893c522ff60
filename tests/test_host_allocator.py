"""The host allocator setting of gee_ref.backend (issue 15): when it applies, and what it does."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from gee_ref import backend

ROOT = Path(__file__).resolve().parent.parent


def test_off_switch_and_user_settings_are_respected():
    assert backend.tune_host_allocator({"GEE_REF_MALLOC_TUNING": "0"}).startswith("off")
    for name in backend.GLIBC_MALLOC_VARIABLES:
        assert backend.tune_host_allocator({name: "131072"}) == f"left to the environment ({name})"
    assert "GLIBC_TUNABLES" in backend.tune_host_allocator({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"})


# A child process: import gee_ref.backend, allocate a 64 MiB array (above glibc's largest
# automatic mmap threshold, 32 MiB), free it, and report glibc's own counts (mallinfo2).
PROBE = """
import ctypes, json, numpy
from gee_ref import backend

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

mallinfo2 = ctypes.CDLL(None).mallinfo2
mallinfo2.restype = MallInfo2
before = mallinfo2()
a = numpy.ones(16 * 2**20, dtype=numpy.float32)
held = mallinfo2()
del a
freed = mallinfo2()
print(json.dumps({"state": backend.host_allocator, "mmapped_while_held": held.hblkhd - before.hblkhd,
                  "heap_free_after": freed.fordblks}))
"""


def _probe(**env):
    environ = {k: v for k, v in os.environ.items() if k not in backend.GLIBC_MALLOC_VARIABLES}
    environ.update(env, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", PROBE], env=environ, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc"
                    or platform.libc_ver()[1] < "2.33", reason="glibc >= 2.33 (mallinfo2) only")
def test_tuned_glibc_serves_large_blocks_from_the_heap_and_keeps_them():
    tuned = _probe()
    assert tuned["state"].startswith("tuned")
    assert tuned["mmapped_while_held"] == 0                # not a fresh mmap
    assert tuned["heap_free_after"] >= 64 * 2**20          # kept in the heap for the next step
    plain = _probe(GEE_REF_MALLOC_TUNING="0")
    assert plain["state"].startswith("off")
    assert plain["mmapped_while_held"] >= 64 * 2**20       # glibc's default: its own mapping
    assert plain["heap_free_after"] < 64 * 2**20           # ... unmapped when freed
