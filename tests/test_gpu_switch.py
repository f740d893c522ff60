"""Without a usable GPU the GPU tests say why (CuPy's own error), and GEE_REF_REQUIRE_GPU=1
turns that skip into a failure (bench/gpu_first.sh sets it: a GPU run must test something)."""
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from gee_ref import backend

TESTS = Path(__file__).resolve().parent


def fake_cupy(count=None, error=None):
    """A module named cupy whose CUDA runtime reports ``count`` devices or raises ``error``."""
    def device_count():
        if error is not None:
            raise error
        return count
    runtime = types.SimpleNamespace(getDeviceCount=device_count)
    return types.SimpleNamespace(__version__="14.2.0", cuda=types.SimpleNamespace(runtime=runtime))


@pytest.mark.parametrize("module, expected", [
    (None, "CuPy does not import (ModuleNotFoundError: import of cupy halted"),
    (fake_cupy(error=RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient\n")),
     "CuPy 14.2.0 imports, but CUDA fails (RuntimeError: cudaErrorInsufficientDriver: CUDA driver version is "
     "insufficient)"),
    (fake_cupy(count=0), "CuPy 14.2.0 imports, but CUDA sees no device"),
])
def test_the_reason_cupy_could_not_be_used_is_kept(monkeypatch, module, expected):
    monkeypatch.setitem(sys.modules, "cupy", module)  # None: `import cupy` raises ImportError
    assert not backend.gpu_available()
    assert backend.gpu_unavailable_reason().startswith(expected)
    with pytest.raises(backend.DeviceUnavailableError) as raised:
        backend.xp_for("gpu")
    assert expected in str(raised.value)


def test_a_usable_gpu_has_no_reason(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(count=1))
    assert backend.gpu_available() and backend.gpu_unavailable_reason() is None


def run_gpu_test_without_cupy(tmp_path, require):
    """One GPU test of the suite in a child pytest where `import cupy` fails."""
    blocker = tmp_path / "cupy"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ImportError('cupy hidden by test_gpu_switch')\n")
    env = {k: v for k, v in os.environ.items() if k not in ("GEE_REF_CUPY_STANDIN", "GEE_REF_REQUIRE_GPU")}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(TESTS.parent), env.get("PYTHONPATH", "")])
    if require:
        env["GEE_REF_REQUIRE_GPU"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-o", "addopts=",
                           "-m", "gpu", str(TESTS / "test_tf32.py")],
                          cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=300)


def test_gpu_tests_skip_with_the_reason(tmp_path):
    done = run_gpu_test_without_cupy(tmp_path, require=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "needs CuPy and a CUDA GPU: CuPy does not import (ImportError: cupy hidden by test_gpu_switch)" in done.stdout
    assert "1 skipped" in done.stdout


def test_gee_ref_require_gpu_turns_the_skip_into_a_failure(tmp_path):
    done = run_gpu_test_without_cupy(tmp_path, require=True)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "GEE_REF_REQUIRE_GPU=1, but needs CuPy and a CUDA GPU: CuPy does not import" in done.stdout
    assert "skipped" not in done.stdout.splitlines()[-1]
