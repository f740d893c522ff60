"""A whole CMA-ES generation evaluated at once: the population stacked along a leading axis P.

``evaluate_population(tasks)`` returns the records ``[evaluate_individual(t) for t in tasks]``
(DESIGN.md section 5; eq. 16 with eq. 13's R_T and eq. 14-15's R_S), computed together:

* each individual's phenotype is built exactly as ``gee_ref.evolution.individual`` builds it (same seeds,
  same encodings drawn with its sigmas, eq. 9), then its parameters and BN statistics are
  stacked: X_out [P, C_out, g], G [P, g, g], X_in [P, fan_in, g], gamma [P, C], ...;
* activations carry the population on their second axis, [B, P, ...] (B = N, or T*N after
  the repeat in time), so every individual sees the same batches (the generation's common
  random numbers) while its genetic convolutions and linear layers (eq. 1, 4-5 by batched
  matmul, ``ops.population_genetic_path``; each layer takes the path an individual's layer
  would take), batch norm statistics (per individual and channel) and LIF neurons
  (elementwise) stay its own;
* the loss is the sum over individuals of each one's mean cross-entropy, so the gradient in
  individual p's parameters is exactly its own, and SGD (elementwise) updates each slice as
  the individual's own optimiser would;
* an individual whose loss or gradient turns NaN or infinite stops before that update, as in
  ``training.train_steps``: its slice is frozen from then on, the others go on.

Only sequential networks whose stem starts with a genetic convolution and which are made of
genetic conv/linear layers, BatchNorm, LIF and Flatten are supported (the digits net with
every layer genetic, the evolution's default); anything else is a ValueError. The records' ``seconds``
is the wall time of the whole population divided by its size.
"""
from __future__ import annotations

import math
import time

import numpy

from gee_ref import autograd, backend
from gee_ref.autograd import functional as F
from gee_ref.autograd import apply
from gee_ref.nn.genetic import GeneticConv2d, GeneticLinear
from gee_ref.nn.lif import LIF
from gee_ref.nn.module import Parameter, Sequential
from gee_ref.nn.norm import BatchNorm
from gee_ref.nn.pool import Flatten
from gee_ref.ops import (population_batch_norm, population_conv2d, population_cross_entropy,
                         population_linear)
from gee_ref.optim import SGD
from gee_ref.training.loop import ParameterGroups


def _layers(module) -> list:
    """The leaf modules of nested Sequentials, in forward order."""
    if isinstance(module, Sequential):
        return [leaf for child in module.children() for leaf in _layers(child)]
    return [module]


