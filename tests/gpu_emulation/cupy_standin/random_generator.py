"""cupy.random.default_rng and its Generator, with CuPy's methods only (cupy/random/_generator_api.pyx).

CuPy 14.2's Generator has ``random``, ``standard_normal``, ``uniform``, ``integers``,
``exponential``, ``gamma``... but no ``normal``, ``permutation``, ``choice`` or ``shuffle``
(those are NumPy's only): calling them is an AttributeError here too. Each call is checked
against CuPy's signature (``dtype`` and ``out`` where CuPy has them) and returns device arrays.

The numbers come from NumPy's PCG64, seeded from (seed, a fixed stand-in tag): deliberately
not the stream ``numpy.random.default_rng(seed)`` gives, since a GPU's cuRAND XORWOW stream is
not NumPy's either; code that needs the same numbers on both devices must draw them on the
host and move them (as gee_ref does for encodings and noise), and the stand-in shows where it
does not.
"""
from __future__ import annotations

import numpy

from . import conversion, names

STANDIN_STREAM_TAG = 0x6375_7079  # "cupy": keeps the stand-in's stream apart from NumPy's own
NUMPY_TAKES_DTYPE = frozenset({"random", "standard_normal", "standard_exponential", "standard_gamma", "integers"})
NUMPY_TAKES_OUT = frozenset({"random", "standard_normal", "standard_exponential", "standard_gamma"})
SECTION = "cupy.random.Generator"


def _method(name):
    def method(self, *args, **kwargs):
        names.check_arguments(SECTION, name, args, kwargs, method=True)
        bound = names.signature(SECTION, name).bind(None, *args, **kwargs).arguments
        bound.pop("self")
        dtype = bound.pop("dtype", None) if name not in NUMPY_TAKES_DTYPE else bound.get("dtype")
        out = bound.pop("out", None)
        if dtype is not None:
            conversion.check_dtype(dtype)
        values = getattr(self._numpy, name)(**conversion.argument(bound, f"{SECTION}.{name}"))
        if dtype is not None:
            values = numpy.asarray(values).astype(dtype, copy=False)
        if out is not None:
            out[...] = conversion.result(values)
            return out
        return conversion.result(values)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"cupy.random.Generator.{name}, drawn by NumPy's Generator.{name}."
    return method


class Generator:
    """cupy.random.Generator of the stand-in (NumPy's PCG64 behind CuPy's methods)."""

    def __init__(self, bit_generator):
        self._numpy = bit_generator
        self.bit_generator = bit_generator

    def __repr__(self):
        return "Generator(stand-in PCG64)"


for _name in names.names(SECTION):
    if not _name.startswith("_"):
        setattr(Generator, _name, _method(_name))
Generator.__module__ = "cupy.random._generator_api"


def default_rng(seed=None):
    """A Generator seeded by ``seed`` (an int or None), on the stand-in's own stream."""
    if isinstance(seed, Generator):
        return seed
    if seed is not None and not isinstance(seed, (int, numpy.integer)):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    entropy = None if seed is None else [int(seed), STANDIN_STREAM_TAG]
    return Generator(numpy.random.default_rng(entropy))
