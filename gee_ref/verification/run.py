"""Run one function of gee_ref on the autograd tape and record a golden case from it.

The case's differentiable inputs are passed as keyword Tensors, its other arrays (integer
labels, BN running statistics) as keyword arrays, its scalar settings as keyword
parameters: ``y = f(**tensors, **arrays, **params)``. The upstream gradient u is drawn
from the case's generator, ``backward(u)`` runs, and the gradient of every tensor input is
kept. Arrays named in ``state`` are updated in place by f (BN running statistics); their
final values are outputs under the same name.
"""
from __future__ import annotations

import importlib

import numpy

from gee_ref import autograd
from gee_ref.verification.case import Case, as_float64


def resolve(function: str):
    """The callable behind a dotted name such as ``gee_ref.autograd.functional.lif``."""
    module_name, _, attribute = function.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def record_call(name, function, description, rng, tensors, arrays=None, params=None, state=(),
                conventions=None, upstream_scale=1.0) -> Case:
    """A Case holding f's inputs, a random upstream gradient, f's output ``y`` and the input gradients."""
    arrays, params = dict(arrays or {}), dict(params or {})
    leaves = {k: autograd.Tensor(as_float64(v).copy(), requires_grad=True) for k, v in tensors.items()}
    work_arrays = {k: as_float64(v).copy() for k, v in arrays.items()}
    out = resolve(function)(**leaves, **work_arrays, **params)
    upstream = upstream_scale * rng.standard_normal(out.shape)
    out.backward(numpy.asarray(upstream, dtype=numpy.float64))
    outputs = {"y": as_float64(out.data)}
    outputs.update({k: work_arrays[k] for k in state})
    grads = {k: as_float64(t.grad) if t.grad is not None else numpy.zeros(t.shape) for k, t in leaves.items()}
    return Case(
        name=name, kind="op", function=function, description=description, params=params,
        conventions=dict(conventions or {}),
        inputs={**{k: as_float64(v) for k, v in tensors.items()}, **{k: as_float64(v) for k, v in arrays.items()}},
        upstream={"y": numpy.asarray(upstream, dtype=numpy.float64)}, outputs=outputs, grads=grads,
        extra_attrs={"tensor_args": list(tensors), "array_args": list(arrays), "state": list(state),
                     "call": "y = function(**tensor_args, **array_args, **params); "
                             "grads = d sum(upstream.y * y) / d tensor_args"})
