"""Genetic convolution (paper eq. 1, 2, 4, 5): a conv2d whose weight is made of genes.

Eq. 1 (weight):     W = X_out @ G @ X_in.T,   W: [C_out, C_in*kh*kw], viewed as [C_out, C_in, kh, kw]
Eq. 2 (parameters): g*(C_out + C_in*kh*kw) per layer instead of C_out*C_in*kh*kw (+ g*g for G, once)

with X_out [C_out, g], G [g, g] (the global gene interaction matrix), X_in [C_in*kh*kw, g],
whose rows follow the im2col order (C_in-major, then kh, then kw). On cols = im2col(x)::

    Y = W @ cols                                   ("materialised"), or
    Y = X_out @ (G @ (X_in.T @ cols))              ("factored"; W never formed)

Eq. 4-5 (backward), with dY the upstream gradient in the im2col row layout and dW = dY @ cols.T::

    dX_out = dW @ X_in @ G.T,   dG = X_out.T @ dW @ X_in,   dX_in = dW.T @ X_out @ G,
    dx = col2im(W.T @ dY)

(the factored path computes the same without dW or W; see ``gee_ref.ops.genetic_path``, which
also counts both paths' MACs and picks the cheaper for ``path="auto"``).

Only x is kept for backward; cols is recomputed there (in the reused scratch buffer of
``gee_ref.ops.im2col``: each cols is used at once and dropped). For stride 1 the [C_in*kh*kw, N*Ho*Wo]
dcols is never formed: dx is the correlation of dY (materialised; kernel W) or of
dP = G.T @ X_out.T @ dY (factored; kernel X_in.T), either viewed [*, C_in, kh, kw] and flipped
(``gee_ref.ops.conv2d.input_gradient``).

A population (DESIGN.md section 2): encodings and G with a leading axis P, activations
x [N, P, C_in, H, W] -> y [N, P, C_out, Ho, Wo] (or one x [N, C_in, H, W] read by every
individual, e.g. the images at the first layer), each individual computing the lines above
with its own numbers. ``gather`` is the im2col/col2im implementation (``gee_ref.ops.im2col``).
``input_grad=False`` (a network's first convolution, on the images) skips dx: backward returns
None in its place.
"""
from __future__ import annotations

from typing import NamedTuple

from gee_ref.ops import genetic_path
from gee_ref.ops.conv2d import input_gradient
from gee_ref.ops.im2col import PLAIN, as_pair, conv_geometry, im2col, merged_shape, nchw_to_rows, rows_to_nchw


class Cache(NamedTuple):
    product: tuple  # genetic_path.Materialised or Factored
    x: object
    kernel: tuple
    stride: object
    padding: object
    gather: object
    input_grad: bool


def forward(x, x_out, g, x_in, kernel_size, stride=1, padding=0, path="auto", gather=PLAIN, input_grad=True):
    kernel = as_pair(kernel_size, "kernel_size")
    *_, out = conv_geometry(merged_shape(x.shape), kernel, stride, padding)
    genetic_path.check_encodings(x_out, g, x_in, x.shape[-3] * kernel[0] * kernel[1])
    cols = im2col(x, kernel, stride, padding, scratch=True, gather=gather)
    y_rows, product_cache = genetic_path.product_forward(cols, x_out, g, x_in, path)
    cache = Cache(product_cache, x, kernel, stride, padding, gather, bool(input_grad))
    return rows_to_nchw(y_rows, x.shape[0], out), cache


def backward(grad, cache):
    cols = im2col(cache.x, cache.kernel, cache.stride, cache.padding, scratch=True, gather=cache.gather)
    weight_rows, d_rows, dx_out, dg, dx_in = genetic_path.product_backward_parts(nchw_to_rows(grad), cache.product,
                                                                                  cols)
    dx = None
    if cache.input_grad:
        dx = input_gradient(d_rows, weight_rows, cache.x.shape, cache.kernel, cache.stride, cache.padding,
                            gather=cache.gather)
    return dx, dx_out, dg, dx_in
