"""cupy.ndarray of the stand-in: a NumPy array held "on the device", behind CuPy's rules.

A wrapper, not a NumPy subclass: NumPy cannot see the data (``__array__`` raises the
TypeError CuPy raises, core.pyx), and the class reports module ``cupy``, so that
``gee_ref.backend.get_array_module`` takes it for a CuPy array. What follows mirrors
cupy/_core/core.pyx method by method:

- Methods and attributes: only those ``dir(cupy.ndarray)`` of CuPy 14.2 lists (no
  ``__index__``, so a device value is never silently a Python index; no ``ctypes``,
  ``itemset``, ``resize``...), with CuPy's parameters (``sum(axis, dtype, out, keepdims)``,
  ``clip(a_min, a_max, out)``, ``flatten()``, ``put(..., mode='wrap')``...).
- Operators: ndarray_operators.py; methods with CuPy's parameters: ndarray_methods.py.
- ``__array_ufunc__`` and ``__array_function__``: ``numpy.exp(a)``, ``numpy.concatenate([a, b])``
  run CuPy's function of the same name, or fail where CuPy has none.
- Host reads count as transfers (transfers.py): ``get()`` a device-to-host copy; ``float``,
  ``int``, ``complex``, ``bool``, ``item``, ``tolist``, ``tobytes``, ``repr``, ``str``,
  ``format`` implicit synchronisations; iteration yields device views and reads nothing.
"""
from __future__ import annotations

import warnings

import numpy

from . import conversion, indexing, memory, transfers
from .ndarray_methods import Methods, _not_emulated
from .ndarray_operators import Operators