class PopulationNetwork:
    """P networks of one sequential spiking architecture, their parameters stacked on axis 0.

    ``models``: the individuals' networks (same architecture); ``dtype``: that of the stacked
    arrays (default: the models'). ``parameters`` lists the stacked Parameters and ``decayed``
    whether each is a weight matrix of the individual (2 or more axes, ``training.decayed_and_other``).
    """

    def __init__(self, models, dtype=None):
        if not models:
            raise ValueError("a population needs at least one network")
        first = models[0]
        if not (hasattr(first, "stem") and hasattr(first, "body")):
            raise ValueError(f"population evaluation needs a SpikingNetwork with a stem and a body, "
                             f"got {type(first).__name__}")
        names = [name for name, _ in first.named_parameters()]
        per_model = [dict(m.named_parameters()) for m in models]
        for params in per_model:
            if list(params) != names or any(params[n].shape != per_model[0][n].shape for n in names):
                raise ValueError("every network of a population must have the same architecture")
        self.dtype = numpy.dtype(first.dtype if dtype is None else dtype)
        xp = backend.get_array_module(first._first_parameter().data)
        self.xp, self.size, self.time_steps = xp, len(models), first.time_steps
        stacked = {n: Parameter(xp.stack([p[n].data for p in per_model]).astype(self.dtype)) for n in names}
        self.parameters = [stacked[n] for n in names]
        self.decayed = [per_model[0][n].data.ndim >= 2 for n in names]
        by_id = {id(p): stacked[n] for n, p in per_model[0].items()}
        module_names = {id(m): name for name, m in first.named_modules()}
        per_model_modules = [dict(m.named_modules()) for m in models]
        self.stem = [self._step(layer, by_id, module_names, per_model_modules) for layer in _layers(first.stem)]
        self.body = [self._step(layer, by_id, module_names, per_model_modules) for layer in _layers(first.body)]
        if not self.stem or self.stem[0][0] != "conv":
            raise ValueError("population evaluation needs a network whose stem starts with a genetic convolution")
        self.training, self.recording, self.last_spikes = True, False, []

    def _step(self, layer, by_id, module_names, per_model_modules):
        """One layer as (kind, settings) over the stacked arrays."""
        if isinstance(layer, (GeneticConv2d, GeneticLinear)):
            encodings = (by_id[id(layer.x_out)], by_id[id(layer.gene_bank.G)], by_id[id(layer.x_in)])
            if isinstance(layer, GeneticConv2d):
                return "conv", (encodings, layer.kernel_size, layer.stride, layer.padding, layer.path)
            return "linear", (encodings, None if layer.b is None else by_id[id(layer.b)], layer.path)
        if isinstance(layer, BatchNorm):
            name = module_names[id(layer)]
            stats = [self.xp.stack([modules[name]._buffers[b] for modules in per_model_modules]).astype(self.dtype)
                     for b in ("running_mean", "running_var")]
            return "batch_norm", (by_id[id(layer.gamma)], by_id[id(layer.beta)], stats, layer.momentum, layer.eps)
        if isinstance(layer, LIF):
            return "lif", dict(tau=layer.tau, v_th=layer.v_th, v_reset=layer.v_reset, surrogate=layer.surrogate,
                               alpha=layer.alpha, detach_reset=layer.detach_reset, soft=layer.soft)
        if isinstance(layer, Flatten):
            return "flatten", None
        raise ValueError(f"population evaluation supports genetic conv/linear, BatchNorm, LIF and Flatten "
                         f"layers, not {type(layer).__name__}")

    def _run(self, kind, settings, x):
        if kind == "conv":
            encodings, kernel, stride, padding, path = settings
            return apply(population_conv2d, x, *encodings, kernel_size=kernel, stride=stride, padding=padding,
                         path=path)
        if kind == "linear":
            encodings, bias, path = settings
            return apply(population_linear, x, *encodings, bias, path=path)
        if kind == "batch_norm":
            gamma, beta, (mean, var), momentum, eps = settings
            return apply(population_batch_norm, x, gamma, beta, running_mean=mean, running_var=var,
                         training=self.training, momentum=momentum, eps=eps)
        if kind == "lif":
            steps = self.time_steps
            spikes = F.lif(F.reshape(x, (steps, x.shape[0] // steps) + tuple(x.shape[1:])), **settings)
            if self.recording:
                self.last_spikes.append(spikes.data)  # [T, N, P, ...]
            return F.reshape(spikes, (x.shape[0],) + tuple(spikes.shape[2:]))
        return F.flatten(x, start_dim=2)

    def __call__(self, images):
        """Images [N, C, H, W] (the same for every individual) -> logits [N, P, classes].

        The first convolution reads the shared images directly (one im2col for all P).
        """
        data = self.xp.asarray(backend.to_device(images, backend.device_of(self.parameters[0].data)), dtype=self.dtype)
        x = autograd.Tensor(data)
        self.last_spikes = []
        for kind, settings in self.stem:
            x = self._run(kind, settings, x)
        x = F.repeat_time(x, self.time_steps)
        for kind, settings in self.body:
            x = self._run(kind, settings, x)
        steps = self.time_steps
        return F.mean_over_time(F.reshape(x, (steps, x.shape[0] // steps) + tuple(x.shape[1:])))


def make_population_optimizer(net: PopulationNetwork, lr, weight_decay=5e-4, momentum=0.9, nesterov=True):
    """``training.make_optimizer``'s SGD on the stacked parameters (elementwise, so per individual)."""
    groups = [([p for p, d in zip(net.parameters, net.decayed) if d], weight_decay),
              ([p for p, d in zip(net.parameters, net.decayed) if not d], 0.0)]
    return ParameterGroups([SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
                            for params, wd in groups if params])


def _step_summary(losses, grads, logits, labels, size, xp):
    """Per individual, read in one host sync: its loss [P], whether its loss and its slice of
    every gradient are free of NaN and inf [P], and its correct predictions [P]."""
    finite = xp.isfinite(losses)
    for g in grads:
        finite = finite & xp.isfinite(g.reshape(size, -1)).all(axis=1)
    hits = (xp.argmax(logits, axis=2) == xp.asarray(labels)[:, None]).sum(axis=0)
    host = backend.to_host(xp.stack([losses.astype(xp.float64), finite.astype(xp.float64),
                                     hits.astype(xp.float64)]))
    return host[0], host[1].astype(bool), host[2].astype(numpy.int64)


def train_population(net: PopulationNetwork, loader, optimizer, steps=None, epochs=None):
    """``training.train_steps`` for every individual at once.

    Returns (one dict(loss, accuracy, steps) per individual, [P] booleans: still finite). The
    loss of an individual that failed is its non-finite loss (NaN for a gradient).
    """
    if steps is None and epochs is None:
        epochs = 1
    size, xp = net.size, net.xp
    alive = numpy.ones(size, dtype=bool)
    failed_loss = numpy.full(size, numpy.nan)
    loss_sum, correct = numpy.zeros(size), numpy.zeros(size, dtype=numpy.int64)
    seen, updates = numpy.zeros(size, dtype=numpy.int64), numpy.zeros(size, dtype=numpy.int64)
    done, passes = 0, 0
    net.training = True
    while (epochs is None or passes < epochs) and (steps is None or done < steps) and alive.any():
        batches_this_pass = 0
        for x, y in loader:
            logits = net(x)
            losses = apply(population_cross_entropy, logits, labels=y)
            optimizer.zero_grad()
            F.sum(losses).backward()
            values, finite, hits = _step_summary(losses.data, [p.grad for p in net.parameters], logits.data, y,
                                                 size, xp)
            bad = alive & ~numpy.isfinite(values)
            failed_loss[bad], alive[bad] = values[bad], False
            alive &= finite
            if not alive.any():
                break
            frozen = xp.asarray(~alive)
            kept = [p.data[frozen].copy() for p in net.parameters] if (~alive).any() else None
            optimizer.step()
            if kept is not None:  # a failed individual stops before this update: undo it there
                for p, old in zip(net.parameters, kept):
                    p.data[frozen] = old
            n = int(y.shape[0])
            loss_sum += numpy.where(alive, values * n, 0.0)
            correct += numpy.where(alive, hits, 0)
            seen += alive * n
            updates += alive
            done += 1
            batches_this_pass += 1
            if steps is not None and done >= steps:
                break
        if batches_this_pass == len(loader):  # a complete pass: the next one is a new epoch
            passes += 1
            loader.set_epoch(loader.epoch + 1)
    results = [{"loss": loss_sum[p] / seen[p] if alive[p] and seen[p] else float(failed_loss[p]),
                "accuracy": correct[p] / seen[p] if seen[p] else math.nan, "steps": int(updates[p])}
               for p in range(size)]
    return results, alive


def validate_population(net: PopulationNetwork, loader) -> list:
    """``training.evaluate(record=True)``'s loss, accuracy and R_T (eq. 13) for every individual.

    The sums stay on the device until the pass ends (no GPU wait per batch)."""
    size, xp = net.size, net.xp
    net.training, net.recording = False, True
    loss_sum, correct, seen = xp.zeros(size), xp.zeros(size, dtype=xp.int64), 0
    transitions, neurons, steps = None, None, net.time_steps
    try:
        with autograd.no_grad():
            for x, y in loader:
                logits = net(x)
                n = int(y.shape[0])
                losses = apply(population_cross_entropy, logits, labels=y)
                loss_sum += losses.data.astype(xp.float64) * n
                correct += (xp.argmax(logits.data, axis=2) == xp.asarray(y)[:, None]).sum(axis=0)
                seen += n
                if transitions is None:
                    transitions = xp.zeros((len(net.last_spikes), size))
                    neurons = numpy.zeros(len(net.last_spikes))
                for layer, s in enumerate(net.last_spikes):  # s [T, N, P, ...]
                    other = (0, 1) + tuple(range(3, s.ndim))
                    if steps > 1:
                        transitions[layer] += xp.abs(s[1:] - s[:-1]).sum(axis=other, dtype=xp.float64)
                    neurons[layer] += s[0].size // size
    finally:
        net.training, net.recording = True, False
    loss_sum, correct = backend.to_host(loss_sum), backend.to_host(correct)
    if steps > 1:
        transitions = backend.to_host(transitions)
        r_t = (transitions / ((steps - 1) * neurons[:, None])).mean(axis=0)
    else:
        r_t = numpy.zeros(size)
    return [{"loss": loss_sum[p] / seen, "accuracy": correct[p] / seen, "r_t": float(r_t[p])} for p in range(size)]


def evaluate_population(tasks, dtype=None) -> list:
    """The records ``[evaluate_individual(t) for t in tasks]``, computed for all tasks at once.

    Every task must share one ``EvaluationSettings`` and one generation (one CMA-ES
    generation: the same batches). ``dtype``: train in this dtype instead of the networks'
    own (e.g. float64 to compare with a float64 run of the individuals).
    """
    from gee_ref.evolution import fitness
    from gee_ref.evolution.genome import GenomeError
    from gee_ref.evolution.individual import _splits, _train_channel_stats, build_phenotype, individual_seed
    from gee_ref.data.loader import Loader

    tasks = list(tasks)
    if not tasks:
        return []
    started = time.perf_counter()
    s, generation = tasks[0].settings, tasks[0].generation
    if any(t.settings is not s or t.generation != generation for t in tasks):
        raise ValueError("evaluate_population needs tasks of one generation with one EvaluationSettings")
    if s.tf32:
        backend.set_tf32(True)
    template = s.genome_template
    train_images, train_labels, val_images, val_labels = _splits(s)
    num_classes = template.model_config.get("num_classes")
    records, models, members = [], [], []
    with numpy.errstate(all="ignore"):
        for t in tasks:
            vector = numpy.asarray(t.vector, dtype=numpy.float64)
            r_s = float(fitness.spatial_entropy(template.with_vector(vector).G))
            records.append({"index": int(t.index), "fitness": math.nan, "loss": math.nan, "accuracy": math.nan,
                            "r_t": math.nan, "r_s": r_s, "train_loss": math.nan, "train_steps": 0,
                            "nonfinite": True})
            try:
                models.append(build_phenotype(s, vector, individual_seed(s.seed, generation, t.index), num_classes,
                                              train_images.shape[1:]))
                members.append(len(records) - 1)
            except GenomeError:  # e.g. a sigma that overflows: rank last
                pass
        if models:
            mean, std = _train_channel_stats(s)
            train_loader = Loader(train_images, train_labels, s.batch_size, shuffle=True, augment=False,
                                  seed=backend.derive_seed(s.seed, generation, "batches"), device=s.device,
                                  drop_last=len(train_labels) > s.batch_size, mean=mean, std=std)
            val_loader = Loader(val_images, val_labels, s.batch_size, shuffle=False, augment=False,
                                mean=mean, std=std, device=s.device)
            net = PopulationNetwork(models, dtype=dtype)
            optimizer = make_population_optimizer(net, lr=s.lr)
            steps = None if s.eval_steps is None else int(s.eval_steps)
            epochs = None if s.eval_epochs is None else int(s.eval_epochs)
            trained, alive = train_population(net, train_loader, optimizer, steps=steps, epochs=epochs)
            validated = validate_population(net, val_loader)
            _fill_records(records, members, trained, alive, validated, generation, s)
    seconds = (time.perf_counter() - started) / len(tasks)
    for record in records:
        record["seconds"] = seconds
    return records


def _fill_records(records, members, trained, alive, validated, generation, s) -> None:
    from gee_ref.evolution import fitness

    for slot, (i, result) in enumerate(zip(members, trained)):
        record = records[i]
        record.update(train_loss=float(result["loss"]), train_steps=result["steps"])
        if not alive[slot]:
            continue
        loss, r_t = float(validated[slot]["loss"]), validated[slot]["r_t"]
        record.update(loss=loss, accuracy=float(validated[slot]["accuracy"]), r_t=r_t)
        if math.isfinite(loss):
            record["fitness"] = float(fitness.dynamic_fitness(loss, r_t, record["r_s"], generation, s.alpha, s.beta))
            record["nonfinite"] = not math.isfinite(record["fitness"])


__all__ = ["PopulationNetwork", "evaluate_population", "make_population_optimizer", "train_population",
           "validate_population"]
