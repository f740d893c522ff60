"""Batch normalisation per channel (DESIGN.md section 3; Ioffe & Szegedy 2015).

x is [N, C] (statistics over N) or [N, C, H, W] (over N, H, W). In a spiking
network N is the merged T*N axis, so the statistics run over T*N*H*W, as in
threshold-dependent BN (tdBN) without its threshold scaling.

    training:  mu = mean(x),  var = mean((x - mu)^2)  (biased, to normalise)
               running_mean <- (1 - m) running_mean + m mu
               running_var  <- (1 - m) running_var  + m var * n / (n - 1)   (unbiased)
    eval:      mu, var = running_mean, running_var
    both:      x_hat = (x - mu) / sqrt(var + eps),   y = gamma x_hat + beta

The running statistics are updated in place (PyTorch's convention). Backward,
with n values per channel and dx_hat = dy gamma (sums over the channel's values):

    training:  dx = (n dx_hat - sum(dx_hat) - x_hat sum(dx_hat x_hat)) / (n sqrt(var + eps))
    eval:      dx = dx_hat / sqrt(var + eps)
    both:      dgamma = sum(dy x_hat),  dbeta = sum(dy)

Since sum(dx_hat) = gamma dbeta and sum(dx_hat x_hat) = gamma dgamma, the training line is

    dx = gamma / sqrt(var + eps) * (dy - dbeta / n - x_hat dgamma / n)

which backward evaluates: the two per-channel sums once (``einsum``, no product array), then
the elementwise lines block by block of samples (``sample_blocks``: on the CPU a block stays in
the cache between the lines, so dy and x_hat are read once and dx written once; forward does the
same for the scaling and the affine map). Elementwise lines give the same numbers in any blocks. gamma or beta may be None (no affine scale or shift; the
sums are still those of dy and dy x_hat).

A population (DESIGN.md section 2) normalises each individual's channels on their own: x
[N, P, C] or [N, P, C, H, W] with gamma, beta and the running statistics [P, C]. The lines
above then hold per unit (p, c) instead of per channel c; the unit axes are those of gamma
(or of the running statistics), right after the batch axis.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from gee_ref import backend


#: Values per block of samples on the CPU (about 1 MiB of float32, as ``gee_ref.ops.lif.BLOCK``).
BLOCK = 2 ** 18


def sample_blocks(xp, x) -> list:
    """Slices of x's first axis holding about ``BLOCK`` values each on the CPU; one slice on a GPU."""
    rows = x.shape[0]
    if rows == 0:
        return [slice(0, 0)]
    return backend.cpu_blocks(xp, rows, BLOCK // max(1, x.size // rows))


class Cache(NamedTuple):
    x_hat: object
    inv_std: object  # per unit: [C], or [P, C] for a population
    gamma: object
    has_beta: bool
    count: int       # values per unit, n
    training: bool


def _units(x, **vectors) -> tuple:
    """The normalised units, (C,) or a population's (P, C): the shape of the per-unit vectors,
    which follows x's batch axis; a ValueError for shapes that do not fit."""
    given = {name: v for name, v in vectors.items() if v is not None}
    units = tuple(next(iter(given.values())).shape) if given else tuple(x.shape[1:2])
    if len(units) not in (1, 2) or x.ndim - len(units) not in (1, 3) or tuple(x.shape[1:1 + len(units)]) != units:
        raise ValueError(f"batch_norm expects x of shape [N, C] or [N, C, H, W] (or [N, P, C, ...] with [P, C] "
                         f"vectors for a population), got x {tuple(x.shape)} and vectors of shape {units}")
    for name, v in given.items():
        if tuple(v.shape) != units:
            raise ValueError(f"batch_norm: {name} has shape {tuple(v.shape)}, expected {units}")
    return units


def _channel_sums(a, b=None):
    """Per channel sum(a), or sum(a * b); a, b [N, C, ...] -> [C].

    NumPy: ``einsum``, one pass and no product array. CuPy's einsum takes C dot products in one
    batched GEMM, and for [N, C, H, W] first copies both operands to [C, N*S]; there the product
    is formed and reduced over N and S by one kernel instead: two kernels instead of three, four
    passes over the data instead of six (counted on the CuPy stand-in,
    tests/gpu_emulation/test_cupy_standin.py).
    """
    a3 = a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))  # no -1: N may be 0
    if backend.device_of(a) == "cpu":
        if b is None:
            return backend.get_array_module(a).einsum("ncs->c", a3)
        return backend.get_array_module(a).einsum("ncs,ncs->c", a3, b.reshape(a3.shape))
    product = a3 if b is None else a3 * b.reshape(a3.shape)
    return product.sum(axis=(0, 2))


