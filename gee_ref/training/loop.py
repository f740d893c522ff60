"""The training loop and the evaluation pass, shared by ``python -m gee_ref.train`` and the
evolution's fitness (DESIGN.md section 5).

* ``train_steps``: mini-batch gradient descent on the cross-entropy of the spiking readout
  (DESIGN.md section 3: mean over t of the last layer, then cross-entropy), for a number of
  epochs or of steps, with an optional learning-rate schedule. It stops before the first
  update whose loss or gradient is NaN or infinite and says so (the evolution ranks such an
  individual last).
* ``evaluate``: loss and accuracy without gradients; optionally Gaussian input noise whose
  norm is a fraction of each input's norm (paper section 4.2), and optionally the spike
  statistics of every LIF layer, accumulated batch by batch (``SpikeStatistics``) so that
  a CIFAR-sized test split never holds its spike trains in memory:
  spikes per sample and firing rates (paper Table 3), the input firing rate of every
  weight layer (paper eq. 17) and the temporal difference R_T (DESIGN.md eq. 13).
* ``make_optimizer``: SGD (momentum, Nesterov) or AdamW, with weight decay only on the
  weight matrices (parameters with 2 or more axes: conv and linear weights, and the
  genetic layers' X_out, X_in and G; never BatchNorm's scale and shift or biases).
"""
from __future__ import annotations

import math
import time

import numpy

from gee_ref import autograd, backend
from gee_ref.autograd import functional as F
from gee_ref.optim import SGD, AdamW


# ---------------------------------------------------------------------------- training

def _positive_count(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _progress_bar(progress, total, description):
    """A tqdm bar when ``progress`` is true, else None."""
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=description, leave=False, unit="batch", dynamic_ncols=True)


def train_steps(model, loader, optimizer, steps=None, epochs=None, schedule=None, start_step=0,
                progress=False) -> dict:
    """Train ``model`` in place on batches from ``loader``.

    Runs ``epochs`` full passes (default 1 when ``steps`` is None) and at most ``steps``
    optimiser updates, whichever ends first. A pass starts at ``loader.epoch``; each
    completed pass advances ``loader.epoch`` by one (so the next call continues with the
    next epoch's shuffle). With a ``schedule`` (``lr_at(step)``), update number i uses
    ``lr_at(start_step + i)``.

    Returns ``dict(loss, accuracy, steps, samples, seconds, nonfinite)``: mean training
    cross-entropy and accuracy over the samples seen, number of updates done, and
    ``nonfinite=True`` when a loss or a gradient came out NaN or infinite: training then
    stopped before that update, and ``loss`` is the non-finite loss (NaN for a gradient).
    """
    steps, epochs = _positive_count("steps", steps), _positive_count("epochs", epochs)
    if isinstance(start_step, bool) or int(start_step) != start_step or start_step < 0:
        raise ValueError(f"start_step must be an integer >= 0, got {start_step!r}")
    if steps is None and epochs is None:
        epochs = 1
    if len(loader) == 0:
        raise ValueError("the loader yields no batch (fewer samples than one batch with drop_last)")
    planned = [n for n in (steps, None if epochs is None else epochs * len(loader)) if n is not None]
    bar = _progress_bar(progress, min(planned), "train")
    model.train()
    loss_sum, correct, seen, done, passes = 0.0, 0, 0, 0, 0
    nonfinite_loss = None
    started = time.perf_counter()
    try:
        while (epochs is None or passes < epochs) and (steps is None or done < steps) and nonfinite_loss is None:
            batches_this_pass = 0
            for x, y in loader:
                if schedule is not None:
                    optimizer.lr = schedule.lr_at(start_step + done)
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad()
                loss.backward()
                value, finite, right = _step_summary(loss, model, logits.data, y)
                if not finite:
                    # a NaN can hide from the loss (a Heaviside step maps NaN to "no spike")
                    # but not from the gradients: stop before it reaches the weights
                    nonfinite_loss = value if not math.isfinite(value) else math.nan
                    break
                optimizer.step()
                n = int(y.shape[0])
                loss_sum += value * n
                correct += right
                seen += n
                done += 1
                batches_this_pass += 1
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
                if steps is not None and done >= steps:
                    break
            if batches_this_pass == len(loader):  # a complete pass: the next one is a new epoch
                passes += 1
                loader.set_epoch(loader.epoch + 1)
    finally:
        if bar is not None:
            bar.close()
    return {
        "loss": nonfinite_loss if nonfinite_loss is not None else (loss_sum / seen if seen else float("nan")),
        "accuracy": correct / seen if seen else float("nan"),
        "steps": done,
        "samples": seen,
        "seconds": time.perf_counter() - started,
        "nonfinite": nonfinite_loss is not None,
    }


def _step_summary(loss, model, logits, labels) -> tuple[float, bool, int]:
    """(loss, loss and every gradient finite, correct predictions) of one training step,
    read from the device in one host sync."""
    xp = backend.get_array_module(loss.data)
    finite = xp.isfinite(loss.data)
    for p in model.parameters():
        if p.grad is not None:
            finite = finite & xp.isfinite(p.grad).all()
    correct = (xp.argmax(logits, axis=1) == xp.asarray(labels)).sum()
    value, all_finite, right = backend.to_host(xp.stack([loss.data.astype(xp.float64), finite.astype(xp.float64),
                                                         correct.astype(xp.float64)])).tolist()
    return value, bool(all_finite), int(right)


