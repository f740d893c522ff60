"""What every weight layer (Conv2d, Linear and their genetic twins) measures about itself.

For the energy estimate of paper eq. 17,

    E = E_MAC * FLOPs_1 + E_AC * T * sum_{l >= 2} fr_l * FLOPs_l,

a layer reports FLOPs_l, the multiply-accumulates (MACs) of its dense-equivalent layer for
one sample and one time step (``dense_macs``), and, while its network is recording
(``Module.record(True)``), fr_l: ``last_input_rate``, the mean of its input over all
elements of the last forward. For a layer fed by LIF neurons this is the firing rate; for
the first layer it is the mean of the analog image. The mean stays on the input's device
(``last_input_mean``, a 0-d array) until it is read, so recording costs no GPU wait per layer.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.nn.module import Module
from gee_ref.ops.im2col import as_pair


class WeightLayer(Module):
    """Base of Conv2d, Linear, GeneticConv2d, GeneticLinear.

    ``role`` says where the layer sits in its network ("stem", "conv", "shortcut",
    "hidden_fc", "classifier"); models use it to decide which layers are genetic.
    """

    def __init__(self, role: str | None = None):
        super().__init__()
        self.role = role
        self.last_input_mean = None  # 0-d array on the input's device, while recording
        self.last_input_hw = None

    # subclasses set fan_in and out_features (convolutions through _set_conv_geometry)
    fan_in: int
    out_features: int
    kernel_size = None  # a pair for a convolution, None for a Linear layer

    def output_hw(self, input_hw):
        """(Ho, Wo) = ((H + 2p - k) // s + 1, ...) for a convolution; None for a Linear layer."""
        if self.kernel_size is None:
            return None
        if input_hw is None or len(input_hw) != 2:
            raise ValueError(f"a convolution's MACs need its input size (H, W), got {input_hw!r}")
        return tuple((input_hw[a] + 2 * self.padding[a] - self.kernel_size[a]) // self.stride[a] + 1
                     for a in range(2))

    def _set_conv_geometry(self, in_channels, out_channels, kernel_size, stride, padding) -> None:
        """The attributes every convolution (dense or genetic) keeps: channels, kernel, stride,
        padding as pairs, fan_in = C_in*kh*kw (a row of the im2col weight) and out_features."""
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = as_pair(kernel_size, "kernel_size")
        self.stride, self.padding = as_pair(stride, "stride"), as_pair(padding, "padding")
        self.fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        self.out_features = self.out_channels

    def _observe(self, x) -> None:
        """Keep the input's mean (on its device) and spatial size when recording.

        A population's input [N, P, ...] gets one mean per individual, [P]."""
        if not self.recording:
            return
        data = x.data if hasattr(x, "data") else x
        base = 4 if self.kernel_size is not None else 2  # [N, C, H, W] or [N, features]
        per_individual = data.ndim == base + 1
        self.last_input_mean = (data.mean(axis=(0,) + tuple(range(2, data.ndim))) if per_individual
                                else data.mean())
        self.last_input_hw = tuple(data.shape[-2:]) if self.kernel_size is not None else None

    @property
    def last_input_rate(self) -> float | None:
        """fr_l of the last recorded forward as a float (None before one; a GPU waits here)."""
        return None if self.last_input_mean is None else float(backend.to_host(self.last_input_mean))

    def output_positions(self, input_hw) -> int:
        """Output positions per sample: Ho*Wo for a convolution, 1 for a Linear layer."""
        out = self.output_hw(input_hw)
        return 1 if out is None else out[0] * out[1]

    def dense_macs(self, input_hw=None) -> int:
        """MACs of the dense-equivalent layer for one sample and one time step (eq. 17's FLOPs_l)."""
        return self.out_features * self.fan_in * self.output_positions(input_hw)

    @property
    def last_macs_per_sample(self) -> int | None:
        """``dense_macs`` at the input size of the last recorded forward (None before one)."""
        if self.last_input_mean is None:
            return None
        return self.dense_macs(self.last_input_hw)
