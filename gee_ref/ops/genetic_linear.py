"""Genetic fully connected layer (paper eq. 1, 2, 4, 5): y = x @ W.T + b with W made of genes.

Eq. 1 (weight):     W = X_out @ G @ X_in.T,   W: [out, in]  (a genetic conv with kh = kw = 1)
Eq. 2 (parameters): g*(out + in) per layer instead of out*in (+ g*g for the global G, once)

with X_out [out, g], G [g, g], X_in [in, g]. The input rows x [..., in] (leading axes merged)
are the columns cols = x.T [in, M], so Y = W @ cols = (x @ W.T).T, computed either
"materialised" (W formed, one GEMM) or "factored" (X_out @ (G @ (X_in.T @ cols))).

Eq. 4-5 (backward), dW = dY @ cols.T = dy.T @ x::

    dX_out = dW @ X_in @ G.T,   dG = X_out.T @ dW @ X_in,   dX_in = dW.T @ X_out @ G,
    dx = dy @ W,   db = sum over rows of dy

(both paths and their MAC counts: ``gee_ref.ops.genetic_path``).
"""
from __future__ import annotations

from gee_ref.ops import genetic_path


def forward(x, x_out, g, x_in, b=None, path="auto"):
    if x.ndim < 1:
        raise ValueError("genetic_linear input must have a feature axis, got a scalar")
    genetic_path.check_encodings(x_out, g, x_in, x.shape[-1])
    if b is not None and tuple(b.shape) != (x_out.shape[0],):
        raise ValueError(f"genetic_linear bias must have shape ({x_out.shape[0]},), got {tuple(b.shape)}")
    cols = x.reshape(-1, x.shape[-1]).T
    y_rows, product_cache = genetic_path.product_forward(cols, x_out, g, x_in, path)
    y = y_rows.T
    if b is not None:
        y = y + b
    return y.reshape(x.shape[:-1] + (x_out.shape[0],)), (product_cache, cols, x.shape, b is not None)


def backward(grad, cache):
    product_cache, cols, x_shape, has_bias = cache
    grad_rows = grad.reshape(-1, grad.shape[-1])
    dcols, dx_out, dg, dx_in = genetic_path.product_backward(grad_rows.T, product_cache, cols)
    db = grad_rows.sum(axis=0) if has_bias else None
    return dcols.T.reshape(x_shape), dx_out, dg, dx_in, db
