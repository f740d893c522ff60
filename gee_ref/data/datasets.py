"""Image datasets on disk: the HDF5 layout, its validation, the embedded digits default,
and the stratified hold-out split (DESIGN.md section 7; no equation of the paper).

A gee_ref dataset file (format ``gee_ref-images-v1``)::

    /                 attributes: format  = "gee_ref-images-v1"
                                  classes = JSON list of class names (an array of strings is also read)
                                  source  = free text: where the images came from
    /train/images     uint8 [N, H, W, C], C in {1, 3}, pixels 0..255
    /train/labels     int64 [N], every label in [0, len(classes))
    /test/images      the same for the test split
    /test/labels

Evolution's fitness is measured on a validation split held out from ``train``
(``split_validation``); ``test`` is read only for the final report.

The embedded default is the UCI hand-written digits that scikit-learn ships
(``sklearn.datasets.load_digits``: 1797 images, 8x8, pixels 0..16, no download). On first
use it is written to ``$GEE_REF_CACHE/digits-v1.h5`` (default cache ``~/.cache/gee_ref``):
pixels scaled to 0..255 by ``p * 255 / 16`` rounded half up, shape [N, 8, 8, 1], and a fixed
stratified split with seed 0 and test fraction 0.2 per class, which gives
1438 train and 359 test images; test images per digit 0..9: 36 36 35 37 36 36 36 36 35 36.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy

from gee_ref.storage.hdf5_image import writing_hdf5

FORMAT = "gee_ref-images-v1"
SPLITS = ("train", "test")

DIGITS_FILE_NAME = "digits-v1.h5"
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_SOURCE = ("UCI ML hand-written digits as shipped by scikit-learn (load_digits); "
                 "8x8 pixels 0..16 scaled to 0..255 (p*255/16 rounded half up); "
                 "stratified split, seed 0, test fraction 0.2 per class")


class DatasetError(ValueError):
    """A dataset file or array that gee_ref cannot use; the message is one line."""


class DatasetInfo(NamedTuple):
    """What a dataset file holds, read without loading the pixels."""
    classes: tuple
    source: str
    shapes: dict  # split name -> images shape (N, H, W, C)


# ---------------------------------------------------------------------------- validation

def validate_split(images, labels, n_classes=None, where="dataset"):
    """Check one split's arrays and return ``(images, labels as int64)``.

    ``where`` names the split in the error message. With ``n_classes`` the labels must lie
    in ``[0, n_classes)``. Raises DatasetError with one line for anything else.
    """
    images = numpy.asarray(images)
    labels = numpy.asarray(labels)
    if images.ndim != 4:
        raise DatasetError(f"{where}: images must be 4-D [N, H, W, C], got shape {images.shape}")
    n, _, _, channels = images.shape
    if channels not in (1, 3):
        hint = " (looks like NCHW; the layout is NHWC)" if images.shape[1] in (1, 3) else ""
        raise DatasetError(f"{where}: images must have 1 or 3 channels in the last axis, "
                           f"got shape {images.shape}{hint}")
    if images.dtype != numpy.uint8:
        if images.dtype.kind in "fc" and numpy.isnan(images).any():
            raise DatasetError(f"{where}: images are {images.dtype} with NaN pixels; "
                               f"expected uint8 pixels 0..255")
        raise DatasetError(f"{where}: images have dtype {images.dtype}; expected uint8 pixels 0..255")
    if n == 0:
        raise DatasetError(f"{where}: the split has no images")
    if labels.ndim != 1 or labels.shape[0] != n:
        raise DatasetError(f"{where}: labels must be 1-D with one entry per image: "
                           f"got shape {labels.shape} for {n} images")
    if labels.dtype.kind not in "iu":
        raise DatasetError(f"{where}: labels have dtype {labels.dtype}; expected integers")
    if n_classes is not None:
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= n_classes:
            raise DatasetError(f"{where}: labels must lie in [0, {n_classes}) for {n_classes} classes; "
                               f"found min {low}, max {high}")
    return images, labels.astype(numpy.int64, copy=False)


def _validate_classes(classes, where):
    """The class names as a tuple of non-empty, distinct strings."""
    if isinstance(classes, (str, bytes)):
        raise DatasetError(f"{where}: classes must be a list of names, not one string")
    names = tuple(classes)
    if not names:
        raise DatasetError(f"{where}: classes is empty")
    if not all(isinstance(c, str) and c for c in names):
        raise DatasetError(f"{where}: every class name must be a non-empty string")
    if len(set(names)) != len(names):
        raise DatasetError(f"{where}: class names repeat")
    return names


# ---------------------------------------------------------------------------- writing

def write_dataset(path, splits, classes, source, compression=None, replace=True, attributes=None,
                  extras=None):
    """Write ``splits = {"train": (images, labels), "test": (images, labels)}`` to ``path``.

    The arrays are validated first (same checks as ``load_dataset``). The file is built in
    memory and its bytes written atomically (``gee_ref.storage.hdf5_image``), so a reader never
    sees half a file and a full disk leaves the previous file intact. ``compression`` is
    passed to h5py (e.g. "gzip"); with ``replace=False`` an existing file is not replaced
    (FileExistsError). ``attributes`` ({name: str or number}) are added to the root
    attributes, ``extras`` ({split: {name: array}}) beside a split's images and labels.
    Returns the path.
    """
    path = Path(path)
    classes = _validate_classes(classes, str(path))
    if set(splits) != set(SPLITS):
        raise DatasetError(f"{path}: splits must be exactly {', '.join(SPLITS)}; got {', '.join(sorted(splits))}")
    checked = {name: validate_split(*splits[name], n_classes=len(classes), where=f"{path} [{name}]")
               for name in SPLITS}
    path.parent.mkdir(parents=True, exist_ok=True)
    with writing_hdf5(path, what="dataset file", replace=replace) as f:
        for key, value in (attributes or {}).items():
            f.attrs[key] = value
        f.attrs["format"] = FORMAT
        f.attrs["classes"] = json.dumps(list(classes))
        f.attrs["source"] = str(source)
        for name, (images, labels) in checked.items():
            group = f.create_group(name)
            group.create_dataset("images", data=images, compression=compression)
            group.create_dataset("labels", data=labels, compression=compression)
            for extra_name, array in (extras or {}).get(name, {}).items():
                group.create_dataset(extra_name, data=array, compression=compression)
    return path


# ---------------------------------------------------------------------------- reading

def _one_line(error):
    """The first line of an exception's text (h5py messages can be long)."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _open(path):
    """Open a file read-only with h5py, with one-line errors for missing or foreign files."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset file not found: {path}")
    if path.is_dir():
        raise DatasetError(f"{path} is a directory, not a dataset file")
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise DatasetError(f"{path} is not a readable HDF5 file, or it is corrupt ({_one_line(error)})") from None


# What h5py raises when a file's internal structure is damaged.
_CORRUPTION = (OSError, RuntimeError, KeyError, ValueError, TypeError)


@contextlib.contextmanager
def _reading(path):
    """An open, format-checked dataset file; h5py errors on damaged files become DatasetError."""
    f = _open(path)
    try:
        with f:
            fmt = f.attrs.get("format")
            if isinstance(fmt, bytes):
                fmt = fmt.decode("utf-8", "replace")
            if fmt != FORMAT:
                found = "no 'format' attribute" if fmt is None else f"format {fmt!r}"
                raise DatasetError(f"{path} is not a gee_ref dataset: {found}, expected {FORMAT!r}")
            yield f
    except DatasetError:
        raise
    except _CORRUPTION as error:
        raise DatasetError(f"{path}: cannot read the file, it may be corrupt ({_one_line(error)})") from None


def _read_classes(f, path):
    """The ``classes`` attribute, stored as JSON text or as an array of strings."""
    raw = f.attrs.get("classes")
    if raw is None:
        raise DatasetError(f"{path}: no 'classes' attribute")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    if isinstance(raw, str):
        try:
            names = json.loads(raw)
        except json.JSONDecodeError:
            raise DatasetError(f"{path}: the 'classes' attribute is not a JSON list") from None
        if not isinstance(names, list):
            raise DatasetError(f"{path}: the 'classes' attribute is not a JSON list")
    else:
        names = [n.decode("utf-8") if isinstance(n, bytes) else n for n in numpy.asarray(raw).ravel().tolist()]
    return _validate_classes(names, f"{path}")


def _group(f, path, split):
    """The split's HDF5 group, holding datasets ``images`` and ``labels``."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    group = f.get(split)
    if group is None or not hasattr(group, "keys"):
        raise DatasetError(f"{path} is not a gee_ref dataset: no {split!r} group")
    for key in ("images", "labels"):
        if key not in group or not hasattr(group[key], "shape"):
            raise DatasetError(f"{path} is not a gee_ref dataset: no {split}/{key} array")
    return group


