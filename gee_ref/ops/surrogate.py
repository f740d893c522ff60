"""Surrogate gradients of the spike function (DESIGN.md section 3).

A spike is ``S = Heaviside(x)`` with ``x = H - v_th``, whose derivative is zero
almost everywhere. Training replaces ``dS/dx`` by the derivative of a smooth
"primitive" ``p(x)`` that rises from 0 to 1 around x = 0. Each registry entry holds
that primitive, its derivative (the surrogate gradient) and the default sharpness
``alpha``:

* sigmoid (alpha=4): ``p = sigmoid(alpha x)``, ``p' = alpha s (1 - s)`` with ``s = p``,
  computed as ``alpha u / (1 + u)^2``, ``u = exp(-alpha |x|)`` (no cancellation);
* atan (alpha=2): ``p = arctan(pi/2 alpha x) / pi + 1/2``,
  ``p' = alpha/2 / (1 + (pi/2 alpha x)^2)``;
* rectangular (alpha = width a = 1, our choice of default):
  ``p = clip(x/a + 1/2, 0, 1)``, ``p' = 1/a [|x| < a/2]``.

The sigmoid and atan formulas are those of SpikingJelly's ``surrogate.Sigmoid`` and
``surrogate.ATan``. The primitives serve the "soft" LIF, whose backward is exact.
"""
from __future__ import annotations

import math
from typing import Callable, NamedTuple

from gee_ref import backend


class Surrogate(NamedTuple):
    primitive: Callable      # p(x, alpha): a smooth step from 0 to 1
    derivative: Callable     # p'(x, alpha): the surrogate gradient of Heaviside
    default_alpha: float


def heaviside(x):
    """The spike function: 1 where x >= 0, else 0 (SpikingJelly's convention at x = 0)."""
    return (x >= 0).astype(x.dtype)


def _sigmoid(x, alpha):
    xp = backend.get_array_module(x)
    return 0.5 * (1.0 + xp.tanh(0.5 * alpha * x))  # sigmoid(alpha x) without overflow


def _sigmoid_derivative(x, alpha):
    # alpha s (1 - s) written as alpha u / (1 + u)^2 with u = exp(-alpha |x|): the same value,
    # without the cancellation in 1 - s where s is near 1 (float32 would keep 2-3 digits there)
    # (two arrays, updated in place: this runs on every LIF layer's whole [T, N, ...] input)
    xp = backend.get_array_module(x)
    u = xp.abs(x)
    u *= -alpha
    xp.exp(u, out=u)  # u = exp(-alpha |x|)
    denominator = 1.0 + u
    denominator *= denominator
    u *= alpha
    u /= denominator
    return u


def _atan(x, alpha):
    xp = backend.get_array_module(x)
    return xp.arctan(0.5 * math.pi * alpha * x) / math.pi + 0.5


def _atan_derivative(x, alpha):
    z = 0.5 * math.pi * alpha * x
    return (0.5 * alpha) / (1.0 + z * z)


def _rectangular(x, alpha):
    xp = backend.get_array_module(x)
    return xp.clip(x / alpha + 0.5, 0.0, 1.0)


def _rectangular_derivative(x, alpha):
    xp = backend.get_array_module(x)
    return (xp.abs(x) < 0.5 * alpha).astype(x.dtype) / alpha


SURROGATES = {
    "sigmoid": Surrogate(_sigmoid, _sigmoid_derivative, 4.0),
    "atan": Surrogate(_atan, _atan_derivative, 2.0),
    "rectangular": Surrogate(_rectangular, _rectangular_derivative, 1.0),
}


def get(name: str) -> Surrogate:
    """The registry entry for a surrogate name; ValueError for an unknown one."""
    try:
        return SURROGATES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown surrogate {name!r}: expected one of {', '.join(SURROGATES)}") from None
