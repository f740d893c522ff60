"""A genetic convolution per individual for a stacked population (paper eq. 1, 4, 5).

x [B, P, C_in, H, W] holds individual p's activations in x[:, p] (or x [B, C_in, H, W], the same
input for every individual, e.g. the images at the first layer); individual p's weight is
W[p] = X_out[p] G[p] X_in[p].T, [C_out, C_in*kh*kw] in im2col row order. For every p::

    cols_p = im2col(x[:, p])                [C_in*kh*kw, B*Ho*Wo]
    Y_p    = X_out[p] G[p] X_in[p].T cols_p    (``population_genetic_path``, batched over p)
    y[:, p] = Y_p viewed [B, C_out, Ho, Wo],    dx[:, p] = col2im(dcols_p)

All P inputs go through one im2col of a [C_in, P*B, H, W] view, whose columns are grouped by
individual; the batched matmul reads them in place.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.ops import population_genetic_path
from gee_ref.ops.im2col import as_pair, channel_major_im2col, col2im, conv_geometry, im2col


def forward(x, x_out, g, x_in, kernel_size, stride=1, padding=0, path="auto"):
    xp = backend.get_array_module(x)
    kernel = as_pair(kernel_size, "kernel_size")
    if x.ndim == 4:  # one input shared by the whole population
        b, c, h, w = x.shape
        *_, out = conv_geometry(x.shape, kernel, stride, padding)
        cols = im2col(x, kernel, stride, padding)
    elif x.ndim == 5:
        b, size, c, h, w = x.shape
        *_, out = conv_geometry((b * size, c, h, w), kernel, stride, padding)
        merged = x.transpose(2, 1, 0, 3, 4).reshape(c, size * b, h, w)  # [C, (p, b), H, W]
        cols = channel_major_im2col(merged, kernel, stride, padding)
        cols = cols.reshape(cols.shape[0], size, -1).transpose(1, 0, 2)  # [P, fan_in, B*Ho*Wo], a view
    else:
        raise ValueError(f"population_conv2d needs x [B, P, C_in, H, W] or [B, C_in, H, W], got {tuple(x.shape)}")
    y, product_cache = population_genetic_path.product_forward(cols, x_out, g, x_in, path)
    y = y.reshape((y.shape[0], y.shape[1], b) + tuple(out)).transpose(2, 0, 1, 3, 4)
    return xp.ascontiguousarray(y), (product_cache, x.shape, kernel, stride, padding)


def backward(grad, cache):
    product_cache, x_shape, kernel, stride, padding = cache
    xp = backend.get_array_module(grad)
    b, size, c_out = grad.shape[:3]
    d_rows = grad.transpose(1, 2, 0, 3, 4).reshape(size, c_out, -1)
    dcols, dx_out, dg, dx_in = population_genetic_path.product_backward(d_rows, product_cache)
    if len(x_shape) == 4:
        return col2im(dcols, x_shape, kernel, stride, padding), dx_out, dg, dx_in
    _, _, c, h, w = x_shape
    dcols = dcols.transpose(1, 0, 2).reshape(dcols.shape[1], -1)  # [fan_in, (p, b, Ho, Wo)]
    dx = col2im(dcols, (size * b, c, h, w), kernel, stride, padding).reshape(size, b, c, h, w)
    return xp.ascontiguousarray(dx.transpose(1, 0, 2, 3, 4)), dx_out, dg, dx_in
