"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, "Decoupled Weight Decay
Regularization", ICLR 2019, Algorithm 2), in PyTorch's ``torch.optim.AdamW`` form.

For every parameter ``p`` with gradient ``g``, at its own step count ``t = 1, 2, ...``::

    p     = p * (1 - lr * weight_decay)          # decay decoupled from the gradient
    m     = beta1 * m + (1 - beta1) * g          # first moment, starts at 0
    v     = beta2 * v + (1 - beta2) * g**2       # second moment, starts at 0
    m_hat = m / (1 - beta1**t)                   # bias corrections (Kingma & Ba 2015)
    v_hat = v / (1 - beta2**t)
    p     = p - lr * m_hat / (sqrt(v_hat) + eps)

The paper writes the decay as ``eta_t * lambda`` with a schedule multiplier ``eta_t``; like
PyTorch we use ``lr * weight_decay``, so a learning-rate schedule scales the decay too.
Parameters whose ``.grad`` is None are skipped: their moments and step count do not move.
"""
from __future__ import annotations

import math

import numpy

from gee_ref import autograd, backend
from gee_ref.optim.base import Optimizer, nonnegative, split_state

_HYPERPARAMETERS = ("lr", "beta1", "beta2", "eps", "weight_decay", "steps")


class AdamW(Optimizer):
    """AdamW over a list of parameter Tensors; ``lr`` may be changed between steps."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}")
        self.beta1, self.beta2 = (nonnegative("betas", b) for b in betas)
        if self.beta1 >= 1.0 or self.beta2 >= 1.0:
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.eps = nonnegative("eps", eps)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.steps = [0] * len(self.params)       # t, per parameter
        self.exp_avg = [None] * len(self.params)     # m
        self.exp_avg_sq = [None] * len(self.params)  # v

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        with autograd.no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                xp = backend.get_array_module(p.data)
                if self.exp_avg[i] is None:
                    self.exp_avg[i] = xp.zeros_like(p.data)
                    self.exp_avg_sq[i] = xp.zeros_like(p.data)
                self.steps[i] += 1
                t, g, m, v = self.steps[i], p.grad, self.exp_avg[i], self.exp_avg_sq[i]
                p.data *= 1.0 - self.lr * self.weight_decay
                m *= self.beta1
                m += (1.0 - self.beta1) * g
                v *= self.beta2
                v += (1.0 - self.beta2) * (g * g)
                bias1 = 1.0 - self.beta1 ** t
                bias2 = 1.0 - self.beta2 ** t
                denom = xp.sqrt(v) / math.sqrt(bias2) + self.eps  # sqrt(v_hat) + eps
                p.data -= (self.lr / bias1) * (m / denom)

    def state_dict(self) -> dict:
        """Host arrays only (NumPy), ready for ``gee_ref.storage.checkpoint``: the hyperparameters as
        0-d arrays, ``steps`` (int64, one count per parameter), and ``exp_avg.<i>`` /
        ``exp_avg_sq.<i>`` for every parameter i that has taken a step."""
        state = {name: numpy.asarray(getattr(self, name), dtype=numpy.float64)
                 for name in _HYPERPARAMETERS if name != "steps"}
        state["steps"] = numpy.asarray(self.steps, dtype=numpy.int64)
        for i, (m, v) in enumerate(zip(self.exp_avg, self.exp_avg_sq)):
            if m is not None:
                state[f"exp_avg.{i}"] = backend.to_host(m).copy()
                state[f"exp_avg_sq.{i}"] = backend.to_host(v).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore hyperparameters, step counts and moments saved by ``state_dict``."""
        scalars, arrays = split_state(state, _HYPERPARAMETERS, ("exp_avg", "exp_avg_sq"),
                                      self.params, "AdamW")
        steps = scalars["steps"]
        if steps.shape != (len(self.params),):
            raise ValueError(f"AdamW state has steps for {steps.size} parameters, the optimiser has {len(self.params)}")
        for i, t in enumerate(steps):
            if (t > 0) != (arrays["exp_avg"][i] is not None) or (t > 0) != (arrays["exp_avg_sq"][i] is not None):
                raise ValueError(f"AdamW state for parameter {i}: step count {t} does not match its moments")
        self.lr = float(scalars["lr"])
        self.beta1, self.beta2 = float(scalars["beta1"]), float(scalars["beta2"])
        self.eps = float(scalars["eps"])
        self.weight_decay = float(scalars["weight_decay"])
        self.steps = [int(t) for t in steps]
        self.exp_avg, self.exp_avg_sq = arrays["exp_avg"], arrays["exp_avg_sq"]
