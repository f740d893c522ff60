"""resnet14: a small spiking residual net, 13 genetic convolutions deep, width w (default 16).

    conv3x3 C -> w - BN - LIF                                    H
    2 x BasicBlock w                                             H
    2 x BasicBlock 2w (the first stride 2, 1x1 conv-BN shortcut)  H/2
    2 x BasicBlock 4w (the first stride 2, 1x1 conv-BN shortcut)  H/4
    global average pool - FC 4w -> classes

The CIFAR ResNets of He et al. (2016, section 4.2: 6n + 2 layers, widths 16, 32, 64), here
with n = 2, a width option (widths w, 2w, 4w), 1x1 projection shortcuts where the shape
changes (He's option B) and the tdBN residual block of ``resnet19`` (``gee_ref.nn.BasicBlock``:
conv-BN-LIF-conv-BN, + shortcut, LIF). Under the default scope "convs" it has 13 genetic
convolutions (the stem and the 12 of the six blocks; shortcuts and the FC dense): a chain of
genetic layers long enough to test the paper's vanishing-gradient claim (section 4.3) at a
cost this project's CPUs can train.

Any image side divisible by 4 (two stride-2 stages), 1 or 3 channels. Default g = 16: the
genetic net holds 70,042 parameters against the dense 175,258 (40.0%, at any image side:
the global pool makes the count size-free), a 60% compression, inside the abstract's
"approximately 50% to 80%". Layer by layer: ``python -m gee_ref.params --arch resnet14``.
"""
from __future__ import annotations

from gee_ref.models.options import divisible_size, positive_int
from gee_ref.models.resnet import SpikingResNet

BLOCKS_PER_STAGE = 2
STAGE_WIDTHS = (1, 2, 4)  # multiples of w; every stage after the first halves the image side


def resnet14(factory, num_classes, in_channels, image_size, time_steps, width):
    width = positive_int(width, "resnet14 width")
    divisible_size(int(image_size), 2 ** (len(STAGE_WIDTHS) - 1), "resnet14", "two stride-2 stages")
    stages = [(multiple * width, BLOCKS_PER_STAGE, 1 if i == 0 else 2) for i, multiple in enumerate(STAGE_WIDTHS)]
    return SpikingResNet(factory, stages, num_classes, in_channels, time_steps, stem_channels=width,
                         arch="resnet14", config={"width": width})
