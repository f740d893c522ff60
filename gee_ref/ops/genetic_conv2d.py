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
``gee_ref.ops.im2col``: each cols is used at once and dropped). Forward runs block by block of
images (``gee_ref.ops.im2col.image_blocks``: the columns of a block stay in the cache), the path
chosen once for all columns; backward needs all columns at once for the encodings' gradients.
A population whose individuals have their own inputs goes block by block of individuals as well
(``individual_blocks``). For stride 1 the [C_in*kh*kw, N*Ho*Wo]
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

from gee_ref import backend
from gee_ref.ops import genetic_path
from gee_ref.ops.conv2d import input_gradient
from gee_ref.ops.im2col import (PLAIN, as_pair, conv_geometry, im2col, image_blocks, individual_blocks, merged_shape,
                                nchw_to_rows, rows_to_nchw)


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
    c_out, genes = genetic_path.check_encodings(x_out, g, x_in, x.shape[-3] * kernel[0] * kernel[1])
    xp = backend.get_array_module(x)
    images, positions = x.shape[0], out[0] * out[1]
    path = genetic_path.choose_path(path, c_out, x_in.shape[-2], genes, images * positions)  # for all columns
    y = xp.empty((images,) + x_out.shape[:-2] + (c_out,) + tuple(out), dtype=xp.result_type(x, x_out))
    column_bytes = x_in.shape[-2] * positions * x.itemsize  # one individual's columns of one image
    groups = []  # per block of individuals: the product caches of its image blocks
    for people in individual_blocks(xp, x.shape[1] if x.ndim == 5 else None, column_bytes * images):
        encodings = (x_out, g, x_in) if people is None else (x_out[people], g[people], x_in[people])
        inputs = x if people is None else x[:, people]
        count = 1 if people is None else people.stop - people.start
        groups.append([])
        for block in image_blocks(xp, images, positions, column_bytes * count):
            cols = im2col(inputs[block], kernel, stride, padding, scratch=True, gather=gather)
            y_rows, product_cache = genetic_path.product_forward(cols, *encodings, path)
            y[(block,) if people is None else (block, people)] = rows_to_nchw(y_rows, block.stop - block.start, out)
            groups[-1].append(product_cache)
    product = _joined(xp, groups)._replace(x_out=x_out, g=g, x_in=x_in)
    return y, Cache(product, x, kernel, stride, padding, gather, bool(input_grad))


def _joined(xp, groups):
    """One product cache for every individual and column: a factored path's P and Q joined along
    the columns, then (as A and W of the materialised path) along the individuals."""
    joined = []
    for caches in groups:
        first = caches[0]
        if len(caches) > 1 and isinstance(first, genetic_path.Factored):
            first = first._replace(p=xp.concatenate([c.p for c in caches], axis=-1),
                                   q=xp.concatenate([c.q for c in caches], axis=-1))
        joined.append(first)
    if len(joined) == 1:
        return joined[0]
    return type(joined[0])(*(xp.concatenate(parts, axis=0) for parts in zip(*joined)))


def backward(grad, cache):
    x, product = cache.x, cache.product
    xp = backend.get_array_module(grad)
    fan_in, positions = product.x_in.shape[-2], grad.shape[-2] * grad.shape[-1]
    blocks = individual_blocks(xp, x.shape[1] if x.ndim == 5 else None, fan_in * positions * x.shape[0] * x.itemsize)
    dx = xp.empty(x.shape, dtype=xp.result_type(x, grad)) if cache.input_grad and blocks[0] is not None else None
    gradients = []
    for people in blocks:
        inputs = x if people is None else x[:, people]
        own = product if people is None else type(product)(*(a[people] for a in product))
        cols = im2col(inputs, cache.kernel, cache.stride, cache.padding, scratch=True, gather=cache.gather)
        weight_rows, d_rows, dx_out, dg, dx_in = genetic_path.product_backward_parts(
            nchw_to_rows(grad if people is None else grad[:, people]), own, cols)
        gradients.append((dx_out, dg, dx_in))
        if cache.input_grad:
            dx_part = input_gradient(d_rows, weight_rows, inputs.shape, cache.kernel, cache.stride, cache.padding,
                                     gather=cache.gather)
            if people is None:
                dx = dx_part
            else:
                dx[:, people] = dx_part
    if len(gradients) == 1:
        return (dx,) + gradients[0]
    return (dx,) + tuple(xp.concatenate(parts, axis=0) for parts in zip(*gradients))
