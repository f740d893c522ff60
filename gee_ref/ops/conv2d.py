"""2-D convolution (cross-correlation, PyTorch semantics) as one GEMM on im2col columns.

Forward, with cols = im2col(x) [C_in*kh*kw, N*Ho*Wo] and W = w.reshape(C_out, -1)::

    Y = W @ cols                      Y: [C_out, N*Ho*Wo], reshaped to [N, C_out, Ho, Wo]

Backward, for the upstream gradient dY in the same row layout::

    dW    = dY @ cols.T               (reshaped to w's shape)
    dcols = W.T @ dY,   dx = col2im(dcols)

Only x is kept for backward; cols is recomputed there (the columns are kh*kw times larger than x).
The columns and dcols live in the reused scratch buffer of ``gee_ref.ops.im2col`` (each is used
at once and dropped), which spares NumPy fresh memory for them on every call.
For stride 1 (and padding <= kernel - 1), dx is computed without the large dcols: it is the
stride-1 correlation of dY, zero-padded by (kh - 1 - ph, kw - 1 - pw), with the kernel flipped
in both spatial axes and its two channel axes swapped,

    dx[n, c, h, w] = sum_{o, i, j} dY[n, o, h + ph - i, w + pw - j] * w[o, c, i, j]

(the same sum as col2im(W.T @ dY), which stays as the readable reference and the stride-2 route).
Forward and dx run block by block of images (``gee_ref.ops.im2col.image_blocks``: the columns of a
block stay in the cache); dW sums over every column and takes them all at once.

x [N, C_in, H, W], w [C_out, C_in, kh, kw]; stride and padding an int or a pair. A population
(DESIGN.md section 2) stacks the weights, w [P, C_out, C_in, kh, kw], and carries its
individuals on the second axis of the activations, x [N, P, C_in, H, W] (or the same x
[N, C_in, H, W] for all): every product above is then a ``matmul`` over P (``_t`` swaps the
last two axes). ``gather`` is the im2col/col2im implementation (``gee_ref.ops.im2col``).
``input_grad=False`` (the images at a network's first convolution, which need no gradient)
skips dx: backward returns None in its place. No bias: in the networks of gee_ref a BatchNorm
follows every convolution.
"""
from __future__ import annotations

import math
from typing import NamedTuple

from gee_ref import backend
from gee_ref.ops.im2col import (PLAIN, column_scratch, conv_geometry, im2col, image_blocks, merged_shape, nchw_to_rows,
                                rows_to_nchw)


class Cache(NamedTuple):
    x: object
    weight: object  # w as [(P,) C_out, C_in*kh*kw]
    w_shape: tuple
    stride: object
    padding: object
    gather: object
    input_grad: bool


def _t(a):
    return a.swapaxes(-1, -2)


def check_weight(x_shape, w_shape):
    """A ValueError unless w is [(P,) C_out, C_in, kh, kw] with C_in the input's channel count."""
    if len(w_shape) not in (4, 5):
        raise ValueError(f"conv2d weight must be [C_out, C_in, kh, kw] (with a leading population axis P, "
                         f"or none), got shape {tuple(w_shape)}")
    if len(x_shape) >= 4 and w_shape[-3] != x_shape[-3]:
        raise ValueError(f"conv2d weight expects {w_shape[-3]} input channels, the input has {x_shape[-3]}")


def input_gradient(grad_rows, weight_rows, x_shape, kernel_size, stride=1, padding=0, route="auto", gather=PLAIN):
    """dx = col2im(weight_rows.T @ grad_rows) for grad_rows [C', N*Ho*Wo], weight_rows [C', C_in*kh*kw].

    route "col2im" forms dcols; "flipped" (stride 1, padding <= kernel - 1 only) correlates the
    padded gradient with the flipped kernel instead; "auto" takes "flipped" wherever it applies.
    A population's grad_rows and weight_rows carry a leading P; an input x shared by the whole
    population (x_shape [N, C_in, H, W]) gets the sum of every individual's gradient. Computed
    block by block of images (``image_blocks``), each image's dx from its own columns.
    """
    merged = merged_shape(x_shape)
    (kh, kw), step, (ph, pw), out = conv_geometry(merged, kernel_size, stride, padding)
    flipped_applies = step == (1, 1) and ph <= kh - 1 and pw <= kw - 1
    if route not in ("auto", "col2im", "flipped") or (route == "flipped" and not flipped_applies):
        raise ValueError(f"input_gradient route {route!r} is not 'auto', 'col2im', or 'flipped' with stride 1 "
                         f"and padding <= kernel - 1")
    flipped = route == "flipped" or (route == "auto" and flipped_applies)
    xp = backend.get_array_module(grad_rows)
    positions = out[0] * out[1]
    rows = kh * kw * weight_rows.shape[-2] if flipped else weight_rows.shape[-1]  # of grad_cols, or of dcols
    column_bytes = rows * positions * grad_rows.itemsize * max(1, math.prod(weight_rows.shape[:-2]))
    dx = xp.empty(tuple(x_shape), dtype=xp.result_type(weight_rows, grad_rows))
    for block in image_blocks(xp, x_shape[0], positions, column_bytes):
        columns = slice(block.start * positions, block.stop * positions)
        block_shape = (block.stop - block.start,) + tuple(x_shape[1:])
        geometry = ((kh, kw), step, (ph, pw), out)
        dx[block] = _input_gradient_of_images(grad_rows[..., columns], weight_rows, block_shape, geometry, flipped,
                                              gather)
    return dx


