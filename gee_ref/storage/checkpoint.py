"""Checkpoints: groups of named arrays plus JSON metadata in one HDF5 file, written atomically.

Layout of a checkpoint file (format attribute ``gee_ref-checkpoint-v1``)::

    /                  attrs: format = "gee_ref-checkpoint-v1", meta = JSON text
    /<group>/<name>    one dataset per array, e.g. /model/conv1.x_out, /optimizer/exp_avg.3

Groups are whatever the caller needs ("model", "optimizer", "cmaes", ...); ``meta`` holds
everything else (epoch, step, config, random generator states from ``rng_state``).

Atomic write (``gee_ref.storage.hdf5_image``): the file is built in memory and its bytes
written with ``gee_ref.storage.atomic``. A process killed at any moment leaves the target
either absent, or the previous complete checkpoint, or the new one (at worst a stale
``.<name>.<pid>.*.tmp`` file stays beside it); a full disk is a one-line DiskFullError that
leaves the previous checkpoint as it was.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy

from gee_ref import backend
from gee_ref.storage.hdf5_image import writing_hdf5

FORMAT = "gee_ref-checkpoint-v1"
_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")


class CheckpointError(Exception):
    """A checkpoint file is missing, corrupt, or not a gee_ref checkpoint."""


def save_checkpoint(path, tensors: dict, meta: dict) -> None:
    """Write ``tensors`` ({group: {name: array}}, NumPy or CuPy arrays) and ``meta`` (a
    JSON-serialisable dict) to ``path`` atomically. Tuples in meta come back as lists."""
    groups = _host_groups(tensors)
    if not isinstance(meta, dict):
        raise ValueError(f"checkpoint meta must be a dict, got {type(meta).__name__}")
    try:
        meta_text = json.dumps(meta, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint meta is not JSON-serialisable: {error}") from None

    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise ValueError(f"cannot write checkpoint {path}: folder {folder} does not exist")
    with writing_hdf5(path, what="checkpoint") as h5:
        h5.attrs["format"] = FORMAT
        h5.attrs["meta"] = meta_text
        for group_name, arrays in groups.items():
            group = h5.create_group(group_name)
            for name, array in arrays.items():
                group.create_dataset(name, data=array)


def load_checkpoint(path):
    """``(tensors, meta)`` as saved: {group: {name: numpy array}} and the meta dict.
    Raises CheckpointError with a one-line message for a missing, corrupt or foreign file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"no checkpoint file at {path}")
    try:
        h5 = h5py.File(path, "r")
    except OSError:
        raise CheckpointError(f"{path} is not a readable HDF5 file (corrupt or truncated)") from None
    with h5:
        if h5.attrs.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a gee_ref checkpoint (no format attribute {FORMAT!r})")
        try:
            meta = json.loads(h5.attrs["meta"])
            tensors = {}
            for group_name, group in h5.items():
                if not isinstance(group, h5py.Group):
                    raise ValueError(f"top-level entry {group_name!r} is not a group")
                tensors[group_name] = {}
                for name, dataset in group.items():
                    if not isinstance(dataset, h5py.Dataset):
                        raise ValueError(f"entry {group_name}/{name} is not a dataset")
                    tensors[group_name][name] = numpy.asarray(dataset[()])
        except (OSError, KeyError, ValueError, TypeError) as error:
            raise CheckpointError(f"{path} is a corrupt gee_ref checkpoint: {error}") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is a corrupt gee_ref checkpoint: meta is not a JSON object")
    return tensors, meta


def rng_state(generator) -> dict:
    """The state of a NumPy ``Generator`` as a JSON-serialisable dict (for ``meta``).

    Only host generators: a CuPy generator's state lives on the GPU and is not exposed, so
    GPU randomness is re-seeded from ``backend.derive_seed(run_seed, epoch, ...)`` instead."""
    if not isinstance(generator, numpy.random.Generator):
        raise ValueError(f"rng_state needs a numpy.random.Generator, got {type(generator).__module__}."
                         f"{type(generator).__name__}")
    return _json_safe(generator.bit_generator.state)


def restore_rng(state: dict) -> numpy.random.Generator:
    """A new NumPy ``Generator`` that continues exactly where ``rng_state`` was taken."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    if name not in _BIT_GENERATORS:
        raise ValueError(f"not a saved random generator state (bit_generator {name!r})")
    bit_generator = getattr(numpy.random, name)()
    try:
        bit_generator.state = state
    except (TypeError, ValueError, KeyError) as error:
        raise ValueError(f"not a valid {name} state: {error}") from None
    return numpy.random.Generator(bit_generator)


def _host_groups(tensors) -> dict:
    """{group: {name: host numpy array}}, checked: names fit HDF5, arrays are numeric."""
    if not isinstance(tensors, dict):
        raise ValueError(f"checkpoint tensors must be a dict of groups, got {type(tensors).__name__}")
    groups = {}
    for group_name, arrays in tensors.items():
        _check_name(group_name, "group")
        if not isinstance(arrays, dict):
            raise ValueError(f"checkpoint group {group_name!r} must be a dict of arrays, got {type(arrays).__name__}")
        groups[group_name] = {}
        for name, array in arrays.items():
            _check_name(name, f"array in group {group_name!r}")
            host = numpy.asarray(backend.to_host(array))
            if host.dtype.kind not in "biufc":
                raise ValueError(f"checkpoint array {group_name}/{name} has non-numeric dtype {host.dtype}")
            groups[group_name][name] = host
    return groups


def _check_name(name, what: str) -> None:
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise ValueError(f"checkpoint {what} name must be a non-empty string without '/', got {name!r}")


def _json_safe(value):
    """NumPy arrays and scalars inside a bit-generator state, as plain lists and ints."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, numpy.ndarray):
        return value.tolist()
    if isinstance(value, numpy.generic):
        return value.item()
    return value
