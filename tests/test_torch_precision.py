"""bench.torch_precision: PyTorch's float32 precision set and read back with either API."""
import subprocess
import sys
import types
from pathlib import Path

import pytest

from bench import torch_precision

ROOT = Path(__file__).resolve().parent.parent


def legacy_torch():
    """A PyTorch with only the allow_tf32 flags (before fp32_precision existed)."""
    matmul = types.SimpleNamespace(allow_tf32=False)
    cudnn = types.SimpleNamespace(allow_tf32=True)
    return types.SimpleNamespace(backends=types.SimpleNamespace(cuda=types.SimpleNamespace(matmul=matmul),
                                                                cudnn=cudnn))


def test_the_legacy_flags():
    torch = legacy_torch()
    assert torch_precision.api(torch) == "allow_tf32"
    assert torch_precision.effective(torch) == {"api": "allow_tf32", "matmul": "ieee", "conv": "tf32"}
    assert torch_precision.set_tf32(torch, True) == {"api": "allow_tf32", "matmul": "tf32", "conv": "tf32"}
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert torch_precision.set_tf32(torch, False)["conv"] == "ieee" and not torch.backends.cudnn.allow_tf32


def test_none_defers_to_the_parent_setting():
    conv = types.SimpleNamespace(fp32_precision="none")
    torch = types.SimpleNamespace(backends=types.SimpleNamespace(
        fp32_precision="none", cuda=types.SimpleNamespace(matmul=types.SimpleNamespace(fp32_precision="ieee")),
        cudnn=types.SimpleNamespace(fp32_precision="tf32", conv=conv)))
    assert torch_precision.effective(torch) == {"api": "fp32_precision", "matmul": "ieee", "conv": "tf32"}


def test_a_setting_that_does_not_take_is_an_error():
    class StuckCudnn:  # a flag that ignores what is written to it
        allow_tf32 = property(lambda self: True, lambda self, value: None)

    torch = legacy_torch()
    torch.backends.cudnn = StuckCudnn()
    with pytest.raises(RuntimeError, match="did not take the ieee setting"):
        torch_precision.set_tf32(torch, False)


def test_the_installed_torch():
    """In a fresh process (the APIs must not be mixed): strict, TF32 and strict again, read back."""
    pytest.importorskip("torch")
    code = ("import torch; from bench import torch_precision as p; "
            "print(p.api(torch), p.set_tf32(torch, False), p.set_tf32(torch, True), p.set_tf32(torch, False))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    api = done.stdout.split()[0]
    strict, tf32 = {"api": api, "matmul": "ieee", "conv": "ieee"}, {"api": api, "matmul": "tf32", "conv": "tf32"}
    assert done.stdout.strip() == f"{api} {strict} {tf32} {strict}"
