"""Stochastic gradient descent with momentum, Nesterov momentum and L2 weight decay.

The update follows PyTorch's ``torch.optim.SGD`` (dampening 0), so that a run can be checked
step for step against it. For every parameter ``p`` with gradient ``g``::

    d   = g + weight_decay * p                       # L2 decay, coupled to the gradient
    buf = momentum * buf + d                         # buf starts at 0 (so buf_1 = d)
    d   = d + momentum * buf   if nesterov else buf  # Sutskever et al. 2013 form
    p   = p - lr * d

Parameters whose ``.grad`` is None are skipped (their buffer does not move).
"""
from __future__ import annotations

import numpy

from gee_ref import autograd, backend
from gee_ref.optim.base import Optimizer, nonnegative, split_state


class SGD(Optimizer):
    """SGD over a list of parameter Tensors; ``lr`` may be changed between steps."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        self.momentum = nonnegative("momentum", momentum)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum_buffers = [None] * len(self.params)  # created at a parameter's first step

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        with autograd.no_grad():
            for i, p in enumerate(self.params):
                if p.grad is None:
                    continue
                d = p.grad + self.weight_decay * p.data if self.weight_decay else p.grad
                if self.momentum:
                    xp = backend.get_array_module(p.data)
                    if self.momentum_buffers[i] is None:
                        self.momentum_buffers[i] = xp.zeros_like(p.data)
                    buf = self.momentum_buffers[i]
                    buf *= self.momentum
                    buf += d
                    d = d + self.momentum * buf if self.nesterov else buf
                p.data -= self.lr * d

    def state_dict(self) -> dict:
        """Host arrays only (NumPy), ready for ``gee_ref.storage.checkpoint``:
        ``lr``, ``momentum``, ``nesterov``, ``weight_decay`` as 0-d arrays and one
        ``momentum_buffer.<i>`` per parameter that has one (i = index in ``params``)."""
        state = {
            "lr": numpy.asarray(self.lr, dtype=numpy.float64),
            "momentum": numpy.asarray(self.momentum, dtype=numpy.float64),
            "nesterov": numpy.asarray(self.nesterov, dtype=numpy.bool_),
            "weight_decay": numpy.asarray(self.weight_decay, dtype=numpy.float64),
        }
        for i, buf in enumerate(self.momentum_buffers):
            if buf is not None:
                state[f"momentum_buffer.{i}"] = backend.to_host(buf).copy()
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore hyperparameters and buffers saved by ``state_dict`` (same parameter list)."""
        scalars, arrays = split_state(state, ("lr", "momentum", "nesterov", "weight_decay"),
                                      ("momentum_buffer",), self.params, "SGD")
        self.lr = float(scalars["lr"])
        self.momentum = nonnegative("momentum", float(scalars["momentum"]))
        self.nesterov = bool(scalars["nesterov"])
        self.weight_decay = nonnegative("weight_decay", float(scalars["weight_decay"]))
        self.momentum_buffers = arrays["momentum_buffer"]
