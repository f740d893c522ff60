"""Fully connected layer: y = x @ w.T + b.

x [..., in] (any leading axes, e.g. [N, in] or [T, N, in]), w [out, in], b [out] or None.
Backward, on the leading axes merged into one (rows)::

    dx = dy @ w,    dw = dy.T @ x,    db = sum over rows of dy

A population (DESIGN.md section 2) stacks w [P, out, in] and b [P, out]; its rows are
x [N, P, in] (or one x [N, in] for all): the same products per individual, by ``matmul``
over P after moving P in front (``_t`` swaps the last two axes).
"""
from __future__ import annotations

from typing import NamedTuple


class Cache(NamedTuple):
    rows: object  # x as [M, in], or [P, N, in] for a population (or [N, in] shared)
    w: object
    x_shape: tuple
    has_bias: bool


def _t(a):
    return a.swapaxes(-1, -2)


def check_shapes(x_shape, w_shape, b_shape):
    """A ValueError unless w is [(P,) out, in] with in = x's last axis and b (if any) is [(P,) out]."""
    if len(w_shape) not in (2, 3):
        raise ValueError(f"linear weight must be [out, in] (with a leading population axis P, or none), "
                         f"got shape {tuple(w_shape)}")
    if len(x_shape) < 1 or x_shape[-1] != w_shape[-1]:
        raise ValueError(f"linear weight expects {w_shape[-1]} input features, the input has shape {tuple(x_shape)}")
    if b_shape is not None and tuple(b_shape) != tuple(w_shape[:-1]):
        raise ValueError(f"linear bias must have shape {tuple(w_shape[:-1])}, got {tuple(b_shape)}")
    if len(w_shape) == 3 and len(x_shape) not in (2, 3):
        raise ValueError(f"a population's linear layer needs x [N, P, in] or [N, in], got shape {tuple(x_shape)}")


def forward(x, w, b=None):
    check_shapes(x.shape, w.shape, None if b is None else b.shape)
    if w.ndim == 2:
        rows = x.reshape(-1, x.shape[-1])
        y = rows @ w.T
    else:
        rows = x.transpose(1, 0, 2) if x.ndim == 3 else x
        y = (rows @ _t(w)).transpose(1, 0, 2)  # [P, N, out] -> [N, P, out]
    if b is not None:
        y = y + b
    out_shape = x.shape[:-1] + (w.shape[0],) if w.ndim == 2 else y.shape
    return y.reshape(out_shape), Cache(rows, w, x.shape, b is not None)


def backward(grad, cache):
    rows, w = cache.rows, cache.w
    if w.ndim == 2:
        grad_rows = grad.reshape(-1, w.shape[0])
        dx = (grad_rows @ w).reshape(cache.x_shape)
        dw = grad_rows.T @ rows
    else:
        grad_rows = grad.transpose(1, 0, 2)  # [P, N, out]
        dx = grad_rows @ w
        dx = dx.sum(axis=0) if len(cache.x_shape) == 2 else dx.transpose(1, 0, 2)
        dw = _t(grad_rows) @ rows
    db = grad_rows.sum(axis=-2) if cache.has_bias else None
    return dx, dw, db