def load_dataset(path, split):
    """``(images uint8 [N, H, W, C], labels int64 [N], classes tuple)`` of one split.

    Raises DatasetError, one line, for a missing, foreign, corrupt or malformed file.
    """
    with _reading(path) as f:
        classes = _read_classes(f, path)
        group = _group(f, path, split)
        images, labels = group["images"][()], group["labels"][()]
    images, labels = validate_split(images, labels, len(classes), where=f"{path} [{split}]")
    return images, labels, classes


def file_sha256(path) -> str:
    """The SHA-256 of a file's bytes (hex), read in 4 MiB chunks: how results name their data file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dataset_info(path):
    """Classes, source and image shapes of a dataset file, without reading the pixels."""
    with _reading(path) as f:
        classes = _read_classes(f, path)
        source = f.attrs.get("source", "")
        if isinstance(source, bytes):
            source = source.decode("utf-8", "replace")
        shapes = {name: tuple(_group(f, path, name)["images"].shape) for name in SPLITS}
    return DatasetInfo(classes, str(source), shapes)


# ---------------------------------------------------------------------------- splits

def _stratified_split(labels, fraction, seed):
    """Hold out ``fraction`` of every class: returns sorted ``(kept, held)`` indices.

    Each sample gets one uniform key from ``numpy.random.default_rng(seed)`` (drawn for the
    whole array at once); inside each class the samples with the smallest keys are held out.
    Class c of size n_c gives floor(fraction * n_c + 0.5) held-out samples, at most n_c - 1,
    so every class keeps at least one sample.
    """
    labels = numpy.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if not 0.0 < float(fraction) < 1.0:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    keys = numpy.random.default_rng(seed).random(labels.shape[0])
    held = []
    for c in numpy.unique(labels):
        members = numpy.flatnonzero(labels == c)
        count = min(int(numpy.floor(fraction * members.size + 0.5)), members.size - 1)
        held.append(members[numpy.argsort(keys[members], kind="stable")[:count]])
    held = numpy.sort(numpy.concatenate(held)) if held else numpy.zeros(0, dtype=numpy.int64)
    kept = numpy.setdiff1d(numpy.arange(labels.shape[0]), held, assume_unique=True)
    return kept.astype(numpy.int64), held.astype(numpy.int64)


def split_validation(labels, fraction, seed):
    """Deterministic stratified hold-out from the train split: ``(train_idx, val_idx)``.

    Both index arrays are sorted and together cover every sample once. Evolution's
    fitness is measured on ``val_idx``; the test split is never used for it.
    """
    return _stratified_split(labels, fraction, seed)


def load_train_validation(path, fraction, seed):
    """``((train_images, train_labels), (val_images, val_labels), classes)`` from a file's train split."""
    images, labels, classes = load_dataset(path, "train")
    train_idx, val_idx = split_validation(labels, fraction, seed)
    return (images[train_idx], labels[train_idx]), (images[val_idx], labels[val_idx]), classes


