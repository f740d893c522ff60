"""Keep golden LIF inputs away from the places where a spike or a surrogate can flip.

A hard spike S_t = Heaviside(H_t - v_th) changes when H_t crosses v_th, and the rectangular
surrogate (and the soft rectangular spike) has kinks at H_t - v_th = +-alpha/2. A candidate
that computes in float32, or in float64 in another order, lands a few ULPs away from the
golden H_t: near such a point it may fire where gee_ref did not, and the comparison then
says nothing about its arithmetic. Golden inputs are therefore nudged (or, for whole
networks, drawn again) so that every |H_t - v_th - k| over the kinks k is at least a margin.
The reached margin is stored with each case (attribute ``lif_threshold_margin``).
"""
from __future__ import annotations

import math

import numpy

from gee_ref.ops import lif as lif_op
from gee_ref.ops import surrogate as surrogates


def kinks(surrogate: str, alpha: float, soft: bool) -> tuple:
    """Values of H - v_th where the spike or its surrogate is not smooth."""
    points = () if soft else (0.0,)
    if surrogate == "rectangular":
        points += (-0.5 * alpha, 0.5 * alpha)
    return points


def membrane(x_seq, tau, v_th, v_reset, surrogate, alpha, soft):
    """H [T, N, ...] of a LIF layer driven by x_seq: what gee_ref.ops.lif's forward keeps for backward."""
    _, cache = lif_op.forward(x_seq, tau=tau, v_th=v_th, v_reset=v_reset, surrogate=surrogate, alpha=alpha,
                              soft=soft)
    return cache[0]


def margin(h_seq, v_th, points) -> float:
    """min over all H and kinks k of |H - v_th - k| (inf when there is no kink)."""
    if not points:
        return math.inf
    return float(min(numpy.abs(h_seq - v_th - k).min() for k in points))


def nudge(x_seq, tau, v_th, v_reset, surrogate, alpha, soft, distance):
    """A copy of x_seq whose H_t stay at least ``distance`` from every kink.

    Walking t forward, an X_t whose H_t lands within ``distance`` of a kink is moved by
    3 * distance * tau away from it (H_t moves by X_t's change over tau), then the neuron
    steps on with the moved value. Kinks are >= 0.5 apart, far more than 6 * distance.
    """
    points = kinks(surrogate, alpha, soft)
    spike = lif_op.firing_function(surrogates.get(surrogate), alpha, soft)
    x_seq = numpy.array(x_seq, dtype=numpy.float64)
    v = numpy.full_like(x_seq[0], v_reset)
    for t in range(x_seq.shape[0]):
        h = lif_op.charge(v, x_seq[t], tau, v_reset)
        for k in points:
            offset = h - v_th - k
            close = numpy.abs(offset) < distance
            direction = numpy.where(offset >= 0, 1.0, -1.0)
            x_seq[t] = numpy.where(close, x_seq[t] + direction * 3.0 * distance * tau, x_seq[t])
            h = lif_op.charge(v, x_seq[t], tau, v_reset)
        v = lif_op.reset(h, lif_op.fire(h, v_th, spike), v_reset)
    return x_seq
