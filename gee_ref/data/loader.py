"""Mini-batches for training: shuffling, augmentation and normalisation (DESIGN.md section 7).

A batch is ``(x, y)``: ``x`` float [B, C, H, W] (NCHW) on the device, normalised per channel
as ``x = (u / 255 - mean) / std`` from uint8 pixels ``u``; ``y`` int64 [B]. The repetition
over T time steps (direct encoding, DESIGN.md section 3) is the model's job, not the loader's.

Everything random is a function of ``(seed, epoch)`` only: the shuffle of epoch e uses
``backend.derive_seed(seed, "shuffle", e)`` and its augmentation
``backend.derive_seed(seed, "augment", e)``. A run resumed at epoch e (``set_epoch(e)``)
therefore sees exactly the batches it would have seen.

Augmentation (the usual CIFAR recipe): pad by ``crop_padding`` zero pixels on every side,
take a random H x W crop, and flip it left-right with probability 0.5. It runs on the host
in NumPy, one gather per batch; then the uint8 batch moves to the device and is scaled there.
"""
from __future__ import annotations

import numpy

from gee_ref import backend
from gee_ref.data.datasets import validate_split


def channel_stats(images):
    """Per-channel ``(mean, std)`` of uint8 NHWC images in 0..1 pixel units, float64 [C].

    Exact: it counts how often each of the 256 levels occurs in each channel (``bincount``
    over chunks of pixels), so no float copy of the images is made. ``std`` is the
    population standard deviation.
    """
    images = backend.to_host(images)
    if images.dtype != numpy.uint8 or images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"channel_stats needs non-empty uint8 images [N, H, W, C], "
                         f"got shape {images.shape} dtype {images.dtype}")
    channels = images.shape[3]
    pixels = images.reshape(-1, channels)
    bin_of_channel = 256 * numpy.arange(channels, dtype=numpy.int32)
    counts = numpy.zeros(256 * channels, dtype=numpy.int64)
    chunk = 1 << 20
    for start in range(0, pixels.shape[0], chunk):
        bins = pixels[start:start + chunk].astype(numpy.int32) + bin_of_channel  # channel c -> bins 256c..
        counts += numpy.bincount(bins.ravel(), minlength=256 * channels)
    counts = counts.reshape(channels, 256).astype(numpy.float64)
    levels = numpy.arange(256, dtype=numpy.float64) / 255.0
    total = counts.sum(axis=1)
    mean = counts @ levels / total
    var = (counts * (levels[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
    return mean, numpy.sqrt(var)


def random_crop_flip(images, offsets, flips, padding):
    """Crop-with-zero-padding and horizontal flip of a uint8 NHWC batch, in one gather.

    Sample i is padded by ``padding`` zeros on each side; its crop starts at row
    ``offsets[i, 0]`` and column ``offsets[i, 1]`` of the padded image (0 .. 2*padding;
    ``padding`` is the un-shifted crop), and is mirrored left-right when ``flips[i]``.
    """
    n, height, width, channels = images.shape
    padded = numpy.zeros((n, height + 2 * padding, width + 2 * padding, channels), dtype=images.dtype)
    padded[:, padding:padding + height, padding:padding + width] = images
    rows = offsets[:, 0, None] + numpy.arange(height)                       # [n, H]
    columns = numpy.where(flips[:, None], numpy.arange(width)[::-1], numpy.arange(width))
    columns = offsets[:, 1, None] + columns                                  # [n, W]
    return padded[numpy.arange(n)[:, None, None], rows[:, :, None], columns[:, None, :]]


class Loader:
    """Batches of one split; ``len(loader)`` batches per epoch (see module docstring).

    ``mean`` and ``std`` are per-channel, in 0..1 pixel units; by default they are
    ``channel_stats(images)``. A validation or test loader should be given the training
    loader's ``mean`` and ``std``.
    """

    def __init__(self, images, labels, batch_size, shuffle=True, augment=False, mean=None, std=None,
                 seed=0, device="cpu", dtype=backend.TRAIN_DTYPE, drop_last=False, crop_padding=4):
        images, labels = validate_split(backend.to_host(images), backend.to_host(labels), where="Loader")
        if int(batch_size) != batch_size or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
        if int(crop_padding) != crop_padding or crop_padding < 0:
            raise ValueError(f"crop_padding must be a non-negative integer, got {crop_padding}")
        self.xp = backend.xp_for(device)
        self.images, self.labels = images, labels
        self.batch_size = int(batch_size)
        self.shuffle, self.augment, self.drop_last = bool(shuffle), bool(augment), bool(drop_last)
        self.seed, self.device, self.dtype = seed, device, numpy.dtype(dtype)
        self.crop_padding = int(crop_padding)
        self.epoch = 0
        if mean is None or std is None:
            default_mean, default_std = channel_stats(images)
            mean = default_mean if mean is None else mean
            std = default_std if std is None else std
        channels = images.shape[3]
        self.mean = numpy.asarray(mean, dtype=numpy.float64).reshape(-1)
        self.std = numpy.asarray(std, dtype=numpy.float64).reshape(-1)
        if self.mean.shape != (channels,) or self.std.shape != (channels,):
            raise ValueError(f"mean and std need one value per channel ({channels}), "
                             f"got {self.mean.shape[0]} and {self.std.shape[0]}")
        if not (numpy.all(numpy.isfinite(self.mean)) and numpy.all(self.std > 0) and numpy.all(numpy.isfinite(self.std))):
            raise ValueError(f"mean must be finite and std finite and positive, got mean {self.mean}, std {self.std}")
        # x = u * scale - shift  equals  (u / 255 - mean) / std
        self._scale = backend.to_device((1.0 / (255.0 * self.std)).astype(self.dtype), device)
        self._shift = backend.to_device((self.mean / self.std).astype(self.dtype), device)

    def __len__(self):
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch):
        """Choose the epoch whose shuffle and augmentation the next iteration replays."""
        if int(epoch) != epoch or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch}")
        self.epoch = int(epoch)

    def order(self, epoch):
        """Sample indices in the order epoch ``epoch`` visits them."""
        n = self.images.shape[0]
        if not self.shuffle:
            return numpy.arange(n)
        return backend.rng(backend.derive_seed(self.seed, "shuffle", epoch)).permutation(n)

    def augmentation(self, epoch):
        """``(offsets int [N, 2], flips bool [N])`` for the N positions of epoch ``epoch``."""
        n = self.images.shape[0]
        generator = backend.rng(backend.derive_seed(self.seed, "augment", epoch))
        offsets = generator.integers(0, 2 * self.crop_padding + 1, size=(n, 2))
        flips = generator.random(n) < 0.5
        return offsets, flips

    def batches(self, epoch):
        """Yield the batches of epoch ``epoch`` (iterating the loader uses ``self.epoch``)."""
        order = self.order(epoch)
        if self.augment:
            offsets, flips = self.augmentation(epoch)
        for b in range(len(self)):
            positions = slice(b * self.batch_size, (b + 1) * self.batch_size)
            chosen = order[positions]
            pixels = self.images[chosen]
            if self.augment:
                pixels = random_crop_flip(pixels, offsets[positions], flips[positions], self.crop_padding)
            yield self._normalise(pixels), backend.to_device(self.labels[chosen], self.device)

    def __iter__(self):
        return self.batches(self.epoch)

    def _normalise(self, pixels):
        """uint8 NHWC on the host -> normalised float NCHW on the device."""
        x = backend.to_device(pixels, self.device).astype(self.dtype)
        x = x * self._scale - self._shift
        return self.xp.ascontiguousarray(x.transpose(0, 3, 1, 2))
