"""Spiking VGG-16 (Simonyan & Zisserman 2015) for 32x32 images.

Convolutions 64,64,P, 128,128,P, 256x3,P, 512x3,P, 512x3,P (3x3, padding 1), each followed
by BN and LIF; P is a 2x2 pool of spikes (average by default, ``pool="max"`` for VGG's
original max pooling). After five pools a 32x32 image is 512x1x1; the classifier is
FC 512 -> 4096 - LIF - FC 4096 -> 4096 - LIF - FC 4096 -> classes (``classifier_hidden``).
Dense: 33,642,442 parameters for 10 classes (BN included), the 33.6M the paper quotes for
VGG-16 (ref [37], Table 2).

Genetic scope default "all_but_classifier" (the paper's 2.51M needs the 4096-wide FCs genetic).
"""
from __future__ import annotations

from gee_ref.nn import LIF, AvgPool2d, BatchNorm, Flatten, MaxPool2d, Sequential, SpikingNetwork

LAYOUT = (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P")


class VGG16(SpikingNetwork):
    def __init__(self, factory, num_classes, in_channels, image_size, time_steps, pool="avg",
                 classifier_hidden=(4096, 4096), config=None):
        super().__init__(factory.gene_bank)
        if pool not in ("avg", "max"):
            raise ValueError(f"vgg16 pool must be 'avg' or 'max', got {pool!r}")
        dtype, size, channels, layers = factory.dtype, int(image_size), in_channels, []
        for i, item in enumerate(LAYOUT):
            if item == "P":
                layers.append(AvgPool2d(2) if pool == "avg" else MaxPool2d(2))
                size //= 2
                if size < 1:
                    raise ValueError(f"vgg16 needs image_size >= 32, got {image_size}")
                continue
            block = [factory.conv("stem" if i == 0 else "conv", channels, item, 3, padding=1),
                     BatchNorm(item, dtype=dtype)]
            if i == 0:
                self.stem = Sequential(*block)
                layers.append(LIF())
            else:
                layers += block + [LIF()]
            channels = item
        features = channels * size * size
        layers.append(Flatten())
        layers += factory.fc_head(features, classifier_hidden, num_classes)
        self.body = Sequential(*layers)
        self._finish(time_steps, "vgg16", config or {})


def vgg16(factory, num_classes, in_channels, image_size, time_steps, pool="avg",
          classifier_hidden=(4096, 4096), **config):
    return VGG16(factory, num_classes, in_channels, image_size, time_steps, pool=pool,
                 classifier_hidden=tuple(classifier_hidden),
                 config={"pool": pool, "classifier_hidden": tuple(classifier_hidden), **config})
