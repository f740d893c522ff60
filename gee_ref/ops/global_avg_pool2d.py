"""Global average pooling: y[n, c] = 1/(H W) sum_{h, w} x[n, c, h, w]; dx = dy / (H W).

A population's x [N, P, C, H, W] gives y [N, P, C] (DESIGN.md section 2)."""
from __future__ import annotations

from gee_ref import backend


def forward(x):
    if x.ndim not in (4, 5):
        raise ValueError(f"global_avg_pool2d expects x of shape [N, C, H, W] (or [N, P, C, H, W]), "
                         f"got shape {tuple(x.shape)}")
    return x.mean(axis=(-2, -1)), x.shape


def backward(grad, x_shape):
    xp = backend.get_array_module(grad)
    share = grad[..., None, None] / (x_shape[-2] * x_shape[-1])
    return (xp.broadcast_to(share, x_shape).copy(),)
