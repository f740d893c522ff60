"""What every optimiser shares: its parameter list, a checked learning rate, zero_grad,
and reading a saved state dict back onto the parameters' devices."""
from __future__ import annotations

import math
import numbers

import numpy

from gee_ref import autograd, backend


class Optimizer:
    """A checked list of parameter Tensors and a learning rate that may change between steps."""

    def __init__(self, params, lr):
        self.params = check_parameters(params)
        self.lr = lr

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
