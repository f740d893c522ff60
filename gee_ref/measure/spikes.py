"""Spike counts of an evaluation, one batch at a time: paper Table 3 and the R_T of eq. 13.

For LIF layer l with spike trains S [T, N, ...] (0/1), ``SpikeCounts.add`` accumulates the
number of spikes, the number of changes ``sum_t |S_{t+1} - S_t|`` and the number of neurons
(one per sample and unit), so that a CIFAR-sized test split never holds its spike trains in
memory. From the sums:

* firing rate of layer l: spikes / (T * neurons), in [0, 1] (paper Table 3, eq. 17's fr_l);
* spikes per sample: all layers' spikes / samples (paper Table 3);
* eq. 13, temporal difference (reconstruction, DESIGN.md section 4)::

      R_T = mean_l  mean_{n,i} 1/(T-1) sum_t |S^l_{t+1} - S^l_t|  =  mean_l  changes_l / ((T - 1) neurons_l)

  in [0, 1] (1: every neuron flips at every step, 0: constant trains), 0 for T = 1; the
  unweighted mean over layers, so a small layer counts as much as a large one.

A population's spike trains [T, N, P, ...] (DESIGN.md section 2) are counted per individual:
every figure above is then an array [P]. The sums are float64 (a float32 sum of more than 2**24
ones is no longer exact) and stay on the spikes' device until read, so counting costs no GPU
wait per layer and batch.
"""
from __future__ import annotations

import numpy

from gee_ref import backend


class SpikeCounts:
    """Per-LIF-layer sums over the batches of an evaluation (module docstring)."""

    def __init__(self, population_size: int | None = None):
        self.population_size = population_size
        self.names: list[str] = []
        self.spikes: list = []
        self.changes: list = []
        self.neurons: list[int] = []  # per individual
        self.time_steps = None
        self.samples = 0

    def add(self, spike_trains, names=None) -> None:
        """Add one batch: ``spike_trains`` holds one [T, N, ...] array per LIF layer ([T, N, P, ...])."""
        if isinstance(spike_trains, (str, bytes)) or not hasattr(spike_trains, "__len__") or len(spike_trains) == 0:
            raise ValueError("spike_trains must be a non-empty list of [T, N, ...] spike arrays")
        for index, s in enumerate(spike_trains):
            if getattr(s, "ndim", 0) < 2 + (self.population_size is not None) or s.size == 0:
                raise ValueError(f"spike_trains[{index}] must be a non-empty [T, N, ...] array "
                                 f"(with the population axis after N), got shape {getattr(s, 'shape', None)}")
        if not self.spikes:
            count = len(spike_trains)
            self.names = list(names) if names is not None else [f"lif{i}" for i in range(count)]
            self.spikes, self.changes, self.neurons = [0.0] * count, [0.0] * count, [0] * count
        if len(spike_trains) != len(self.spikes):
            raise ValueError(f"got spikes of {len(spike_trains)} layers, expected {len(self.spikes)}")
        individuals = self.population_size or 1
        for i, s in enumerate(spike_trains):
            xp = backend.get_array_module(s)
            if s.dtype.kind in "bui":  # boolean or integer spikes: count their changes in floats
                s = s.astype(xp.float32)
            if self.time_steps is None:
                self.time_steps = int(s.shape[0])
            elif s.shape[0] != self.time_steps:
                raise ValueError(f"layer {i} has {s.shape[0]} time steps, expected {self.time_steps}")
            axes = None if self.population_size is None else (0, 1) + tuple(range(3, s.ndim))
            self.spikes[i] = self.spikes[i] + s.sum(axis=axes, dtype=xp.float64)
            if s.shape[0] > 1:
                self.changes[i] = self.changes[i] + xp.abs(s[1:] - s[:-1]).sum(axis=axes, dtype=xp.float64)
            self.neurons[i] += int(s[0].size) // individuals
        self.samples += int(spike_trains[0].shape[1]) if spike_trains else 0

    def _on_host(self, sums) -> list:
        return [numpy.asarray(backend.to_host(v), dtype=numpy.float64) for v in sums]

    def firing_rates(self) -> list:
        """fr_l per layer (a float, or an array [P] for a population)."""
        return [_plain(s / (self.time_steps * n)) for s, n in zip(self._on_host(self.spikes), self.neurons)]

    def spikes_per_sample_by_layer(self) -> list:
        return [_plain(s / self.samples) for s in self._on_host(self.spikes)]

    def spikes_per_sample(self):
        """Paper Table 3: all layers' spikes per sample."""
        return _plain(sum(self._on_host(self.spikes)) / self.samples)

    def temporal_difference_by_layer(self) -> list:
        """Eq. 13's inner term per layer, changes_l / ((T - 1) neurons_l); 0 for T = 1."""
        if self.time_steps is None or self.time_steps < 2:
            zero = 0.0 if self.population_size is None else numpy.zeros(self.population_size)
            return [zero] * len(self.spikes)
        return [_plain(d / ((self.time_steps - 1) * n)) for d, n in zip(self._on_host(self.changes), self.neurons)]

    def temporal_difference(self):
        """R_T of eq. 13: the mean over layers of each layer's temporal difference."""
        by_layer = self.temporal_difference_by_layer()
        if not by_layer:
            return 0.0
        return _plain(numpy.mean(numpy.stack([numpy.asarray(v, dtype=numpy.float64) for v in by_layer]), axis=0))


def _plain(value):
    """A 0-d result as a Python float; an individual-wise result stays an array [P]."""
    value = numpy.asarray(value, dtype=numpy.float64)
    return float(value) if value.ndim == 0 else value