# ---------------------------------------------------------------------------- embedded digits

def digits_splits():
    """The embedded default as ``({"train": (x, y), "test": (x, y)}, classes)`` (see module docstring)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the embedded digits dataset needs scikit-learn (pip install scikit-learn)") from None
    bunch = load_digits()
    pixels = numpy.rint(bunch.images).astype(numpy.int64)  # integers 0..16 stored as float
    images = ((pixels * 255 + 8) // 16).astype(numpy.uint8)[..., None]  # round half up
    labels = bunch.target.astype(numpy.int64)
    train_idx, test_idx = _stratified_split(labels, DIGITS_TEST_FRACTION, DIGITS_SPLIT_SEED)
    splits = {"train": (images[train_idx], labels[train_idx]),
              "test": (images[test_idx], labels[test_idx])}
    return splits, tuple(str(d) for d in range(10))


def write_digits(path):
    """Write the embedded digits dataset to ``path``; returns the path."""
    splits, classes = digits_splits()
    return write_dataset(path, splits, classes, DIGITS_SOURCE)


def cache_dir():
    """Where gee_ref keeps generated files: ``$GEE_REF_CACHE``, else ``~/.cache/gee_ref``."""
    configured = os.environ.get("GEE_REF_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "gee_ref"


def default_digits_path():
    """Path of the embedded digits dataset, written to the cache on first use.

    A cached file that is not a valid digits file (say, cut short) is written again.
    """
    path = cache_dir() / DIGITS_FILE_NAME
    if path.exists():
        try:
            if dataset_info(path).source == DIGITS_SOURCE:
                return path
        except DatasetError:
            pass
    return write_digits(path)
