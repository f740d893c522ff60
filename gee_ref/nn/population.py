"""A population of networks as one network: the individuals stacked on a new leading axis.

DESIGN.md section 2: a population is an axis of the same ops, not a copy of them. P networks
of one architecture become one network of that architecture whose every parameter and buffer
has a leading axis of size P (X_out [P, C_out, g], G [P, g, g], gamma [P, C], running_mean
[P, C], ...). Its forward runs the same modules and ops:

* the images [N, C, H, W] are the same for every individual (the generation's common mini-
  batches); the first genetic convolution reads them once and gives [N, P, C, H, W];
* from there every activation carries the individuals on its second axis, [T*N, P, ...]: the
  weight layers multiply each individual's slice by its own weights (``matmul`` over P), batch
  norm normalises each individual's channels on their own, LIF neurons and pools are
  elementwise or windowed and do not mix individuals;
* the logits are [N, P, classes] and ``cross_entropy`` gives one loss per individual, [P];
  the gradient of their sum in individual p's parameters is exactly p's own.

So training the stacked network with an elementwise optimiser (SGD, AdamW) trains every
individual as if alone, in one pass per batch (``gee_ref.training``).
"""
from __future__ import annotations

import copy

from gee_ref import backend


def stack_population(models, dtype=None):
    """One network holding ``models`` (same architecture, same device) stacked on a leading axis P.

    Shared parameters (the global G, chained encodings) stay shared in the result. The models
    themselves are not changed. ``dtype``: the stacked arrays' type (default: the models').
    """
    models = list(models)
    if not models:
        raise ValueError("a population needs at least one network")
    first = models[0]
    names = [name for name, _ in first.named_parameters()]
    per_model = [dict(m.named_parameters()) for m in models]
    buffers = [dict(m.named_buffers()) for m in models]
    for params, held in zip(per_model, buffers):
        if list(params) != names or any(params[n].shape != per_model[0][n].shape for n in names) \
                or list(held) != list(buffers[0]):
            raise ValueError("every network of a population must have the same architecture")
    if getattr(first, "population_size", None) is not None:
        raise ValueError("the networks to stack are already populations")
    xp = backend.get_array_module(per_model[0][names[0]].data)
    stacked = copy.deepcopy(first)
    dtype = per_model[0][names[0]].dtype if dtype is None else dtype
    for name, p in stacked.named_parameters():
        p.data, p.grad = xp.stack([params[name].data for params in per_model]).astype(dtype, copy=False), None
    owners = dict(stacked.named_modules())
    for name in buffers[0]:
        module_name, _, buffer_name = name.rpartition(".")
        owners[module_name]._buffers[buffer_name] = xp.stack([held[name] for held in buffers]).astype(dtype, copy=False)
    stacked.population_size = len(models)
    return stacked
