"""Central finite differences against the tape's gradients, in float64.

For inputs x_1..x_k and a fixed upstream gradient u, the scalar
``L = sum(f(x_1..x_k) * u)`` has dL/dx_i equal to what ``backward(u)`` puts
in ``x_i.grad``. Each element is checked with the central difference
``(L(x + eps e_j) - L(x - eps e_j)) / (2 eps)``, whose error is O(eps^2 |d3L|)
truncation plus O(machine_eps |L| / eps) round-off. At eps = 1e-5 both are about 1e-10
for derivatives and losses of order one; at 1e-6 the round-off (2e-10 |L|) already showed
as a relative error of 2e-6 on a batch norm over two values, whose input gradient is tiny.
"""
from __future__ import annotations

import numpy

from gee_ref import autograd, backend

#: Gradients smaller than this (in max-norm) are compared absolutely: a
#: relative error of round-off noise around a zero gradient means nothing.
GRADIENT_SCALE_FLOOR = 1e-3


def relative_error(analytic, numeric) -> float:
    """max|a - n| / max(max|a|, max|n|, GRADIENT_SCALE_FLOOR)."""
    a, n = backend.to_host(analytic), backend.to_host(numeric)
    scale = max(numpy.abs(a).max(initial=0.0), numpy.abs(n).max(initial=0.0), GRADIENT_SCALE_FLOOR)
    return float(numpy.abs(a - n).max(initial=0.0) / scale)


def relative_difference(a, b) -> float:
    """max|a - b| / max|b|, b the reference (no floor: for comparing two computations of
    the same quantity, e.g. two code paths or two devices)."""
    a = backend.to_host(a).astype(numpy.float64)  # float64: the floor below is 0 in float32
    b = backend.to_host(b).astype(numpy.float64)
    return float(numpy.abs(a - b).max(initial=0.0) / max(numpy.abs(b).max(initial=0.0), 1e-300))


def numeric_gradients(fn, arrays, upstream, wrt=None, eps=1e-5):
    """Central-difference gradients of sum(fn(*arrays) * upstream) w.r.t. arrays[i], i in wrt."""
    wrt = range(len(arrays)) if wrt is None else wrt
    xp = backend.get_array_module(*arrays)
    work = [a.copy() for a in arrays]

    def loss():
        with autograd.no_grad():
            out = fn(*[autograd.Tensor(a) for a in work])
        return float(xp.sum(out.data * upstream))

    result = {}
    for i in wrt:
        flat = work[i].reshape(-1)  # a view: perturbing it perturbs work[i]
        grad = numpy.zeros(flat.size)
        for j in range(flat.size):
            saved = float(flat[j])
            flat[j] = saved + eps
            plus = loss()
            flat[j] = saved - eps
            minus = loss()
            flat[j] = saved
            grad[j] = (plus - minus) / (2.0 * eps)
        result[i] = grad.reshape(arrays[i].shape)
    return result


def analytic_gradients(fn, arrays, upstream, wrt=None):
    """Gradients from the tape: backward(upstream) through fn(*arrays)."""
    wrt = set(range(len(arrays)) if wrt is None else wrt)
    tensors = [autograd.Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out = fn(*tensors)
    out.backward(upstream)
    xp = backend.get_array_module(*arrays)
    return {i: (tensors[i].grad if tensors[i].grad is not None else xp.zeros_like(arrays[i]))
            for i in sorted(wrt)}


def check_gradients(fn, arrays, wrt=None, seed=0, eps=1e-5):
    """Relative error of the tape's gradient for each input index in ``wrt``.

    ``fn`` takes Tensors and returns one Tensor; ``arrays`` are float64.
    Returns ``{index: relative_error}``.
    """
    xp = backend.get_array_module(*arrays)
    with autograd.no_grad():
        out_shape = fn(*[autograd.Tensor(a) for a in arrays]).shape
    upstream = xp.asarray(numpy.random.default_rng(seed).standard_normal(out_shape))
    analytic = analytic_gradients(fn, arrays, upstream, wrt)
    numeric = numeric_gradients(fn, arrays, upstream, analytic.keys(), eps)
    return {i: relative_error(analytic[i], numeric[i]) for i in analytic}
