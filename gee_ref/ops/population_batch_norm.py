"""Batch normalisation per (individual, channel) for a stacked population (DESIGN.md section 3).

x is [B, P, C] or [B, P, C, H, W]; individual p's channel c is normalised over its own B (and
H, W) values, with its own gamma[p, c], beta[p, c] and running statistics [P, C], exactly as
``gee_ref.ops.batch_norm`` does for one network::

    training:  mu = mean(x),  var = mean((x - mu)^2)   (biased, to normalise)
               running_mean <- (1 - m) running_mean + m mu
               running_var  <- (1 - m) running_var  + m var * n / (n - 1)   (unbiased)
    eval:      mu, var = running_mean, running_var
    both:      x_hat = (x - mu) / sqrt(var + eps),   y = gamma x_hat + beta
    backward (training):
               dx = (n dx_hat - sum(dx_hat) - x_hat sum(dx_hat x_hat)) / (n sqrt(var + eps))

with n = B*H*W values per (p, c) and dx_hat = dy gamma.
"""
from __future__ import annotations

from gee_ref import backend


def _reduce_axes(x):
    if x.ndim == 3:
        return (0,)
    if x.ndim == 5:
        return (0, 3, 4)
    raise ValueError(f"population_batch_norm expects x [B, P, C] or [B, P, C, H, W], got shape {tuple(x.shape)}")


def _per_unit(v, ndim):
    """A [P, C] array shaped to broadcast against x: [1, P, C] or [1, P, C, 1, 1]."""
    return v.reshape((1,) + tuple(v.shape) + (1,) * (ndim - 3))


def forward(x, gamma, beta, running_mean, running_var, training=True, momentum=0.1, eps=1e-5):
    xp = backend.get_array_module(x)
    axes = _reduce_axes(x)
    for name, v in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean), ("running_var", running_var)):
        if tuple(v.shape) != tuple(x.shape[1:3]):
            raise ValueError(f"population_batch_norm: {name} has shape {tuple(v.shape)}, "
                             f"expected {tuple(x.shape[1:3])}")
    count = x.size // (x.shape[1] * x.shape[2])
    if training:
        if count < 2:
            raise ValueError("population_batch_norm in training mode needs more than one value per channel")
        mean = x.mean(axis=axes)
        x_hat = x - _per_unit(mean, x.ndim)
        var = (x_hat * x_hat).sum(axis=axes) / count
        running_mean[...] = (1.0 - momentum) * running_mean + momentum * mean
        running_var[...] = (1.0 - momentum) * running_var + momentum * var * (count / (count - 1))
    else:
        mean, var = xp.asarray(running_mean, dtype=x.dtype), xp.asarray(running_var, dtype=x.dtype)
        x_hat = x - _per_unit(mean, x.ndim)
    inv_std = 1.0 / xp.sqrt(var + eps)
    x_hat *= _per_unit(inv_std, x.ndim)
    y = x_hat * _per_unit(gamma, x.ndim) + _per_unit(beta, x.ndim)
    return y, (x_hat, inv_std, gamma, axes, count, training)


def backward(grad, cache):
    x_hat, inv_std, gamma, axes, count, training = cache
    ndim = x_hat.ndim
    grad_gamma = (grad * x_hat).sum(axis=axes)
    grad_beta = grad.sum(axis=axes)
    grad_x_hat = grad * _per_unit(gamma, ndim)
    if training:
        sum_g = _per_unit(grad_x_hat.sum(axis=axes), ndim)
        sum_gx = _per_unit((grad_x_hat * x_hat).sum(axis=axes), ndim)
        grad_x = (count * grad_x_hat - sum_g - x_hat * sum_gx) * (_per_unit(inv_std, ndim) / count)
    else:
        grad_x = grad_x_hat * _per_unit(inv_std, ndim)
    return grad_x, grad_gamma, grad_beta
