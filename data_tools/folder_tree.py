"""A folder tree of images -> gee_ref HDF5 (DESIGN.md section 7).

    python -m data_tools.folder_tree SRC OUT.h5 [--size 32] [--test-split test] [--source TEXT] [--force]

SRC is a directory or a tar archive (.tar.gz, .tar, ...; its members are read in one pass,
nothing is extracted to disk, and an archive cut short is refused: ``data_tools.archive``) laid out as ``<split>/<class>/<image>``, the layout of an
ImageNet folder and of ``data/cifar10-jpeg.tar.gz``. One wrapping folder above the splits is
allowed. Images are .jpg, .jpeg or .png files; other files are ignored.

- The splits read are ``train`` and the one named by ``--test-split`` (default ``test``;
  ``val`` for an ImageNet folder), written as the groups ``train`` and ``test``.
- Classes are the class folder names sorted by name (label = position); both splits must
  have the same classes. Inside a class, images are ordered by file name.
- Pixels are decoded with Pillow (an optional dependency). Grayscale images stay 1-channel
  when every image is grayscale; otherwise everything is RGB (alpha is dropped).
- Without ``--size`` every image must already have the same size. With ``--size S`` each
  image's shorter side is resized to S (bilinear) and the centre S x S is kept; JPEGs are
  decoded at a reduced scale first when they are at least twice that large (Pillow's draft).
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy

from data_tools import ConversionError, one_line, summary
from data_tools.archive import tar_members
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.data.datasets import write_dataset
from gee_ref.storage.output_check import check_output

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
GRAY_MODES = ("1", "L", "LA", "La")
COLOUR_MODES = ("RGB", "RGBA", "RGBa", "RGBX", "P", "PA", "CMYK", "YCbCr", "LAB", "HSV")


def _pillow():
    """The PIL.Image module, or a clear error when Pillow is not installed."""
    try:
        from PIL import Image
    except ImportError:
        raise ConversionError("decoding images needs Pillow: pip install pillow") from None
    return Image


def _files_in_directory(root):
    """Yield ``(relative path parts, bytes)`` of every image file under a directory."""
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.lower().endswith(IMAGE_SUFFIXES):
                path = Path(folder, name)
                yield path.relative_to(root).parts, path.read_bytes()


def _files_in_tar(path):
    """Yield ``(member path parts, bytes)`` of every image member of a tar archive, in one
    pass; a truncated or corrupt archive is refused (``data_tools.archive``)."""
    for name, data in tar_members(path, lambda name: name.lower().endswith(IMAGE_SUFFIXES)):
        yield tuple(p for p in name.split("/") if p not in ("", ".")), data


def decode(data, name, size=None):
    """One image file's bytes -> uint8 [H, W, 1] (grayscale) or [H, W, 3], resized if ``size``."""
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            if size is not None:
                image.draft(None, (size, size))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale if still >= size
            if image.mode in GRAY_MODES:
                image = image.convert("L")
            elif image.mode in COLOUR_MODES:
                image = image.convert("RGB")
            else:
                raise ConversionError(f"{name}: unsupported image mode {image.mode} "
                                      f"(8-bit grayscale, palette or colour images only)")
            if size is not None:
                image = _resize_centre_crop(image, size)
            pixels = numpy.asarray(image, dtype=numpy.uint8)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        if isinstance(error, ConversionError):
            raise
        raise ConversionError(f"{name}: cannot decode image ({one_line(error)})") from None
    return pixels[..., None] if pixels.ndim == 2 else pixels


def _resize_centre_crop(image, size):
    """Resize the shorter side to ``size`` (bilinear), then keep the centre size x size square."""
    width, height = image.size
    if (width, height) == (size, size):
        return image
    scale = size / min(width, height)
    new_width, new_height = max(size, round(width * scale)), max(size, round(height * scale))
    image = image.resize((new_width, new_height), _pillow().Resampling.BILINEAR)
    left, top = (new_width - size) // 2, (new_height - size) // 2
    return image.crop((left, top, left + size, top + size))


def _strip_wrapper(entries):
    """Drop one folder that wraps the whole tree (e.g. ``cifar10/train/cat/1.jpg``)."""
    if entries and all(len(parts) == 4 for parts, _ in entries) and len({p[0] for p, _ in entries}) == 1:
        return [(parts[1:], pixels) for parts, pixels in entries]
    return entries


