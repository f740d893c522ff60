"""Every GPU test of the suite, run on the strict CuPy stand-in (tests/gpu_emulation/cupy_standin).

Without a GPU those tests skip, so CI would never see the CuPy code path. This test runs them
all in a child pytest with ``GEE_REF_CUPY_STANDIN=1 -m gpu``: the stand-in refuses what CuPy
refuses (implicit conversion to NumPy, a NumPy operand, a name CuPy lacks), so a mistake of
that kind in gee_ref or in a GPU test fails here. It cannot show GPU rounding, speed or
kernel races: those need a real GPU (bench/gpu_session.sh).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent.parent
MIN_GPU_TESTS = 90  # the suite has 94 today; fewer means the `gpu` marking lost some


@pytest.mark.skipif(os.environ.get("GEE_REF_CUPY_STANDIN") == "1",
                    reason="already on the stand-in: the gpu tests run in this session")
def test_every_gpu_test_passes_on_the_cupy_standin():
    env = dict(os.environ, GEE_REF_CUPY_STANDIN="1", CI="1")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-o", "addopts=",
         str(TESTS)],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, f"GPU tests on the stand-in failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped)", summary)}
    assert counts.get("passed", 0) + counts.get("skipped", 0) >= MIN_GPU_TESTS, summary
    if shutil.which("g++"):  # the stand-in builds the fused kernels with g++; without it their tests skip
        assert counts.get("skipped", 0) == 0, f"a GPU test skipped on the stand-in: {summary}"
