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
go to "materialised"; see ``choose_path``). Eq. 2's parameter count lives here too, for the same reports.
"""
from __future__ import annotations

PATHS = ("materialised", "factored")


def parameter_count(c_out: int, fan_in: int, genes: int) -> int:
    """Eq. 2: a genetic layer holds g*(C_out + fan_in) numbers (plus g*g once per network for G)."""
    return genes * (c_out + fan_in)


def dense_parameter_count(c_out: int, fan_in: int) -> int:
    """The dense layer it replaces: C_out*fan_in weights (fan_in = C_in*kh*kw)."""
    return c_out * fan_in


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
    """A ValueError unless the shapes fit eq. 1 for this fan_in; returns (C_out, genes)."""
    if x_out.ndim != 2 or g.ndim != 2 or x_in.ndim != 2:
        raise ValueError(f"genetic layer needs 2-D x_out, g, x_in; got shapes "
                         f"{tuple(x_out.shape)}, {tuple(g.shape)}, {tuple(x_in.shape)}")
    genes = g.shape[0]
    if g.shape != (genes, genes) or x_out.shape[1] != genes or x_in.shape[1] != genes:
        raise ValueError(f"genetic layer needs x_out [C_out, g], g [g, g], x_in [fan_in, g]; got "
                         f"{tuple(x_out.shape)}, {tuple(g.shape)}, {tuple(x_in.shape)}")
    if x_in.shape[0] != fan_in:
        raise ValueError(f"x_in has {x_in.shape[0]} rows but the layer's fan_in (C_in*kh*kw) is {fan_in}")
    return x_out.shape[0], genes


def genetic_weight(x_out, g, x_in):
    """Eq. 1: W = X_out @ G @ X_in.T, [C_out, fan_in] (evaluated as (X_out @ G) @ X_in.T)."""
    return (x_out @ g) @ x_in.T


def product_forward(cols, x_out, g, x_in, path="auto"):
    """Y = X_out @ G @ X_in.T @ cols, [C_out, M], by the chosen path; returns (Y, cache).

    The cache does not hold cols (a convolution's columns are kh*kw times its input): the
    caller keeps what it needs to hand cols to ``product_backward`` again.
    """
    c_out, genes = check_encodings(x_out, g, x_in, cols.shape[0])
    path = choose_path(path, c_out, cols.shape[0], genes, cols.shape[1])
    if path == "materialised":
        a = x_out @ g
        w = a @ x_in.T
        return w @ cols, (path, x_out, g, x_in, a, w)
    p = x_in.T @ cols
    q = g @ p
    return x_out @ q, (path, x_out, g, x_in, p, q)


def product_backward_parts(grad, cache, cols):
    """(weight_rows, d_rows, dX_out, dG, dX_in) with dcols = weight_rows.T @ d_rows left unformed.

    materialised: weight_rows = W, d_rows = dY;  factored: weight_rows = X_in.T, d_rows = dP.
    A stride-1 convolution turns that last product into a flipped-kernel correlation instead.
    """
    path, x_out, g, x_in, first, second = cache
    if path == "materialised":
        a, w = first, second
        dw = grad @ cols.T
        b = dw @ x_in
        return w, grad, b @ g.T, x_out.T @ b, dw.T @ a
    p, q = first, second
    dq = x_out.T @ grad
    dp = g.T @ dq
    return x_in.T, dp, grad @ q.T, dq @ p.T, cols @ dp.T


def product_backward(grad, cache, cols):
    """Gradients (dcols, dX_out, dG, dX_in) of Y = X_out G X_in.T cols, for dY = ``grad``."""
    weight_rows, d_rows, dx_out, dg, dx_in = product_backward_parts(grad, cache, cols)
    return weight_rows.T @ d_rows, dx_out, dg, dx_in
