"""Learning-rate schedule: linear warmup, then a half cosine (Loshchilov & Hutter, "SGDR:
Stochastic Gradient Descent with Warm Restarts", ICLR 2017, eq. 5, without restarts).

For step ``s`` (0-based, one per optimiser update), ``W = warmup_steps``, ``S = total_steps``::

    lr(s) = base_lr * (s + 1) / W                                       if s < W
    lr(s) = min_lr + (base_lr - min_lr) * (1 + cos(pi * (s - W) / (S - W))) / 2   if W <= s < S
    lr(s) = min_lr                                                      if s >= S

so the first update already moves (lr(0) = base_lr / W), warmup ends at exactly base_lr
(lr(W-1) = lr(W) = base_lr) and the cosine reaches min_lr at s = S.
"""
from __future__ import annotations

import math
import numbers


class CosineSchedule:
    """``lr_at(step)``: the learning rate for the optimiser update number ``step``."""

    def __init__(self, base_lr, total_steps, warmup_steps=0, min_lr=0.0):
        for name, value in (("base_lr", base_lr), ("min_lr", min_lr)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if min_lr > base_lr:
            raise ValueError(f"min_lr ({min_lr}) must not exceed base_lr ({base_lr})")
        total_steps, warmup_steps = _count("total_steps", total_steps), _count("warmup_steps", warmup_steps)
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if warmup_steps > total_steps:
            raise ValueError(f"warmup_steps ({warmup_steps}) must not exceed total_steps ({total_steps})")
        self.base_lr, self.min_lr = float(base_lr), float(min_lr)
        self.total_steps, self.warmup_steps = total_steps, warmup_steps

    def lr_at(self, step) -> float:
        step = _count("step", step)
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if step >= self.total_steps:
            return self.min_lr
        progress = (step - self.warmup_steps) / (self.total_steps - self.warmup_steps)  # in [0, 1)
        return self.min_lr + (self.base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    __call__ = lr_at


def _count(name: str, value) -> int:
    """A non-negative integer, or a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)
