"""The optimiser of a training run: SGD (momentum, Nesterov) or AdamW, weight decay on the
weight matrices only (conv and linear weights, and the genetic layers' X_out, X_in and G;
never batch norm's scale and shift or biases), several optimisers acting as one.

A stacked population (``gee_ref.nn.population``) has one more leading axis on every parameter;
its weight matrices are told apart by their rank without that axis, so each individual gets
exactly the decay it would get alone (both optimisers are elementwise).
"""
from __future__ import annotations

from gee_ref.optim import SGD, AdamW


def decayed_and_other(model):
    """Split the parameters: ``(weight matrices, everything else)``, see the module docstring."""
    stacked = 0 if getattr(model, "population_size", None) is None else 1
    decayed, other = [], []
    for p in model.parameters():
        (decayed if p.data.ndim - stacked >= 2 else other).append(p)
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
    groups = [(params, wd) for params, wd in [(decayed, weight_decay), (other, 0.0)] if params]
    if name == "sgd":
        members = [SGD(params, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
                   for params, wd in groups]
    elif name == "adamw":
        members = [AdamW(params, lr=lr, weight_decay=wd) for params, wd in groups]
    else:
        raise ValueError(f"unknown optimizer {name!r}: expected sgd or adamw")
    return ParameterGroups(members)
