"""Operators of the stand-in's cupy.ndarray, as cupy/_core/core.pyx defines them.

``a + b`` with a device array ``b`` goes straight to the ufunc. Otherwise CuPy defers to
``b``'s reflected operator only when ``b`` opts out of ufuncs (``_should_use_rop``), and else
calls NumPy's ufunc, which calls back ``__array_ufunc__``: a Python or NumPy scalar is fine, a
NumPy array (a 0-d one too) is ``TypeError: Unsupported type``, any other object leaves NumPy
with no implementation (TypeError). Comparisons take a 0-d NumPy array as its value
(``__richcmp__``: ``other.item()``). The reflected and in-place forms call the ufunc directly.
``@`` is cupy.matmul (linalg_functions: TF32 when switched on).
"""
from __future__ import annotations

import numpy

from . import ufuncs


def _should_use_rop(x, y):
    """core.pyx _should_use_rop: defer to y's reflected operator only when y opts out of ufuncs."""
    try:
        y_ufunc = y.__array_ufunc__
    except AttributeError:
        return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)
    return y_ufunc is None


def _binary(numpy_name):
    def forward(self, other):
        if isinstance(other, Operators):
            return ufuncs.get(numpy_name)(self, other)
        if _should_use_rop(self, other):
            return NotImplemented
        return getattr(numpy, numpy_name)(self, other)  # NumPy calls back __array_ufunc__, as in CuPy

    def reflected(self, other):
        return ufuncs.get(numpy_name)(other, self)

    def in_place(self, other):
        return ufuncs.get(numpy_name)(self, other, out=self)

    return forward, reflected, in_place


def _comparison(numpy_name):
    def compare(self, other):
        if isinstance(other, Operators):
            return ufuncs.get(numpy_name)(self, other)
        if not _should_use_rop(self, other):
            if isinstance(other, numpy.ndarray) and other.ndim == 0:
                other = other.item()
            return getattr(numpy, numpy_name)(self, other)
        return NotImplemented
    return compare



class Operators:
    """Arithmetic, comparison and bitwise operators (a mixin of ndarray)."""

    __slots__ = ()

    __add__, __radd__, __iadd__ = _binary("add")
    __sub__, __rsub__, __isub__ = _binary("subtract")
    __mul__, __rmul__, __imul__ = _binary("multiply")
    __truediv__, __rtruediv__, __itruediv__ = _binary("true_divide")
    __floordiv__, __rfloordiv__, __ifloordiv__ = _binary("floor_divide")
    __mod__, __rmod__, __imod__ = _binary("remainder")
    __pow__, __rpow__, __ipow__ = _binary("power")
    __lshift__, __rlshift__, __ilshift__ = _binary("left_shift")
    __rshift__, __rrshift__, __irshift__ = _binary("right_shift")
    __and__, __rand__, __iand__ = _binary("bitwise_and")
    __or__, __ror__, __ior__ = _binary("bitwise_or")
    __xor__, __rxor__, __ixor__ = _binary("bitwise_xor")
    __divmod__, __rdivmod__, _ = _binary("divmod")
    del _

    __lt__ = _comparison("less")
    __le__ = _comparison("less_equal")
    __eq__ = _comparison("equal")
    __ne__ = _comparison("not_equal")
    __gt__ = _comparison("greater")
    __ge__ = _comparison("greater_equal")

    def __neg__(self):
        return ufuncs.get("negative")(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return ufuncs.get("absolute")(self)

    def __invert__(self):
        return ufuncs.get("invert")(self)

    def __matmul__(self, other):
        if not isinstance(other, Operators) and _should_use_rop(self, other):
            return NotImplemented
        from .linalg_functions import matmul

        return matmul(self, other)

    def __rmatmul__(self, other):
        from .linalg_functions import matmul

        return matmul(other, self)
