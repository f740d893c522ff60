"""CIFARNet (Wu et al. 2019, paper refs [6] and [38]), spiking, for 32x32 images.

Layout as published: 128C3-256C3-AP2-512C3-AP2-1024C3-512C3-FC1024-FC512-FC(classes).
Here every 3x3 convolution is followed by BN and LIF, each hidden FC by LIF; the AP2
pools average spikes; the published "voting" output layer is replaced by a plain FC to the
classes (reconstruction). ``conv_padding`` (default 1, "same" convolutions) is an option:

    padding 1: 32-32-16-16-8-8-8,  FC1024 sees 512*8*8 = 32768 inputs;
               dense 45,005,450 parameters (10 classes, BN included)
    padding 0: 32-30-28-14-12-6-4-2, FC1024 sees 512*2*2 = 2048 inputs;
               dense 13,548,170 parameters

The paper's Table 2 quotes 17.54M for CIFARNet; neither padding reproduces it, and no
spatial size of the last feature map does (it would need 512*s*s*1024 ~ 6.1M, s ~ 3.4).

Genetic scope default "all_but_classifier": the 33.5M-weight FC1024 must be genetic for
the paper's 3.72M to be possible at all.
"""
from __future__ import annotations

from gee_ref.nn import LIF, AvgPool2d, BatchNorm, Flatten, Sequential, SpikingNetwork

CONV_CHANNELS = (128, 256, "A", 512, "A", 1024, 512)
FC_WIDTHS = (1024, 512)


class CIFARNet(SpikingNetwork):
    def __init__(self, factory, num_classes, in_channels, image_size, time_steps, conv_padding=1, config=None):
        super().__init__(factory.gene_bank)
        dtype, pad = factory.dtype, int(conv_padding)
        if pad not in (0, 1):
            raise ValueError(f"cifarnet conv_padding must be 0 or 1, got {conv_padding!r}")
        size, channels, layers = int(image_size), in_channels, []
        for i, item in enumerate(CONV_CHANNELS):
            if item == "A":
                layers.append(AvgPool2d(2))
                size //= 2
                continue
            conv = factory.conv("stem" if i == 0 else "conv", channels, item, 3, padding=pad)
            block = [conv, BatchNorm(item, dtype=dtype)]
            if i == 0:
                self.stem = Sequential(*block)
                layers.append(LIF())
            else:
                layers += block + [LIF()]
            size, channels = size + 2 * pad - 2, item
            if size < 1:
                raise ValueError(f"cifarnet: image_size {image_size} is too small for conv_padding {pad}")
        features = channels * size * size
        layers.append(Flatten())
        layers += factory.fc_head(features, FC_WIDTHS, num_classes)
        self.body = Sequential(*layers)
        self._finish(time_steps, "cifarnet", config or {"conv_padding": pad})


def cifarnet(factory, num_classes, in_channels, image_size, time_steps, conv_padding=1, **config):
    return CIFARNet(factory, num_classes, in_channels, image_size, time_steps, conv_padding=conv_padding,
                    config={"conv_padding": conv_padding, **config})
