"""Initial values: Kaiming-normal weights, and the encoding scale that imitates them (eq. 9).

Dense layers (the ``--dense`` twins) use Kaiming-normal init (He et al. 2015, fan-in mode,
ReLU gain): W_ij ~ N(0, 2 / fan_in), fan_in = C_in*kh*kw; biases start at zero.

A genetic layer's W = X_out @ G @ X_in.T (eq. 1) is not a parameter. Its encodings are drawn
from the truncated normal of eq. 9: mean 0, std sigma, cut to [-2 sigma, 2 sigma]. The
starting sigma is the one that gives W the Kaiming variance (DESIGN.md, eq. 9); see
``kaiming_sigma``.
"""
from __future__ import annotations

import math

from gee_ref import backend


def truncation_variance_factor(bound: float = 2.0) -> float:
    """Var of a standard normal truncated to [-bound, bound]: 1 - 2 b phi(b) / (2 Phi(b) - 1).

    For bound = 2 this is 0.77374... (scipy.stats.truncnorm(-2, 2).var()).
    """
    b = float(bound)
    if not b > 0:
        raise ValueError(f"truncation bound must be positive, got {bound}")
    phi = math.exp(-0.5 * b * b) / math.sqrt(2.0 * math.pi)
    mass = math.erf(b / math.sqrt(2.0))  # 2 Phi(b) - 1
    return 1.0 - 2.0 * b * phi / mass


def kaiming_sigma(fan_in: int, G, sigma_in: float | None = None, bound: float = 2.0) -> float:
    """The encoding std sigma_l that gives a genetic layer's W the Kaiming-normal variance.

    Derivation. W_ij = sum_{a,b} X_out[i,a] G[a,b] X_in[j,b]. With all encoding entries
    independent, zero-mean, of variances v_out (X_out) and v_in (X_in), every cross term of
    E[W_ij^2] vanishes except a = a', b = b', so

        Var(W_ij) = v_out * v_in * sum_{a,b} G[a,b]^2 = v_out * v_in * ||G||_F^2.

    An entry drawn from N(0, sigma^2) truncated to [-2 sigma, 2 sigma] has variance
    c * sigma^2, c = ``truncation_variance_factor(2)`` = 0.77374. One sigma per layer for
    both encodings (eq. 9) gives Var(W) = c^2 sigma^4 ||G||_F^2; setting it to the Kaiming
    value 2 / fan_in:

        sigma = (2 / (fan_in * c^2 * ||G||_F^2)) ** (1/4).

    With chained encodings (eq. 3) X_in is the previous layer's X_out, already drawn with
    ``sigma_in``; then only X_out's sigma is free: c^2 sigma^2 sigma_in^2 ||G||_F^2 = 2 / fan_in,

        sigma = sqrt(2 / (fan_in * c^2 * sigma_in^2 * ||G||_F^2)).

    G starts as the identity (reconstruction), so ||G||_F^2 = g at the start.
    """
    if fan_in < 1:
        raise ValueError(f"fan_in must be positive, got {fan_in}")
    xp = backend.get_array_module(G)
    g_norm2 = float(xp.sum(xp.asarray(G, dtype=float) ** 2))
    if not g_norm2 > 0:
        raise ValueError("kaiming_sigma needs a nonzero G")
    c = truncation_variance_factor(bound)
    if sigma_in is None:
        return (2.0 / (fan_in * c * c * g_norm2)) ** 0.25
    if not sigma_in > 0:
        raise ValueError(f"sigma_in must be positive, got {sigma_in}")
    return math.sqrt(2.0 / (fan_in * c * c * sigma_in * sigma_in * g_norm2))


def kaiming_normal(rng, shape, fan_in: int, dtype):
    """N(0, 2 / fan_in) samples of the given shape (He et al. 2015, fan-in mode)."""
    values = rng.standard_normal(shape, dtype=dtype)
    values *= math.sqrt(2.0 / fan_in)
    return values
