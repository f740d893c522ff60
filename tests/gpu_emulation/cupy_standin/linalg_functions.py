"""``cupy.matmul``, ``cupy.dot`` and ``@``: device operands only, TF32 rounding when switched on.

CuPy's matmul is a generalized ufunc: its operands go through the same argument check as
any kernel (a NumPy array is ``TypeError: Unsupported type``); ``dot`` is typed on
cupy.ndarray. Under COMPUTE_TYPE_TF32 a float32 product of matrices or vectors rounds its
inputs first (products.operands); batched products stay strict.
"""
from __future__ import annotations

import numpy

from . import conversion, launches, products
from .ndarray import ndarray
from .ndarray_methods import _out, _returned


def _device(value, where):
    if not isinstance(value, ndarray):
        if conversion.is_scalar(value):
            raise ValueError(f"{where}: Input operand does not have enough dimensions")
        raise conversion.unsupported(value, where)
    return value._array


def matmul(x1, x2, /, out=None, *, casting="same_kind", dtype=None, axes=None, axis=None, keepdims=False):
    a, b = products.operands(_device(x1, "cupy.matmul"), _device(x2, "cupy.matmul"))
    extra = {k: v for k, v in (("axes", axes), ("axis", axis)) if v is not None}
    product = _returned(numpy.matmul(a, b, out=_out(out), casting=casting, dtype=dtype, **extra), out)
    launches.record("matmul", a.size + b.size + product.size)
    return product


def dot(a, b, out=None):
    a_values, b_values = products.operands(_device(a, "cupy.dot"), _device(b, "cupy.dot"))
    product = _returned(numpy.dot(a_values, b_values, out=_out(out)), out)
    launches.record("matmul", a_values.size + b_values.size + product.size)
    return product
