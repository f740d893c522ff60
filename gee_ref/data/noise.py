"""Input noise for the robustness test (paper section 4.2, following TIC): Gaussian noise
whose norm is a fixed fraction (50% in the paper) of each input's norm.

For every sample ``x_n`` (all of its elements, e.g. C*H*W of an image)::

    z_n ~ N(0, I),    noise_n = ratio * ||x_n|| / ||z_n|| * z_n,   so ||noise_n|| = ratio * ||x_n||

(Euclidean norms). A sample of all zeros gets no noise. z is drawn on the host from a NumPy
generator and moved to x's device, so a seed gives the same noise on the CPU and the GPU.
"""
from __future__ import annotations

import math
import numbers

import numpy

from gee_ref import backend


def relative_gaussian_noise(x, ratio=0.5, *, rng):
    """Noise with the shape and dtype of ``x`` ([N, ...], floating point) whose per-sample
    norm is ``ratio`` times that sample's norm. ``rng``: a NumPy Generator (``backend.rng(seed)``)."""
    xp = backend.get_array_module(x)
    if not hasattr(x, "dtype") or x.dtype.kind != "f":
        raise ValueError(f"relative_gaussian_noise needs a floating-point array, got {getattr(x, 'dtype', type(x))}")
    if x.ndim < 1 or x.shape[0] == 0 or x.size == 0:
        raise ValueError(f"relative_gaussian_noise needs a non-empty array [N, ...], got shape {x.shape}")
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not math.isfinite(ratio) or ratio < 0:
        raise ValueError(f"ratio must be a finite number >= 0, got {ratio!r}")
    if backend.get_array_module(rng) is not numpy:  # a cupy Generator's type lives in cupy, as its arrays do
        raise ValueError(f"rng draws on {type(rng).__module__}: the noise is drawn on the host, "
                         "use backend.rng(seed)")
    samples = x.reshape(x.shape[0], -1).astype(xp.float64)
    z = backend.to_device(rng.standard_normal(samples.shape), backend.device_of(x))
    x_norm = xp.sqrt(xp.sum(samples * samples, axis=1, keepdims=True))
    z_norm = xp.sqrt(xp.sum(z * z, axis=1, keepdims=True))
    noise = (ratio * x_norm / z_norm) * z
    return noise.reshape(x.shape).astype(x.dtype)


def add_relative_gaussian_noise(x, ratio=0.5, *, rng):
    """``x`` plus ``relative_gaussian_noise(x, ratio, rng=rng)``: the noisy input of section 4.2."""
    return x + relative_gaussian_noise(x, ratio, rng=rng)
