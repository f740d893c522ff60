"""Shared pytest setup: hypothesis profiles, the GPU skip condition and its `gpu` marker, the
optional CuPy stand-in (GEE_REF_CUPY_STANDIN=1), and the switch that makes a missing GPU a
failure (GEE_REF_REQUIRE_GPU=1, set by bench/gpu_first.sh)."""
import os
import shutil

import pytest
from hypothesis import HealthCheck, settings

from gee_ref import backend

settings.register_profile(
    "ci", max_examples=50, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(
    "dev", max_examples=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile(  # bench/gpu_first.sh --dry-run: every code path once, not the cases' spread
    "smoke", max_examples=3, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

if os.environ.get("GEE_REF_CUPY_STANDIN") == "1":
    # The GPU tests on the strict CuPy stand-in (tests/gpu_emulation/cupy_standin), installed as
    # `cupy` for the whole session before any test module asks backend.gpu_available().
    from gpu_emulation import cupy_standin

    cupy_standin.install()

GPU_SKIP_REASON = "needs CuPy and a CUDA GPU"
REQUIRE_GPU = os.environ.get("GEE_REF_REQUIRE_GPU") == "1"
requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason=GPU_SKIP_REASON)


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: a test of the CuPy path (it skips without CuPy and a GPU)")


def pytest_collection_modifyitems(config, items):
    """Mark every test that carries the GPU skip condition `gpu`, so that `-m gpu` selects them
    (``GEE_REF_CUPY_STANDIN=1 python -m pytest -m gpu tests`` runs them all on the stand-in)."""
    no_kernel_compiler = os.environ.get("GEE_REF_CUPY_STANDIN") == "1" and shutil.which("g++") is None
    for item in items:
        if any(mark.kwargs.get("reason") == GPU_SKIP_REASON for mark in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.gpu)
            if no_kernel_compiler and item.path.name == "test_kernels_gpu.py":
                item.add_marker(pytest.mark.skip(reason="the CuPy stand-in builds raw kernels with g++, not installed"))


@pytest.hookimpl(tryfirst=True)  # before pytest's own skipif evaluation, which would say less
def pytest_runtest_setup(item):
    """A GPU test without a usable GPU skips saying why CuPy could not be used, or, with
    GEE_REF_REQUIRE_GPU=1, fails: a GPU run must not pass by testing nothing."""
    if item.get_closest_marker("gpu") is None or backend.gpu_available():
        return
    reason = f"{GPU_SKIP_REASON}: {backend.gpu_unavailable_reason()}"
    if REQUIRE_GPU:
        pytest.fail(f"GEE_REF_REQUIRE_GPU=1, but {reason}", pytrace=False)
    pytest.skip(reason)
