"""Test helper: one op's forward and backward on NumPy and on CuPy, compared (issue #2: float64
within 1e-10 relative, float32 within 1e-5)."""
import numpy as np

from gee_ref import backend
from gee_ref.autograd.gradcheck import relative_difference

GPU_TOLERANCES = [(np.float64, 1e-10), (np.float32, 1e-5)]


def forward_backward(op, arrays, params, upstream=None, seed=7):
    """[y, then every input's gradient (None skipped)] for an upstream gradient (random by default)."""
    out, cache = op.forward(*arrays, **params)
    if upstream is None:
        upstream = np.random.default_rng(seed).standard_normal(out.shape).astype(out.dtype)
    return [out] + [g for g in op.backward(upstream, cache) if g is not None]


def assert_gpu_matches_cpu(op, arrays, params, tolerance):
    """The op's output and gradients on the GPU equal those on the CPU within ``tolerance``."""
    out, _ = op.forward(*arrays, **params)
    upstream = np.random.default_rng(7).standard_normal(out.shape).astype(out.dtype)
    on_cpu = forward_backward(op, arrays, params, upstream)
    on_gpu = forward_backward(op, [backend.to_device(a, "gpu") for a in arrays], params,
                              backend.to_device(upstream, "gpu"))
    assert len(on_cpu) == len(on_gpu)
    for cpu, gpu in zip(on_cpu, on_gpu):
        assert backend.device_of(gpu) == "gpu" and gpu.dtype == cpu.dtype
        assert relative_difference(gpu, cpu) <= tolerance
