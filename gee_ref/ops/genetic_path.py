"""The genetic weight product (paper eq. 1, 4, 5) by two paths, its cost, and the choice of path.

A genetic layer's weight is never a parameter; it is made of two neuronal encodings and the
global gene interaction matrix (eq. 1)::

    W = X_out @ G @ X_in.T        X_out: [C_out, g],  G: [g, g],  X_in: [fan_in, g]

with fan_in = C_in*kh*kw (a convolution's im2col rows) or the input features (Linear). The
layer applies W to a column matrix ``cols`` [fan_in, M] (M = N*Ho*Wo output positions of a
convolution, or the rows of a Linear input) in one of two ways, equal in exact arithmetic:

* "materialised": A = X_out @ G, W = A @ X_in.T, then Y = W @ cols (one big GEMM);
* "factored":     P = X_in.T @ cols, Q = G @ P, then Y = X_out @ Q (W is never formed).

Backward (eq. 4-5, the chain rule through eq. 1), with dW = dY @ cols.T::

    dX_out = dW @ X_in @ G.T,    dG = X_out.T @ dW @ X_in,    dX_in = dW.T @ X_out @ G,
    dcols  = W.T @ dY

The materialised path evaluates these as written (sharing B = dW @ X_in between dX_out and dG,
and A = X_out @ G for dX_in). The factored path never forms dW either: substituting
dW = dY @ cols.T gives dX_out = dY @ Q.T, dG = dQ @ P.T, dX_in = cols @ dP.T and
dcols = X_in @ dP, with dQ = X_out.T @ dY and dP = G.T @ dQ.

Costs are counted in multiply-adds (MACs): an [a, b] @ [b, c] product is a*b*c of them.
``path="auto"`` takes the path with fewer forward + backward MACs for the call at hand (ties
go to "materialised"; see ``choose_path``).

A population of networks (DESIGN.md section 2) is a leading axis P of the encodings and G:
X_out [P, C_out, g], G [P, g, g], X_in [P, fan_in, g], with columns [P, fan_in, M] or one
[fan_in, M] shared by every individual. Every product above is then ``xp.matmul`` over that
axis, with ``.T`` the swap of the last two axes (``_t``); no individual reads another's
numbers, so each gradient is exactly its own. With shared columns, dcols is the sum over P.
"""
from __future__ import annotations

from typing import NamedTuple

PATHS = ("materialised", "factored")


class Materialised(NamedTuple):
    """What the materialised path keeps for backward: the encodings, A = X_out G and W."""
    x_out: object
    g: object
    x_in: object
    a: object
    w: object


class Factored(NamedTuple):
    """What the factored path keeps for backward: the encodings, P = X_in.T cols and Q = G P."""
    x_out: object
    g: object
    x_in: object
    p: object
    q: object


def _t(a):
    """The transpose of the last two axes (``a.T`` for a matrix, per individual for a stack)."""
    return a.swapaxes(-1, -2)


def dense_macs(c_out: int, fan_in: int, positions: int) -> int:
    """MACs of the dense-equivalent layer, W @ cols: C_out*fan_in*M (the FLOPs of eq. 17)."""
    return c_out * fan_in * positions


def forward_macs(path: str, c_out: int, fan_in: int, genes: int, positions: int) -> int:
    """Forward MACs of a genetic layer on M = ``positions`` columns, W's formation included.

    materialised: C_out*g*g (A = X_out G) + C_out*g*fan_in (W = A X_in.T) + C_out*fan_in*M
    factored:     M*g*(fan_in + g + C_out)  (X_in.T cols, then G, then X_out)
    """
    if path == "materialised":
        return c_out * genes * genes + c_out * genes * fan_in + c_out * fan_in * positions
    if path == "factored":
        return positions * genes * (fan_in + genes + c_out)
    raise ValueError(f"unknown genetic path {path!r}: expected one of {', '.join(PATHS)}")


def backward_macs(path: str, c_out: int, fan_in: int, genes: int, positions: int) -> int:
    """Backward MACs (gradients of cols, X_out, G and X_in), as this module computes them.

    materialised: 2*C_out*fan_in*M (dW, dcols) + 2*C_out*fan_in*g (B, dX_in) + 2*C_out*g*g
    factored:     2*M*g*(C_out + g + fan_in)  (two products per factor)

    (A stride-1 convolution replaces dcols' product by a flipped-kernel correlation of
    C_in*kh*kw*C'*N*H*W MACs, C' = C_out or g: the same number when padding keeps H, W.)
    """
    if path == "materialised":
        return 2 * c_out * fan_in * positions + 2 * c_out * fan_in * genes + 2 * c_out * genes * genes
    if path == "factored":
        return 2 * positions * genes * (c_out + genes + fan_in)
    raise ValueError(f"unknown genetic path {path!r}: expected one of {', '.join(PATHS)}")


