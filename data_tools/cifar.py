"""CIFAR-10 / CIFAR-100 "python version" tarball -> gee_ref HDF5 (DESIGN.md section 7).

    python -m data_tools.cifar cifar-10-python.tar.gz cifar10.h5
    python -m data_tools.cifar cifar-100-python.tar.gz cifar100.h5 [--labels coarse]

The tarballs (Krizhevsky 2009) hold Python 2 pickles. CIFAR-10: ``data_batch_1`` ..
``data_batch_5``, ``test_batch`` and ``batches.meta`` (``label_names``). CIFAR-100: ``train``,
``test`` and ``meta`` (``fine_label_names``, ``coarse_label_names``; the batches carry
``fine_labels`` and ``coarse_labels``). Each batch is a dict whose ``data`` is a uint8
[N, 3072] array, one row per image: 1024 red, then 1024 green, then 1024 blue values, each
a 32 x 32 image in row-major order.

A pickle can run any code while it loads, so these are read with ``RestrictedUnpickler``:
it resolves only the globals a numpy array needs (``_reconstruct``, ``ndarray``, ``dtype``;
``_frombuffer`` at protocol 5) and, for files re-pickled by Python 3 at protocols 0-2,
``_codecs.encode`` and ``bytes`` replaced by functions that accept only a latin1 string
and no arguments (Python 3 writes a bytes object as ``_codecs.encode(text, 'latin1')``,
an empty one as ``bytes()``). Everything else is refused before anything is called.
"""
from __future__ import annotations

import io
import os
import pickle

import numpy

from data_tools import ConversionError, one_line, summary
from data_tools.archive import tar_members
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.data.datasets import write_dataset
from gee_ref.storage.output_check import check_output

CIFAR10_MEMBERS = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR100_MEMBERS = ("train", "test", "meta")
IMAGE_SIDE = 32


def _latin1_bytes(text, encoding):
    """``_codecs.encode`` as Python 3 pickles bytes at protocols 0-2: only ``(str, 'latin1')``."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"refused _codecs.encode with {type(text).__name__} and {encoding!r} "
                                     f"(only the latin1 text of a bytes object is allowed)")
    return text.encode("latin-1")


def _empty_bytes(*arguments):
    """``bytes()``, as Python 3 pickles an empty bytes object at protocols 0-2; nothing else."""
    if arguments:
        raise pickle.UnpicklingError("refused bytes(...) with arguments (only the empty bytes() is allowed)")
    return b""


def _array_from_buffer(buffer, dtype, shape, order):
    """numpy's ``_frombuffer`` (protocol 5): an array of a plain, object-free dtype over ``buffer``."""
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, numpy.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError(f"refused _frombuffer with {type(buffer).__name__} and dtype {dtype!r}")
    return numpy.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


