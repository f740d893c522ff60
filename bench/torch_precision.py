"""PyTorch's float32 precision on CUDA, strict IEEE float32 or TF32, set and read back with
whichever API the installed PyTorch has.

Recent PyTorch has ``torch.backends.cuda.matmul.fp32_precision`` and
``torch.backends.cudnn.conv.fp32_precision`` ("ieee" or "tf32"; "none" defers to the parent
setting); older versions only the ``allow_tf32`` flags of ``torch.backends.cuda.matmul`` and
``torch.backends.cudnn``. Recent versions refuse to read one API after the other was used
(RuntimeError: "mix of the legacy and new APIs"), and leave a convolution's precision to
cuDNN's default (TF32) when only the legacy flag turned it off. So one API is used throughout,
the newest present, and both settings are set explicitly and read back: a strict row that ran
with TF32 would look faster than it is.
"""
from __future__ import annotations


def api(torch) -> str:
    """"fp32_precision" when this PyTorch has it for matmul and cuDNN convolutions, else "allow_tf32"."""
    cudnn_conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(cudnn_conv, "fp32_precision"):
        return "fp32_precision"
    return "allow_tf32"


def effective(torch) -> dict:
    """{"api", "matmul", "conv"}: the precision ("ieee" or "tf32") PyTorch's float32 matrix
    products and cuDNN convolutions use now, read through ``api(torch)``."""
    if api(torch) == "fp32_precision":
        return {"api": "fp32_precision",
                "matmul": _resolved(torch.backends.cuda.matmul.fp32_precision, torch),
                "conv": _resolved(torch.backends.cudnn.conv.fp32_precision, torch, torch.backends.cudnn)}
    return {"api": "allow_tf32",
            "matmul": "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee",
            "conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"}


def _resolved(value, torch, *parents) -> str:
    """A "none" setting takes its parent's (cuDNN's, then the global torch.backends one)."""
    for parent in (*parents, torch.backends):
        if value != "none":
            break
        value = getattr(parent, "fp32_precision", "none")
    return value


def set_tf32(torch, enabled: bool) -> dict:
    """Let PyTorch's CUDA matmuls and convolutions use TF32 (True) or strict float32 (False);
    returns ``effective(torch)`` read back afterwards."""
    if api(torch) == "fp32_precision":
        value = "tf32" if enabled else "ieee"
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.conv.fp32_precision = value
    else:
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
    setting = effective(torch)
    wanted = "tf32" if enabled else "ieee"
    if setting["matmul"] != wanted or setting["conv"] != wanted:
        raise RuntimeError(f"PyTorch did not take the {wanted} setting: it reads {setting}")
    return setting