def _per_channel(v, ndim):
    """A [C] (or [P, C]) vector shaped to broadcast against x: [1, C], [1, C, 1, 1] (or [1, P, C, ...])."""
    return v.reshape((1,) + tuple(v.shape) + (1,) * (ndim - 1 - v.ndim))


def _unit_sums(a, b, units):
    """``_channel_sums`` per unit: a population's [N, P, C, ...] seen as [N, P*C, ...] (a view)."""
    if len(units) == 1:
        return _channel_sums(a, b)
    merged = (a.shape[0], math.prod(units)) + tuple(a.shape[1 + len(units):])
    return _channel_sums(a.reshape(merged), None if b is None else b.reshape(merged)).reshape(units)


def forward(x, gamma, beta, running_mean=None, running_var=None, training=True,
            momentum=0.1, eps=1e-5):
    xp = backend.get_array_module(x)
    units = _units(x, gamma=gamma, beta=beta, running_mean=running_mean, running_var=running_var)
    count = x.size // math.prod(units)
    if training:
        if count < 2:
            raise ValueError("batch_norm in training mode needs more than one value per channel")
        mean = _unit_sums(x, None, units) / count
        x_hat = x - _per_channel(mean, x.ndim)  # x - mu, centred once; scaled to x_hat below
        var = _unit_sums(x_hat, x_hat, units) / count  # mean((x - mu)^2), biased
        if running_mean is not None:
            running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        if running_var is not None:
            running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm in eval mode needs running_mean and running_var")
        mean = xp.asarray(running_mean, dtype=x.dtype)
        var = xp.asarray(running_var, dtype=x.dtype)
        x_hat = x - _per_channel(mean, x.ndim)
    inv_std = 1.0 / xp.sqrt(var + eps)
    scale, shift = _per_channel(inv_std, x.ndim), None if beta is None else _per_channel(beta, x.ndim)
    y = x_hat if gamma is None and beta is None else xp.empty_like(x_hat)
    for rows in sample_blocks(xp, x_hat):
        block = x_hat[rows]
        block *= scale  # x_hat = (x - mu) / sqrt(var + eps)
        if gamma is not None:
            xp.multiply(block, _per_channel(gamma, x.ndim), out=y[rows])  # gamma x_hat, apart: backward keeps x_hat
            if shift is not None:
                y[rows] += shift  # y = gamma x_hat + beta
        elif shift is not None:
            xp.add(block, shift, out=y[rows])
    return y, Cache(x_hat, inv_std, gamma, beta is not None, count, training)


def backward(grad, cache):
    x_hat, inv_std, gamma, has_beta, count, training = cache
    xp = backend.get_array_module(grad)
    ndim, units = x_hat.ndim, tuple(inv_std.shape)
    sum_grad = _unit_sums(grad, None, units)         # dbeta
    sum_grad_x_hat = _unit_sums(grad, x_hat, units)  # dgamma
    scale = inv_std if gamma is None else gamma * inv_std
    scale_x_hat = _per_channel(scale * sum_grad_x_hat / count, ndim)
    shift = _per_channel(scale * sum_grad / count, ndim)
    grad_x = xp.empty_like(grad)
    for rows in sample_blocks(xp, grad):
        block = xp.multiply(grad[rows], _per_channel(scale, ndim), out=grad_x[rows])  # eval: gamma dy / sqrt(var + eps)
        if training:  # dx = gamma / sqrt(var + eps) * (dy - dbeta / n - x_hat dgamma / n)
            block -= x_hat[rows] * scale_x_hat
            block -= shift
    return grad_x, sum_grad_x_hat if gamma is not None else None, sum_grad if has_beta else None
