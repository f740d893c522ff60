"""bench.gpu_environment, step 0 of bench/gpu_first.sh: exit 3 without a usable GPU, else the
machine and every fused kernel recorded; a kernel that does not build is recorded, not fatal."""
import json
import shutil
import sys

import pytest

from bench import gpu_environment
from gee_ref.kernels import compiler
from gpu_emulation import cupy_standin


def test_no_usable_gpu_is_exit_3_with_the_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert gpu_environment.main([str(tmp_path / "environment.json")]) == gpu_environment.EXIT_NO_GPU
    assert "error: no usable GPU: CuPy does not import" in capsys.readouterr().err
    assert not (tmp_path / "environment.json").exists()


@pytest.mark.skipif(shutil.which("g++") is None, reason="the stand-in builds the fused kernels with g++")
def test_every_kernel_is_recorded_and_a_build_error_is_kept(tmp_path, monkeypatch, capsys):
    real_kernel = compiler.kernel

    def im2col_does_not_build(file, name, dtype, index):
        if file == "im2col.cu":
            raise RuntimeError("nvrtc: error: something\non two lines")
        return real_kernel(file, name, dtype, index)

    out = tmp_path / "environment.json"
    with cupy_standin.installed():
        assert gpu_environment.main([str(out)]) == 0
        record = json.loads(out.read_text())
        assert record["cupy_is_the_standin"] and record["device"]["compute_capability"] == "90"
        assert len(record["kernels"]) == 40 and all("build_error" not in k for k in record["kernels"])
        monkeypatch.setattr(compiler, "kernel", im2col_does_not_build)
        assert gpu_environment.main([str(out)]) == 1
    record = json.loads(out.read_text())
    errors = [k for k in record["kernels"] if "build_error" in k]
    assert len(errors) == 4 and {k["file"] for k in errors} == {"im2col.cu"}
    assert errors[0]["build_error"] == "RuntimeError: nvrtc: error: something on two lines"
    assert len(record["kernels"]) == 4 + 2 * 2 * (2 + 6)
    assert "error: fused kernels that did not build: im2col.cu float 32-bit" in capsys.readouterr().err
