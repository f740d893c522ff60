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

x [N, C_in, H, W], w [C_out, C_in, kh, kw]; stride and padding an int or a pair.
No bias: in the networks of gee_ref a BatchNorm follows every convolution.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.ops.im2col import (channel_major_im2col, col2im, column_scratch, conv_geometry, im2col,
                                nchw_to_rows, rows_to_nchw)


def check_weight(x_shape, w_shape):
    """A ValueError unless w is [C_out, C_in, kh, kw] with C_in the input's channel count."""
    if len(w_shape) != 4:
        raise ValueError(f"conv2d weight must be [C_out, C_in, kh, kw], got shape {tuple(w_shape)}")
    if len(x_shape) == 4 and w_shape[1] != x_shape[1]:
        raise ValueError(f"conv2d weight expects {w_shape[1]} input channels, the input has {x_shape[1]}")


def input_gradient(grad_rows, weight_rows, x_shape, kernel_size, stride=1, padding=0, route="auto"):
    """dx = col2im(weight_rows.T @ grad_rows) for grad_rows [C', N*Ho*Wo], weight_rows [C', C_in*kh*kw].

    route "col2im" forms dcols; "flipped" (stride 1, padding <= kernel - 1 only) correlates the
    padded gradient with the flipped kernel instead; "auto" takes "flipped" wherever it applies.
    """
    (kh, kw), step, (ph, pw), out = conv_geometry(x_shape, kernel_size, stride, padding)
    n, c_in, h, w = x_shape
    flipped_applies = step == (1, 1) and ph <= kh - 1 and pw <= kw - 1
    if route not in ("auto", "col2im", "flipped") or (route == "flipped" and not flipped_applies):
        raise ValueError(f"input_gradient route {route!r} is not 'auto', 'col2im', or 'flipped' with stride 1 "
                         f"and padding <= kernel - 1")
    if route == "col2im" or not flipped_applies:
        xp = backend.get_array_module(grad_rows)
        dcols = column_scratch(xp, (weight_rows.shape[1], grad_rows.shape[1]),
                               xp.result_type(weight_rows, grad_rows))
        return col2im(xp.matmul(weight_rows.T, grad_rows, out=dcols), x_shape, (kh, kw), step, (ph, pw))
    kernel = weight_rows.reshape(-1, c_in, kh, kw)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
    grad_cols = channel_major_im2col(grad_rows.reshape((-1, n) + tuple(out)), (kh, kw), 1,
                                     (kh - 1 - ph, kw - 1 - pw), scratch=True)
    return rows_to_nchw(kernel.reshape(c_in, -1) @ grad_cols, n, (h, w))


def forward(x, w, stride=1, padding=0):
    check_weight(x.shape, w.shape)
    kernel = tuple(w.shape[2:])
    *_, out = conv_geometry(x.shape, kernel, stride, padding)
    weight = w.reshape(w.shape[0], -1)
    y = rows_to_nchw(weight @ im2col(x, kernel, stride, padding, scratch=True), x.shape[0], out)
    return y, (x, weight, w.shape, stride, padding)


def backward(grad, cache):
    x, weight, w_shape, stride, padding = cache
    kernel = tuple(w_shape[2:])
    grad_rows = nchw_to_rows(grad)
    dw = (grad_rows @ im2col(x, kernel, stride, padding, scratch=True).T).reshape(w_shape)
    return input_gradient(grad_rows, weight, x.shape, kernel, stride, padding), dw