def _array_globals():
    """The only globals a CIFAR pickle may name: numpy's array reconstruction, and how
    Python 3 pickles bytes at protocols 0-2 (a faithful re-pickling of the real files)."""
    try:
        from numpy._core.multiarray import _reconstruct   # numpy >= 2
    except ImportError:
        from numpy.core.multiarray import _reconstruct    # numpy 1.x
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,  # name in files pickled by numpy 1.x
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,  # name in files pickled by numpy 2.x
        ("numpy", "ndarray"): numpy.ndarray,
        ("numpy", "dtype"): numpy.dtype,
        ("numpy.core.numeric", "_frombuffer"): _array_from_buffer,   # protocol 5, numpy 1.x
        ("numpy._core.numeric", "_frombuffer"): _array_from_buffer,  # protocol 5, numpy 2.x
        ("_codecs", "encode"): _latin1_bytes,
        ("__builtin__", "bytes"): _empty_bytes,
        ("builtins", "bytes"): _empty_bytes,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global except numpy's array reconstruction and the
    checked stand-ins above for how Python 3 pickles bytes."""

    allowed = _array_globals()

    def find_class(self, module, name):
        found = self.allowed.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refused to unpickle global {module}.{name} (CIFAR pickles hold only numpy arrays, "
                f"lists, numbers and strings)")
        return found


def restricted_loads(data, member):
    """Unpickle one CIFAR member (Python 2 pickle, strings as bytes) with RestrictedUnpickler."""
    try:
        return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as error:  # anything failing inside a foreign pickle is bad input
        raise ConversionError(f"member {member}: {one_line(error)}") from None


def _read_members(src):
    """``{basename: bytes}`` of the CIFAR members found in the tarball (read in one pass)."""
    if not os.path.exists(src):
        raise ConversionError(f"file not found: {src}")
    wanted = set(CIFAR10_MEMBERS) | set(CIFAR100_MEMBERS)
    return {os.path.basename(name): data
            for name, data in tar_members(src, lambda name: os.path.basename(name) in wanted)}


def _text_keys(record, member):
    """A pickled dict with its bytes keys decoded (the files were pickled by Python 2)."""
    if not isinstance(record, dict):
        raise ConversionError(f"member {member}: expected a dict, found {type(record).__name__}")
    return {k.decode("latin-1") if isinstance(k, bytes) else k: v for k, v in record.items()}


def batch_arrays(record, label_key, member):
    """Images uint8 [N, 32, 32, 3] and labels int64 [N] of one unpickled batch."""
    record = _text_keys(record, member)
    if "data" not in record or label_key not in record:
        raise ConversionError(f"member {member}: needs keys 'data' and '{label_key}', has {sorted(record)}")
    data = record["data"]
    row = 3 * IMAGE_SIDE * IMAGE_SIDE
    if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 or data.shape[1] != row:
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise ConversionError(f"member {member}: 'data' must be a uint8 [N, {row}] array, "
                              f"got shape {shape} dtype {dtype}")
    labels = record[label_key]
    if not isinstance(labels, (list, numpy.ndarray)) or not all(
            isinstance(v, (int, numpy.integer)) and not isinstance(v, bool) for v in labels):
        raise ConversionError(f"member {member}: '{label_key}' must be a list of integers")
    labels = numpy.asarray(labels, dtype=numpy.int64).reshape(-1)
    if labels.shape[0] != data.shape[0]:
        raise ConversionError(f"member {member}: {data.shape[0]} images but {labels.shape[0]} labels")
    # row = [R plane | G plane | B plane], each plane 32 x 32 row-major -> NHWC
    images = data.reshape(-1, 3, IMAGE_SIDE, IMAGE_SIDE).transpose(0, 2, 3, 1)
    return numpy.ascontiguousarray(images), labels


def class_names(record, key, member):
    """The list of class names stored under ``key`` in a meta pickle."""
    record = _text_keys(record, member)
    names = record.get(key)
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise ConversionError(f"member {member}: needs '{key}', a list of names")
    return [n.decode("utf-8") if isinstance(n, bytes) else n for n in names]


def read_cifar(src, labels="fine"):
    """``(splits, classes, variant)`` from a CIFAR-10 or CIFAR-100 python tarball.

    ``labels`` ("fine" or "coarse") picks CIFAR-100's label set; CIFAR-10 ignores it.
    """
    if labels not in ("fine", "coarse"):
        raise ConversionError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    members = _read_members(src)
    if "data_batch_1" in members or "batches.meta" in members:
        variant, needed = "CIFAR-10", CIFAR10_MEMBERS
        train_members, test_member, meta_member = CIFAR10_MEMBERS[:5], "test_batch", "batches.meta"
        label_key, names_key = "labels", "label_names"
    elif "meta" in members or "train" in members:
        variant, needed = "CIFAR-100", CIFAR100_MEMBERS
        train_members, test_member, meta_member = ("train",), "test", "meta"
        label_key, names_key = f"{labels}_labels", f"{labels}_label_names"
    else:
        raise ConversionError(f"{src} is neither a CIFAR-10 nor a CIFAR-100 python tarball "
                              f"(no data_batch_1..5/test_batch/batches.meta nor train/test/meta members)")
    missing = [m for m in needed if m not in members]
    if missing:
        raise ConversionError(f"{src}: {variant} tarball lacks member(s) {', '.join(missing)}")
    parts = [batch_arrays(restricted_loads(members[m], m), label_key, m) for m in train_members]
    train = (numpy.concatenate([p[0] for p in parts]), numpy.concatenate([p[1] for p in parts]))
    test = batch_arrays(restricted_loads(members[test_member], test_member), label_key, test_member)
    classes = class_names(restricted_loads(members[meta_member], meta_member), names_key, meta_member)
    if variant == "CIFAR-100":
        variant = f"CIFAR-100, {labels} labels"
    return {"train": train, "test": test}, classes, variant


def convert(src, out, source=None, labels="fine", force=False):
    """Convert the tarball ``src`` to the dataset file ``out``; returns ``(splits, classes)``.
    ``out`` may not be ``src``, nor an existing file unless ``force``."""
    check_output(out, [src], force)
    splits, classes, variant = read_cifar(src, labels)
    if source is None:
        source = f"{variant} (python tarball {os.path.basename(src)})"
    write_dataset(out, splits, classes, source, replace=force)
    return splits, classes


def main(argv=None):
    parser = ArgumentParser(prog="python -m data_tools.cifar",
                           description="Convert a CIFAR-10/100 python tarball to gee_ref's HDF5 layout.")
    parser.add_argument("src", help="cifar-10-python.tar.gz or cifar-100-python.tar.gz")
    parser.add_argument("out", help="the .h5 file to write")
    parser.add_argument("--labels", choices=("fine", "coarse"), default="fine",
                        help="CIFAR-100 label set (default fine)")
    parser.add_argument("--source", default=None, help="text for the file's 'source' attribute")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (never when OUT is SRC)")
    args = parser.parse_args(argv)

    splits, classes = convert(args.src, args.out, args.source, args.labels, args.force)
    print(summary(args.out, splits, classes))


if __name__ == "__main__":
    run_main(main)
