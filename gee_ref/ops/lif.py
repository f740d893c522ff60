"""Leaky integrate-and-fire neurons over time, with hard reset (DESIGN.md section 3).

For x_seq [T, N, ...] and V_0 = v_reset, at each step t = 1..T:

    charge:  H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau      (decay_input)
    fire:    S_t = Heaviside(H_t - v_th)
    reset:   V_t = H_t (1 - S_t) + v_reset S_t

This is SpikingJelly's ``LIFNode(tau, decay_input=True, v_threshold, v_reset)``
(charge/fire/reset are its neuron's three stages; the code here is our own).

Backward is backpropagation through time through V, with the surrogate
``p'(H_t - v_th)`` (``gee_ref.ops.surrogate``) standing in for dS_t/dH_t.
Walking t from T down to 1, with dL/dV_T = 0:

    dL/dS_t = g_t + dL/dV_t (v_reset - H_t)          [reset term dropped if detach_reset]
    dL/dH_t = dL/dS_t p'(H_t - v_th) + dL/dV_t (1 - S_t)
    dL/dX_t = dL/dH_t / tau
    dL/dV_{t-1} = dL/dH_t (1 - 1/tau)

``soft=True`` fires ``S_t = p(H_t - v_th)``, the surrogate's own primitive, instead
of the Heaviside step: then the backward above is the exact gradient, which finite
differences can check; the hard op shares the same backward code.
"""
from __future__ import annotations

from typing import NamedTuple

from gee_ref import backend
from gee_ref.ops import surrogate as surrogates


class Cache(NamedTuple):
    """What backward needs: H_t for every t (S_t is recomputed from it) and the neuron's settings."""
    h_seq: object
    tau: float
    v_th: float
    v_reset: float
    surrogate: object  # the registry entry of gee_ref.ops.surrogate
    alpha: float
    detach_reset: bool
    soft: bool


def charge(v_prev, x, tau, v_reset):
    """H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau."""
    return v_prev + (x - (v_prev - v_reset)) / tau


def fire(h, v_th, spike_function):
    """S_t = spike_function(H_t - v_th): Heaviside (hard) or the surrogate's primitive (soft)."""
    return spike_function(h - v_th)


def reset(h, s, v_reset):
    """V_t = H_t (1 - S_t) + v_reset S_t (hard reset)."""
    return h * (1.0 - s) + v_reset * s


def firing_function(surrogate, alpha, soft):
    """The firing nonlinearity: the Heaviside step, or (soft) the surrogate's primitive."""
    if soft:
        return lambda x: surrogate.primitive(x, alpha)
    return surrogates.heaviside


def checked_arguments(x_seq, tau, surrogate, alpha):
    """(surrogate registry entry, alpha), ``alpha=None`` being the surrogate's default; a
    ValueError for a shape that is not [T, N, ...] or a tau or alpha that is not positive."""
    sg = surrogates.get(surrogate)
    alpha = sg.default_alpha if alpha is None else float(alpha)
    if x_seq.ndim < 2:
        raise ValueError(f"lif expects x_seq of shape [T, N, ...], got shape {tuple(x_seq.shape)}")
    if not tau > 0 or not alpha > 0:
        raise ValueError(f"lif needs tau > 0 and alpha > 0, got tau={tau}, alpha={alpha}")
    return sg, alpha


def forward(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=None,
            detach_reset=False, soft=False):
    """Spikes [T, N, ...] of a LIF layer driven by x_seq [T, N, ...].

    ``alpha=None`` takes the surrogate's default (sigmoid 4, atan 2, rectangular 1).
    """
    sg, alpha = checked_arguments(x_seq, tau, surrogate, alpha)
    xp = backend.get_array_module(x_seq)
    spike_function = firing_function(sg, alpha, soft)
    h_seq = xp.empty_like(x_seq)
    s_seq = xp.empty_like(x_seq)
    v = xp.full_like(x_seq[0], v_reset)
    for t in range(x_seq.shape[0]):
        h_seq[t] = charge(v, x_seq[t], tau, v_reset)
        s_seq[t] = fire(h_seq[t], v_th, spike_function)
        v = reset(h_seq[t], s_seq[t], v_reset)
    return s_seq, Cache(h_seq, tau, v_th, v_reset, sg, alpha, detach_reset, soft)


def backward(grad, cache):
    """dL/dX [T, N, ...] by BPTT (module docstring); S_t is recomputed from the cached H."""
    h_seq, tau, v_th, v_reset, sg, alpha, detach_reset, soft = cache
    xp = backend.get_array_module(h_seq)
    spike_function = firing_function(sg, alpha, soft)
    grad_x = xp.empty_like(h_seq)
    grad_v = xp.zeros_like(h_seq[0])  # dL/dV_t arriving from step t+1
    for t in reversed(range(h_seq.shape[0])):
        h = h_seq[t]
        s = fire(h, v_th, spike_function)
        grad_s = grad[t]
        if not detach_reset:
            grad_s = grad_s + grad_v * (v_reset - h)
        grad_h = grad_s * sg.derivative(h - v_th, alpha) + grad_v * (1.0 - s)
        grad_x[t] = grad_h / tau
        grad_v = grad_h * (1.0 - 1.0 / tau)
    return (grad_x,)
