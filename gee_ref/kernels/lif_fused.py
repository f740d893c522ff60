"""LIF over all T steps in one kernel each way (``lif.cu``), hard reset (DESIGN.md section 3).

Same equations, order of operations and return values as ``gee_ref.ops.lif`` (its plain
``xp`` code is the reference): ``forward`` returns ``(spikes, cache)`` with the very
``ops.lif.Cache`` that ``ops.lif.forward`` builds, ``backward`` returns ``(grad_x,)``; so either
backward runs after either forward. Only the hard (Heaviside) spike and the three registered surrogates
(sigmoid, atan, rectangular) have a kernel; the soft spike stays on the plain path.

Every [T, N, ...] array is handed to the kernel contiguous, as [T, M] with M = N * ...;
one GPU thread per neuron walks t = 0 .. T-1 forward and T-1 .. 0 backward.
"""
from __future__ import annotations

import numpy

from gee_ref import backend
from gee_ref.kernels import compiler
from gee_ref.ops import surrogate as surrogates
from gee_ref.ops.lif import Cache, checked_arguments

#: The surrogate numbers of lif.cu (SURROGATE_SIGMOID, ..._ATAN, ..._RECTANGULAR).
SURROGATE_CODES = {"sigmoid": 0, "atan": 1, "rectangular": 2}


def surrogate_code(entry) -> int | None:
    """lif.cu's number for a surrogate registry entry (None for one it does not know)."""
    for name, registered in surrogates.SURROGATES.items():
        if registered is entry:
            return SURROGATE_CODES.get(name)
    return None


def handles(surrogate, soft) -> bool:
    """Whether there is a kernel for this neuron: hard spikes and a surrogate lif.cu knows."""
    return not soft and surrogate_code(surrogates.get(surrogate)) is not None


def _time_major(array):
    """(steps, neurons) of a [T, N, ...] array seen as [T, M]."""
    steps = array.shape[0]
    return steps, (array.size // steps if steps else 0)


def forward(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=None, detach_reset=False,
            soft=False):
    """Spikes [T, N, ...] and the cache of ``ops.lif.forward`` (hard reset), by ``lif_forward``."""
    if not handles(surrogate, soft):
        raise ValueError("the fused LIF needs hard spikes and the sigmoid, atan or rectangular surrogate")
    sg, alpha = checked_arguments(x_seq, tau, surrogate, alpha)
    xp = backend.get_array_module(x_seq)
    x = xp.ascontiguousarray(x_seq)
    spikes, h_seq = xp.empty_like(x), xp.empty_like(x)
    steps, neurons = _time_major(x)
    index = compiler.index_type(x.size)  # element t M + m < T M
    run = compiler.kernel("lif.cu", "lif_forward", x.dtype, index)
    compiler.launch(run, neurons, (x, spikes, h_seq, index(steps), index(neurons),
                                   numpy.float64(tau), numpy.float64(v_th), numpy.float64(v_reset)))
    return spikes, Cache(h_seq, tau, v_th, v_reset, sg, alpha, detach_reset, False)


def backward(grad, cache):
    """dL/dX [T, N, ...] by BPTT (``ops.lif``'s docstring), by ``lif_backward``.

    ``grad`` is taken in the dtype of the cached H (the kernel has one element type).
    """
    if cache.soft or surrogate_code(cache.surrogate) is None:
        raise ValueError("the fused LIF backward needs hard spikes and the sigmoid, atan or rectangular surrogate")
    h_seq, tau, v_th, v_reset = cache.h_seq, cache.tau, cache.v_th, cache.v_reset
    sg, alpha, detach_reset = cache.surrogate, cache.alpha, cache.detach_reset
    if tuple(grad.shape) != tuple(h_seq.shape):
        raise ValueError(f"lif backward: grad has shape {tuple(grad.shape)}, expected {tuple(h_seq.shape)}")
    xp = backend.get_array_module(h_seq)
    h = xp.ascontiguousarray(h_seq)
    g = xp.ascontiguousarray(grad, dtype=h.dtype)
    grad_x = xp.empty_like(h)
    steps, neurons = _time_major(h)
    index = compiler.index_type(h.size)
    run = compiler.kernel("lif.cu", "lif_backward", h.dtype, index)
    compiler.launch(run, neurons, (g, h, grad_x, index(steps), index(neurons),
                                   numpy.float64(tau), numpy.float64(v_th), numpy.float64(v_reset),
                                   numpy.int32(surrogate_code(sg)), numpy.float64(alpha),
                                   numpy.int32(bool(detach_reset))))
    return (grad_x,)
