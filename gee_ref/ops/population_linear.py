"""A genetic fully connected layer per individual for a stacked population (paper eq. 1, 4, 5).

x [B, P, in] holds individual p's rows in x[:, p]; W[p] = X_out[p] G[p] X_in[p].T, b [P, out]::

    y[:, p] = x[:, p] @ W[p].T + b[p]     (cols_p = x[:, p].T, ``population_genetic_path``)
    dx[:, p] = dcols_p.T,   db[p] = sum over rows of dy[:, p]
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.ops import population_genetic_path


def forward(x, x_out, g, x_in, b=None, path="auto"):
    xp = backend.get_array_module(x)
    if x.ndim != 3:
        raise ValueError(f"population_linear needs x [B, P, in], got shape {tuple(x.shape)}")
    if b is not None and tuple(b.shape) != tuple(x_out.shape[:2]):
        raise ValueError(f"population_linear bias must have shape {tuple(x_out.shape[:2])}, got {tuple(b.shape)}")
    cols = x.transpose(1, 2, 0)  # [P, in, B], a view
    y, product_cache = population_genetic_path.product_forward(cols, x_out, g, x_in, path)
    y = y.transpose(2, 0, 1)  # [B, P, out]
    if b is not None:
        y = y + b
    return xp.ascontiguousarray(y), (product_cache, b is not None)


def backward(grad, cache):
    product_cache, has_bias = cache
    xp = backend.get_array_module(grad)
    dcols, dx_out, dg, dx_in = population_genetic_path.product_backward(grad.transpose(1, 2, 0), product_cache)
    db = grad.sum(axis=0) if has_bias else None
    return xp.ascontiguousarray(dcols.transpose(2, 0, 1)), dx_out, dg, dx_in, db
