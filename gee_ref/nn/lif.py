"""LIF neuron module (DESIGN.md section 3): [T*N, ...] -> [T, N, ...] -> lif -> [T*N, ...].

Stateless layers run on the merged time-major view; the neuron needs the time axis, so the
module splits it off (``time_steps``, set for a whole network by ``set_time_steps``), runs
``gee_ref.ops.lif`` (tau=2, v_th=1, v_reset=0, hard reset, sigmoid surrogate, alpha = the
surrogate's default, 4 for sigmoid) and merges it back. ``soft=True`` fires the surrogate's primitive instead of the
Heaviside step, so finite differences can check gradients (``set_soft_lif``).

While its network is recording, the module keeps ``last_spikes``: the [T, N, ...] spike
array of the last forward (for eq. 13's R_T, spike counts and firing rates).
"""
from __future__ import annotations

from gee_ref.autograd import functional
from gee_ref.ops import surrogate as surrogates
from gee_ref.nn.module import Module
from gee_ref.nn.time import merge_time, split_time


class LIF(Module):
    def __init__(self, time_steps: int | None = None, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid",
                 alpha=None, detach_reset=False, soft=False):
        super().__init__()
        self.time_steps = time_steps
        self.tau, self.v_th, self.v_reset = tau, v_th, v_reset
        if alpha is None:  # each surrogate's own default: sigmoid 4, atan 2, rectangular 1
            alpha = surrogates.get(surrogate).default_alpha
        self.surrogate, self.alpha, self.detach_reset, self.soft = surrogate, alpha, detach_reset, soft
        self.last_spikes = None

    def forward(self, x):
        if self.time_steps is None:
            raise ValueError("LIF.time_steps is not set (use set_time_steps(module, T))")
        spikes = functional.lif(split_time(x, self.time_steps), tau=self.tau, v_th=self.v_th,
                                v_reset=self.v_reset, surrogate=self.surrogate, alpha=self.alpha,
                                detach_reset=self.detach_reset, soft=self.soft)
        if self.recording:
            self.last_spikes = spikes.data
        return merge_time(spikes)

    def extra_repr(self):
        return f"T={self.time_steps}, tau={self.tau}, v_th={self.v_th}{', soft' if self.soft else ''}"


def lif_modules(module: Module) -> list:
    """The LIF modules of a network, in forward order."""
    return [m for m in module.modules() if isinstance(m, LIF)]


def set_time_steps(module: Module, time_steps: int) -> None:
    """Set T on every LIF module under ``module``."""
    if not isinstance(time_steps, int) or isinstance(time_steps, bool) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")
    for m in lif_modules(module):
        m.time_steps = time_steps


def set_soft_lif(module: Module, soft: bool = True) -> None:
    """Switch every LIF module under ``module`` to the soft (differentiable) spike, or back."""
    for m in lif_modules(module):
        m.soft = bool(soft)
