"""Argument checks of ``CMAES`` (no equation): each raises ValueError with one line that names
the argument, so that the commands print ``error: ...``. Kept here, out of the algorithm."""
from __future__ import annotations

import math

import numpy

from gee_ref import backend as array_backend

_NUMBER = (int, float, numpy.floating, numpy.integer)


def start_point(x0) -> numpy.ndarray:
    """x0 as a float64 host vector of finite numbers."""
    x0 = numpy.asarray(array_backend.to_host(x0), dtype=numpy.float64)
    if x0.ndim != 1 or x0.size < 1 or not numpy.all(numpy.isfinite(x0)):
        raise ValueError(f"x0 must be a non-empty 1-D array of finite numbers, got shape {x0.shape}")
    return x0


def step_size(sigma0) -> float:
    if not (isinstance(sigma0, _NUMBER) and math.isfinite(sigma0) and sigma0 > 0):
        raise ValueError(f"sigma0 must be a finite number > 0, got {sigma0!r}")
    return float(sigma0)


def coordinate_stds(stds, n: int) -> numpy.ndarray:
    """The per-coordinate multipliers of sigma0 as a float64 host vector (all ones for None)."""
    if stds is None:
        return numpy.ones(n)
    values = numpy.asarray(array_backend.to_host(stds), dtype=numpy.float64)
    if values.shape != (n,) or not numpy.all(numpy.isfinite(values)) or not numpy.all(values > 0):
        raise ValueError(f"stds must hold n = {n} finite numbers > 0 (one multiplier of sigma0 per coordinate), "
                         f"got shape {values.shape}" + ("" if values.shape != (n,) else
                                                        f" with minimum {values.min():.3g}"))
    return values


def max_iterations(maxiter):
    if maxiter is not None and (not isinstance(maxiter, (int, numpy.integer)) or maxiter < 1):
        raise ValueError(f"maxiter must be None or an integer >= 1, got {maxiter!r}")
    return None if maxiter is None else int(maxiter)


def tolerance(name: str, value) -> float:
    """A termination threshold: a number >= 0 (math.inf switches an upper bound off)."""
    if not (isinstance(value, _NUMBER) and value >= 0):
        raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    return float(value)


def samples(z, xp, shape):
    """Given standard normal samples as a float64 xp array of ``shape`` = (lambda, n)."""
    z = xp.asarray(z, dtype=xp.float64)
    if z.shape != shape:
        raise ValueError(f"z must have shape (lambda, n) = {shape}, got {tuple(z.shape)}")
    return z


def candidates_and_values(X, f, xp, shape):
    """X as a float64 xp array of ``shape`` = (lambda, n) without NaN or inf, f as float64 host values."""
    X = xp.asarray(X, dtype=xp.float64)
    if X.shape != shape:
        raise ValueError(f"X must have shape (lambda, n) = {shape}, got {tuple(X.shape)}")
    if not bool(xp.all(xp.isfinite(X))):
        raise ValueError("X contains NaN or inf: tell() needs the candidates that ask() returned")
    f = numpy.asarray(array_backend.to_host(f), dtype=numpy.float64).reshape(-1)
    if f.size != shape[0]:
        raise ValueError(f"f must hold lambda = {shape[0]} values, got {f.size}")
    return X, f
