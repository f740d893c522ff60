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

Every neuron runs on its own, so on the CPU both passes walk the neurons in blocks of
``BLOCK`` and run the whole time loop on one block before the next: the block's membrane,
spikes and temporaries stay in the cache, and each large array ([T, N, ...]: the input, H,
the spikes, the gradients) is read or written once. Unblocked, every line above is a pass
over all neurons of a step, with temporaries larger than the cache (measured: the digits
net on 32x32 images at batch 128 spent 44% of its step in LIF; in blocks its first LIF layer
takes half the time, 50 against 90-98 ms forward and backward on one core). The
lines are evaluated in the same order with the same roundings (``out=`` only chooses where
a result goes), and the outputs keep the input's memory layout, so the numbers do not
depend on the blocks. On a GPU one block holds every neuron.
"""
from __future__ import annotations

from typing import NamedTuple

from gee_ref import backend
from gee_ref.ops import surrogate as surrogates


#: Neurons per block on the CPU: 2^18, 1 MiB of float32 per array. Forward and backward keep
#: about eight such arrays in flight, which stay in a 32 MiB L3 cache; smaller blocks pay
#: NumPy's per-call overhead more often (measured on this project's 2-core EPYC: fastest of
#: 2^12 to 2^20; at 2^13 slower than no blocks at all).
BLOCK = 2 ** 18


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


def charge(v_prev, x, tau, v_reset, out=None):
    """H_t = V_{t-1} + (X_t - (V_{t-1} - v_reset)) / tau (written to ``out`` when given)."""
    if out is None:
        return v_prev + (x - (v_prev - v_reset)) / tau
    xp = backend.get_array_module(x)
    xp.subtract(v_prev, v_reset, out=out)
    xp.subtract(x, out, out=out)
    xp.divide(out, tau, out=out)
    return xp.add(v_prev, out, out=out)


def fire(h, v_th, spike_function):
    """S_t = spike_function(H_t - v_th): Heaviside (hard) or the surrogate's primitive (soft)."""
    return spike_function(h - v_th)


def reset(h, s, v_reset, out=None, scratch=None):
    """V_t = H_t (1 - S_t) + v_reset S_t (hard reset); with ``out``, ``scratch`` is a same-shaped buffer."""
    if out is None:
        return h * (1.0 - s) + v_reset * s
    xp = backend.get_array_module(h)
    xp.subtract(1.0, s, out=out)
    xp.multiply(h, out, out=out)
    xp.multiply(v_reset, s, out=scratch)
    return xp.add(out, scratch, out=out)


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


def neuron_blocks(xp, neurons):
    """Index tuples into [N, F] (F: the neurons of one sample) that cover it in blocks of about
    ``BLOCK`` neurons on the CPU (a few samples, or a part of one sample), in one block on a GPU."""
    samples, features = neurons
    if xp.__name__ != "numpy":
        return [(slice(None), slice(None))]
    if features >= BLOCK:
        return [(n, slice(f, f + BLOCK)) for n in range(samples) for f in range(0, features, BLOCK)]
    rows = BLOCK // max(features, 1)
    return [(slice(n, n + rows), slice(None)) for n in range(0, samples, rows)]


def _samples_by_neurons(a):
    """[T, N, ...] as [T, N, F] (a view whenever the array allows; the layout is kept)."""
    return a.reshape(a.shape[:2] + (-1,))


def forward(x_seq, tau=2.0, v_th=1.0, v_reset=0.0, surrogate="sigmoid", alpha=None,
            detach_reset=False, soft=False):
    """Spikes [T, N, ...] of a LIF layer driven by x_seq [T, N, ...].

    ``alpha=None`` takes the surrogate's default (sigmoid 4, atan 2, rectangular 1).
    """
    sg, alpha = checked_arguments(x_seq, tau, surrogate, alpha)
    xp = backend.get_array_module(x_seq)
    spike_function = firing_function(sg, alpha, soft)
    x3 = _samples_by_neurons(x_seq)
    h_seq = xp.empty_like(x3)  # the input's memory layout: it decides the rounding of the next product
    s_seq = xp.empty_like(x3)
    for block in neuron_blocks(xp, x3.shape[1:]):
        v = xp.full_like(x3[(0,) + block], v_reset)
        scratch = xp.empty_like(v)
        for t in range(x3.shape[0]):
            at = (t,) + block
            h = charge(v, x3[at], tau, v_reset, out=h_seq[at])
            s_seq[at] = fire(h, v_th, spike_function)
            reset(h, s_seq[at], v_reset, out=v, scratch=scratch)
    return s_seq.reshape(x_seq.shape), Cache(h_seq.reshape(x_seq.shape), tau, v_th, v_reset, sg, alpha,
                                             detach_reset, soft)


def backward(grad, cache):
    """dL/dX [T, N, ...] by BPTT (module docstring); S_t is recomputed from the cached H."""
    h_seq, tau, v_th, v_reset, sg, alpha, detach_reset, soft = cache
    xp = backend.get_array_module(h_seq)
    spike_function = firing_function(sg, alpha, soft)
    h3, grad3 = _samples_by_neurons(h_seq), _samples_by_neurons(grad)
    grad_x = xp.empty_like(h3)
    for block in neuron_blocks(xp, h3.shape[1:]):
        grad_v = xp.zeros_like(h3[(0,) + block])  # dL/dV_t arriving from step t+1
        grad_s, grad_h = xp.empty_like(grad_v), xp.empty_like(grad_v)
        for t in reversed(range(h3.shape[0])):
            at = (t,) + block
            h = h3[at]
            s = fire(h, v_th, spike_function)
            if detach_reset:
                grad_s[...] = grad3[at]
            else:  # dL/dS_t = g_t + dL/dV_t (v_reset - H_t)
                xp.multiply(grad_v, xp.subtract(v_reset, h, out=grad_s), out=grad_s)
                xp.add(grad3[at], grad_s, out=grad_s)
            # dL/dH_t = dL/dS_t p'(H_t - v_th) + dL/dV_t (1 - S_t)
            xp.multiply(grad_s, sg.derivative(h - v_th, alpha), out=grad_h)
            xp.multiply(grad_v, xp.subtract(1.0, s, out=s), out=s)
            xp.add(grad_h, s, out=grad_h)
            xp.divide(grad_h, tau, out=grad_x[at])                 # dL/dX_t = dL/dH_t / tau
            xp.multiply(grad_h, 1.0 - 1.0 / tau, out=grad_v)       # dL/dV_{t-1} = dL/dH_t (1 - 1/tau)
    return (grad_x.reshape(h_seq.shape),)
