"""A small spiking conv net for the 8x8 grey-scale UCI digits (scikit-learn's load_digits).

    conv3x3 1 -> 32 - BN - LIF                      8x8
    conv3x3 32 -> 64 stride 2 - BN - LIF            4x4
    flatten 1024 - FC 1024 -> 128 - BN - LIF - FC 128 -> classes

Sized (reconstruction, not from the paper) to train in seconds on two CPU cores while
leaving the genetic form (default g = 32, every layer genetic) enough capacity for >= 97%
test accuracy; the BN after the hidden FC keeps its neurons firing from the start (without
it the FC's input rates of a few percent leave its membranes below threshold at init), and
makes a bias in that FC redundant (BN subtracts it again), so it has none.
Dense: 151,530 parameters for 10 classes (BN included); genetic, g = 32: 55,338.

The layout takes any image side and channel count (the FC's input is 64 (H/2)^2): on 32x32
colour images (``in_channels=3, image_size=32``) the FC sees 16,384 inputs, 2,118,186 dense
parameters against 547,434 genetic at g = 32. An earlier session trained it so on CIFAR-10
(JPEG re-encoding, full split): 64.2% test accuracy after 8 epochs at T = 2, g = 32, batch 32
(22 minutes on one CPU core; issue 16).
"""
from __future__ import annotations

from gee_ref.nn import LIF, BatchNorm, Flatten, Sequential, SpikingNetwork


class DigitsNet(SpikingNetwork):
    def __init__(self, factory, num_classes, in_channels, image_size, time_steps, channels=(32, 64),
                 hidden=128, config=None):
        super().__init__(factory.gene_bank)
        dtype = factory.dtype
        c1, c2 = channels
        self.stem = Sequential(factory.conv("stem", in_channels, c1, 3, padding=1), BatchNorm(c1, dtype=dtype))
        size = (int(image_size) + 2 - 3) // 2 + 1
        if size < 1:
            raise ValueError(f"digits: image_size must be positive, got {image_size}")
        self.body = Sequential(
            LIF(),
            factory.conv("conv", c1, c2, 3, stride=2, padding=1), BatchNorm(c2, dtype=dtype), LIF(),
            Flatten(),
            factory.linear("hidden_fc", c2 * size * size, hidden, bias=False), BatchNorm(hidden, dtype=dtype), LIF(),
            factory.linear("classifier", hidden, num_classes))
        self._finish(time_steps, "digits", config or {})


def digits(factory, num_classes, in_channels, image_size, time_steps, channels=(32, 64), hidden=128, **config):
    return DigitsNet(factory, num_classes, in_channels, image_size, time_steps, channels=tuple(channels),
                     hidden=int(hidden), config={"channels": tuple(channels), "hidden": int(hidden), **config})
