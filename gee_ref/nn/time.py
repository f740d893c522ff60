"""The time axis of a spiking activation (DESIGN.md section 3).

Stateless layers see the merged view [T*N, ...]; LIF neurons and the readout see [T, N, ...].
These helpers move between the two on the autograd tape.
"""
from __future__ import annotations

from gee_ref.autograd import functional
from gee_ref.autograd.functional import repeat_time  # noqa: F401 - re-exported for the layers


def split_time(x, time_steps: int):
    """[T*N, ...] -> [T, N, ...] (a ValueError when the first axis is not a multiple of T)."""
    if time_steps < 1 or x.shape[0] % time_steps:
        raise ValueError(f"a merged [T*N, ...] activation of leading size {x.shape[0]} cannot be "
                         f"split into T={time_steps} time steps")
    return functional.reshape(x, (time_steps, x.shape[0] // time_steps) + tuple(x.shape[1:]))


def merge_time(x):
    """[T, N, ...] -> [T*N, ...]."""
    return functional.reshape(x, (x.shape[0] * x.shape[1],) + tuple(x.shape[2:]))
