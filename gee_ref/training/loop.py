"""The training loop and the evaluation pass, for one network or a stacked population.

* ``train_steps``: mini-batch gradient descent on the cross-entropy of the spiking readout
  (DESIGN.md section 3: mean over t of the last layer, then cross-entropy), for a number of
  epochs or of steps, with an optional learning-rate schedule. It stops before the first
  update whose loss or gradient is NaN or infinite and says so (the evolution ranks such an
  individual last).
* ``evaluate``: loss and accuracy without gradients, over the whole loader or its first
  ``max_batches`` batches; optionally Gaussian input noise whose norm is a fraction of each
  input's norm (paper section 4.2), and optionally the spike counts of every LIF layer
  (``gee_ref.measure.spikes``: spikes per sample and firing rates of paper Table 3, eq. 13's
  R_T) and the input firing rate of every weight layer (paper eq. 17).

A stacked population (``gee_ref.nn.population``, DESIGN.md section 2) runs through the same
code: its loss is one value per individual, [P], whose sum is differentiated (each individual
gets exactly its own gradient); an individual whose loss or gradient turns NaN or infinite
stops before that update (its slice of every parameter is put back) while the others go on;
and the results are one record per individual. One network is the case without that axis.
Every figure of a step is read from the device in one host sync.
"""
from __future__ import annotations

import math
import time

import numpy

from gee_ref import backend
from gee_ref.autograd import functional as F
from gee_ref.autograd import no_grad
from gee_ref.data.noise import add_relative_gaussian_noise
from gee_ref.measure.spikes import SpikeCounts
from gee_ref.training.progress import Progress


def _positive_count(name, value):
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _individuals(model) -> tuple:
    """The shape of one figure per individual: () for one network, (P,) for a population."""
    size = getattr(model, "population_size", None)
    return () if size is None else (int(size),)


#: The entries of a result that hold one figure per individual (per layer for the lists).
PER_INDIVIDUAL = ("loss", "accuracy", "steps", "samples", "nonfinite", "spikes_per_sample", "spikes_per_sample_by_layer",
                  "firing_rates", "temporal_difference", "temporal_difference_by_layer", "input_rates")


def _per_individual(model, record: dict):
    """A result dict as it is for one network, or split into one dict per individual."""
    if not _individuals(model):
        return record

    def pick(value, p):
        if isinstance(value, list):
            return [pick(item, p) for item in value]
        return value[p].item() if isinstance(value, numpy.ndarray) and value.ndim == 1 else value

    return [{k: (pick(v, p) if k in PER_INDIVIDUAL else v) for k, v in record.items()}
            for p in range(_individuals(model)[0])]


# ---------------------------------------------------------------------------- training