class Flags:
    """cupy._core.flags.Flags: c_contiguous, f_contiguous, owndata (read-only)."""

    __slots__ = ("c_contiguous", "f_contiguous", "owndata")

    def __init__(self, c_contiguous, f_contiguous, owndata):
        self.c_contiguous, self.f_contiguous, self.owndata = c_contiguous, f_contiguous, owndata

    def __getitem__(self, name):
        keys = {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous, "OWNDATA": self.owndata}
        return keys[name]

    def __repr__(self):
        return "\n".join(f"  {k} : {getattr(self, k.lower())}" for k in ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA"))


class ndarray(Operators, Methods):
    """Multi-dimensional array "on the device" (the stand-in's cupy.ndarray)."""

    __slots__ = ("_array", "__weakref__")
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        if memptr is not None or strides is not None:
            raise NotImplementedError("cupy.ndarray(memptr=..., strides=...) is not emulated by the CuPy stand-in")
        if order not in ("C", "F"):
            raise ValueError(f"order not understood. order={order}")
        conversion.check_dtype(dtype)
        self._array = numpy.empty(shape, dtype=dtype, order=order)
        memory.default_pool.track(self._array)

    @classmethod
    def _wrap(cls, array: numpy.ndarray) -> "ndarray":
        conversion.check_dtype(array.dtype)
        wrapped = object.__new__(cls)
        wrapped._array = array
        memory.default_pool.track(array)
        return wrapped

    # --------------------------------------------------------------- memory layout
    @property
    def shape(self):
        return self._array.shape

    @shape.setter
    def shape(self, newshape):
        self._array = self._array.reshape(newshape, copy=False)

    strides = property(lambda self: self._array.strides)
    ndim = property(lambda self: self._array.ndim)
    size = property(lambda self: self._array.size)
    itemsize = property(lambda self: self._array.itemsize)
    nbytes = property(lambda self: self._array.nbytes)
    dtype = property(lambda self: self._array.dtype)

    @property
    def flags(self):
        return Flags(self._array.flags.c_contiguous, self._array.flags.f_contiguous, self._array.base is None)

    @property
    def base(self):
        if self._array.base is None:
            return None
        root = self._array
        while isinstance(root.base, numpy.ndarray):
            root = root.base
        return ndarray._wrap(root)

    @property
    def T(self):
        return self if self.ndim < 2 else ndarray._wrap(self._array.T)

    @property
    def mT(self):
        return ndarray._wrap(self._array.mT)

    @property
    def device(self):
        from . import cuda_device

        return cuda_device.Device(0)

    @property
    def real(self):
        return ndarray._wrap(self._array.real)

    @real.setter
    def real(self, value):
        self._array.real = indexing.fill_value(value) if not isinstance(value, ndarray) else value._array

    @property
    def imag(self):
        return ndarray._wrap(self._array.imag)

    @imag.setter
    def imag(self, value):
        self._array.imag = indexing.fill_value(value) if not isinstance(value, ndarray) else value._array

    data = property(_not_emulated("data"))
    cstruct = property(_not_emulated("cstruct"))
    flat = property(_not_emulated("flat"))
    mdspan = property(_not_emulated("mdspan"))

    # --------------------------------------------------------------- host transfers
    def get(self, stream=None, order="C", out=None):
        """The array copied to the host (a device-to-host transfer)."""
        transfers.record("device_to_host", "ndarray.get")
        if out is not None:
            if not isinstance(out, numpy.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained fromcupy.ndarray")
            if out.dtype != self.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if out.shape != self.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
            out[...] = self._array
            return out
        order = order.upper()
        if order == "A":
            order = "F" if self._array.flags.f_contiguous and not self._array.flags.c_contiguous else "C"
        if order not in ("C", "F"):
            raise ValueError(f"unsupported order: {order}")
        return numpy.array(self._array, order=order, copy=True)

    def set(self, arr, stream=None):
        """Copy a host array into this one (a host-to-device transfer)."""
        if not isinstance(arr, numpy.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        if not (self._array.flags.c_contiguous or self._array.flags.f_contiguous):
            raise RuntimeError("Cannot set to non-contiguous array")
        transfers.record("host_to_device", "ndarray.set")
        self._array[...] = arr

    def _read(self, what):
        transfers.record("implicit_sync", what)
        return self._array

    def item(self):
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self._read("ndarray.item").item()

    def tolist(self):
        return self._read("ndarray.tolist").tolist()

    def tobytes(self, order="C"):
        return self._read("ndarray.tobytes").tobytes(order)

    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __int__(self):
        return int(self._read("int()"))

    def __float__(self):
        return float(self._read("float()"))

    def __complex__(self):
        return complex(self._read("complex()"))

    def __bool__(self):
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error. Use `array.size > 0` to check that an array is not empty.",
                          DeprecationWarning)
            return False
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        return bool(self._read("bool()"))

    def __repr__(self):
        return repr(self._read("repr()"))

    def __str__(self):
        return str(self._read("str()"))

    def __format__(self, format_spec):
        return format(self._read("format()"), format_spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        transfers.record("device_to_host", "pickle")
        return _from_pickle, (numpy.array(self._array),)

    # --------------------------------------------------------------- containers
    def __len__(self):
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __getitem__(self, index):
        return indexing.getitem(self, index)

    def __setitem__(self, index, value):
        indexing.setitem(self, index, value)

    # --------------------------------------------------------------- NumPy protocols
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .namespace import cupy

        inout = inputs
        if "out" in kwargs:
            out = kwargs["out"]
            if len(out) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            inout += out
            kwargs["out"] = out[0]
        if method != "__call__":
            return NotImplemented
        try:
            cupy_ufunc = getattr(cupy, ufunc.__name__)
        except AttributeError:
            return NotImplemented
        for x in inout:
            if not (isinstance(x, ndarray) or conversion.is_scalar(x) or isinstance(x, numpy.ndarray)):
                return NotImplemented
        if ufunc.__name__ in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
            inputs = tuple(x.item() if isinstance(x, numpy.ndarray) and x.ndim == 0 else x for x in inputs)
        return cupy_ufunc(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .namespace import cupy

        try:
            module = cupy
            for part in func.__module__.split(".")[1:]:
                module = getattr(module, part)
            cupy_func = getattr(module, func.__name__)
        except AttributeError:
            return NotImplemented
        if cupy_func is func:
            return NotImplemented
        for t in types:
            if t not in (ndarray, numpy.ndarray):
                return NotImplemented
        return cupy_func(*args, **kwargs)

ndarray.__module__ = "cupy"



def _from_pickle(host_array):
    transfers.record("host_to_device", "unpickle")
    return ndarray._wrap(numpy.array(host_array))
