"""``a[index]`` and ``a[index] = value`` as CuPy does them (cupy/_core/_routines_indexing.pyx).

- Index entries: ints, slices, ``None``, ``...`` and device arrays pass. A NumPy integer
  scalar stays an int. A list, a tuple inside the index, a NumPy array (a 0-d one too) or a
  bool is turned into a device array by ``core.array`` (``_prepare_slice_list``): a
  host-to-device copy, allowed and counted.
- A boolean device array as the index makes CuPy count its True values on the host first
  (``_prepare_mask_indexing_single``: ``int(mask_scanned[-1])``): a host synchronisation.
- The value of ``a[index] = value``: with advanced (array) indices a host value is copied to
  the device by ``core.array`` (counted); with basic indices only (ints, slices) CuPy calls
  ``fill(value)``, which takes a scalar or a 0-d NumPy array and raises
  ``ValueError: non-scalar numpy.ndarray cannot be used for fill`` for a larger one, and
  ``TypeError`` for a list.
- An integer index returns a 0-d device array (a view), never a host scalar.
"""
from __future__ import annotations

import numpy

from . import conversion, transfers


def _host_entry_to_device(entry):
    """core.array(entry): host data used as an index becomes a device array (a counted copy)."""
    array = numpy.array(entry)
    if array.dtype.kind not in "biu" and array.size:
        raise IndexError("only integers, slices (`:`), ellipsis (`...`),numpy.newaxis (`None`) and integer "
                         "or boolean arrays are valid indices")
    if array.size == 0 and isinstance(entry, (list, tuple)):
        array = array.astype(numpy.int32)  # an empty list means no indices, not an empty mask
    transfers.record("host_to_device", "index array")
    return array


def prepare(index, full_integer_gives_view: bool = True):
    """(NumPy index, advanced?, masked?) for an index given to a stand-in array."""
    from .ndarray import ndarray

    entries = list(index) if isinstance(index, tuple) else [index]
    prepared, advanced, masked = [], False, False
    for entry in entries:
        if entry is None or entry is Ellipsis or isinstance(entry, slice):
            prepared.append(entry)
        elif isinstance(entry, ndarray):
            advanced = True
            masked = masked or entry.dtype.kind == "b"
            prepared.append(entry._array)
        elif numpy.isscalar(entry) and not isinstance(entry, (bool, numpy.bool_)):
            if isinstance(entry, (str, bytes)):
                raise IndexError("only integers, slices (`:`), ellipsis (`...`),numpy.newaxis (`None`) and "
                                 "integer or boolean arrays are valid indices")
            prepared.append(int(entry) if isinstance(entry, numpy.integer) else entry)
        else:
            array = _host_entry_to_device(entry)
            advanced = True
            masked = masked or array.dtype.kind == "b"
            prepared.append(array)
    if full_integer_gives_view and not any(e is Ellipsis for e in prepared):
        prepared.append(Ellipsis)  # a full integer index then gives a 0-d view, as CuPy's does
    return tuple(prepared), advanced, masked


def getitem(array, index):
    numpy_index, _, masked = prepare(index)
    if masked:
        transfers.record("implicit_sync", "boolean-mask indexing")
    return conversion.result(array._array[numpy_index])


def setitem(array, index, value):
    from .ndarray import ndarray

    numpy_index, advanced, masked = prepare(index)
    if masked:
        transfers.record("implicit_sync", "boolean-mask assignment")
    if isinstance(value, ndarray):
        array._array[numpy_index] = value._array
    elif advanced:
        if not conversion.is_scalar(value):
            conversion.check_dtype(numpy.asarray(value).dtype)
            transfers.record("host_to_device", "assigned value")
        array._array[numpy_index] = value
    else:
        array._array[numpy_index] = fill_value(value)


def fill_value(value):
    """The value ``ndarray.fill`` accepts (core.pyx ``fill``): a scalar or a 0-d NumPy array."""
    if isinstance(value, numpy.ndarray):
        if value.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        return value.item()
    if not conversion.is_scalar(value):
        raise TypeError(f"Unsupported type {type(value)}")
    return value
