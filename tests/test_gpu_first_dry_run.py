"""bench/gpu_first.sh, the first command of a GPU visit, run here without a GPU: its dry run on
the CuPy stand-in goes through every step and writes its seven files, and without CuPy the real
run stops at once with exit status 3 and CuPy's reason."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "bench" / "gpu_first.sh"
FILES = {"summary.md", "environment.json", "tests.log", "run.log", "bench.json", "bench.md", "cifar-report.json"}
STEPS = ("0 environment", "1a GPU tests, plain", "1b fused-kernel tests", "1c GPU tests, kernels on", "2 bench",
         "3a CIFAR-10 convert", "3b CIFAR-10 train and report", "4 evolution smoke (batched)")


def run_script(args, tmp_path, extra_env=None, timeout=900):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OUT", "GEE_REF_CUPY_STANDIN", "GEE_REF_FUSED_KERNELS", "HYPOTHESIS_PROFILE")}
    env.update(GPU_FIRST_WORK=str(tmp_path / "work"), **(extra_env or {}))
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(shutil.which("g++") is None, reason="the stand-in builds the fused kernels with g++")
def test_the_dry_run_passes_every_step_and_writes_seven_files(tmp_path):
    pytest.importorskip("PIL")
    done = run_script(["--dry-run", "out"], tmp_path)
    out = tmp_path / "out"
    summary = (out / "summary.md").read_text() if (out / "summary.md").exists() else done.stderr
    assert done.returncode == 0, summary
    assert {p.name for p in out.iterdir()} == FILES and all(p.is_file() for p in out.iterdir())
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in summary.splitlines()
            if line.startswith("| ") and not line.startswith("| step")}
    assert set(rows) == set(STEPS), summary
    assert all(row[1] == "0" and row[3] == "passed" for row in rows.values()), summary
    assert "Finished: exit 0" in summary

    environment = json.loads((out / "environment.json").read_text())
    assert environment["cupy_is_the_standin"] and environment["device_check"]["sum_of_range"] == 2**20 * (2**20 - 1) // 2
    assert len(environment["kernels"]) == 2 * 2 * (2 + 2 + 6)  # float/double x 32/64-bit x the kernels
    assert {(k["real"], k["index_bits"]) for k in environment["kernels"]} == {
        ("float", 32), ("float", 64), ("double", 32), ("double", 64)}

    bench = json.loads((out / "bench.json").read_text())
    names = [row["name"] for row in bench["results"]]
    for name in ("training/resnet19 float32", "training/resnet19 TF32", "training/resnet19 float32 fused",
                 "memory/training step peak", "lif/forward+backward", "lif/forward+backward fused",
                 "stack/genetic conv-BN-LIF fwd+bwd fused"):
        assert name in names
    assert not any(row["status"] == "error" for row in bench["results"])
    assert "| training/resnet19 float32 fused |" in (out / "bench.md").read_text()

    report = json.loads((out / "cifar-report.json").read_text())
    assert report["config"]["device"] == "gpu" and report["test_samples"] == 20 and report["epochs_done"] == 1
    assert 0.0 <= report["test_accuracy"] <= 1.0 and "noise" in report and "energy" in report
    tests_log = (out / "tests.log").read_text()
    assert tests_log.count(" passed") >= 3 and " failed" not in tests_log


def test_without_cupy_the_real_run_stops_with_exit_3_and_the_reason(tmp_path):
    blocker = tmp_path / "blocker" / "cupy"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('cupy hidden by test_gpu_first_dry_run')\n")
    done = run_script(["out"], tmp_path, {"PYTHONPATH": str(tmp_path / "blocker")}, timeout=300)
    assert done.returncode == 3
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == {"summary.md", "run.log"}
    summary = (out / "summary.md").read_text()
    assert "Stopped: no usable GPU (exit 3)" in summary
    assert "CuPy does not import (ImportError: cupy hidden by test_gpu_first_dry_run)" in summary
    assert "| 0 environment | 3 |" in summary and "1a GPU tests" not in summary


def test_bad_usage_is_one_error_line_and_exit_2(tmp_path):
    for args in (["--fast"], ["a", "b"]):
        done = run_script(args, tmp_path, timeout=60)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and done.stderr.count("\n") == 1
    done = run_script(["--help"], tmp_path, timeout=60)
    assert done.returncode == 0 and "bash bench/gpu_first.sh [--dry-run] [OUT]" in done.stdout