def _stack(entries, splits_wanted, src, size):
    """Group decoded images by split and class; returns ``(splits, classes)``."""
    by_split = {name: {} for name in splits_wanted}
    for parts, pixels in entries:
        if len(parts) != 3:
            raise ConversionError(f"{src}: {'/'.join(parts)} is not laid out as <split>/<class>/<image>")
        split, label, name = parts
        if split in by_split:
            by_split[split].setdefault(label, []).append((name, pixels))
    for split in splits_wanted:
        if not by_split[split]:
            raise ConversionError(f"{src}: no images under {split}/")
    classes = sorted(by_split[splits_wanted[0]])
    other = sorted(by_split[splits_wanted[1]])
    if classes != other:
        only_train = sorted(set(classes) - set(other))[:5]
        only_test = sorted(set(other) - set(classes))[:5]
        raise ConversionError(f"{src}: the splits have different classes "
                              f"(only in {splits_wanted[0]}: {', '.join(only_train) or '-'}; "
                              f"only in {splits_wanted[1]}: {', '.join(only_test) or '-'})")
    all_pixels = [p for _, p in entries]
    if size is None:
        shapes = {p.shape[:2] for p in all_pixels}
        if len(shapes) > 1:
            examples = ", ".join(f"{h}x{w}" for h, w in sorted(shapes)[:3])
            raise ConversionError(f"{src}: images have different sizes ({examples}, ...); pass --size")
    channels = max(p.shape[2] for p in all_pixels)
    splits = {}
    for split, folder in zip(("train", "test"), splits_wanted):
        ordered = [(index, pixels) for index, label in enumerate(classes)
                   for _, pixels in sorted(by_split[folder][label], key=lambda e: e[0])]
        images = numpy.empty((len(ordered),) + ordered[0][1].shape[:2] + (channels,), dtype=numpy.uint8)
        for i, (_, pixels) in enumerate(ordered):
            images[i] = pixels  # a 1-channel image broadcasts to 3 equal channels when others are colour
        labels = numpy.array([label for label, _ in ordered], dtype=numpy.int64)
        splits[split] = (images, labels)
    return splits, classes


def read_folder_tree(src, size=None, test_split="test"):
    """``(splits, classes)`` from a directory or tar archive laid out as <split>/<class>/<image>."""
    if size is not None and (int(size) != size or size < 1):
        raise ConversionError(f"size must be a positive integer, got {size}")
    if test_split == "train":
        raise ConversionError("the test split cannot be the train folder")
    _pillow()
    if not os.path.exists(src):
        raise ConversionError(f"not found: {src}")
    files = _files_in_directory(src) if os.path.isdir(src) else _files_in_tar(src)
    entries = [(parts, decode(data, "/".join(parts), size)) for parts, data in files]
    if not entries:
        raise ConversionError(f"{src}: no .jpg, .jpeg or .png images found")
    return _stack(_strip_wrapper(entries), ("train", test_split), src, size)


def convert(src, out, size=None, source=None, test_split="test", force=False):
    """Convert the folder tree ``src`` to the dataset file ``out``; returns ``(splits, classes)``.
    ``out`` may not be ``src``, nor an existing file unless ``force``."""
    check_output(out, [src], force)
    splits, classes = read_folder_tree(src, size, test_split)
    if source is None:
        source = f"folder tree {os.path.basename(os.path.normpath(src))}"
    write_dataset(out, splits, classes, source, replace=force)
    return splits, classes


def main(argv=None):
    parser = ArgumentParser(prog="python -m data_tools.folder_tree",
                           description="Convert a <split>/<class>/<image> folder tree (directory or "
                                       "tar archive) to gee_ref's HDF5 layout.")
    parser.add_argument("src", help="a directory or a .tar.gz holding train/<class>/* and test/<class>/*")
    parser.add_argument("out", help="the .h5 file to write")
    parser.add_argument("--size", type=int, default=None,
                        help="resize the shorter side to SIZE and centre-crop SIZE x SIZE "
                             "(default: keep, all images must have the same size)")
    parser.add_argument("--test-split", default="test",
                        help="folder to write as the test split (default test; val for ImageNet)")
    parser.add_argument("--source", default=None,
                        help="text for the file's 'source' attribute, e.g. 'CIFAR-10 (JPEG re-encoding)'")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists (never when OUT is SRC)")
    args = parser.parse_args(argv)

    splits, classes = convert(args.src, args.out, args.size, args.source, args.test_split, args.force)
    print(summary(args.out, splits, classes))


if __name__ == "__main__":
    run_main(main)
