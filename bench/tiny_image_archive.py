"""A CIFAR-10-shaped image archive in miniature, for ``bench/gpu_first.sh --dry-run``.

    python -m bench.tiny_image_archive OUT.tar.gz [--train N] [--test N]

The layout of ``data/cifar10-jpeg.tar.gz`` (``train/<class>/NNNN.jpg``, ``test/<class>/NNNN.jpg``,
ten classes, 32x32 RGB JPEGs), with N random images per class and split: the same path through
``data_tools.folder_tree`` and ``gee_ref.train`` in seconds, without the real archive.
"""
from __future__ import annotations

import io
import tarfile

import numpy

from gee_ref.cli.errors import ArgumentParser, run_main

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def jpeg_bytes(pixels) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=75)
    return buffer.getvalue()


def write_archive(path, per_class_train=4, per_class_test=2, seed=0) -> None:
    rng = numpy.random.default_rng(seed)
    with tarfile.open(path, "w:gz") as archive:
        for split, count in (("train", per_class_train), ("test", per_class_test)):
            for label, name in enumerate(CLASSES):
                for k in range(count):
                    base = rng.integers(0, 256, 3) * (label + 1) % 256  # a colour per class, and noise
                    pixels = numpy.clip(base + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(numpy.uint8)
                    data = jpeg_bytes(pixels)
                    member = tarfile.TarInfo(f"{split}/{name}/{k:04d}.jpg")
                    member.size = len(data)
                    archive.addfile(member, io.BytesIO(data))


def main(argv=None) -> int:
    parser = ArgumentParser(prog="python -m bench.tiny_image_archive", description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the .tar.gz to write")
    parser.add_argument("--train", type=int, default=4, help="training images per class")
    parser.add_argument("--test", type=int, default=2, help="test images per class")
    args = parser.parse_args(argv)
    if args.train < 1 or args.test < 1:
        raise ValueError("--train and --test must be at least 1")
    write_archive(args.out, args.train, args.test)
    print(f"wrote {args.out}: {args.train} training and {args.test} test images per class, {len(CLASSES)} classes")
    return 0


if __name__ == "__main__":
    run_main(main)
