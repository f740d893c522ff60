"""The golden HDF5 file: writing it, reading its cases back, and writing a candidate file.

Layout (every case is a group named by its path, e.g. ``op/lif/hard_sigmoid``)::

    /                       attrs: format, seed, generator, case_count
    <case>/                 attrs: kind, function, description, params (JSON), conventions ...
    <case>/inputs/<t>       what the computation reads
    <case>/upstream/<t>     the upstream gradient of output <t>
    <case>/outputs/<t>      checked: forward results (and buffers updated in place)
    <case>/grads/<t>        checked: d sum_k <upstream_k, output_k> / d input <t>

Tensor names may contain "/" (``parameters/stem.0.x_out``): they are nested groups.
A checked dataset carries ``scale``, the magnitude its errors are measured against (its own
max |value|, or, when it is zero up to round-off, the largest max |value| of its group in the
case: the gradient of a bias that feeds a training-mode BatchNorm is such a tensor), and
``numerically_zero`` saying which of the two it is.

A candidate file holds the checked tensors at the same paths; nothing else is required.
"""
from __future__ import annotations

import fnmatch

import json
import os

import h5py
import numpy

from gee_ref.storage.hdf5_image import writing_hdf5
from gee_ref.verification.case import BOOKKEEPING, CHECKED_GROUPS, GROUPS, Case

FORMAT = "gee_ref-golden-v1"
CANDIDATE_FORMAT = "gee_ref-golden-candidate-v1"
ZERO_RELATIVE = 1e-12  # max|t| below this times its group's largest max|.|: zero up to round-off


class GoldenFileError(ValueError):
    """A golden or candidate file that is missing, unreadable or not in this format; one line."""


def matches(name: str, pattern: str) -> bool:
    """A shell-style glob (``*``, ``?``, ``[...]``; ``*`` also crosses "/") or else a substring."""
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return pattern in name


def _max_abs(array) -> float:
    array = numpy.asarray(array)
    if array.size == 0 or array.dtype.kind not in "fiu":
        return 0.0
    return float(numpy.max(numpy.abs(array.astype(numpy.float64))))


def error_scales(tensors: dict) -> dict:
    """name -> (scale, numerically_zero) for the checked tensors of one group of one case."""
    group_scale = max((_max_abs(v) for v in tensors.values()), default=0.0)
    scales = {}
    for name, value in tensors.items():
        own = _max_abs(value)
        if own <= ZERO_RELATIVE * group_scale or own == 0.0:
            scales[name] = (group_scale if group_scale > 0 else 1.0, True)
        else:
            scales[name] = (own, False)
    return scales


def write_golden(path, cases, seed, replace: bool = True) -> None:
    """Write ``cases`` to a new HDF5 file at ``path`` (an existing one is replaced only if ``replace``)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise GoldenFileError(f"cannot write {path}: the folder {folder} does not exist")
    with writing_hdf5(path, what="golden file", replace=replace, track_order=True) as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["seed"] = int(seed)
        h5.attrs["generator"] = "python -m gee_ref.golden"
        h5.attrs["case_count"] = len(cases)
        for case in cases:
            _write_case(h5, case)


def _write_case(h5, case) -> None:
    group = h5.create_group(case.name, track_order=True)
    for key, value in case.attrs().items():
        group.attrs[key] = value
    for group_name in GROUPS:
        tensors = getattr(case, group_name)
        scales = error_scales(tensors) if group_name in CHECKED_GROUPS else {}
        for name, value in tensors.items():
            dataset = group.create_dataset(f"{group_name}/{name}", data=numpy.asarray(value), track_times=False)
            if name in scales:
                dataset.attrs["scale"], dataset.attrs["numerically_zero"] = scales[name]


def open_checked(path, expected_format):
    """An open h5py.File (read-only) of the given format, or a one-line GoldenFileError."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise GoldenFileError(f"no such file: {path}")
    try:
        h5 = h5py.File(path, "r")
    except OSError as error:
        raise GoldenFileError(f"{path} is not a readable HDF5 file ({str(error).splitlines()[0]})") from None
    found = _plain(h5.attrs.get("format"))
    if expected_format is not None and found != expected_format:
        h5.close()
        raise GoldenFileError(f"{path} is not a {expected_format} file (its format attribute is {found!r})")
    return h5


def _case_groups(h5):
    """Every case group: a group holding an ``outputs`` subgroup and a ``kind`` attribute."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Group) and "kind" in obj.attrs and "outputs" in obj:
            found.append(name)
    h5.visititems(visit)
    return found


def checked_datasets(h5):
    """(path, h5py.Dataset) of every checked tensor of a golden file, in file order."""
    found = []
    for case_name in _case_groups(h5):
        for group_name in CHECKED_GROUPS:
            if group_name not in h5[case_name]:
                continue
            prefix = f"{case_name}/{group_name}"

            def visit(name, obj, prefix=prefix):
                if isinstance(obj, h5py.Dataset):
                    found.append((f"{prefix}/{name}", obj))
            h5[prefix].visititems(visit)
    return found


def _read_tensors(group) -> dict:
    tensors = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            tensors[name] = obj[()]
    group.visititems(visit)
    return tensors


def read_cases(path, only=None):
    """Yield every ``Case`` of a golden file (all arrays loaded), optionally filtered.

    ``only`` is a pattern on case names, as ``matches`` reads it.
    """
    reserved = {"kind", "function", "description", "params"}
    with open_checked(path, FORMAT) as h5:
        for name in _case_groups(h5):
            if only is not None and not matches(name, only):
                continue
            group = h5[name]
            attrs = dict(group.attrs)
            bookkeeping = set(BOOKKEEPING)
            case = Case(name=name, kind=str(attrs["kind"]), function=str(attrs["function"]),
                        description=str(attrs["description"]), params=json.loads(attrs["params"]),
                        conventions={k: _plain(v) for k, v in attrs.items()
                                     if k not in reserved and k not in bookkeeping},
                        extra_attrs={k: _plain(v) for k, v in attrs.items() if k in bookkeeping})
            for group_name in GROUPS:
                if group_name in group:
                    setattr(case, group_name, _read_tensors(group[group_name]))
            yield case


def _plain(value):
    """An HDF5 attribute as a plain Python value."""
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode()
    return value


def write_candidate(path, tensors: dict, implementation: str = "") -> None:
    """Write a candidate file: ``tensors`` maps golden dataset paths to arrays (any float dtype).

    Example: ``{"op/lif/hard_sigmoid/outputs/y": spikes, "op/lif/hard_sigmoid/grads/x_seq": dx}``.
    """
    with writing_hdf5(path, what="candidate file") as h5:
        h5.attrs["format"] = CANDIDATE_FORMAT
        h5.attrs["implementation"] = implementation
        for name, value in tensors.items():
            h5.create_dataset(name, data=numpy.asarray(value), track_times=False)
