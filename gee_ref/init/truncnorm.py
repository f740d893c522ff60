"""Truncated normal sampler for the genetic encodings (paper eq. 9, DESIGN.md Sec. 4).

Layer l's encodings X_in and X_out are drawn from a normal distribution with mean 0 and
standard deviation sigma_l, truncated to [-bound * sigma_l, bound * sigma_l] (bound = 2 in
the paper). Draws outside the interval are redrawn until none is left (rejection), with the
generator's own ``standard_normal``, so the same code runs on NumPy and CuPy generators.
About 4.6% of the draws fall outside +-2 sigma, so a few rounds suffice.

Note that ``std`` is the parameter of the untruncated normal; the truncated distribution's
own standard deviation is smaller (``truncated_normal_std``), about 0.880 * std for bound 2.
"""
from __future__ import annotations

import math

import numpy

from gee_ref import backend

_FLOAT_DTYPES = (numpy.dtype(numpy.float32), numpy.dtype(numpy.float64))


def truncated_normal(rng, shape, std, bound: float = 2.0, dtype=backend.TRAIN_DTYPE):
    """Samples of N(0, std^2) truncated to [-bound * std, bound * std] (paper eq. 9).

    ``rng`` is a NumPy or CuPy ``Generator`` (``backend.rng(seed, device)``); the result is an
    array of ``shape`` and ``dtype`` (float32 or float64) on that generator's device.
    """
    if not (isinstance(std, (int, float, numpy.floating, numpy.integer)) and math.isfinite(std) and std > 0):
        raise ValueError(f"std must be a finite number > 0, got {std!r}")
    if not (isinstance(bound, (int, float, numpy.floating, numpy.integer)) and math.isfinite(bound) and bound > 0):
        raise ValueError(f"bound must be a finite number > 0, got {bound!r}")
    if numpy.dtype(dtype) not in _FLOAT_DTYPES:
        raise ValueError(f"dtype must be float32 or float64, got {numpy.dtype(dtype)}")
    if not hasattr(rng, "standard_normal"):
        raise ValueError(f"rng must be a NumPy or CuPy Generator, got {type(rng).__name__}")

    z = rng.standard_normal(shape, dtype=dtype)
    xp = backend.get_array_module(z)
    outside = xp.abs(z) > bound
    count = int(outside.sum())
    while count:
        z[outside] = rng.standard_normal(count, dtype=dtype)  # redraw only the rejected ones
        outside = xp.abs(z) > bound
        count = int(outside.sum())
    return z * z.dtype.type(std)


def truncated_normal_std(std: float, bound: float = 2.0) -> float:
    """Standard deviation of N(0, std^2) truncated to +-bound * std.

    Var = std^2 (1 - 2 b phi(b) / (2 Phi(b) - 1)), phi and Phi the standard normal pdf and cdf.
    """
    if not (math.isfinite(std) and std > 0 and math.isfinite(bound) and bound > 0):
        raise ValueError(f"std and bound must be finite and > 0, got std={std!r}, bound={bound!r}")
    pdf = math.exp(-0.5 * bound * bound) / math.sqrt(2.0 * math.pi)
    mass = math.erf(bound / math.sqrt(2.0))  # 2 Phi(b) - 1
    return std * math.sqrt(1.0 - 2.0 * bound * pdf / mass)
