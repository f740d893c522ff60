"""The functional API: Tensors in, Tensors out, recorded on the autograd tape.

Each function here is one line that hands its arrays to an op of
``gee_ref.ops`` (where the math and its equation live) through
``autograd.apply``. Keyword defaults follow DESIGN.md section 3.
For LIF, batch norm and the convolutions' gather, ``gee_ref.kernels.dispatch`` says whether
a fused CUDA kernel stands in for the plain op.
"""
from __future__ import annotations

from gee_ref.autograd.tape import Tensor, apply
from gee_ref.kernels import dispatch
from gee_ref.ops import (add as _add, avg_pool2d as _avg_pool2d, conv2d as _conv2d, cross_entropy as _cross_entropy,
                         flatten as _flatten, genetic_conv2d as _genetic_conv2d, genetic_linear as _genetic_linear,
                         global_avg_pool2d as _global_avg_pool2d, linear as _linear,
                         max_pool2d as _max_pool2d, mean as _mean, mean_over_time as _mean_over_time,
                         mse as _mse, mul as _mul, repeat_time as _repeat_time, reshape as _reshape,
                         sum as _sum)


def _data(value):
    """The array behind a Tensor (a dispatch decision looks at arrays)."""
    return value.data if isinstance(value, Tensor) else value


def _requires_grad(value) -> bool:
    """Whether the tape will want a gradient for this input (the images of a first layer do not)."""
    return isinstance(value, Tensor) and value.requires_grad


def conv2d(x, w, stride=1, padding=0):
    """2-D convolution (cross-correlation), x [N,C,H,W], w [C_out,C_in,kh,kw], via im2col."""
    return apply(_conv2d, x, w, stride=stride, padding=padding, gather=dispatch.gather(_data(x)),
                 input_grad=_requires_grad(x))


def genetic_conv2d(x, x_out, g, x_in, kernel_size, stride=1, padding=0, path="auto"):
    """Convolution whose weight is W = x_out @ g @ x_in.T (paper eq. 1), [C_out, C_in*kh*kw]."""
    return apply(_genetic_conv2d, x, x_out, g, x_in, kernel_size=kernel_size, stride=stride,
                 padding=padding, path=path, gather=dispatch.gather(_data(x)), input_grad=_requires_grad(x))


def linear(x, w, b=None):
    """y = x @ w.T + b, x [N, in], w [out, in]."""
    return apply(_linear, x, w, b)


def genetic_linear(x, x_out, g, x_in, b=None, path="auto"):
    """Linear layer whose weight is W = x_out @ g @ x_in.T (paper eq. 1)."""
    return apply(_genetic_linear, x, x_out, g, x_in, b, path=path)


def batch_norm(x, gamma, beta, running_mean, running_var, training, momentum=0.1, eps=1e-5):
    """Per-channel batch normalisation over (N, H, W) of x [N, C, H, W] or over N of x [N, C]."""
    op = dispatch.batch_norm_op(_data(x), _data(gamma), _data(beta), running_mean, running_var, training)
    return apply(op, x, gamma, beta, running_mean=running_mean, running_var=running_var,
                 training=training, momentum=momentum, eps=eps)


def lif(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=None,
        detach_reset=False, soft=False):
    """Leaky integrate-and-fire over time: x_seq [T, N, ...] -> spikes [T, N, ...].

    ``alpha=None`` takes the surrogate's own default (sigmoid 4, atan 2, rectangular 1).
    """
    return apply(dispatch.lif_op(_data(x_seq), surrogate, soft), x_seq, tau=tau, v_th=v_th, v_reset=v_reset,
                 surrogate=surrogate, alpha=alpha, detach_reset=detach_reset, soft=soft)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    return apply(_avg_pool2d, x, kernel_size=kernel_size, stride=stride, padding=padding)


def max_pool2d(x, kernel_size, stride=None, padding=0):
    return apply(_max_pool2d, x, kernel_size=kernel_size, stride=stride, padding=padding)


def global_avg_pool2d(x):
    """[N, C, H, W] -> [N, C]."""
    return apply(_global_avg_pool2d, x)


def flatten(x, start_dim=1):
    """Merge every axis from start_dim on into one."""
    return apply(_flatten, x, start_dim=start_dim)


def reshape(x, shape):
    return apply(_reshape, x, shape=tuple(shape))


def add(a, b):
    """a + b with NumPy broadcasting (a residual connection, a bias)."""
    return apply(_add, a, b)


def mul(a, b):
    """a * b with NumPy broadcasting."""
    return apply(_mul, a, b)


def sum(x):  # noqa: A001 - mirrors the array method name
    return apply(_sum, x)


def mean(x):
    return apply(_mean, x)


def mean_over_time(x):
    """The readout: [T, N, ...] -> [N, ...], the mean over time steps."""
    return apply(_mean_over_time, x)


def repeat_time(x, time_steps):
    """Direct encoding: [N, ...] -> [T*N, ...], the same input at every time step."""
    return apply(_repeat_time, x, time_steps=time_steps)


def cross_entropy(logits, labels):
    """Mean over the batch of -log softmax(logits)[label], with a stable log-sum-exp."""
    return apply(_cross_entropy, logits, labels=labels)


def mse(a, b):
    """Mean of (a - b)^2 over all elements."""
    return apply(_mse, a, b)
