"""2-D convolution (cross-correlation, PyTorch semantics) as one GEMM on im2col columns.

Forward, with cols = im2col(x) [C_in*kh*kw, N*Ho*Wo] and W = w.reshape(C_out, -1)::

    Y = W @ cols                      Y: [C_out, N*Ho*Wo], reshaped to [N, C_out, Ho, Wo]

Backward, for the upstream gradient dY in the same row layout::

    dW    = dY @ cols.T               (reshaped to w's shape)
    dcols = W.T @ dY,   dx = col2im(dcols)

x [N, C_in, H, W], w [C_out, C_in, kh, kw]; stride and padding an int or a pair.
No bias: in the networks of gee_ref a BatchNorm follows every convolution.
"""
from __future__ import annotations

from gee_ref.ops.im2col import col2im, conv_geometry, im2col, nchw_to_rows, rows_to_nchw


def check_weight(x_shape, w_shape):
    """A ValueError unless w is [C_out, C_in, kh, kw] with C_in the input's channel count."""
    if len(w_shape) != 4:
        raise ValueError(f"conv2d weight must be [C_out, C_in, kh, kw], got shape {tuple(w_shape)}")
    if len(x_shape) == 4 and w_shape[1] != x_shape[1]:
        raise ValueError(f"conv2d weight expects {w_shape[1]} input channels, the input has {x_shape[1]}")


def forward(x, w, stride=1, padding=0):
    check_weight(x.shape, w.shape)
    kernel = tuple(w.shape[2:])
    *_, out = conv_geometry(x.shape, kernel, stride, padding)
    cols = im2col(x, kernel, stride, padding)
    weight = w.reshape(w.shape[0], -1)
    y = rows_to_nchw(weight @ cols, x.shape[0], out)
    return y, (cols, weight, x.shape, w.shape, stride, padding)


def backward(grad, cache):
    cols, weight, x_shape, w_shape, stride, padding = cache
    grad_rows = nchw_to_rows(grad)
    dw = (grad_rows @ cols.T).reshape(w_shape)
    dx = col2im(weight.T @ grad_rows, x_shape, tuple(w_shape[2:]), stride, padding)
    return dx, dw
