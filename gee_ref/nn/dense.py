"""Dense weight layers, the "--dense" twins of the genetic layers: Conv2d and Linear.

Weights start Kaiming-normal, N(0, 2 / fan_in) with fan_in = C_in*kh*kw (He et al. 2015);
Linear biases start at zero. Convolutions carry no bias: batch norm follows each of them.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.autograd import functional
from gee_ref.init.kaiming import kaiming_normal
from gee_ref.nn.module import Parameter
from gee_ref.nn.weight_layer import WeightLayer


class Conv2d(WeightLayer):
    """y = conv2d(x, W), W [C_out, C_in, kh, kw], x [N, C_in, H, W] (no bias)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None,
                 dtype=backend.TRAIN_DTYPE, role=None):
        super().__init__(role)
        self._set_conv_geometry(in_channels, out_channels, kernel_size, stride, padding)
        rng = backend.rng(0) if rng is None else rng
        self.w = Parameter(kaiming_normal(rng, (self.out_channels, self.in_channels) + self.kernel_size,
                                          self.fan_in, dtype))

    def forward(self, x):
        self._observe(x)
        return functional.conv2d(x, self.w, stride=self.stride, padding=self.padding)

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class Linear(WeightLayer):
    """y = x @ W.T + b, W [out, in]."""

    def __init__(self, in_features, out_features, bias=True, rng=None, dtype=backend.TRAIN_DTYPE, role=None):
        super().__init__(role)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.fan_in = self.in_features
        rng = backend.rng(0) if rng is None else rng
        self.w = Parameter(kaiming_normal(rng, (self.out_features, self.in_features), self.fan_in, dtype))
        self.b = Parameter(backend.get_array_module(self.w.data).zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        self._observe(x)
        return functional.linear(x, self.w, self.b)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, bias={self.b is not None}"