def _input_gradient_of_images(grad_rows, weight_rows, x_shape, geometry, flipped, gather):
    """``input_gradient`` of the images whose columns ``grad_rows`` holds (one block)."""
    (kh, kw), step, (ph, pw), out = geometry
    n, c_in, h, w = x_shape[0], *x_shape[-3:]
    xp = backend.get_array_module(grad_rows)
    population = weight_rows.ndim == 3
    if not flipped:
        shape = weight_rows.shape[:-2] + (weight_rows.shape[-1], grad_rows.shape[-1])
        dcols = xp.matmul(_t(weight_rows), grad_rows,
                          out=column_scratch(xp, shape, xp.result_type(weight_rows, grad_rows)))
        if not population:
            return gather.col2im(dcols, x_shape, (kh, kw), step, (ph, pw))
        if len(x_shape) == 4:  # one input for every individual
            return gather.col2im(dcols.sum(axis=0), x_shape, (kh, kw), step, (ph, pw))
        size = dcols.shape[0]
        dx = gather.col2im(dcols.transpose(1, 0, 2).reshape(dcols.shape[1], -1), merged_shape(x_shape), (kh, kw),
                           step, (ph, pw))
        return dx.reshape((size, n, c_in, h, w)).transpose(1, 0, 2, 3, 4)
    lead = weight_rows.shape[:-2]  # (P,) or ()
    kernel = weight_rows.reshape(lead + (-1, c_in, kh, kw))[..., ::-1, ::-1].swapaxes(-4, -3)  # [(P,) C_in, C', kh, kw]
    d_cnhw = (grad_rows.reshape((-1, n) + tuple(out)) if not population
              else grad_rows.transpose(1, 0, 2).reshape((grad_rows.shape[1], -1) + tuple(out)))
    grad_cols = gather.channel_major_im2col(d_cnhw, (kh, kw), 1, (kh - 1 - ph, kw - 1 - pw), scratch=True)
    if population:
        grad_cols = grad_cols.reshape(grad_cols.shape[0], weight_rows.shape[0], -1).transpose(1, 0, 2)
    dx = rows_to_nchw(kernel.reshape(lead + (c_in, -1)) @ grad_cols, n, (h, w))
    return dx.sum(axis=1) if dx.ndim > len(x_shape) else dx


def forward(x, w, stride=1, padding=0, gather=PLAIN, input_grad=True):
    check_weight(x.shape, w.shape)
    kernel = tuple(w.shape[-2:])
    *_, out = conv_geometry(merged_shape(x.shape), kernel, stride, padding)
    weight = w.reshape(w.shape[:-3] + (-1,))
    xp = backend.get_array_module(x)
    images, positions = x.shape[0], out[0] * out[1]
    y = xp.empty((images,) + weight.shape[:-1] + tuple(out), dtype=xp.result_type(x, w))
    column_bytes = weight.shape[-1] * positions * x.itemsize * max(1, math.prod(x.shape[1:-3]))
    for block in image_blocks(xp, images, positions, column_bytes):
        cols = im2col(x[block], kernel, stride, padding, scratch=True, gather=gather)
        y[block] = rows_to_nchw(weight @ cols, block.stop - block.start, out)
    return y, Cache(x, weight, w.shape, stride, padding, gather, bool(input_grad))


def backward(grad, cache):
    kernel = tuple(cache.w_shape[-2:])
    grad_rows = nchw_to_rows(grad)
    dw = (grad_rows @ _t(im2col(cache.x, kernel, cache.stride, cache.padding, scratch=True, gather=cache.gather)))
    dx = None
    if cache.input_grad:
        dx = input_gradient(grad_rows, cache.weight, cache.x.shape, kernel, cache.stride, cache.padding,
                            gather=cache.gather)
    return dx, dw.reshape(cache.w_shape)