# ---------------------------------------------------------------------------- spike statistics

class SpikeStatistics:
    """Per-LIF-layer sums over an evaluation, one batch of spike trains at a time.

    For layer l with spike trains S [T, N, ...] (0/1) it accumulates the number of spikes,
    ``sum_t |S_{t+1} - S_t|`` and the number of neurons N * prod(...) (one per sample and
    unit). From these:

    * firing rate of layer l: spikes / (T * neurons), in [0, 1];
    * spikes per sample: all layers' spikes / samples (paper Table 3);
    * temporal difference of layer l: the DESIGN.md eq. 13 inner term,
      ``mean_{n,i} 1/(T-1) sum_t |S_{t+1} - S_t|`` = diffs / ((T - 1) * neurons), and R_T as
      the mean over layers. With T = 1 there is no transition and R_T is 0.
    """

    def __init__(self):
        self.names: list[str] = []
        self.spikes: list[float] = []
        self.transitions: list[float] = []
        self.neurons: list[int] = []
        self.time_steps = None
        self.samples = 0

    def add(self, spike_trains, names=None) -> None:
        """Add one batch: ``spike_trains`` is a list, one [T, N, ...] array per LIF layer."""
        if not self.spikes:
            count = len(spike_trains)
            self.names = list(names) if names is not None else [f"lif{i}" for i in range(count)]
            self.spikes, self.transitions, self.neurons = [0.0] * count, [0.0] * count, [0] * count
        if len(spike_trains) != len(self.spikes):
            raise ValueError(f"got spikes of {len(spike_trains)} layers, expected {len(self.spikes)}")
        for i, s in enumerate(spike_trains):
            xp = backend.get_array_module(s)
            if self.time_steps is None:
                self.time_steps = int(s.shape[0])
            elif s.shape[0] != self.time_steps:
                raise ValueError(f"layer {i} has {s.shape[0]} time steps, expected {self.time_steps}")
            # float64 sums (a float32 sum of more than 2**24 ones is no longer exact), kept on
            # the spikes' device until read: no GPU wait per layer and batch
            self.spikes[i] = self.spikes[i] + s.sum(dtype=xp.float64)
            if s.shape[0] > 1:
                self.transitions[i] = self.transitions[i] + xp.abs(s[1:] - s[:-1]).sum(dtype=xp.float64)
            self.neurons[i] += int(s[0].size)
        self.samples += int(spike_trains[0].shape[1]) if spike_trains else 0

    @staticmethod
    def _floats(sums) -> list:
        return [float(backend.to_host(v)) for v in sums]

    def firing_rates(self) -> list:
        return [s / (self.time_steps * n) for s, n in zip(self._floats(self.spikes), self.neurons)]

    def spikes_per_sample(self) -> float:
        return sum(self._floats(self.spikes)) / self.samples

    def spikes_per_sample_by_layer(self) -> list:
        return [s / self.samples for s in self._floats(self.spikes)]

    def temporal_difference_by_layer(self) -> list:
        if self.time_steps is None or self.time_steps < 2:
            return [0.0] * len(self.spikes)
        return [d / ((self.time_steps - 1) * n) for d, n in zip(self._floats(self.transitions), self.neurons)]

    def temporal_difference(self) -> float:
        """R_T of DESIGN.md eq. 13: the mean over layers of each layer's mean temporal difference."""
        by_layer = self.temporal_difference_by_layer()
        return float(numpy.mean(by_layer)) if by_layer else 0.0


# ---------------------------------------------------------------------------- evaluation

