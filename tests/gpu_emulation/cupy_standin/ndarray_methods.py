"""Methods of the stand-in's cupy.ndarray with CuPy's own parameters (cupy/_core/core.pyx).

``sum(axis, dtype, out, keepdims)``, ``clip(a_min, a_max, out)``, ``flatten()`` without
``order``, ``put(..., mode='wrap')``, ``sort(axis)`` without ``kind``, ``argmax(..., dtype)``:
NumPy's extra parameters are TypeErrors. ``astype(copy=False)`` returns the array itself when
no cast is needed, as CuPy does. Host indices or values (``take``, ``put``, ``compress``) are
copied to the device (counted); ``nonzero``, ``compress`` and ``put(mode='raise')`` read the
device (counted). Results are device arrays, 0-d for full reductions; with ``out`` the very
``out`` array is returned.
"""
from __future__ import annotations

import numpy

from . import conversion, indexing, launches, products, transfers, ufuncs


def _not_emulated(name):
    def method(self, *args, **kwargs):
        raise NotImplementedError(f"cupy.ndarray.{name} is not emulated by the CuPy stand-in")
    method.__name__ = name
    return method


def _out(out):
    if out is None:
        return None
    if not conversion.is_device_array(out):
        raise TypeError(f"Argument 'out' has incorrect type (expected cupy.ndarray, got {type(out).__name__})")
    return out._array


def _returned(values, out):
    return out if out is not None else conversion.result(values)


