"""Fully connected layer: y = x @ w.T + b.

x [..., in] (any leading axes, e.g. [N, in] or [T, N, in]), w [out, in], b [out] or None.
Backward, on the leading axes merged into one (rows)::

    dx = dy @ w,    dw = dy.T @ x,    db = sum over rows of dy
"""
from __future__ import annotations


def check_shapes(x_shape, w_shape, b_shape):
    """A ValueError unless w is [out, in] with in = x's last axis and b (if any) is [out]."""
    if len(w_shape) != 2:
        raise ValueError(f"linear weight must be [out, in], got shape {tuple(w_shape)}")
    if len(x_shape) < 1 or x_shape[-1] != w_shape[1]:
        raise ValueError(f"linear weight expects {w_shape[1]} input features, the input has shape {tuple(x_shape)}")
    if b_shape is not None and tuple(b_shape) != (w_shape[0],):
        raise ValueError(f"linear bias must have shape ({w_shape[0]},), got {tuple(b_shape)}")


def forward(x, w, b=None):
    check_shapes(x.shape, w.shape, None if b is None else b.shape)
    rows = x.reshape(-1, x.shape[-1])
    y = rows @ w.T
    if b is not None:
        y = y + b
    return y.reshape(x.shape[:-1] + (w.shape[0],)), (rows, w, x.shape, b is not None)


def backward(grad, cache):
    rows, w, x_shape, has_bias = cache
    grad_rows = grad.reshape(-1, w.shape[0])
    dx = (grad_rows @ w).reshape(x_shape)
    dw = grad_rows.T @ rows
    db = grad_rows.sum(axis=0) if has_bias else None
    return dx, dw, db
