"""Direct input encoding (DESIGN.md section 3): the same input at every time step.

    forward:   x [N, ...]  ->  y [T*N, ...],   y[t*N + n] = x[n]     (time-major, merged)
    backward:  dx[n] = sum_t dy[t*N + n]

A spiking network's first convolution and batch norm see the same image at every step, so
they run once on [N, ...] and this op repeats their result; the sum in backward makes that
exactly equivalent, on the tape, to running them T times.
"""
from __future__ import annotations

import numbers
from typing import NamedTuple

from gee_ref import backend


class Cache(NamedTuple):
    steps: int
    x_shape: tuple


def forward(x, time_steps):
    if not isinstance(time_steps, numbers.Integral) or isinstance(time_steps, bool) or time_steps < 1:
        raise ValueError(f"time_steps must be a positive int, got {time_steps!r}")
    xp = backend.get_array_module(x)
    steps = int(time_steps)
    y = xp.broadcast_to(x[None], (steps,) + tuple(x.shape))
    y = xp.ascontiguousarray(y).reshape((steps * x.shape[0],) + tuple(x.shape[1:]))
    return y, Cache(steps, tuple(x.shape))


def backward(grad, cache):
    steps, x_shape = cache
    return (grad.reshape((steps,) + x_shape).sum(axis=0),)
