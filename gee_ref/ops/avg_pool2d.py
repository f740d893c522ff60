"""Average pooling over kh x kw windows of x [N, C, H, W] (PyTorch's avg_pool2d defaults).

    y[n, c, i, j] = 1/(kh kw) sum_{a<kh, b<kw} x_pad[n, c, i*sh + a, j*sw + b]

x_pad is x with `padding` zeros on each side, and the zeros count in the mean
(count_include_pad=True); the output is floor((H + 2 ph - kh) / sh) + 1 high
(ceil_mode=False). The backward sends dy / (kh kw) to every position of the window.

The loops run over the kh*kw kernel offsets, each a strided slice of the whole
batch, never over pixels. The window helpers here are shared with max_pool2d.
A population's activations [N, P, C, H, W] (DESIGN.md section 2) pool the same way: the
windows slide over the last two axes, whatever comes before them.
"""
from __future__ import annotations

import operator
from typing import NamedTuple

from gee_ref import backend


class Cache(NamedTuple):
    x_shape: tuple
    pad_shape: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    out: tuple


def _pair(value, name, minimum):
    """An int or a pair of ints, each >= minimum, as a pair."""
    try:
        pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
        pair = tuple(operator.index(v) for v in pair)
    except TypeError:
        raise ValueError(f"pool {name} must be an int or a pair of ints, got {value!r}") from None
    if len(pair) != 2 or min(pair) < minimum:
        raise ValueError(f"pool {name} must be an int or a pair of ints >= {minimum}, got {value!r}")
    return pair


def window_geometry(x_shape, kernel_size, stride, padding):
    """(kernel, stride, padding, output size) as pairs, validated like PyTorch's pools."""
    if len(x_shape) not in (4, 5):
        raise ValueError(f"pooling expects x of shape [N, C, H, W] (or a population's [N, P, C, H, W]), "
                         f"got shape {tuple(x_shape)}")
    kernel = _pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _pair(stride, "stride", 1)
    padding = _pair(padding, "padding", 0)
    if any(2 * p > k for p, k in zip(padding, kernel)):
        raise ValueError(f"pool padding {padding} must be at most half the kernel size {kernel}")
    out = tuple((size + 2 * p - k) // s + 1 for size, k, s, p in zip(x_shape[-2:], kernel, stride, padding))
    if min(out) < 1:
        raise ValueError(f"pool kernel {kernel} is larger than the padded input {tuple(x_shape[-2:])}")
    return kernel, stride, padding, out


def pad(x, padding, value):
    """x with `padding` (ph, pw) constant values around its last two axes."""
    if padding == (0, 0):
        return x
    xp = backend.get_array_module(x)
    (ph, pw) = padding
    return xp.pad(x, ((0, 0),) * (x.ndim - 2) + ((ph, ph), (pw, pw)), mode="constant", constant_values=value)


def crop(x_pad, padding, size):
    """Undo pad: the [H, W] interior of x_pad."""
    (ph, pw), (h, w) = padding, size
    return x_pad[..., ph:ph + h, pw:pw + w]


def window_offsets(kernel, stride, out):
    """Yield, for each kernel offset (a, b) in row-major order, the slice of x_pad that
    holds x_pad[..., i*sh + a, j*sw + b] for every output position (i, j)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    for a in range(kh):
        for b in range(kw):
            yield (Ellipsis, slice(a, a + sh * (oh - 1) + 1, sh), slice(b, b + sw * (ow - 1) + 1, sw))


def forward(x, kernel_size, stride=None, padding=0):
    kernel, stride, padding, out = window_geometry(x.shape, kernel_size, stride, padding)
    x_pad = pad(x, padding, 0.0)
    total = None
    for window in window_offsets(kernel, stride, out):
        total = x_pad[window] if total is None else total + x_pad[window]
    y = total / (kernel[0] * kernel[1])
    return y, Cache(x.shape, x_pad.shape, kernel, stride, padding, out)


def backward(grad, cache):
    x_shape, pad_shape, kernel, stride, padding, out = cache
    xp = backend.get_array_module(grad)
    grad_pad = xp.zeros(pad_shape, dtype=grad.dtype)
    share = grad / (kernel[0] * kernel[1])
    for window in window_offsets(kernel, stride, out):
        grad_pad[window] += share  # within one offset the slice's positions are distinct
    return (crop(grad_pad, padding, x_shape[-2:]),)
