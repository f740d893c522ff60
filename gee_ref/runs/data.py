"""The dataset of a run, read and checked once, the same way for ``train`` and ``evolve``.

Both commands read the whole file (train and test splits, ``gee_ref.data.datasets`` checks
shapes, dtypes, label ranges and NaN pixels) before they create their output folder, so a
file they cannot use leaves nothing behind. On top of the file's own validity, a run needs:

* square images (every model's input is image_size x image_size);
* train and test images of one shape;
* no constant channel in the training images (per-channel normalisation divides by its std).

The defaults that depend on the data go by the image side (``dataset_kind``).
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy

from gee_ref.data.datasets import DatasetError, dataset_info, default_digits_path, load_dataset
from gee_ref.data.loader import channel_stats

EMBEDDED_DIGITS = "embedded digits"


class RunData(NamedTuple):
    train_images: numpy.ndarray
    train_labels: numpy.ndarray
    test_images: numpy.ndarray
    test_labels: numpy.ndarray
    classes: tuple
    path: Path
    source: str  # the file's own account of its images (a subset or a resize says so)
    mean: numpy.ndarray  # per-channel statistics of the training images, 0..1 pixel units
    std: numpy.ndarray

    @property
    def image_shape(self) -> list:
        """[H, W, C]."""
        return list(self.train_images.shape[1:])


def dataset_kind(image_side: int) -> str:
    """"digits" (<= 16 px), "cifar" (<= 64 px) or "large": the key of the data-dependent defaults."""
    return "digits" if image_side <= 16 else "cifar" if image_side <= 64 else "large"


def data_path(data) -> Path:
    """The file a run reads: ``data`` (a path), or the embedded digits for None."""
    return Path(data) if data else default_digits_path()


def read_run_data(data) -> RunData:
    """Both splits of the dataset file ``data`` (None: the embedded digits), checked for a run."""
    path = data_path(data)
    train_images, train_labels, classes = load_dataset(path, "train")
    test_images, test_labels, _ = load_dataset(path, "test")
    height, width = train_images.shape[1:3]
    if height != width:
        raise DatasetError(f"{path}: the models take square images, these are {height}x{width}")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise DatasetError(f"{path}: train images are {train_images.shape[1:]}, test images {test_images.shape[1:]}")
    low, high = train_images.min(axis=(0, 1, 2)), train_images.max(axis=(0, 1, 2))
    constant = numpy.flatnonzero(low == high)
    if constant.size:
        c = int(constant[0])
        raise DatasetError(f"{path}: channel {c} of the training images is constant (every pixel {int(low[c])}), "
                           f"so it cannot be normalised by its standard deviation")
    mean, std = channel_stats(train_images)
    return RunData(train_images, train_labels, test_images, test_labels, classes, path, dataset_info(path).source,
                   mean, std)


def describe(data) -> str:
    """How a run's settings name its data: the resolved path, or "embedded digits"."""
    return str(Path(data).resolve()) if data else EMBEDDED_DIGITS
