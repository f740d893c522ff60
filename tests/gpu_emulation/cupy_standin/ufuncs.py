"""cupy.ufunc: a NumPy ufunc run on stand-in arrays, called the way CuPy's are (cupy/_core/_kernel.pyx).

``ufunc(*args, out=None, dtype=None, casting='same_kind')``: CuPy takes no other keyword
(``TypeError: Wrong arguments {...}`` for NumPy's ``where=``, ``order=``, ``subok=``); inputs
are device arrays or scalars (conversion.kernel_argument), outputs device arrays; with ``out``
the very ``out`` array is returned. ``reduce``, ``accumulate``, ``outer`` and ``at`` take
device arrays only.
"""
from __future__ import annotations

import numpy

from . import conversion, indexing, launches


class ufunc:
    """One CuPy universal function, backed by the NumPy ufunc of the same name."""

    def __init__(self, numpy_ufunc):
        self._ufunc = numpy_ufunc
        self.name = self.__name__ = f"cupy_{numpy_ufunc.__name__}"
        self.nin, self.nout, self.nargs = numpy_ufunc.nin, numpy_ufunc.nout, numpy_ufunc.nargs

    def __repr__(self):
        return f"<ufunc '{self.name}'>"

    @property
    def types(self):
        return self._ufunc.types

    def _outputs(self, positional, out):
        if out is not None:
            if positional:
                raise ValueError("Cannot specify 'out' as both a positional and keyword argument")
            positional = out if isinstance(out, tuple) else (out,)
        if len(positional) not in (0, self.nout):
            raise ValueError(f"Invalid number of output arrays for {self.name}")
        return positional

    def __call__(self, *args, **kwargs):
        out = kwargs.pop("out", None)
        dtype = kwargs.pop("dtype", None)
        casting = kwargs.pop("casting", "same_kind")
        if kwargs:
            raise TypeError(f"Wrong arguments {kwargs}")
        if not self.nin <= len(args) <= self.nargs:
            raise TypeError(f"Wrong number of arguments for {self.name!r}. It must be either {self.nin} or "
                            f"{self.nargs} (with outputs), but given {len(args)}.")
        inputs = [conversion.kernel_argument(a, self.name) for a in args[:self.nin]]
        outputs = self._outputs(args[self.nin:], out)
        numpy_outputs = tuple(_device_output(o, self.name) for o in outputs)
        if dtype is not None:
            conversion.check_dtype(dtype)
        values = self._ufunc(*inputs, out=numpy_outputs or None, dtype=dtype, casting=casting)
        written = numpy_outputs or (values if isinstance(values, tuple) else (values,))
        launches.record("elementwise", sum(numpy.size(a) for a in inputs if isinstance(a, numpy.ndarray))
                        + sum(numpy.size(w) for w in written))
        if outputs:
            return outputs[0] if self.nout == 1 else tuple(outputs)
        return conversion.result(values)

    def reduce(self, array, axis=0, dtype=None, out=None, keepdims=False):
        values = self._ufunc.reduce(_device_input(array, self.name), axis=axis, dtype=dtype,
                                    out=None if out is None else _device_output(out, self.name), keepdims=keepdims)
        return out if out is not None else conversion.result(values)

    def accumulate(self, array, axis=0, dtype=None, out=None):
        values = self._ufunc.accumulate(_device_input(array, self.name), axis=axis, dtype=dtype,
                                        out=None if out is None else _device_output(out, self.name))
        return out if out is not None else conversion.result(values)

    def outer(self, A, B, **kwargs):
        return self(_expand(A, B.ndim if hasattr(B, "ndim") else 0), B, **kwargs)

    def reduceat(self, *args, **kwargs):
        raise NotImplementedError(f"{self.name}.reduceat is not emulated by the CuPy stand-in")

    def at(self, a, indices, b=None):
        numpy_index, _, _ = indexing.prepare(indices, full_integer_gives_view=False)
        operands = () if b is None else (conversion.kernel_argument(b, self.name),)
        self._ufunc.at(_device_input(a, self.name), numpy_index, *operands)


def _device_input(value, where):
    from .ndarray import ndarray

    if not isinstance(value, ndarray):
        raise conversion.unsupported(value, where)
    return value._array


def _device_output(value, where):
    from .ndarray import ndarray

    if not isinstance(value, ndarray):
        raise TypeError(f"Output arguments must be cupy.ndarray, got {type(value)} in {where}")
    return value._array


def _expand(A, extra_dims):
    return A.reshape(A.shape + (1,) * extra_dims) if extra_dims else A


_made: dict = {}


def get(name: str) -> ufunc:
    """The stand-in ufunc for a NumPy ufunc name (one object per name)."""
    if name not in _made:
        _made[name] = ufunc(getattr(numpy, name))
    return _made[name]
