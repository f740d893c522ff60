"""Max pooling over kh x kw windows of x [N, C, H, W] (PyTorch's max_pool2d defaults).

    y[n, c, i, j] = max_{a<kh, b<kw} x_pad[n, c, i*sh + a, j*sw + b]

x_pad is x with `padding` values of -inf on each side (never a window's maximum,
since padding <= kernel/2 leaves a real pixel in every window). The gradient goes
to the arg-max alone. Ties: the first offset (a, b) in row-major window order wins,
as in PyTorch's CPU kernel; a NaN in a window is taken as its maximum (NaN propagates).

Like avg_pool2d, the loops run over kernel offsets (strided slices), not pixels;
the arg-max is kept as the winning offset's index a*kw + b for each output.
"""
from __future__ import annotations

from typing import NamedTuple

from gee_ref import backend
from gee_ref.ops.avg_pool2d import crop, pad, window_geometry, window_offsets


class Cache(NamedTuple):
    x_shape: tuple
    pad_shape: tuple
    arg: object  # the winning offset a*kw + b of every output
    kernel: tuple
    stride: tuple
    padding: tuple
    out: tuple


def forward(x, kernel_size, stride=None, padding=0):
    xp = backend.get_array_module(x)
    kernel, stride, padding, out = window_geometry(x.shape, kernel_size, stride, padding)
    x_pad = pad(x, padding, -xp.inf)
    best, arg = None, None
    for k, window in enumerate(window_offsets(kernel, stride, out)):
        v = x_pad[window]
        if best is None:
            best, arg = v.copy(), xp.zeros(v.shape, dtype=xp.int32)
            continue
        take = (v > best) | xp.isnan(v)  # strict: an equal later value loses the tie
        best = xp.where(take, v, best)
        arg = xp.where(take, k, arg)
    return best, Cache(x.shape, x_pad.shape, arg, kernel, stride, padding, out)


def backward(grad, cache):
    x_shape, pad_shape, arg, kernel, stride, padding, out = cache
    xp = backend.get_array_module(grad)
    grad_pad = xp.zeros(pad_shape, dtype=grad.dtype)
    for k, window in enumerate(window_offsets(kernel, stride, out)):
        grad_pad[window] += xp.where(arg == k, grad, 0.0)
    return (crop(grad_pad, padding, x_shape[-2:]),)
