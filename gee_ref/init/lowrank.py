"""Compress a dense weight into a genetic layer: the SVD reading of paper eq. 6-8.

Eq. 6: W = U S V.T (SVD of W [C_out, fan_in]; a conv weight is flattened to [C_out, C_in*kh*kw]).
Eq. 7: W_g = U_g S_g V_g.T keeps the g largest singular values; by the Eckart-Young theorem
       no matrix of rank <= g is closer to W in the Frobenius (or spectral) norm, and
       ||W - W_g||_F^2 = sum of the discarded squared singular values.
Eq. 8: for any invertible gene matrix G, X_out = U_g S_g G^-1 and X_in = V_g give
       X_out @ G @ X_in.T = U_g S_g V_g.T = W_g, i.e. eq. 1's weight with this global G.

X_out is obtained by solving X_out @ G = U_g S_g (no explicit inverse). When g exceeds
min(C_out, fan_in) = r, only r singular triples exist: X_out and X_in are padded with
g - r zero columns, and the reconstruction is then W itself.
"""
from __future__ import annotations

import numpy

from gee_ref import backend


def from_dense(w, g: int, G):
    """(x_out [C_out, g], x_in [fan_in, g]) with x_out @ G @ x_in.T the best rank-g approximation of w.

    ``w`` is [C_out, fan_in] or a conv weight [C_out, C_in, kh, kw]; ``G`` is [g, g] and
    invertible (a singular G is a ValueError). The results are on w's device, in w's dtype.
    """
    xp = backend.get_array_module(w, G)
    if w.ndim not in (2, 4):
        raise ValueError(f"from_dense needs a 2-D [C_out, fan_in] or 4-D conv weight, got shape {tuple(w.shape)}")
    if isinstance(g, bool) or not isinstance(g, (int, numpy.integer)) or g < 1:
        raise ValueError(f"the number of genes g must be a positive int, got {g!r}")
    if tuple(G.shape) != (g, g):
        raise ValueError(f"G must be [g, g] = [{g}, {g}], got shape {tuple(G.shape)}")
    matrix = w.reshape(w.shape[0], -1)
    G = xp.asarray(G, dtype=matrix.dtype)
    if not _is_invertible(G):
        raise ValueError("G is singular (or numerically so): eq. 8 needs an invertible gene matrix")
    u, s, vt = xp.linalg.svd(matrix, full_matrices=False)                 # eq. 6
    kept = min(g, s.shape[0])
    scaled = xp.zeros((matrix.shape[0], g), dtype=matrix.dtype)
    scaled[:, :kept] = u[:, :kept] * s[:kept]                             # U_g S_g  (eq. 7)
    x_in = xp.zeros((matrix.shape[1], g), dtype=matrix.dtype)
    x_in[:, :kept] = vt[:kept].T                                          # V_g
    x_out = xp.linalg.solve(G.T, scaled.T).T                              # X_out G = U_g S_g (eq. 8)
    return x_out, x_in


def _is_invertible(G) -> bool:
    """Numerical rank test (NumPy's matrix_rank tolerance): smallest singular value > g*eps*largest."""
    xp = backend.get_array_module(G)
    singular_values = backend.to_host(xp.linalg.svd(G, compute_uv=False))
    if not numpy.all(numpy.isfinite(singular_values)):
        return False
    tolerance = singular_values.max() * G.shape[0] * numpy.finfo(singular_values.dtype).eps
    return bool(singular_values.min() > tolerance)