def train_steps(model, loader, optimizer, steps=None, epochs=None, schedule=None, start_step=0,
                progress="off", description="train"):
    """Train ``model`` in place on batches from ``loader``.

    Runs ``epochs`` full passes (default 1 when ``steps`` is None) and at most ``steps``
    optimiser updates, whichever ends first. A pass starts at ``loader.epoch``; each
    completed pass advances ``loader.epoch`` by one (so the next call continues with the
    next epoch's shuffle). With a ``schedule`` (``lr_at(step)``), update number i uses
    ``lr_at(start_step + i)``. ``progress``: a mode of ``gee_ref.training.progress``.

    Returns ``dict(loss, accuracy, steps, samples, seconds, nonfinite)``: mean training
    cross-entropy and accuracy over the samples seen, number of updates done, and
    ``nonfinite=True`` when a loss or a gradient came out NaN or infinite: training then
    stopped before that update, and ``loss`` is the non-finite loss (NaN for a gradient).
    A population gets one such dict per individual.
    """
    steps, epochs = _positive_count("steps", steps), _positive_count("epochs", epochs)
    if isinstance(start_step, bool) or int(start_step) != start_step or start_step < 0:
        raise ValueError(f"start_step must be an integer >= 0, got {start_step!r}")
    if steps is None and epochs is None:
        epochs = 1
    if len(loader) == 0:
        raise ValueError("the loader yields no batch (fewer samples than one batch with drop_last)")
    planned = min(n for n in (steps, None if epochs is None else epochs * len(loader)) if n is not None)
    shape = _individuals(model)
    alive = numpy.ones(shape, dtype=bool)
    failed_loss = numpy.full(shape, math.nan)
    loss_sum, correct = numpy.zeros(shape), numpy.zeros(shape, dtype=numpy.int64)
    seen, updates = numpy.zeros(shape, dtype=numpy.int64), numpy.zeros(shape, dtype=numpy.int64)
    done, passes = 0, 0
    model.train()
    started = time.perf_counter()
    with Progress(planned, description, "step", progress) as shown:
        while (epochs is None or passes < epochs) and (steps is None or done < steps) and alive.any():
            batches_this_pass = 0
            for x, y in loader:
                if schedule is not None:
                    optimizer.lr = schedule.lr_at(start_step + done)
                logits = model(x)
                losses = F.cross_entropy(logits, y)
                optimizer.zero_grad()
                (losses if not shape else F.sum(losses)).backward()
                values, finite, right = _step_summary(losses.data, model, logits.data, y)
                # a NaN can hide from the loss (a Heaviside step maps NaN to "no spike")
                # but not from the gradients: stop before it reaches the weights
                failing = alive & ~finite
                failed_loss = numpy.where(failing, numpy.where(numpy.isfinite(values), math.nan, values), failed_loss)
                alive = alive & finite
                if not alive.any():
                    break
                kept = _frozen_slices(model, alive) if not alive.all() else None
                optimizer.step()
                if kept is not None:
                    _restore(kept)
                n = int(y.shape[0])
                loss_sum += numpy.where(alive, values * n, 0.0)
                correct += numpy.where(alive, right, 0)
                seen += numpy.where(alive, n, 0)
                updates += alive
                done += 1
                batches_this_pass += 1
                shown.update(images=n, loss=float(numpy.sum(loss_sum) / max(int(numpy.sum(seen)), 1)))
                if steps is not None and done >= steps:
                    break
            if batches_this_pass == len(loader):  # a complete pass: the next one is a new epoch
                passes += 1
                loader.set_epoch(loader.epoch + 1)
    with numpy.errstate(invalid="ignore", divide="ignore"):
        result = {"loss": numpy.where(alive, loss_sum / seen, failed_loss),
                  "accuracy": numpy.where(seen > 0, correct / numpy.maximum(seen, 1), math.nan),
                  "steps": updates, "samples": seen, "nonfinite": ~alive}
    result = {k: (v.item() if v.ndim == 0 else v) for k, v in result.items()}
    result["seconds"] = time.perf_counter() - started
    return _per_individual(model, result)


def _step_summary(losses, model, logits, labels):
    """(loss, loss and every gradient finite, correct predictions) of one training step, per
    individual (host arrays of shape () or [P]), read from the device in one host sync."""
    xp = backend.get_array_module(losses)
    shape = _individuals(model)
    finite = xp.isfinite(losses)
    for p in model.parameters():
        if p.grad is not None:
            finite = finite & xp.isfinite(p.grad).reshape(shape + (-1,)).all(axis=-1)
    hits = (xp.argmax(logits, axis=-1) == xp.asarray(labels).reshape((-1,) + (1,) * len(shape))).sum(axis=0)
    host = backend.to_host(xp.stack([losses.astype(xp.float64), finite.astype(xp.float64), hits.astype(xp.float64)]))
    return host[0], host[1].astype(bool), host[2].astype(numpy.int64)


def _frozen_slices(model, alive):
    """The parameter slices of the individuals that stopped, to put back after an update."""
    xp = backend.get_array_module(model.parameters()[0].data)
    frozen = xp.asarray(~alive)
    return [(p, frozen, p.data[frozen].copy()) for p in model.parameters()]


def _restore(kept) -> None:
    for p, frozen, old in kept:
        p.data[frozen] = old


# ---------------------------------------------------------------------------- evaluation

