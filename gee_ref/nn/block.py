"""Spiking residual basic block in the tdBN style (Zheng et al. 2021; He et al. 2016).

    out = LIF( BN(conv3x3(LIF(BN(conv3x3_s(x))))) + shortcut(x) )

shortcut(x) = x when shape is kept, else BN(conv1x1_s(x)) (stride s, channel change).
Every piece runs on the merged [T*N, C, H, W] view except the two LIF neurons.
"""
from __future__ import annotations

from gee_ref.autograd import functional
from gee_ref.nn.lif import LIF
from gee_ref.nn.module import Module, Sequential
from gee_ref.nn.norm import BatchNorm


class BasicBlock(Module):
    def __init__(self, factory, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        dtype = factory.dtype
        self.conv1 = factory.conv("conv", in_channels, out_channels, 3, stride=stride, padding=1)
        self.bn1 = BatchNorm(out_channels, dtype=dtype)
        self.lif1 = LIF()
        self.conv2 = factory.conv("conv", out_channels, out_channels, 3, stride=1, padding=1)
        self.bn2 = BatchNorm(out_channels, dtype=dtype)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Sequential(factory.conv("shortcut", in_channels, out_channels, 1, stride=stride),
                                       BatchNorm(out_channels, dtype=dtype))
        else:
            self.shortcut = None
        self.lif2 = LIF()

    def forward(self, x):
        out = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.lif2(functional.add(out, skip))
