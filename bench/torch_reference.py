"""The GEE model as a PyTorch user writes it: the independent reference of the benchmarks.

Nothing here comes from gee_ref. It is the plain eager-mode PyTorch one would write from the
paper and DESIGN.md, with no custom kernels:

* a genetic convolution materialises its weight every step, W = X_out @ G @ X_in.T
  (paper eq. 1), reshapes it to [C_out, C_in, kh, kw] and calls ``F.conv2d``; autograd
  gives eq. 4-5;
* LIF neurons (DESIGN.md section 3: tau=2, v_th=1, v_reset=0, hard reset, decay_input) are a
  Python loop over T, the spike a ``torch.autograd.Function`` with the sigmoid surrogate
  (alpha=4) as its backward;
* ``nn.BatchNorm2d`` runs on the merged [T*N, C, H, W] view;
* ResNet-19 in the tdBN layout (stem conv3x3 128 + BN run once on the image, then repeated
  T times; 3 x 128, 3 x 256 (s2), 2 x 512 (s2) basic blocks; GAP; FC 512-256 (no bias), BN,
  LIF, FC 256-10; mean over T). The 3x3 convolutions are genetic, the 1x1 shortcuts and the
  FCs dense: the scope gee_ref calls "convs";
* the small nets of the experiments: ``GeneticResNet`` with resnet14's stages (stem w, 2 x
  BasicBlock w, 2w (s2), 4w (s2), GAP, FC 4w -> classes; 1x1 conv-BN shortcuts where the shape
  changes), and ``GeneticDigitsNet``, the digits layout (conv3x3 32 - BN - LIF, conv3x3 64 s2 -
  BN - LIF, flatten, FC 128 - BN - LIF, FC classes, every layer genetic) on any image side.

Modules register their parameters in forward order with the same shapes as gee_ref's
``build_model(arch, genes=g)`` (resnet19, resnet14, digits), so ``copy_parameters_in_order``
can load a gee_ref model's parameters and the two forward passes can be compared number for
number.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

TRUNCATED_NORMAL_VARIANCE = 0.7737413  # variance of N(0,1) truncated to [-2, 2]


class SigmoidSurrogateSpike(torch.autograd.Function):
    """Heaviside forward, d/dx sigmoid(alpha x) backward (SpikingJelly's surrogate.Sigmoid)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = torch.sigmoid(ctx.alpha * x)
        return grad_output * ctx.alpha * s * (1.0 - s), None


def lif_loop(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, alpha=4.0):
    """Spikes [T, N, ...] of LIF neurons driven by x_seq [T, N, ...], a loop over t."""
    v = torch.full_like(x_seq[0], v_reset)
    spikes = []
    for t in range(x_seq.shape[0]):
        h = v + (x_seq[t] - (v - v_reset)) / tau
        s = SigmoidSurrogateSpike.apply(h - v_th, alpha)
        v = h * (1.0 - s) + v_reset * s
        spikes.append(s)
    return torch.stack(spikes)


class LIF(nn.Module):
    """[T*N, ...] -> split T -> lif_loop -> [T*N, ...]."""

    def __init__(self, time_steps):
        super().__init__()
        self.time_steps = time_steps

    def forward(self, x):
        seq = x.reshape((self.time_steps, x.shape[0] // self.time_steps) + tuple(x.shape[1:]))
        return lif_loop(seq).flatten(0, 1)


class GeneticConv2d(nn.Module):
    """conv2d with W = X_out @ G @ X_in.T (eq. 1), G shared (held by the network)."""

    def __init__(self, G, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        genes = G.shape[0]
        fan_in = in_channels * kernel_size * kernel_size
        self.G = [G]  # a list, so the shared Parameter is not registered again here
        self.shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.stride, self.padding = stride, padding
        # encodings with the Kaiming-normal variance of W for G = I: g sigma^4 v^2 = 2/fan_in
        sigma = (2.0 / (fan_in * genes)) ** 0.25 / math.sqrt(TRUNCATED_NORMAL_VARIANCE)
        self.x_out = nn.Parameter(nn.init.trunc_normal_(torch.empty(out_channels, genes), 0, sigma,
                                                        -2 * sigma, 2 * sigma))
        self.x_in = nn.Parameter(nn.init.trunc_normal_(torch.empty(fan_in, genes), 0, sigma,
                                                       -2 * sigma, 2 * sigma))

    def forward(self, x):
        weight = (self.x_out @ self.G[0] @ self.x_in.T).view(self.shape)
        return F.conv2d(x, weight, stride=self.stride, padding=self.padding)


class BasicBlock(nn.Module):
    """LIF(BN(conv(LIF(BN(conv(x))))) + shortcut(x)); shortcut a dense 1x1 conv + BN when needed."""

    def __init__(self, G, time_steps, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = GeneticConv2d(G, in_channels, out_channels, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.lif1 = LIF(time_steps)
        self.conv2 = GeneticConv2d(G, out_channels, out_channels, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.lif2 = LIF(time_steps)

    def forward(self, x):
        out = self.bn2(self.conv2(self.lif1(self.bn1(self.conv1(x)))))
        skip = x if self.shortcut is None else self.shortcut(x)
        return self.lif2(out + skip)


class GeneticLinear(nn.Module):
    """y = x @ W.T + b with W = X_out @ G @ X_in.T (eq. 1), G shared (held by the network)."""

    def __init__(self, G, in_features, out_features, bias=True):
        super().__init__()
        genes = G.shape[0]
        self.G = [G]
        sigma = (2.0 / (in_features * genes)) ** 0.25 / math.sqrt(TRUNCATED_NORMAL_VARIANCE)
        self.x_out = nn.Parameter(nn.init.trunc_normal_(torch.empty(out_features, genes), 0, sigma,
                                                        -2 * sigma, 2 * sigma))
        self.x_in = nn.Parameter(nn.init.trunc_normal_(torch.empty(in_features, genes), 0, sigma,
                                                       -2 * sigma, 2 * sigma))
        self.b = nn.Parameter(torch.zeros(out_features)) if bias else None

    def forward(self, x):
        return F.linear(x, self.x_out @ self.G[0] @ self.x_in.T, self.b)


class GeneticResNet(nn.Module):
    """A genetic spiking ResNet (tdBN layout): stem conv3x3 + BN once per image, repeated T times,
    LIF, stages of BasicBlocks ``(channels, blocks, stride)``, GAP, [FC - LIF]*, FC; images
    [N, C, H, W] -> logits [N, classes]."""

    def __init__(self, stages, stem_channels, genes, time_steps, fc_hidden=(), num_classes=10, in_channels=3):
        super().__init__()
        self.time_steps = time_steps
        self.G = nn.Parameter(torch.eye(genes))
        self.stem_conv = GeneticConv2d(self.G, in_channels, stem_channels, 3, 1, 1)
        self.stem_bn = nn.BatchNorm2d(stem_channels)
        layers = [LIF(time_steps)]
        channels = stem_channels
        for out_channels, blocks, stride in stages:
            for b in range(blocks):
                layers.append(BasicBlock(self.G, time_steps, channels, out_channels, stride if b == 0 else 1))
                channels = out_channels
        self.body = nn.Sequential(*layers)
        head = []
        for width in fc_hidden:  # FC (no bias) - BN - LIF, as gee_ref's normalised head
            head += [nn.Linear(channels, width, bias=False), nn.BatchNorm1d(width), LIF(time_steps)]
            channels = width
        self.head = nn.Sequential(*head, nn.Linear(channels, num_classes))

    def forward(self, images):
        t = self.time_steps
        x = self.stem_bn(self.stem_conv(images))  # before the first LIF: once per image
        x = x.unsqueeze(0).expand((t,) + tuple(x.shape)).flatten(0, 1)  # direct encoding, [T*N, ...]
        x = self.head(self.body(x).mean(dim=(2, 3)))
        return x.reshape(t, -1, x.shape[-1]).mean(0)


class GeneticResNet19(GeneticResNet):
    """Genetic ResNet-19 (tdBN layout), images [N, 3, 32, 32] -> logits [N, classes]."""

    def __init__(self, genes=100, time_steps=4, num_classes=10, in_channels=3):
        super().__init__(((128, 3, 1), (256, 3, 2), (512, 2, 2)), 128, genes, time_steps, fc_hidden=(256,),
                         num_classes=num_classes, in_channels=in_channels)


class GeneticResNet14(GeneticResNet):
    """The small residual net resnet14 of width w: stages w, 2w (s2), 4w (s2) of 2 blocks each."""

    def __init__(self, width=16, genes=16, time_steps=4, num_classes=10, in_channels=3):
        super().__init__(((width, 2, 1), (2 * width, 2, 2), (4 * width, 2, 2)), width, genes, time_steps,
                         num_classes=num_classes, in_channels=in_channels)


class GeneticDigitsNet(nn.Module):
    """The digits layout, every layer genetic, images [N, C, S, S] -> logits [N, classes]."""

    def __init__(self, genes=32, time_steps=2, image_size=32, in_channels=3, num_classes=10, channels=(32, 64),
                 hidden=128):
        super().__init__()
        c1, c2 = channels
        side = (image_size + 2 - 3) // 2 + 1
        self.time_steps = time_steps
        self.G = nn.Parameter(torch.eye(genes))
        self.stem_conv = GeneticConv2d(self.G, in_channels, c1, 3, 1, 1)
        self.stem_bn = nn.BatchNorm2d(c1)
        self.body = nn.Sequential(
            LIF(time_steps), GeneticConv2d(self.G, c1, c2, 3, 2, 1), nn.BatchNorm2d(c2), LIF(time_steps),
            nn.Flatten(), GeneticLinear(self.G, c2 * side * side, hidden, bias=False), nn.BatchNorm1d(hidden),
            LIF(time_steps), GeneticLinear(self.G, hidden, num_classes))

    def forward(self, images):
        t = self.time_steps
        x = self.stem_bn(self.stem_conv(images))
        x = self.body(x.unsqueeze(0).expand((t,) + tuple(x.shape)).flatten(0, 1))
        return x.reshape(t, -1, x.shape[-1]).mean(0)


class GeneticStack(nn.Module):
    """One genetic conv -> BN -> LIF, on [T*N, C, H, W] (the stack of the issue's CPU figure)."""

    def __init__(self, genes, time_steps, channels, kernel_size=3):
        super().__init__()
        self.G = nn.Parameter(torch.eye(genes))
        self.conv = GeneticConv2d(self.G, channels, channels, kernel_size, 1, kernel_size // 2)
        self.bn = nn.BatchNorm2d(channels)
        self.lif = LIF(time_steps)

    def forward(self, x):
        return self.lif(self.bn(self.conv(x)))


def torch_twin(arch, genes, time_steps, image_size=32, num_classes=10):
    """The PyTorch model of gee_ref's ``build_model(arch, genes=genes, ...)`` on colour images
    (resnet19, resnet14 at its default width 16, digits), freshly initialised."""
    if arch == "resnet19":
        return GeneticResNet19(genes=genes, time_steps=time_steps, num_classes=num_classes)
    if arch == "resnet14":
        return GeneticResNet14(genes=genes, time_steps=time_steps, num_classes=num_classes)
    if arch == "digits":
        return GeneticDigitsNet(genes=genes, time_steps=time_steps, image_size=image_size, num_classes=num_classes)
    raise ValueError(f"no PyTorch twin of {arch!r}: expected resnet19, resnet14 or digits")


def copy_parameters_in_order(torch_model, arrays):
    """Load host arrays (gee_ref's parameters, in gee_ref's order) into ``torch_model``'s
    parameters, which are registered in the same order; a ValueError on any shape mismatch."""
    params = list(torch_model.parameters())
    if len(params) != len(arrays):
        raise ValueError(f"the torch model has {len(params)} parameters, gee_ref's {len(arrays)}")
    with torch.no_grad():
        for i, (p, a) in enumerate(zip(params, arrays)):
            if tuple(p.shape) != tuple(a.shape):
                raise ValueError(f"parameter {i}: torch shape {tuple(p.shape)}, gee_ref {tuple(a.shape)}")
            p.copy_(torch.as_tensor(a, dtype=p.dtype))
