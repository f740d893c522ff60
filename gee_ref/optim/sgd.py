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

import math
import numbers

import numpy

from gee_ref import autograd, backend


class SGD:
    """SGD over a list of parameter Tensors; ``lr`` may be changed between steps."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.params = check_parameters(params)
        self.lr = lr
        self.momentum = nonnegative("momentum", momentum)
        self.weight_decay = nonnegative("weight_decay", weight_decay)
        self.nesterov = bool(nesterov)
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.momentum_buffers = [None] * len(self.params)  # created at a parameter's first step

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = nonnegative("lr", value)

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (the tape accumulates into ``.grad``)."""
        for p in self.params:
            p.grad = None

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
        """Host arrays only (NumPy), ready for ``gee_ref.checkpoint``:
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


# Shared with adamw.py: checking arguments and reading a state dict back.

def nonnegative(name: str, value) -> float:
    """``value`` as a float, or a ValueError naming ``name`` unless it is finite and >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def check_parameters(params) -> list:
    """The parameters as a list, checked: gee_ref Tensors, each once, at least one."""
    params = list(params)
    if not params:
        raise ValueError("the optimiser got an empty parameter list")
    for p in params:
        if not isinstance(p, autograd.Tensor):
            raise ValueError(f"the optimiser needs gee_ref Tensors, got {type(p).__name__}")
    if len({id(p) for p in params}) != len(params):
        raise ValueError("a parameter appears twice in the optimiser's list")
    return params


def split_state(state: dict, scalar_keys, prefixes, params: list, owner: str):
    """Read a state dict back: ``(scalars, arrays)`` where ``scalars[key]`` is a host array
    and ``arrays[prefix]`` is a list, one entry per parameter, of ``<prefix>.<i>`` moved to
    parameter i's device and dtype (None where absent). Any other key, a missing scalar, an
    index out of range or a wrong shape is a ValueError."""
    missing = [k for k in scalar_keys if k not in state]
    if missing:
        raise ValueError(f"{owner} state is missing {', '.join(missing)}")
    scalars = {k: numpy.asarray(backend.to_host(state[k])) for k in scalar_keys}
    arrays = {prefix: [None] * len(params) for prefix in prefixes}
    for key, value in state.items():
        if key in scalars:
            continue
        prefix, _, index = key.rpartition(".")
        if prefix not in arrays or not index.isdigit():
            raise ValueError(f"{owner} state has an unknown entry {key!r}")
        i = int(index)
        if i >= len(params):
            raise ValueError(f"{owner} state has {key} but the optimiser has {len(params)} parameters")
        p, value = params[i], numpy.asarray(backend.to_host(value))
        if value.shape != p.data.shape:
            raise ValueError(f"{owner} state {key} has shape {value.shape}, parameter {i} has {p.data.shape}")
        xp = backend.get_array_module(p.data)
        arrays[prefix][i] = xp.array(value, dtype=p.data.dtype)  # a fresh copy on p's device
    return scalars, arrays
