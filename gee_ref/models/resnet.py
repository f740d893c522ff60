"""Spiking ResNets: resnet18 and resnet19 (CIFAR, 32x32) and resnet34 (ImageNet, 224x224).

Every residual block is ``gee_ref.nn.BasicBlock`` (conv-BN-LIF-conv-BN, + identity or
1x1 conv-BN shortcut, then LIF); the first conv + BN (the stem) runs once per image.

resnet18 (CIFAR-style, He et al. 2016 with a 3x3 stem, as in the CIFAR ResNets of the SNN
literature): conv3x3 64 - BN - LIF, stages [2, 2, 2, 2] x BasicBlock with 64, 128 (s2),
256 (s2), 512 (s2) channels, global average pool, FC 512 -> classes.
Dense: 11,173,962 parameters for 10 classes (BN included).

resnet19 (the tdBN layout, Zheng et al. 2021, paper ref [33]): conv3x3 128 - BN - LIF,
3 x BasicBlock 128, 3 x BasicBlock 256 (first s2), 2 x BasicBlock 512 (first s2), global
average pool, FC 512 -> 256 - BN - LIF, FC 256 -> classes. Dense: 12,698,250 parameters for
10 classes (12,687,498 without BN); the paper quotes 12.63M.

The BN before the hidden LIF is gee_ref's, in the spirit of tdBN, whose point is to normalise
every spiking layer's input to the scale of the threshold: without it the head is silent at
initialisation. Measured (before this BN, dense and genetic alike, on CIFAR-10 and on noise
images, T = 4): the pooled features average 0.046, the FC's outputs have a standard deviation
of 0.11-0.12 and a largest value of 0.67-0.77, short of the about 1.07 a constant input needs to
fire within four steps; the hidden LIF fired at rate 0.000, the logits were exactly 0 and every
individual of an evolution started at loss ln 10. With the BN (and no FC bias, which the BN
would remove) the head fires from the first step (``tests/test_models.py``).

resnet34 (ImageNet, He et al. 2016): conv7x7 64 stride 2 - BN - LIF - maxpool 3x3 s2,
stages [3, 4, 6, 3] with 64, 128, 256, 512 channels, global average pool, FC 512 -> 1000.
Dense: 21,797,672 parameters (paper Table 1: 21.79M).

Which layers are genetic (eq. 1). The paper does not list them; its Table 2 gives GEE
ResNet-19 4.35M / 4.38M (CIFAR-10 / CIFAR-100) and says g is about 100 (DESIGN.md 4).
Counting the built models (``python -m gee_ref.params``) at g = 100:

    scope "convs" (every 3x3 conv incl. the stem; 1x1 shortcuts and FCs dense):  4.34M / 4.36M
    scope "all_but_classifier":                                                   4.24M / 4.26M
    scope "all" (every conv and FC):                                              4.26M / 4.27M

"convs" is the closest (and at g = 200 gives 8.39M / 8.42M against the paper's 8.41M /
8.44M); it is the default for the ResNets. The 10-vs-100-class difference, 0.03M in the
paper, is 90 x 257 = 23,130 numbers: a dense FC 256 -> classes, which "convs" has.
"""
from __future__ import annotations

from gee_ref.nn import (LIF, BasicBlock, BatchNorm, GlobalAvgPool2d, MaxPool2d, Sequential,
                        SpikingNetwork)


class SpikingResNet(SpikingNetwork):
    """stem -> LIF [-> maxpool] -> stages of BasicBlocks -> GAP -> [FC - LIF]* -> FC."""

    def __init__(self, factory, stages, num_classes, in_channels, time_steps, stem_channels, stem_kernel=3,
                 stem_stride=1, stem_maxpool=False, fc_hidden=(), normalised_head=False, arch="resnet", config=None):
        super().__init__(factory.gene_bank)
        dtype = factory.dtype
        self.stem = Sequential(
            factory.conv("stem", in_channels, stem_channels, stem_kernel, stride=stem_stride,
                         padding=stem_kernel // 2),
            BatchNorm(stem_channels, dtype=dtype))
        layers = [LIF()]
        if stem_maxpool:
            layers.append(MaxPool2d(3, stride=2, padding=1))
        channels = stem_channels
        for out_channels, blocks, stride in stages:
            for b in range(blocks):
                layers.append(BasicBlock(factory, channels, out_channels, stride if b == 0 else 1))
                channels = out_channels
        layers.append(GlobalAvgPool2d())
        layers += factory.fc_head(channels, fc_hidden, num_classes, normalised=normalised_head)
        self.body = Sequential(*layers)
        self._finish(time_steps, arch, config or {})


def resnet18(factory, num_classes, in_channels, image_size, time_steps, **config):
    return SpikingResNet(factory, [(64, 2, 1), (128, 2, 2), (256, 2, 2), (512, 2, 2)], num_classes,
                         in_channels, time_steps, stem_channels=64, arch="resnet18", config=config)


def resnet19(factory, num_classes, in_channels, image_size, time_steps, **config):
    return SpikingResNet(factory, [(128, 3, 1), (256, 3, 2), (512, 2, 2)], num_classes, in_channels,
                         time_steps, stem_channels=128, fc_hidden=(256,), normalised_head=True, arch="resnet19",
                         config=config)


def resnet34(factory, num_classes, in_channels, image_size, time_steps, **config):
    return SpikingResNet(factory, [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], num_classes,
                         in_channels, time_steps, stem_channels=64, stem_kernel=7, stem_stride=2,
                         stem_maxpool=True, arch="resnet34", config=config)
