"""Genetic fully connected layer (paper eq. 1, 2, 4, 5): y = x @ W.T + b with W made of genes.

Eq. 1 (weight):     W = X_out @ G @ X_in.T,   W: [out, in]  (a genetic conv with kh = kw = 1)
Eq. 2 (parameters): g*(out + in) per layer instead of out*in (+ g*g for the global G, once)

with X_out [out, g], G [g, g], X_in [in, g]. The input rows x [..., in] (leading axes merged)
are the columns cols = x.T [in, M], so Y = W @ cols = (x @ W.T).T, computed either
"materialised" (W formed, one GEMM) or "factored" (X_out @ (G @ (X_in.T @ cols))).

Eq. 4-5 (backward), dW = dY @ cols.T = dy.T @ x::

    dX_out = dW @ X_in @ G.T,   dG = X_out.T @ dW @ X_in,   dX_in = dW.T @ X_out @ G,
    dx = dy @ W,   db = sum over rows of dy

(both paths and their MAC counts: ``gee_ref.ops.genetic_path``). A population (DESIGN.md
section 2) has encodings, G and b with a leading axis P and rows x [N, P, in] (or one x [N, in]
for all), so its columns are [P, in, N]: the same lines, per individual.
"""
from __future__ import annotations

from typing import NamedTuple

from gee_ref.ops import genetic_path


class Cache(NamedTuple):
    product: tuple  # genetic_path.Materialised or Factored
    cols: object
    x_shape: tuple
    has_bias: bool


def forward(x, x_out, g, x_in, b=None, path="auto"):
    if x.ndim < 1:
        raise ValueError("genetic_linear input must have a feature axis, got a scalar")
    genetic_path.check_encodings(x_out, g, x_in, x.shape[-1])
    if b is not None and tuple(b.shape) != tuple(x_out.shape[:-1]):
        raise ValueError(f"genetic_linear bias must have shape {tuple(x_out.shape[:-1])}, got {tuple(b.shape)}")
    population = x_out.ndim == 3
    if population and x.ndim not in (2, 3):
        raise ValueError(f"a population's genetic_linear needs x [N, P, in] or [N, in], got shape {tuple(x.shape)}")
    rows = x if population else x.reshape(-1, x.shape[-1])
    cols = rows.swapaxes(0, -1) if rows.ndim == 2 else rows.transpose(1, 2, 0)  # [(P,) in, M]
    y_rows, product_cache = genetic_path.product_forward(cols, x_out, g, x_in, path)
    y = y_rows.T if y_rows.ndim == 2 else y_rows.transpose(2, 0, 1)  # [M, (P,) out]
    if b is not None:
        y = y + b
    out_shape = y.shape if population else x.shape[:-1] + (x_out.shape[-2],)
    return y.reshape(out_shape), Cache(product_cache, cols, x.shape, b is not None)


def backward(grad, cache):
    population = grad.ndim == 3 and cache.product.x_out.ndim == 3
    grad_rows = grad if population else grad.reshape(-1, grad.shape[-1])
    d_y_rows = grad_rows.T if grad_rows.ndim == 2 else grad_rows.transpose(1, 2, 0)
    dcols, dx_out, dg, dx_in = genetic_path.product_backward(d_y_rows, cache.product, cache.cols)
    dx = dcols.T if dcols.ndim == 2 else dcols.transpose(2, 0, 1)
    db = grad_rows.sum(axis=0) if cache.has_bias else None
    return dx.reshape(cache.x_shape), dx_out, dg, dx_in, db
