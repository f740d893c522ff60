"""Every GPU test of the suite, run on the strict CuPy stand-in (tests/gpu_emulation/cupy_standin).

Without a GPU those tests skip, so CI would never see the CuPy code path. This test runs them
all in a child pytest with ``GEE_REF_CUPY_STANDIN=1 -m gpu``: the stand-in refuses what CuPy
refuses (implicit conversion to NumPy, a NumPy operand, a name CuPy lacks), so a mistake of
that kind in gee_ref or in a GPU test fails here. It cannot show GPU rounding, speed or
kernel races: those need a real GPU (bench/gpu_first.sh).

A GPU test may skip only because an optional reference is not installed (pycma, SpikingJelly,
PyTorch: the GPU machine's image lacks some), or, without g++, the fused-kernel tests; any
other skip fails here.
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
OPTIONAL_REFERENCES = ("cma", "spikingjelly", "torch")
_OPTIONAL_REFERENCE_SKIP = re.compile(r"could not import '(%s)(\.[\w.]+)?'" % "|".join(OPTIONAL_REFERENCES))
_NO_GXX_SKIP = "the CuPy stand-in builds raw kernels with g++, not installed"
_SKIP_LINE = re.compile(r"^SKIPPED \[(\d+)\] (\S+?):(\d+): (.*)$", re.MULTILINE)


def unexpected_skips(report: str, gxx_installed: bool) -> list:
    """The "SKIPPED [n] file:line: reason" lines of a ``pytest -rs`` report that an absent
    optional reference (or, without g++, the kernel compiler) does not explain."""
    allowed = [_OPTIONAL_REFERENCE_SKIP.match]
    if not gxx_installed:
        allowed.append(lambda reason: reason == _NO_GXX_SKIP)
    return [match.group(0) for match in _SKIP_LINE.finditer(report)
            if not any(rule(match.group(4)) for rule in allowed)]


def test_only_absent_references_may_explain_a_skip():
    report = "\n".join([
        "SKIPPED [1] tests/test_lif.py:233: could not import 'spikingjelly.activation_based': No module named 'x'",
        "SKIPPED [2] tests/test_cmaes.py:115: could not import 'cma': No module named 'cma'",
        "SKIPPED [1] tests/test_ops_conv.py:75: could not import 'torch': No module named 'torch'",
        "SKIPPED [3] tests/test_kernels_gpu.py:40: " + _NO_GXX_SKIP,
        "SKIPPED [1] tests/test_loader.py:159: needs CuPy and a CUDA GPU: CuPy does not import",
        "SKIPPED [1] tests/test_report.py:30: could not import 'matplotlib': No module named 'matplotlib'",
        "SKIPPED [1] tests/test_x.py:1: could not import 'torchvision': No module named 'torchvision'"])
    with_gxx = unexpected_skips(report, gxx_installed=True)
    assert [line.split()[2] for line in with_gxx] == ["tests/test_kernels_gpu.py:40:", "tests/test_loader.py:159:",
                                                      "tests/test_report.py:30:", "tests/test_x.py:1:"]
    assert len(unexpected_skips(report, gxx_installed=False)) == 3


@pytest.mark.skipif(os.environ.get("GEE_REF_CUPY_STANDIN") == "1",
                    reason="already on the stand-in: the gpu tests run in this session")
def test_every_gpu_test_passes_on_the_cupy_standin():
    env = dict(os.environ, GEE_REF_CUPY_STANDIN="1", CI="1")
    env.pop("GEE_REF_REQUIRE_GPU", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-m", "gpu", "-p", "no:cacheprovider", "-o", "addopts=",
         str(TESTS)],
        cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=900)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, f"GPU tests on the stand-in failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped)", summary)}
    assert counts.get("passed", 0) + counts.get("skipped", 0) >= MIN_GPU_TESTS, summary
    unexplained = unexpected_skips(done.stdout, gxx_installed=shutil.which("g++") is not None)
    assert not unexplained, "GPU tests skipped on the stand-in:\n" + "\n".join(unexplained)
