"""The genetic weight product (paper eq. 1, 4, 5) for a population stacked on a leading axis P.

Individual p has its own encodings and G: X_out [P, C_out, g], G [P, g, g], X_in [P, fan_in, g],
and its own columns cols [P, fan_in, M] (or one cols [fan_in, M] shared by all, e.g. the
images seen by a first layer). For every p, by the path ``genetic_path.choose_path`` picks for
one individual (both equal in exact arithmetic)::

    materialised:  A = X_out G,  W = A X_in.T,  Y = W cols
    factored:      P' = X_in.T cols,  Q = G P',  Y = X_out Q

all with ``xp.matmul``, which broadcasts the leading axis. Backward, eq. 4-5 slice by slice::

    materialised:  dW = dY cols.T,  B = dW X_in,  dX_out = B G.T,  dG = X_out.T B,
                   dX_in = dW.T A,  dcols = W.T dY
    factored:      dQ = X_out.T dY,  dP' = G.T dQ,  dX_out = dY Q.T,  dG = dQ P'.T,
                   dX_in = cols dP'.T,  dcols = X_in dP'

No slice reads another's numbers, so each individual's gradient is exactly its own. With
shared cols, dcols is the sum over individuals (each one's input gradient adds up).
"""
from __future__ import annotations

from gee_ref.ops import genetic_path


def _t(a):
    """Transpose the last two axes."""
    return a.swapaxes(-1, -2)


def check_encodings(x_out, g, x_in, fan_in: int) -> tuple[int, int, int]:
    """A ValueError unless the stacked shapes fit eq. 1; returns (P, C_out, genes)."""
    shapes = f"{tuple(x_out.shape)}, {tuple(g.shape)}, {tuple(x_in.shape)}"
    if x_out.ndim != 3 or g.ndim != 3 or x_in.ndim != 3:
        raise ValueError(f"a population's genetic layer needs x_out [P, C_out, g], g [P, g, g], "
                         f"x_in [P, fan_in, g]; got {shapes}")
    size, c_out, genes = x_out.shape
    if g.shape != (size, genes, genes) or x_in.shape != (size, fan_in, genes):
        raise ValueError(f"a population's genetic layer needs x_out [P, C_out, g], g [P, g, g], "
                         f"x_in [P, {fan_in}, g]; got {shapes}")
    return size, c_out, genes


def product_forward(cols, x_out, g, x_in, path="auto"):
    """Y [P, C_out, M] for cols [P, fan_in, M] or shared [fan_in, M]; returns (Y, cache)."""
    size, c_out, genes = check_encodings(x_out, g, x_in, cols.shape[-2])
    if cols.ndim == 3 and cols.shape[0] != size:
        raise ValueError(f"columns for {cols.shape[0]} individuals, encodings for {size}")
    path = genetic_path.choose_path(path, c_out, cols.shape[-2], genes, cols.shape[-1])
    if path == "materialised":
        a = x_out @ g
        w = a @ _t(x_in)
        return w @ cols, (path, x_out, g, x_in, a, w, cols)
    p = _t(x_in) @ cols
    q = g @ p
    return x_out @ q, (path, x_out, g, x_in, p, q, cols)


def product_backward(grad, cache):
    """Gradients (dcols, dX_out, dG, dX_in) of Y for dY = ``grad`` [P, C_out, M]."""
    path, x_out, g, x_in, first, second, cols = cache
    if path == "materialised":
        a, w = first, second
        dw = grad @ _t(cols)
        b = dw @ x_in
        dcols = _t(w) @ grad
        dx_out, dg, dx_in = b @ _t(g), _t(x_out) @ b, _t(dw) @ a
    else:
        p, q = first, second
        dq = _t(x_out) @ grad
        dp = _t(g) @ dq
        dcols = x_in @ dp
        dx_out, dg, dx_in = grad @ _t(q), dq @ _t(p), cols @ _t(dp)
    if cols.ndim == 2:
        dcols = dcols.sum(axis=0)
    return dcols, dx_out, dg, dx_in
