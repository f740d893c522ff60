"""Batch normalisation per channel in fused kernels (``batch_norm.cu``), DESIGN.md section 3.

Same equations and return values as ``gee_ref.ops.batch_norm`` (its plain ``xp`` code and its
docstring are the reference): ``forward`` returns ``(y, cache)`` with the ``ops.batch_norm.Cache``
that ``ops.batch_norm.forward`` builds, and ``backward`` returns ``(grad_x, grad_gamma,
grad_beta)``; so either backward runs after either forward. The running statistics are updated
in place, as there. One network only: a population's [N, P, C, ...] stays on the plain path.

Kernel launches, x seen as [N, C, S] (S = H W, or 1 for [N, C]) and L lanes per channel:

    forward, training:  bn_lane_moments (C L threads) -> bn_forward_statistics (C)
                        -> bn_normalise (one thread per element): x is read twice
    forward, eval:      mu and inv_std from the running statistics as the plain code computes
                        them (small [C] vectors), then bn_normalise
    backward:           bn_lane_gradient_sums (C L) -> bn_backward_totals (C) -> bn_backward_dx;
                        in eval mode without gamma and beta only bn_backward_dx

The sums are in double (also for float32 data) and the variance is centred in one pass (each
lane runs Welford's update on x minus the channel's first value, stage 2 adds the within- and
between-lane sums of squares); ``batch_norm.cu`` has the equations. ``lanes_for`` picks L: enough
threads in stage 1 to keep the GPU busy, enough values per lane that stage 2 (one thread per
channel, adding L lanes) stays short.
"""
from __future__ import annotations

import numpy

from gee_ref import backend
from gee_ref.kernels import compiler
from gee_ref.ops.batch_norm import Cache

#: a lane visits at least about this many values of its channel
VALUES_PER_LANE = 32
#: stage 1 aims at about this many threads in all (C L)
STAGE_ONE_THREADS = 2**16


