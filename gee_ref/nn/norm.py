"""Batch normalisation module (DESIGN.md section 3): per channel over the merged (T*N, H, W).

gamma starts at 1, beta at 0; running_mean (0) and running_var (1) are buffers, updated in
place in training mode with momentum 0.1 (running var unbiased, PyTorch's convention) and
used in eval mode. eps = 1e-5. The math is ``gee_ref.ops.batch_norm``.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.autograd import functional
from gee_ref.nn.module import Module, Parameter


class BatchNorm(Module):
    """BatchNorm over x [N, C, H, W] or [N, C] (N may be the merged T*N)."""

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=backend.TRAIN_DTYPE):
        super().__init__()
        xp = backend.xp_for("cpu")
        self.num_features, self.momentum, self.eps = int(num_features), float(momentum), float(eps)
        self.gamma = Parameter(xp.ones(self.num_features, dtype=dtype))
        self.beta = Parameter(xp.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_mean", xp.zeros(self.num_features, dtype=dtype))
        self.register_buffer("running_var", xp.ones(self.num_features, dtype=dtype))

    def forward(self, x):
        return functional.batch_norm(x, self.gamma, self.beta, self.running_mean, self.running_var,
                                     training=self.training, momentum=self.momentum, eps=self.eps)

    def extra_repr(self):
        return f"{self.num_features}"