def choose_path(path: str, c_out: int, fan_in: int, genes: int, positions: int, training: bool = True) -> str:
    """``path`` itself, or for "auto" the path with fewer MACs (ties: materialised).

    ``training`` (the default: the ops always keep what backward needs) counts forward plus
    backward MACs, otherwise forward only. With the counts above, backward is exactly twice
    forward on both paths, so both rules pick the same path today; the sum is what a training
    step pays, and stays the right rule should either count change.
    """
    if path in PATHS:
        return path
    if path != "auto":
        raise ValueError(f"unknown genetic path {path!r}: expected 'auto' or one of {', '.join(PATHS)}")

    def cost(candidate):
        macs = forward_macs(candidate, c_out, fan_in, genes, positions)
        return macs + (backward_macs(candidate, c_out, fan_in, genes, positions) if training else 0)

    return "factored" if cost("factored") < cost("materialised") else "materialised"


def check_encodings(x_out, g, x_in, fan_in: int) -> tuple[int, int]:
    """A ValueError unless the shapes fit eq. 1 for this fan_in; returns (C_out, genes).

    One network: x_out [C_out, g], g [g, g], x_in [fan_in, g]; a population: the same with
    one leading axis P on all three."""
    shapes = f"{tuple(x_out.shape)}, {tuple(g.shape)}, {tuple(x_in.shape)}"
    if x_out.ndim not in (2, 3) or not x_out.ndim == g.ndim == x_in.ndim:
        raise ValueError(f"genetic layer needs x_out [C_out, g], g [g, g], x_in [fan_in, g] (each with one "
                         f"leading population axis P, or none); got shapes {shapes}")
    population, genes = tuple(g.shape[:-2]), g.shape[-1]
    if (g.shape[-2] != genes or x_out.shape[-1] != genes or x_in.shape[-1] != genes
            or x_out.shape[:-2] != population or x_in.shape[:-2] != population):
        raise ValueError(f"genetic layer needs x_out [C_out, g], g [g, g], x_in [fan_in, g]; got {shapes}")
    if x_in.shape[-2] != fan_in:
        raise ValueError(f"x_in has {x_in.shape[-2]} rows but the layer's fan_in (C_in*kh*kw) is {fan_in}")
    return x_out.shape[-2], genes


def genetic_weight(x_out, g, x_in):
    """Eq. 1: W = X_out @ G @ X_in.T, [C_out, fan_in] (evaluated as (X_out @ G) @ X_in.T)."""
    return (x_out @ g) @ _t(x_in)


def product_forward(cols, x_out, g, x_in, path="auto"):
    """Y = X_out @ G @ X_in.T @ cols, [C_out, M], by the chosen path; returns (Y, cache).

    The cache does not hold cols (a convolution's columns are kh*kw times its input): the
    caller keeps what it needs to hand cols to ``product_backward`` again. A population's
    cols are [P, fan_in, M], or [fan_in, M] shared by every individual.
    """
    c_out, genes = check_encodings(x_out, g, x_in, cols.shape[-2])
    if cols.ndim not in (2, x_out.ndim) or cols.shape[:-2] not in ((), x_out.shape[:-2]):
        raise ValueError(f"columns of shape {tuple(cols.shape)} do not fit encodings of shape {tuple(x_out.shape)}")
    path = choose_path(path, c_out, cols.shape[-2], genes, cols.shape[-1])
    if path == "materialised":
        a = x_out @ g
        w = a @ _t(x_in)
        return w @ cols, Materialised(x_out, g, x_in, a, w)
    p = _t(x_in) @ cols
    q = g @ p
    return x_out @ q, Factored(x_out, g, x_in, p, q)


def product_backward_parts(grad, cache, cols):
    """(weight_rows, d_rows, dX_out, dG, dX_in) with dcols = weight_rows.T @ d_rows left unformed.

    materialised: weight_rows = W, d_rows = dY;  factored: weight_rows = X_in.T, d_rows = dP.
    A stride-1 convolution turns that last product into a flipped-kernel correlation instead.
    """
    if isinstance(cache, Materialised):
        dw = grad @ _t(cols)
        b = dw @ cache.x_in
        return cache.w, grad, b @ _t(cache.g), _t(cache.x_out) @ b, _t(dw) @ cache.a
    dq = _t(cache.x_out) @ grad
    dp = _t(cache.g) @ dq
    return _t(cache.x_in), dp, grad @ _t(cache.q), dq @ _t(cache.p), cols @ _t(dp)


def product_backward(grad, cache, cols):
    """Gradients (dcols, dX_out, dG, dX_in) of Y = X_out G X_in.T cols, for dY = ``grad``.

    Columns shared by a population get the sum of every individual's gradient."""
    weight_rows, d_rows, dx_out, dg, dx_in = product_backward_parts(grad, cache, cols)
    dcols = _t(weight_rows) @ d_rows
    return (dcols.sum(axis=0) if dcols.ndim > cols.ndim else dcols), dx_out, dg, dx_in
