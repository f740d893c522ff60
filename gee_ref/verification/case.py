"""One golden case: named arrays and the attributes that say how they were computed.

A case is what an implementer needs to rerun one computation and compare:

* ``inputs``: the arrays fed in (differentiable tensors, integer labels, BN buffers, ...);
* ``upstream``: for each output that is differentiated, the upstream gradient u_k;
* ``outputs``: the forward results (plus buffers updated in place, e.g. BN running stats);
* ``grads``: d(sum_k <u_k, output_k>)/d(input) for every differentiated input;
* ``attrs``: a one-line description, the function that computed it, its keyword
  parameters, and the numerical conventions it follows (LIF, BN, layouts).

``outputs`` and ``grads`` are the *checked* tensors: a candidate file holds them at the same
HDF5 paths (``<case name>/outputs/<tensor>``, ``<case name>/grads/<tensor>``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy

GROUPS = ("inputs", "upstream", "outputs", "grads")
CHECKED_GROUPS = ("outputs", "grads")
#: case attributes that are bookkeeping for running the case, not conventions
BOOKKEEPING = ("tensor_args", "array_args", "state", "call", "draws", "layers")


@dataclass
class Case:
    """A golden case; ``name`` is its HDF5 group path, e.g. ``"op/lif/hard_sigmoid"``."""

    name: str
    kind: str                      # "op", "network", "cmaes" or "fitness"
    function: str                  # dotted name of what computed it
    description: str               # one line
    params: dict = field(default_factory=dict)       # keyword parameters (JSON-serialisable)
    conventions: dict = field(default_factory=dict)  # attribute name -> str, float, int or bool
    inputs: dict = field(default_factory=dict)
    upstream: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)
    grads: dict = field(default_factory=dict)
    extra_attrs: dict = field(default_factory=dict)  # kind-specific bookkeeping (argument roles, ...)

    def path(self, group: str, tensor: str) -> str:
        """The HDF5 dataset path of a tensor, e.g. ``op/lif/hard_sigmoid/grads/x``."""
        if group not in GROUPS:
            raise ValueError(f"unknown case group {group!r}: expected one of {', '.join(GROUPS)}")
        return f"{self.name}/{group}/{tensor}"

    def checked_paths(self) -> list:
        """The dataset paths a candidate must provide for this case."""
        return [self.path(g, t) for g in CHECKED_GROUPS for t in getattr(self, g)]

    def attrs(self) -> dict:
        """Every HDF5 attribute of the case group (conventions stored one per attribute)."""
        attrs = {"kind": self.kind, "function": self.function, "description": self.description,
                 "params": json.dumps(self.params, sort_keys=True)}
        for key, value in self.extra_attrs.items():
            attrs[key] = json.dumps(value) if isinstance(value, (list, tuple, dict)) else value
        attrs.update(self.conventions)
        return attrs

    def argument(self, key: str):
        """A JSON-valued bookkeeping attribute (e.g. ``tensor_args``), decoded."""
        value = self.extra_attrs.get(key)
        return json.loads(value) if isinstance(value, str) else value


def as_float64(array) -> numpy.ndarray:
    """A float64 host copy (integers stay integers: labels are not rounded)."""
    array = numpy.asarray(array)
    if array.dtype.kind in "iub":
        return array.copy()
    return array.astype(numpy.float64)
