"""The functions that move data onto and off the device, and say which module holds an array.

- ``asarray``/``array`` of host data (a NumPy array, a list of numbers, a Python scalar)
  copy it to the device: allowed, counted as ``host_to_device``. Of a device array they
  return it (``asarray``, when neither dtype nor order asks for a copy) or copy it on the
  device. A list of device arrays is stacked on the device (CuPy's
  ``_array_from_nested_sequence``); it counts a copy only when host numbers are mixed in.
  ``copy=False`` where a copy is needed is a ValueError (NumPy 2 semantics, as in CuPy 14).
- ``asnumpy`` is the explicit device-to-host copy (``get()``); of host data it is
  ``numpy.asarray``.
- ``ascontiguousarray``/``asfortranarray`` take device arrays only.
"""
from __future__ import annotations

import numpy

from . import conversion, launches, transfers
from .ndarray import ndarray


def _leaves(value):
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _host_values(obj, dtype, order, ndmin):
    """A NumPy copy of host data, or of a nested sequence holding device arrays."""
    leaves = list(_leaves(obj)) if isinstance(obj, (list, tuple)) else [obj]
    on_device = [v for v in leaves if isinstance(v, ndarray)]
    if not on_device or len(on_device) < len(leaves):
        transfers.record("host_to_device", "cupy.asarray of host data")
    values = numpy.array(conversion.argument(obj, "cupy.array") if on_device else obj,
                         dtype=dtype, order=order, ndmin=ndmin)
    conversion.check_dtype(values.dtype)
    return values


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0, *, blocking=False):
    """cupy.array: a device array from device or host data (host data is copied over)."""
    if subok:
        raise NotImplementedError("cupy.array(subok=True) is not supported")
    order = "K" if order is None else order
    if isinstance(obj, ndarray):
        if dtype is not None:
            conversion.check_dtype(dtype)
        values = obj._array
        needs_copy = (copy or (dtype is not None and numpy.dtype(dtype) != values.dtype)
                      or (order == "C" and not values.flags.c_contiguous)
                      or (order == "F" and not values.flags.f_contiguous) or values.ndim < ndmin)
        if not needs_copy:
            return obj
        if copy is False:
            raise ValueError("Unable to avoid copy while creating an array as requested.")
        launches.record("copy", 2 * values.size)
        return ndarray._wrap(numpy.array(values, dtype=dtype, order=order, ndmin=ndmin, copy=True))
    if copy is False:
        raise ValueError("Unable to avoid copy while creating a device array from host data as requested.")
    return ndarray._wrap(_host_values(obj, dtype, order, ndmin))


def asarray(a, dtype=None, order=None, *, copy=None, blocking=False):
    """cupy.asarray: ``a`` itself when it is already a suitable device array, else array(a)."""
    return array(a, dtype=dtype, copy=copy, order=order)


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """cupy.asnumpy: a host copy of a device array (counted), or numpy.asarray of host data."""
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out)
    if out is not None:
        out[...] = a
        return out
    return numpy.asarray(a, order=order)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise conversion.unsupported(a, "cupy.ascontiguousarray")
    return array(a, dtype=dtype, copy=None, order="C", ndmin=0 if a.ndim else 1)


def asfortranarray(a, dtype=None):
    if not isinstance(a, ndarray):
        raise conversion.unsupported(a, "cupy.asfortranarray")
    return array(a, dtype=dtype, copy=None, order="F", ndmin=0 if a.ndim else 1)


def get_array_module(*args):
    """cupy.get_array_module: the stand-in's cupy when any argument is a device array, else numpy."""
    from .namespace import cupy

    return cupy if any(isinstance(a, ndarray) for a in args) else numpy
