"""Theoretical inference energy of a spiking network (paper eq. 17) and spike statistics
(paper Table 3).

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
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from gee_ref import autograd, backend

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


def spikes_per_sample(spike_arrays, batch_size) -> float:
    """Paper Table 3: all spikes of a batch (summed over layers, time steps and neurons)
    divided by the number of samples in it. Arrays (or Tensors) of any layout, e.g. [T, N, ...]."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    return sum(_total(a) for a in _arrays(spike_arrays)) / batch_size


def firing_rates(spike_arrays) -> list:
    """The firing rate of each spiking layer: mean spikes per neuron per time step (per sample)."""
    rates = []
    for index, array in enumerate(_arrays(spike_arrays)):
        if array.size == 0:
            raise ValueError(f"spike array {index} is empty: no firing rate")
        rates.append(_total(array) / array.size)
    return rates


def _arrays(spike_arrays) -> list:
    arrays = [a.data if isinstance(a, autograd.Tensor) else a for a in spike_arrays]
    if not arrays:
        raise ValueError("no spike arrays given")
    return arrays


def _total(array) -> float:
    xp = backend.get_array_module(array)
    return float(xp.sum(array, dtype=xp.float64))


def _nonnegative(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)
