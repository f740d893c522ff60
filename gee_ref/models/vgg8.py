"""vgg8: a small plain spiking VGG-style net, 6 convolutions and 2 FC layers, width w (default 16).

    conv3x3 C -> w - BN - LIF, conv3x3 w -> w - BN - LIF, avgpool 2        H/2
    conv3x3 w -> 2w - BN - LIF, conv3x3 2w -> 2w - BN - LIF, avgpool 2     H/4
    conv3x3 2w -> 4w - BN - LIF, conv3x3 4w -> 4w - BN - LIF, avgpool 2    H/8
    flatten 4w (H/8)^2 - FC -> 8w (no bias) - BN - LIF - FC 8w -> classes

A reconstruction sized for this project's CPU budget, not a network of the paper: the VGG
pattern (3x3 convolutions, widths doubling after each 2x2 pool, as ``vgg16``) cut to three
stages, for 16x16 or 32x32 images (any side divisible by 8; 1 or 3 channels). The hidden FC
has the digits net's BN (``gee_ref.models.digits``: it keeps the head firing from the start
and makes that FC's bias redundant). The width w scales every layer (the hidden FC is 8w),
so a narrower dense twin can be matched to a genetic net's parameter count.

Genetic scope default "all" (as the digits net); default g = 16, where the genetic net holds
48,666 parameters against the dense 204,922 at 32x32 RGB (23.7%; 36,378 / 106,618 at 16x16),
a compression inside the abstract's "approximately 50% to 80%". Layer by layer:
``python -m gee_ref.params --arch vgg8``.
"""
from __future__ import annotations

from gee_ref.models.options import divisible_size, positive_int
from gee_ref.nn import LIF, AvgPool2d, BatchNorm, Flatten, Sequential, SpikingNetwork

LAYOUT = (1, 1, "P", 2, 2, "P", 4, 4, "P")  # conv widths as multiples of w; P a 2x2 average pool
HIDDEN_PER_WIDTH = 8  # the hidden FC has 8w neurons


class VGG8(SpikingNetwork):
    def __init__(self, factory, num_classes, in_channels, image_size, time_steps, width):
        super().__init__(factory.gene_bank)
        width = positive_int(width, "vgg8 width")
        size = divisible_size(int(image_size), 2 ** LAYOUT.count("P"), "vgg8", "three 2x2 pools")
        dtype, channels, layers = factory.dtype, in_channels, []
        for i, item in enumerate(LAYOUT):
            if item == "P":
                layers.append(AvgPool2d(2))
                size //= 2
                continue
            out_channels = item * width
            conv_bn = [factory.conv("stem" if i == 0 else "conv", channels, out_channels, 3, padding=1),
                       BatchNorm(out_channels, dtype=dtype)]
            if i == 0:
                self.stem = Sequential(*conv_bn)  # runs once per image (gee_ref.nn.network)
                layers.append(LIF())
            else:
                layers += conv_bn + [LIF()]
            channels = out_channels
        hidden = HIDDEN_PER_WIDTH * width
        layers += [Flatten(),
                   factory.linear("hidden_fc", channels * size * size, hidden, bias=False),
                   BatchNorm(hidden, dtype=dtype), LIF(),
                   factory.linear("classifier", hidden, num_classes)]
        self.body = Sequential(*layers)
        self._finish(time_steps, "vgg8", {"width": width})


def vgg8(factory, num_classes, in_channels, image_size, time_steps, width):
    return VGG8(factory, num_classes, in_channels, image_size, time_steps, width=width)
