"""Module-level functions of the stand-in: NumPy's function of the same name, on device arrays.

``from_numpy(section, name, function)`` checks the call against CuPy's own signature
(names.check_arguments: a NumPy-only keyword is a TypeError), refuses a NumPy array anywhere
in the arguments (conversion.argument), and returns device arrays where NumPy returns arrays
or scalars (CuPy's reductions give 0-d arrays). A function whose result is a host value in
CuPy too (``ndim``, ``shape``, ``result_type``...) is listed in HOST_RESULTS. The functions
CuPy documents as "may synchronize the device" (their output shape depends on the data)
count a host synchronisation: SYNCHRONIZING.

CuPy's functions mostly call methods of their array argument (``cupy.sum(a)`` is
``a.sum()``, ``cupy.linalg.norm(x)`` reads ``x.dtype``), so a Python list or number there is
an error in CuPy, where NumPy would quietly convert it: when the first parameter is one of
ARRAY_PARAMETERS it must be a device array, except in the functions of HOST_DATA_ALLOWED
(creation from host data, host-result queries, and the elementwise ``isclose``/``allclose``);
a sequence-of-arrays parameter (``tup``, ``arrays``) must hold device arrays.
"""
from __future__ import annotations

import numpy

from . import conversion, names, transfers

HOST_RESULTS = frozenset({
    "ndim", "shape", "size", "isscalar", "iscomplexobj", "isrealobj", "isfortran", "result_type", "can_cast",
    "min_scalar_type", "promote_types", "issubdtype", "common_type", "may_share_memory", "shares_memory",
    "iinfo", "finfo", "dtype", "binary_repr", "base_repr", "typename", "mintypecode", "isdtype",
    "broadcast_shapes", "ndindex"})
SYNCHRONIZING = frozenset({"nonzero", "argwhere", "flatnonzero", "unique", "unique_values", "unique_counts",
                           "unique_inverse", "unique_all", "compress", "extract", "bincount", "trim_zeros"})


ARRAY_PARAMETERS = frozenset({"a", "arr", "ary", "array", "ar", "ar1", "arr1", "a1", "m", "x", "A", "v",
                              "prototype", "condition"})
SEQUENCE_PARAMETERS = frozenset({"tup", "arrays"})
HOST_DATA_ALLOWED = HOST_RESULTS | frozenset({
    "array", "asarray", "asanyarray", "asarray_chkfinite", "asnumpy", "isclose", "allclose", "iterable",
    "format_float_positional", "format_float_scientific", "nan_to_num", "array2string", "array_repr", "array_str"})


def _check_array_parameters(section, name, args, kwargs):
    """TypeError where CuPy's function needs a device array (or arrays) and gets host data."""
    from .ndarray import ndarray

    signature = names.signature(section, name)
    if signature is None or name in HOST_DATA_ALLOWED:
        return
    bound = signature.bind(*args, **kwargs).arguments
    first = next(iter(signature.parameters))
    if first in ARRAY_PARAMETERS and first in bound and not isinstance(bound[first], ndarray):
        raise TypeError(f"{section}.{name}: argument '{first}' must be a cupy.ndarray, got "
                        f"{type(bound[first]).__name__} (CuPy reads it as an array; move host data with cupy.asarray)")
    if first in SEQUENCE_PARAMETERS and first in bound:
        for item in bound[first]:
            if not isinstance(item, ndarray):
                raise TypeError(f"{section}.{name}: every element of '{first}' must be a cupy.ndarray, got "
                                f"{type(item).__name__}")


def _returned(values, name, out):
    if out is not None and isinstance(values, numpy.ndarray) and values is out._array:
        return out
    return values if name in HOST_RESULTS else conversion.device_result(values)


def from_numpy(section: str, name: str, function):
    """CuPy's ``section.name``, computed by the NumPy ``function``."""
    where = f"{section}.{name}"

    def standin(*args, **kwargs):
        names.check_arguments(section, name, args, kwargs)
        _check_array_parameters(section, name, args, kwargs)
        if name in SYNCHRONIZING or (name == "where" and len(args) + len(kwargs) == 1):
            transfers.record("implicit_sync", where)
        values = function(*conversion.argument(args, where), **conversion.argument(kwargs, where))
        return _returned(values, name, kwargs.get("out"))

    standin.__name__ = standin.__qualname__ = name
    standin.__doc__ = f"{where}: NumPy's {name} on the stand-in's device arrays."
    return standin


def elementwise(section: str, name: str, function):
    """A CuPy ufunc that is a plain function in NumPy (fix, i0, sinc): kernel arguments only."""
    where = f"{section}.{name}"

    def standin(*args, out=None, dtype=None):
        values = function(*(conversion.kernel_argument(a, where) for a in args))
        values = conversion.result(values if dtype is None else numpy.asarray(values).astype(dtype))
        if out is not None:
            out[...] = values
            return out
        return values

    standin.__name__ = standin.__qualname__ = name
    return standin