def evaluate(model, loader, record=False, noise_ratio=None, rng=None, keep_spikes=False, max_batches=None) -> dict:
    """Loss and accuracy of ``model`` over one pass of ``loader`` (eval mode, no gradients).

    ``max_batches``: stop after that many batches (a quick evaluation); the result's
    ``batches`` and ``samples`` say how much was seen. ``noise_ratio``: add to every input x
    Gaussian noise scaled so that its norm is ``noise_ratio * ||x||`` per sample (paper section
    4.2, ``gee_ref.data.noise``), drawn from ``rng`` (default: a generator seeded with 0). The
    noise is added to the network's input, i.e. the normalised image.

    Returns ``dict(loss, accuracy, samples, batches, seconds)``; with ``record=True`` also
    ``spikes_per_sample``, ``spikes_per_sample_by_layer``, ``firing_rates`` and
    ``layer_names`` (one per LIF layer), ``temporal_difference`` (R_T, eq. 13) and
    ``temporal_difference_by_layer``, ``input_rates`` and ``macs`` (one per weight layer:
    its mean input firing rate over the samples, and its dense-equivalent MACs per sample
    per time step, the two inputs of paper eq. 17), and ``time_steps``. With
    ``keep_spikes=True`` (small data only) also ``spike_arrays``: host arrays [T, N, ...]
    per LIF layer, concatenated over batches. A population gets one such dict per individual.
    """
    max_batches = _positive_count("max_batches", max_batches)
    if keep_spikes and _individuals(model):
        raise ValueError("keep_spikes is for one network, not a population")
    model.eval()
    if record:
        model.record(True)
    shape = _individuals(model)
    counts = SpikeCounts(shape[0] if shape else None)
    lif_layers = model.lif_layers() if record else []
    kept = [[] for _ in lif_layers]  # host spike arrays per layer, with keep_spikes
    module_names = {id(m): name for name, m in model.named_modules()}
    names = [module_names.get(id(m)) or f"lif{i}" for i, m in enumerate(lif_layers)]
    layers = model.weight_layers() if record else []
    rate_sums = [0.0] * len(layers)
    loss_sum, correct, seen, batches = 0.0, 0, 0, 0
    started = time.perf_counter()
    try:
        with no_grad():
            for x, y in loader:
                if max_batches is not None and batches >= max_batches:
                    break
                if noise_ratio is not None:
                    rng = backend.rng(0) if rng is None else rng
                    x = add_relative_gaussian_noise(x, ratio=noise_ratio, rng=rng)
                logits = model(x)
                n = int(y.shape[0])
                xp = backend.get_array_module(logits.data)  # sums stay on the device until the end
                loss_sum = loss_sum + F.cross_entropy(logits, y).data.astype(xp.float64) * n
                labels = xp.asarray(y).reshape((-1,) + (1,) * len(shape))
                correct = correct + (xp.argmax(logits.data, axis=-1) == labels).sum(axis=0)
                seen += n
                batches += 1
                if record:
                    trains = [m.last_spikes for m in lif_layers]
                    counts.add(trains, names)
                    for i, layer in enumerate(layers):
                        rate_sums[i] = rate_sums[i] + layer.last_input_mean * n  # stays on the device
                    if keep_spikes:
                        for pieces, train in zip(kept, trains):
                            pieces.append(backend.to_host(train))
        loss_sum, correct = backend.to_host(loss_sum), backend.to_host(correct)  # waits for the GPU
        seconds = time.perf_counter() - started
    finally:
        if record:
            model.record(False)
    if seen == 0:
        raise ValueError("the evaluation loader yields no batch")
    result = {"loss": numpy.asarray(loss_sum, dtype=numpy.float64) / seen,
              "accuracy": numpy.asarray(correct, dtype=numpy.float64) / seen,
              "samples": seen, "batches": batches, "seconds": seconds}
    result = {k: (v.item() if isinstance(v, numpy.ndarray) and v.ndim == 0 else v) for k, v in result.items()}
    if record:
        result.update({
            "layer_names": counts.names,
            "time_steps": counts.time_steps,
            "spikes_per_sample": counts.spikes_per_sample(),
            "spikes_per_sample_by_layer": counts.spikes_per_sample_by_layer(),
            "firing_rates": counts.firing_rates(),
            "temporal_difference": counts.temporal_difference(),
            "temporal_difference_by_layer": counts.temporal_difference_by_layer(),
            "input_rates": [_host_value(r) / seen for r in rate_sums],
            "macs": [float(layer.last_macs_per_sample) for layer in layers],
        })
        if keep_spikes:
            result["spike_arrays"] = [numpy.concatenate(k, axis=1) for k in kept]
    return _per_individual(model, result)


def _host_value(value):
    value = numpy.asarray(backend.to_host(value), dtype=numpy.float64)
    return float(value) if value.ndim == 0 else value