def evaluate(model, loader, record=False, noise_ratio=None, rng=None, keep_spikes=False) -> dict:
    """Loss and accuracy of ``model`` over one pass of ``loader`` (eval mode, no gradients).

    ``noise_ratio``: add to every input x Gaussian noise scaled so that its norm is
    ``noise_ratio * ||x||`` per sample (paper section 4.2, ``gee_ref.data.noise``), drawn from
    ``rng`` (default: a generator seeded with 0 on the batches' device). The noise is
    added to the network's input, i.e. the normalised image.

    Returns ``dict(loss, accuracy, samples, seconds)``; with ``record=True`` also
    ``spikes_per_sample``, ``spikes_per_sample_by_layer``, ``firing_rates`` and
    ``layer_names`` (one per LIF layer), ``temporal_difference`` (R_T, DESIGN.md eq. 13) and
    ``temporal_difference_by_layer``, ``input_rates`` and ``macs`` (one per weight layer:
    its mean input firing rate over the samples, and its dense-equivalent MACs per sample
    per time step, the two inputs of paper eq. 17), and ``time_steps``. With
    ``keep_spikes=True`` (small data only) also ``spike_arrays``: host arrays [T, N, ...]
    per LIF layer, concatenated over batches.
    """
    if noise_ratio is not None:
        from gee_ref.data.noise import add_relative_gaussian_noise
    model.eval()
    if record:
        model.record(True)
    statistics = SpikeStatistics()
    lif_layers = model.lif_layers() if record else []
    kept = [[] for _ in lif_layers]  # host spike arrays per layer, with keep_spikes
    module_names = {id(m): name for name, m in model.named_modules()}
    names = [module_names.get(id(m)) or f"lif{i}" for i, m in enumerate(lif_layers)]
    layers = model.weight_layers() if record else []
    rate_sums = [0.0] * len(layers)
    loss_sum, correct, seen = 0.0, 0, 0
    started = time.perf_counter()
    try:
        with autograd.no_grad():
            for x, y in loader:
                if noise_ratio is not None:
                    if rng is None:
                        rng = backend.rng(0)
                    x = add_relative_gaussian_noise(x, ratio=noise_ratio, rng=rng)
                logits = model(x)
                n = int(y.shape[0])
                xp = backend.get_array_module(logits.data)  # sums stay on the device until the end
                loss_sum = loss_sum + F.cross_entropy(logits, y).data.astype(xp.float64) * n
                correct = correct + (xp.argmax(logits.data, axis=1) == xp.asarray(y)).sum()
                seen += n
                if record:
                    trains = [m.last_spikes for m in lif_layers]
                    trains = [t.data if isinstance(t, autograd.Tensor) else t for t in trains]
                    statistics.add(trains, names)
                    for i, layer in enumerate(layers):
                        rate_sums[i] = rate_sums[i] + layer.last_input_mean * n  # stays on the device
                    if keep_spikes:
                        for pieces, train in zip(kept, trains):
                            pieces.append(backend.to_host(train))
        loss_sum, correct = float(backend.to_host(loss_sum)), int(backend.to_host(correct))  # waits for the GPU
        seconds = time.perf_counter() - started
    finally:
        if record:
            model.record(False)
    if seen == 0:
        raise ValueError("the evaluation loader yields no batch")
    result = {"loss": loss_sum / seen, "accuracy": correct / seen, "samples": seen, "seconds": seconds}
    if record:
        result.update({
            "layer_names": statistics.names,
            "time_steps": statistics.time_steps,
            "spikes_per_sample": statistics.spikes_per_sample(),
            "spikes_per_sample_by_layer": statistics.spikes_per_sample_by_layer(),
            "firing_rates": statistics.firing_rates(),
            "temporal_difference": statistics.temporal_difference(),
            "temporal_difference_by_layer": statistics.temporal_difference_by_layer(),
            "input_rates": [float(backend.to_host(r)) / seen for r in rate_sums],
            "macs": [float(layer.last_macs_per_sample) for layer in layers],
        })
        if keep_spikes:
            result["spike_arrays"] = [numpy.concatenate(k, axis=1) for k in kept]
    return result


# ---------------------------------------------------------------------------- optimiser

def decayed_and_other(model):
    """Split the parameters: ``(weight matrices, everything else)``, see the module docstring."""
    decayed, other = [], []
    for p in model.parameters():
        (decayed if p.data.ndim >= 2 else other).append(p)
    return decayed, other


class ParameterGroups:
    """Several optimisers that act as one (one lr, one step), e.g. with and without decay.

    ``state_dict`` prefixes each member's keys with ``<index>.`` (e.g. ``0.momentum_buffer.3``).
    """

    def __init__(self, optimizers):
        self.optimizers = list(optimizers)

    @property
    def lr(self) -> float:
        return self.optimizers[0].lr

    @lr.setter
    def lr(self, value) -> None:
        for opt in self.optimizers:
            opt.lr = value

    def zero_grad(self) -> None:
        for opt in self.optimizers:
            opt.zero_grad()

    def step(self) -> None:
        for opt in self.optimizers:
            opt.step()

    def state_dict(self) -> dict:
        return {f"{i}.{key}": value for i, opt in enumerate(self.optimizers)
                for key, value in opt.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        parts = [{} for _ in self.optimizers]
        for key, value in state.items():
            index, _, name = key.partition(".")
            if not index.isdigit() or int(index) >= len(parts):
                raise ValueError(f"optimiser state has an unknown entry {key!r}")
            parts[int(index)][name] = value
        for opt, part in zip(self.optimizers, parts):
            opt.load_state_dict(part)


def make_optimizer(model, name="sgd", lr=0.1, weight_decay=5e-4, momentum=0.9, nesterov=True):
    """SGD (momentum, Nesterov) or AdamW over ``model``'s parameters; weight decay on the
    weight matrices only (``decayed_and_other``)."""
    decayed, other = decayed_and_other(model)
    groups = [(decayed, weight_decay), (other, 0.0)]
    groups = [(params, wd) for params, wd in groups if params]
    if name == "sgd":
        members = [SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
                   for params, wd in groups]
    elif name == "adamw":
        members = [AdamW(params, lr=lr, weight_decay=wd) for params, wd in groups]
    else:
        raise ValueError(f"unknown optimizer {name!r}: expected sgd or adamw")
    return ParameterGroups(members)
