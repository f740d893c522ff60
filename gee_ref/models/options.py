"""Checks of the options a model is built with (sizes, widths): one clear ValueError each."""
from __future__ import annotations

import numbers


def positive_int(value, name: str) -> int:
    """``value`` as an int if it is a positive integer (not a bool), else a ValueError naming ``name``."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def divisible_size(image_size: int, factor: int, arch: str, why: str) -> int:
    """``image_size`` if the network's downsampling by ``factor`` divides it, else a ValueError."""
    if image_size % factor:
        raise ValueError(f"{arch} needs an image_size divisible by {factor} ({why}), got {image_size}")
    return image_size