def _reduction(method):
    """An ndarray reduction, counted as one reduction kernel (launches.py)."""
    def counted(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        launches.record("reduction", self.size + numpy.size(result._array))
        return result
    counted.__name__ = counted.__qualname__ = method.__name__
    return counted


def _host_indices(indices):
    """core.array(indices): host indices copied to the device (counted)."""
    if numpy.isscalar(indices):
        return indices
    transfers.record("host_to_device", "index array")
    return numpy.asarray(indices)


class Methods:
    """Shape, item-selection and calculation methods (a mixin of ndarray)."""

    __slots__ = ()

    # --------------------------------------------------------------- conversion and shape
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if casting is not None:
            raise TypeError("casting is not supported yet")
        if subok is not None:
            raise TypeError("subok is not supported yet")
        conversion.check_dtype(dtype)
        if not copy and numpy.dtype(dtype) == self.dtype and (order in ("K", "A", None) or (
                order == "C" and self._array.flags.c_contiguous) or (order == "F" and self._array.flags.f_contiguous)):
            return self
        launches.record("copy", 2 * self.size)
        return self._wrap(self._array.astype(dtype, order=order or "K", copy=True))

    def copy(self, order="C"):
        launches.record("copy", 2 * self.size)
        return self._wrap(self._array.copy(order=order))

    def view(self, dtype=None):
        return self._wrap(self._array.view() if dtype is None else self._array.view(dtype))

    def fill(self, value):
        self._array.fill(value._array if conversion.is_device_array(value) else indexing.fill_value(value))

    def reshape(self, *shape, order="C"):
        if len(shape) == 1 and not isinstance(shape[0], int) and shape[0] is not None:
            shape = shape[0]
        return self._wrap(self._array.reshape(shape, order=order))

    def transpose(self, *axes):
        return self._wrap(self._array.transpose(*axes))

    def swapaxes(self, axis1, axis2):
        return self._wrap(self._array.swapaxes(axis1, axis2))

    def flatten(self):
        return self._wrap(self._array.flatten())

    def ravel(self, order="C"):
        return self._wrap(self._array.ravel(order))

    def squeeze(self, axis=None):
        return self._wrap(self._array.squeeze(axis))

    def diagonal(self, offset=0, axis1=0, axis2=1):
        return self._wrap(self._array.diagonal(offset, axis1, axis2))

    def reduced_view(self, dtype=None):
        return self if self.ndim <= 1 or not self._array.flags.c_contiguous else self.reshape(self.size)

    # --------------------------------------------------------------- item selection
    def take(self, indices, axis=None, out=None):
        numpy_indices = indices._array if conversion.is_device_array(indices) else _host_indices(indices)
        return _returned(self._array.take(numpy_indices, axis=axis, out=_out(out)), out)

    def put(self, indices, values, mode="wrap"):
        if mode not in ("raise", "wrap", "clip"):
            raise ValueError("clipmode not understood")
        numpy_indices = indices._array if conversion.is_device_array(indices) else _host_indices(indices)
        if conversion.is_device_array(values):
            numpy_values = values._array
        else:
            transfers.record("host_to_device", "ndarray.put values")
            numpy_values = numpy.asarray(values, dtype=self.dtype)
        if mode == "raise":
            transfers.record("implicit_sync", "ndarray.put(mode='raise') error flag")
        self._array.put(numpy_indices, numpy_values, mode=mode)

    def repeat(self, repeats, axis=None):
        if conversion.is_device_array(repeats) or isinstance(repeats, numpy.ndarray):
            raise ValueError("`repeats` should be an int or a list of ints, not an array")
        return self._wrap(self._array.repeat(repeats, axis))

    def sort(self, axis=-1):
        self._array.sort(axis=axis, kind="stable")

    def argsort(self, axis=-1):
        return self._wrap(self._array.argsort(axis=axis, kind="stable"))

    def partition(self, kth, axis=-1):
        self._array.partition(kth, axis=axis)

    def argpartition(self, kth, axis=-1):
        return self._wrap(self._array.argpartition(kth, axis=axis))

    def searchsorted(self, v, side="left", sorter=None):
        values = conversion.kernel_argument(v, "ndarray.searchsorted")
        sorter = None if sorter is None else conversion.kernel_argument(sorter, "ndarray.searchsorted")
        return conversion.result(self._array.searchsorted(values, side=side, sorter=sorter))

    def nonzero(self):
        transfers.record("implicit_sync", "ndarray.nonzero")
        return conversion.result(self._array.nonzero())

    def compress(self, condition, axis=None, out=None):
        transfers.record("implicit_sync", "ndarray.compress")
        numpy_condition = condition._array if conversion.is_device_array(condition) else _host_indices(condition)
        return _returned(self._array.compress(numpy_condition, axis=axis, out=_out(out)), out)

    def scatter_add(self, slices, value):
        ufuncs.get("add").at(self, slices, value)

    def scatter_max(self, slices, value):
        ufuncs.get("maximum").at(self, slices, value)

    def scatter_min(self, slices, value):
        ufuncs.get("minimum").at(self, slices, value)

    choose = _not_emulated("choose")
    byteswap = _not_emulated("byteswap")
    dump = _not_emulated("dump")
    dumps = _not_emulated("dumps")
    tofile = _not_emulated("tofile")
    toDlpack = _not_emulated("toDlpack")

    # --------------------------------------------------------------- calculation
    @_reduction
    def max(self, axis=None, out=None, keepdims=False):
        return _returned(self._array.max(axis=axis, out=_out(out), keepdims=keepdims), out)

    @_reduction
    def min(self, axis=None, out=None, keepdims=False):
        return _returned(self._array.min(axis=axis, out=_out(out), keepdims=keepdims), out)

    @_reduction
    def argmax(self, axis=None, out=None, dtype=None, keepdims=False):
        values = self._array.argmax(axis=axis, out=_out(out), keepdims=keepdims)
        return _returned(values if dtype is None else numpy.asarray(values).astype(dtype), out)

    @_reduction
    def argmin(self, axis=None, out=None, dtype=None, keepdims=False):
        values = self._array.argmin(axis=axis, out=_out(out), keepdims=keepdims)
        return _returned(values if dtype is None else numpy.asarray(values).astype(dtype), out)

    def ptp(self, axis=None, out=None, keepdims=False):
        return _returned(numpy.ptp(self._array, axis=axis, out=_out(out), keepdims=keepdims), out)

    def clip(self, a_min=None, a_max=None, out=None):
        low = None if a_min is None else conversion.kernel_argument(a_min, "ndarray.clip")
        high = None if a_max is None else conversion.kernel_argument(a_max, "ndarray.clip")
        return _returned(numpy.clip(self._array, low, high, out=_out(out)), out)

    def round(self, decimals=0, out=None):
        return _returned(self._array.round(decimals, out=_out(out)), out)

    def trace(self, offset=0, axis1=0, axis2=1, dtype=None, out=None):
        return _returned(self._array.trace(offset, axis1, axis2, dtype=dtype, out=_out(out)), out)

    @_reduction
    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        return _returned(self._array.sum(axis=axis, dtype=dtype, out=_out(out), keepdims=keepdims), out)

    def cumsum(self, axis=None, dtype=None, out=None):
        return _returned(self._array.cumsum(axis=axis, dtype=dtype, out=_out(out)), out)

    @_reduction
    def mean(self, axis=None, dtype=None, out=None, keepdims=False):
        return _returned(self._array.mean(axis=axis, dtype=dtype, out=_out(out), keepdims=keepdims), out)

    def var(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _returned(self._array.var(axis=axis, dtype=dtype, out=_out(out), ddof=ddof, keepdims=keepdims), out)

    def std(self, axis=None, dtype=None, out=None, ddof=0, keepdims=False):
        return _returned(self._array.std(axis=axis, dtype=dtype, out=_out(out), ddof=ddof, keepdims=keepdims), out)

    @_reduction
    def prod(self, axis=None, dtype=None, out=None, keepdims=None):
        return _returned(self._array.prod(axis=axis, dtype=dtype, out=_out(out), keepdims=bool(keepdims)), out)

    def cumprod(self, axis=None, dtype=None, out=None):
        return _returned(self._array.cumprod(axis=axis, dtype=dtype, out=_out(out)), out)

    @_reduction
    def all(self, axis=None, out=None, keepdims=False):
        return _returned(self._array.all(axis=axis, out=_out(out), keepdims=keepdims), out)

    @_reduction
    def any(self, axis=None, out=None, keepdims=False):
        return _returned(self._array.any(axis=axis, out=_out(out), keepdims=keepdims), out)

    def conj(self):
        return self._wrap(self._array.conj())

    def conjugate(self):
        return self._wrap(self._array.conjugate())

    def dot(self, b, out=None):
        if not conversion.is_device_array(b):
            raise TypeError(f"Argument 'b' has incorrect type (expected cupy._core.core._ndarray_base, "
                            f"got {type(b).__name__})")
        a_values, b_values = products.operands(self._array, b._array)
        product = _returned(numpy.dot(a_values, b_values, out=_out(out)), out)
        launches.record("matmul", self.size + b.size + product.size)
        return product
