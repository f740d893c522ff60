"""A stratified subset of a gee_ref dataset file, optionally resized (no equation of the paper).

    python -m data_tools.subset SRC.h5 OUT.h5 --train-per-class N --test-per-class M --seed S [--size 16]

- Selection: N images of every class from SRC's train split and M from its test split,
  drawn by seed, never the first N (the converted CIFAR-10 is sorted by class). Split k
  (train 0, test 1) gives every image one key from ``numpy.random.default_rng([S, k]).random``;
  inside each class the images with the smallest keys are kept. The kept images stay in
  SRC's order (the training loader shuffles). Without ``--train-per-class`` (or
  ``--test-per-class``) the whole split is kept.
- Resize (``--size S``, square images only, never enlarging): area averaging to S x S.
  When the side is a multiple of S, each output pixel is the exact mean of its f x f
  block (f = side / S), rounded half up, computed in integers with NumPy. Otherwise
  Pillow's BOX filter (area averaging), which resamples in two passes with 8-bit
  rounding in between, so its pixels can differ from the exact block mean by 1.
- Provenance: the ``source`` attribute says what was done; the attribute ``subset``
  (JSON) records the source file's name, SHA-256 and attributes, the seed, the per-class
  counts asked for and written, the size and the resize method; ``train/source_index``
  and ``test/source_index`` hold the chosen images' positions in SRC's splits.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy

from data_tools import ConversionError, summary
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.data.datasets import SPLITS, dataset_info, file_sha256, load_dataset, write_dataset
from gee_ref.storage.output_check import check_output

SELECTION = ("per split k (train 0, test 1), keys numpy.random.default_rng([seed, k]).random(n); "
             "in each class the images with the smallest keys; kept in source order")


def stratified_indices(labels, per_class, n_classes, seed, split_index, where):
    """Sorted indices of ``per_class`` images of every class (all of them if None)."""
    if per_class is None:
        return numpy.arange(labels.shape[0], dtype=numpy.int64)
    keys = numpy.random.default_rng([seed, split_index]).random(labels.shape[0])
    chosen = []
    for label in range(n_classes):
        members = numpy.flatnonzero(labels == label)
        if members.size < per_class:
            raise ConversionError(f"{where}: class {label} has {members.size} images, fewer than the "
                                  f"{per_class} per class asked for")
        chosen.append(members[numpy.argsort(keys[members], kind="stable")[:per_class]])
    return numpy.sort(numpy.concatenate(chosen)).astype(numpy.int64)


def block_average(images, size, batch=4096):
    """uint8 [N, H, W, C] -> [N, size, size, C]: the exact mean of each f x f block
    (f = H / size, an integer), rounded half up, in integer arithmetic; ``batch`` images
    at a time, to bound the memory of the sums."""
    n, height, width, channels = images.shape
    factor = height // size
    count = factor * factor
    out = numpy.empty((n, size, size, channels), dtype=numpy.uint8)
    for start in range(0, n, batch):
        part = images[start:start + batch]
        sums = part.reshape(-1, size, factor, size, factor, channels).sum(axis=(2, 4), dtype=numpy.int64)
        out[start:start + batch] = (2 * sums + count) // (2 * count)  # floor(mean + 1/2)
    return out


def pillow_box(images, size):
    """uint8 [N, H, W, C] -> [N, size, size, C] with Pillow's BOX filter (area averaging)."""
    try:
        from PIL import Image
    except ImportError:
        raise ConversionError(f"resizing to {size}x{size} by a factor that is not an integer needs Pillow: "
                              f"pip install pillow") from None
    squeeze = images.shape[3] == 1
    resized = [numpy.asarray(Image.fromarray(image[..., 0] if squeeze else image).resize(
        (size, size), Image.Resampling.BOX)) for image in images]
    out = numpy.stack(resized)
    return out[..., None] if squeeze else out


