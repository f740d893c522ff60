"""Crossing between stand-in arrays and the NumPy arrays inside them, with CuPy's refusals.

Rules, each checked against CuPy's source (cupy/_core/_kernel.pyx ``_preprocess_arg``,
_scalar.pyx ``CScalar``, core.pyx):

- A kernel argument is a cupy.ndarray or a scalar: Python ``bool``, ``int``, ``float``,
  ``complex`` (exact types) or a NumPy scalar (``numpy.generic``). Anything else, a NumPy
  ndarray included, even a 0-d one, is ``TypeError: Unsupported type <class ...>``: CuPy never
  copies host arrays to the device behind the caller's back.
- Results are device arrays: where NumPy returns a scalar (a reduction, an operation on 0-d
  arrays), CuPy returns a 0-d cupy.ndarray; reading its value is a host synchronisation.
- Dtypes: CuPy has bool, the signed and unsigned integers, float16/32/64 and complex64/128;
  an object, string or datetime array is ``ValueError: Unsupported dtype``.
"""
from __future__ import annotations

import numpy

PYTHON_SCALARS = (bool, int, float, complex)
SUPPORTED_KINDS = "biufc"


def is_scalar(value) -> bool:
    """A scalar CuPy passes to a kernel: an exact Python number type or a NumPy scalar."""
    return type(value) in PYTHON_SCALARS or isinstance(value, numpy.generic)


def is_device_array(value) -> bool:
    from .ndarray import ndarray

    return isinstance(value, ndarray)


def unsupported(value, where: str = "") -> TypeError:
    hint = (" (a NumPy array on the host: move it with cupy.asarray first)"
            if isinstance(value, numpy.ndarray) else "")
    return TypeError(f"Unsupported type {type(value)}{' in ' + where if where else ''}{hint}")


def check_dtype(dtype) -> None:
    if numpy.dtype(dtype).kind not in SUPPORTED_KINDS:
        raise ValueError(f"Unsupported dtype {numpy.dtype(dtype)}")


def kernel_argument(value, where: str):
    """The NumPy value of a ufunc or kernel argument: a stand-in array's data or a scalar."""
    from .ndarray import ndarray

    if isinstance(value, ndarray):
        return value._array
    if is_scalar(value):
        return value
    raise unsupported(value, where)


def argument(value, where: str):
    """The NumPy value of any other argument: arrays unwrapped inside lists, tuples and dicts;
    a NumPy array anywhere is refused; shapes, axes, dtypes and scalars pass unchanged."""
    from .ndarray import ndarray

    if isinstance(value, ndarray):
        return value._array
    if isinstance(value, numpy.ndarray):
        raise unsupported(value, where)
    if type(value) in (list, tuple):
        return type(value)(argument(v, where) for v in value)
    if type(value) is dict:
        return {k: argument(v, where) for k, v in value.items()}
    return value


def result(value):
    """A NumPy result as CuPy would return it: arrays and scalars as device arrays."""
    from .ndarray import ndarray

    if isinstance(value, numpy.ndarray):
        return ndarray._wrap(value)
    if isinstance(value, numpy.generic):
        return ndarray._wrap(numpy.asarray(value))
    if isinstance(value, tuple):  # a NamedTuple of NumPy (SVDResult, EighResult) becomes a plain tuple, as in CuPy
        return tuple(result(v) for v in value)
    if isinstance(value, list):
        return [result(v) for v in value]
    return value


def device_result(value):
    """Like result(), and a Python bool/int/float from NumPy also becomes a 0-d device array
    (numpy.array_equal, numpy.count_nonzero return Python numbers; CuPy's return arrays)."""
    if type(value) in PYTHON_SCALARS:
        from .ndarray import ndarray

        return ndarray._wrap(numpy.asarray(value))
    return result(value)