def lanes_for(count: int, channels: int) -> int:
    """L, the lanes per channel for ``count`` values in each of ``channels`` channels (1 <= L <= count, or 1)."""
    by_work = -(-count // VALUES_PER_LANE)
    by_threads = -(-STAGE_ONE_THREADS // max(channels, 1))
    return max(1, min(by_work, by_threads))


def _layout(x):
    """(N, C, S) of an [N, C] or [N, C, H, W] array."""
    if x.ndim == 2:
        return x.shape[0], x.shape[1], 1
    if x.ndim == 4:
        return x.shape[0], x.shape[1], x.shape[2] * x.shape[3]
    raise ValueError(f"batch_norm expects x of shape [N, C] or [N, C, H, W], got shape {tuple(x.shape)}")


def handles(x, gamma, beta, running_mean=None, running_var=None, training=True) -> bool:
    """Whether ``forward`` has a kernel for these arrays: one network's [N, C] or [N, C, H, W],
    gamma and beta of x's dtype (or None), and in training mode the running statistics too
    (the kernel updates them in x's type)."""
    per_channel = (gamma, beta) + ((running_mean, running_var) if training else ())
    one_network = x.ndim in (2, 4) and all(v is None or v.ndim == 1 for v in per_channel)
    return one_network and all(v is None or v.dtype == x.dtype for v in per_channel)


def _check_cache(cache):
    """The fields of an ops.batch_norm cache of one network; a ValueError for anything else."""
    if not isinstance(cache, Cache) or getattr(cache.x_hat, "ndim", None) not in (2, 4) or cache.inv_std.ndim != 1:
        raise ValueError("fused batch_norm backward needs the ops.batch_norm.Cache of one network")
    return cache


def handles_cache(cache) -> bool:
    """Whether ``backward`` has a kernel for this cache: inv_std and gamma of x_hat's dtype.
    A cache of another layout than ops.batch_norm's is a ValueError, not a quiet False."""
    cache = _check_cache(cache)
    x_hat, inv_std, gamma = cache.x_hat, cache.inv_std, cache.gamma
    return inv_std.dtype == x_hat.dtype and (gamma is None or gamma.dtype == x_hat.dtype)


def _check_forward_arguments(x, gamma, beta, running_mean, running_var, training):
    batch, channels, spatial = _layout(x)
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        if v is not None and tuple(v.shape) != (channels,):
            raise ValueError(f"batch_norm: {name} has shape {tuple(v.shape)}, expected ({channels},)")
    if not handles(x, gamma, beta, running_mean, running_var, training):
        raise ValueError("fused batch_norm needs gamma, beta (and in training the running statistics) "
                         f"of x's dtype {x.dtype}")
    compiler.real_name(x.dtype)  # a ValueError for a dtype without a kernel
    if channels == 0:
        raise ValueError("batch_norm needs at least one channel")
    if training and batch * spatial < 2:
        raise ValueError("batch_norm in training mode needs more than one value per channel")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm in eval mode needs running_mean and running_var")
    return batch, channels, spatial


def index_for(batch, channels, spatial):
    """The index type of every launch on an x of [N, C, S] (compiler.index_type): the kernels
    index its N C S elements, and the lanes' partial results c L + l and values j + L."""
    return compiler.index_type(batch * channels * spatial + channels * lanes_for(batch * spatial, channels))


def _lane_partials(kernel_name, inputs, batch, channels, spatial, index):
    """Stage 1 of a per-channel reduction: ``kernel_name`` run over channels x lanes, giving
    (lanes, first, second), the two float64 partial results per lane at index c L + l."""
    xp = backend.get_array_module(inputs[0])
    lanes = lanes_for(batch * spatial, channels)
    first = xp.empty(channels * lanes, dtype=numpy.float64)
    second = xp.empty(channels * lanes, dtype=numpy.float64)
    sizes = tuple(index(v) for v in (batch, channels, spatial, lanes))
    run = compiler.kernel("batch_norm.cu", kernel_name, inputs[0].dtype, index)
    compiler.launch(run, channels * lanes, tuple(inputs) + (first, second) + sizes)
    return lanes, first, second


def _training_statistics(x, batch, channels, spatial, running_mean, running_var, momentum, eps, index):
    """(mean, inv_std) per channel of a contiguous x, the running statistics updated in place."""
    xp = backend.get_array_module(x)
    lanes, lane_mean, lane_m2 = _lane_partials("bn_lane_moments", (x,), batch, channels, spatial, index)

    mean, inv_std = xp.empty(channels, dtype=x.dtype), xp.empty(channels, dtype=x.dtype)
    # the kernel writes the running statistics through a pointer: a strided one goes via a copy
    targets = [v if v is None or v.flags.c_contiguous else xp.ascontiguousarray(v)
               for v in (running_mean, running_var)]
    run = compiler.kernel("batch_norm.cu", "bn_forward_statistics", x.dtype, index)
    compiler.launch(run, channels, (x, lane_mean, lane_m2, mean, inv_std,
                                    mean if targets[0] is None else targets[0],
                                    mean if targets[1] is None else targets[1],
                                    index(channels), index(spatial), index(batch * spatial), index(lanes),
                                    numpy.float64(momentum), numpy.float64(eps),
                                    numpy.int32(targets[0] is not None), numpy.int32(targets[1] is not None)))
    for original, target in zip((running_mean, running_var), targets):
        if target is not None and target is not original:
            original[...] = target
    return mean, inv_std


def forward(x, gamma, beta, running_mean=None, running_var=None, training=True, momentum=0.1, eps=1e-5):
    """y and the cache of ``ops.batch_norm.forward``, by the kernels of ``batch_norm.cu``."""
    batch, channels, spatial = _check_forward_arguments(x, gamma, beta, running_mean, running_var,
                                                              training)
    xp = backend.get_array_module(x)
    x = xp.ascontiguousarray(x)
    count = batch * spatial
    index = index_for(batch, channels, spatial)
    if training:
        mean, inv_std = _training_statistics(x, batch, channels, spatial, running_mean, running_var,
                                             momentum, eps, index)
    else:  # the plain code's expressions, on [C] vectors: the same mean and inv_std to the bit
        mean = xp.ascontiguousarray(xp.asarray(running_mean, dtype=x.dtype))
        inv_std = 1.0 / xp.sqrt(xp.asarray(running_var, dtype=x.dtype) + eps)
    x_hat = xp.empty_like(x)
    y = x_hat if gamma is None and beta is None else xp.empty_like(x)
    gamma_c = mean if gamma is None else xp.ascontiguousarray(gamma)
    beta_c = mean if beta is None else xp.ascontiguousarray(beta)
    run = compiler.kernel("batch_norm.cu", "bn_normalise", x.dtype, index)
    compiler.launch(run, x.size, (x, mean, inv_std, gamma_c, beta_c, x_hat, y, index(x.size),
                                  index(channels), index(spatial),
                                  numpy.int32(gamma is not None), numpy.int32(beta is not None)))
    return y, Cache(x_hat, inv_std, gamma, beta is not None, count, training)


def _gradient_totals(dy, x_hat, inv_std, gamma, batch, channels, spatial, index):
    """(dgamma, dbeta, a, b) per channel, [C] arrays of x_hat's dtype, with a = scale dgamma / n and
    b = scale dbeta / n (scale = gamma inv_std) the coefficients of dx in training mode."""
    xp = backend.get_array_module(x_hat)
    lanes, lane_sum_dy, lane_sum_dy_x_hat = _lane_partials("bn_lane_gradient_sums", (dy, x_hat), batch,
                                                           channels, spatial, index)
    totals = tuple(xp.empty(channels, dtype=x_hat.dtype) for _ in range(4))
    run = compiler.kernel("batch_norm.cu", "bn_backward_totals", x_hat.dtype, index)
    compiler.launch(run, channels, (lane_sum_dy, lane_sum_dy_x_hat, inv_std if gamma is None else gamma, inv_std)
                    + totals + (index(channels), index(batch * spatial), index(lanes),
                                numpy.int32(gamma is not None)))
    return totals


def backward(grad, cache):
    """(dL/dx, dL/dgamma or None, dL/dbeta or None) from an ops.batch_norm cache (module docstring).

    ``grad`` is taken in the dtype of the cached x_hat (the kernels have one element type).
    """
    if not handles_cache(cache):
        raise ValueError("fused batch_norm backward needs inv_std and gamma of x_hat's dtype")
    x_hat, inv_std, gamma, has_beta, training = cache.x_hat, cache.inv_std, cache.gamma, cache.has_beta, cache.training
    if tuple(grad.shape) != tuple(x_hat.shape):
        raise ValueError(f"batch_norm backward: grad has shape {tuple(grad.shape)}, expected {tuple(x_hat.shape)}")
    batch, channels, spatial = _layout(x_hat)
    xp = backend.get_array_module(x_hat)
    x_hat = xp.ascontiguousarray(x_hat)
    dy = xp.ascontiguousarray(grad, dtype=x_hat.dtype)
    inv_std = xp.ascontiguousarray(inv_std)
    gamma_c = inv_std if gamma is None else xp.ascontiguousarray(gamma)  # not read without gamma
    index = index_for(batch, channels, spatial)
    if training or gamma is not None or has_beta:
        grad_gamma, grad_beta, a, b = _gradient_totals(dy, x_hat, inv_std, None if gamma is None else gamma_c,
                                                       batch, channels, spatial, index)
    else:  # eval without gamma and beta: dx = inv_std dy needs no sums
        grad_gamma = grad_beta = None
        a = b = inv_std  # not read in eval mode
    grad_x = xp.empty_like(x_hat)
    run = compiler.kernel("batch_norm.cu", "bn_backward_dx", x_hat.dtype, index)
    compiler.launch(run, x_hat.size, (dy, x_hat, inv_std, gamma_c, a, b, grad_x, index(x_hat.size),
                                      index(channels), index(spatial),
                                      numpy.int32(gamma is not None), numpy.int32(bool(training))))
    return grad_x, (grad_gamma if gamma is not None else None), (grad_beta if has_beta else None)