def resize(images, size, where):
    """``(images resized to size x size, method text)``; ``size`` None keeps them."""
    side = images.shape[1]
    if size is None or (size == side and images.shape[2] == side):
        return images, "none"
    if images.shape[1] != images.shape[2]:
        raise ConversionError(f"{where}: images are {images.shape[1]}x{images.shape[2]}; --size needs square images")
    if size > side:
        raise ConversionError(f"{where}: --size {size} is larger than the images ({side}x{side}); it only shrinks")
    if side % size == 0:
        factor = side // size
        return block_average(images, size), f"exact mean of each {factor}x{factor} block, rounded half up"
    return pillow_box(images, size), "Pillow's BOX filter (area average; two passes with 8-bit rounding)"


def file_attributes(path):
    """The root attributes of an HDF5 file as JSON-ready values."""
    with h5py.File(path, "r") as f:
        return {key: _json_value(value) for key, value in f.attrs.items()}


def _json_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, numpy.ndarray):
        return [_json_value(v) for v in value.tolist()]
    if isinstance(value, numpy.generic):
        return value.item()
    return value


def _positive(value, name):
    if value is not None and value < 1:
        raise ConversionError(f"{name} must be a positive integer, got {value}")


def make_subset(src, out, train_per_class=None, test_per_class=None, seed=0, size=None, force=False):
    """Write the subset of ``src`` described in the module docstring to ``out``;
    returns ``(splits, classes)``."""
    _positive(train_per_class, "--train-per-class")
    _positive(test_per_class, "--test-per-class")
    _positive(size, "--size")
    if seed < 0:
        raise ConversionError(f"--seed must be a non-negative integer, got {seed}")
    check_output(out, [src], force)
    info = dataset_info(src)  # a readable gee_ref dataset, or a one-line DatasetError
    per_class = {"train": train_per_class, "test": test_per_class}
    splits, chosen, methods = {}, {}, set()
    for split_index, split in enumerate(SPLITS):
        images, labels, classes = load_dataset(src, split)
        where = f"{src} [{split}]"
        indices = stratified_indices(labels, per_class[split], len(classes), seed, split_index, where)
        resized, method = resize(images[indices], size, where)
        splits[split], chosen[split] = (resized, labels[indices]), indices
        methods.add(method)
    counts = {split: numpy.bincount(splits[split][1], minlength=len(classes)).tolist() for split in SPLITS}
    side = splits["train"][0].shape[1]
    method = methods.pop() if len(methods) == 1 else "; ".join(sorted(methods))
    record = {"tool": "python -m data_tools.subset", "source_file": os.path.basename(os.fspath(src)),
              "source_sha256": file_sha256(src), "source_attributes": file_attributes(src), "seed": seed,
              "train_per_class": train_per_class, "test_per_class": test_per_class, "counts": counts,
              "size": size, "resize": method, "selection": SELECTION}
    asked = ", ".join(f"{per_class[s] if per_class[s] is not None else 'all'} {s}" for s in SPLITS)
    resized_text = f"resized to {side}x{side}: {method}" if method != "none" else "not resized"
    source = (f"{info.source}; stratified subset of {record['source_file']}: {asked} images per class, "
              f"seed {seed}; {resized_text}")
    write_dataset(out, splits, classes, source, replace=force, attributes={"subset": json.dumps(record)},
                  extras={split: {"source_index": chosen[split]} for split in SPLITS})
    return splits, classes


def main(argv=None):
    parser = ArgumentParser(prog="python -m data_tools.subset",
                           description="Write a stratified subset of a gee_ref dataset file, optionally "
                                       "resized, recording its provenance in the file's attributes.")
    parser.add_argument("src", help="a gee_ref dataset file (.h5)")
    parser.add_argument("out", help="the .h5 file to write")
    parser.add_argument("--train-per-class", type=int, default=None,
                        help="train images per class (default: all)")
    parser.add_argument("--test-per-class", type=int, default=None, help="test images per class (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the draw (default 0)")
    parser.add_argument("--size", type=int, default=None,
                        help="resize to SIZE x SIZE by area averaging (default: keep)")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (never when OUT is SRC)")
    args = parser.parse_args(argv)

    splits, classes = make_subset(args.src, args.out, args.train_per_class, args.test_per_class, args.seed,
                                  args.size, args.force)
    print(summary(args.out, splits, classes))


if __name__ == "__main__":
    run_main(main)
