"""Theoretical inference energy of a spiking network (paper eq. 17).

Eq. 17, per input sample, over the conv and fully connected layers l = 1..L in order::

    E = E_MAC * FLOPs_1  +  E_AC * T * sum_{l>=2} fr_l * FLOPs_l

* ``FLOPs_l``: multiply-accumulates of the dense-equivalent layer for one sample and one time
  step (a genetic layer materialises W = X_out G X_in^T once at inference, so it costs what
  the dense layer costs).
* The first layer reads the analog image, the same at every time step (direct encoding), so
  its MACs are real floating-point MACs and are counted once.
* Every later layer reads spikes: a synapse only works when a spike arrives, and then it adds
  (an accumulate, AC). ``fr_l`` is the layer's input firing rate, i.e. the mean of its input
  over neurons and time steps, so ``T * fr_l * FLOPs_l`` is its number of ACs.
* E_MAC = 4.6 pJ (32-bit float multiply-add) and E_AC = 0.9 pJ (32-bit float add) in 45 nm
  CMOS: M. Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014.

Beside eq. 17, ``energy_report`` gives the cost of forming the genetic weights, which the
paper notes raises the operation count: W = (X_out G) X_in^T of a genetic layer takes
C_out*g*g + C_out*g*fan_in = C_out*g*(g + fan_in) MACs, once per inference pass (not per
sample or time step), at E_MAC each.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


E_MAC = 4.6e-12  # joules per 32-bit float multiply-accumulate (Horowitz 2014, 45 nm)
E_AC = 0.9e-12   # joules per 32-bit float accumulate (Horowitz 2014, 45 nm)


@dataclass(frozen=True)
class EnergyBreakdown:
    """The parts of eq. 17 for one sample (joules, and the operation counts behind them)."""
    mac_joules: float              # E_MAC * FLOPs_1
    ac_joules: float               # E_AC * T * sum_{l>=2} fr_l * FLOPs_l
    per_layer_joules: tuple        # one entry per layer, in the given order; sums to the total
    mac_operations: float          # FLOPs_1
    ac_operations: float           # T * sum_{l>=2} fr_l * FLOPs_l (synaptic operations)


def energy_joules(layers, time_steps, e_mac=E_MAC, e_ac=E_AC):
    """Eq. 17: ``(joules per sample, EnergyBreakdown)``.

    ``layers``: the conv and FC layers in forward order, each ``(macs_per_sample, input_rate)``
    with dense-equivalent MACs per sample per time step; the first layer's rate is ignored
    (it may be None). ``time_steps``: T.
    """
    layers = list(layers)
    if not layers:
        raise ValueError("energy_joules needs at least one layer")
    if isinstance(time_steps, bool) or not isinstance(time_steps, numbers.Integral) or time_steps < 1:
        raise ValueError(f"time_steps must be an integer >= 1, got {time_steps!r}")
    e_mac, e_ac = _nonnegative("e_mac", e_mac), _nonnegative("e_ac", e_ac)
    per_layer, ac_operations = [], 0.0
    for index, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise ValueError(f"layer {index} must be a pair (macs_per_sample, input_rate), got {layer!r}")
        macs = _nonnegative(f"layer {index} macs_per_sample", layer[0])
        if index == 0:
            mac_operations = macs
            per_layer.append(e_mac * macs)
            continue
        rate = _nonnegative(f"layer {index} input_rate", layer[1])
        operations = time_steps * rate * macs
        ac_operations += operations
        per_layer.append(e_ac * operations)
    breakdown = EnergyBreakdown(mac_joules=per_layer[0], ac_joules=e_ac * ac_operations,
                                per_layer_joules=tuple(per_layer), mac_operations=mac_operations,
                                ac_operations=ac_operations)
    return breakdown.mac_joules + breakdown.ac_joules, breakdown


def encoding_macs(genetic_layers) -> int:
    """MACs of forming every genetic layer's W = (X_out G) X_in^T once: sum of C_out*g*(g + fan_in)."""
    return sum(layer.out_features * layer.genes * (layer.genes + layer.fan_in) for layer in genetic_layers)


def energy_report(macs, input_rates, time_steps, genetic_layers=()) -> dict:
    """Paper eq. 17 over the weight layers, in joules and millijoules, with its inputs; and the
    once-per-pass cost of forming the genetic weights (module docstring)."""
    joules, parts = energy_joules(list(zip(macs, input_rates)), time_steps)
    forming = encoding_macs(genetic_layers)
    return {"joules": float(joules), "millijoules": float(joules) * 1e3, "time_steps": time_steps,
            "mac_joules": parts.mac_joules, "ac_joules": parts.ac_joules,
            "mac_operations": parts.mac_operations, "ac_operations": parts.ac_operations,
            "layers": [{"macs_per_sample_per_step": m, "input_rate": r, "joules": j}
                       for m, r, j in zip(macs, input_rates, parts.per_layer_joules)],
            "encoding_macs_per_pass": forming, "encoding_joules_per_pass": E_MAC * forming}


def _nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
