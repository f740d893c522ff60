"""Pooling and flattening modules (stateless; run on the merged [T*N, ...] view)."""
from __future__ import annotations

from gee_ref.autograd import functional
from gee_ref.nn.module import Module


class AvgPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return functional.avg_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(AvgPool2d):
    def forward(self, x):
        return functional.max_pool2d(x, self.kernel_size, stride=self.stride, padding=self.padding)


class GlobalAvgPool2d(Module):
    """[N, C, H, W] -> [N, C]."""

    def forward(self, x):
        return functional.global_avg_pool2d(x)


class Flatten(Module):
    """[..., C, H, W] -> [..., C*H*W]: a feature map flattened for the fully connected head."""

    def forward(self, x):
        return functional.flatten(x, start_dim=-3)
