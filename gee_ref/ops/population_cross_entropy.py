"""Each individual's own cross-entropy (DESIGN.md section 3, readout) for a stacked population.

logits [N, P, K], integer labels [N] (the same batch for every individual) -> loss [P]::

    loss[p] = -1/N sum_n log softmax(z[n, p])[y_n],    dloss[p]/dz[n, p] = (softmax(z[n, p]) - onehot(y_n)) / N

Summing loss over p gives a scalar whose gradient in individual p's parameters is exactly the
gradient of that individual's own mean cross-entropy.
"""
from __future__ import annotations

import numpy

from gee_ref import backend


def forward(logits, labels):
    xp = backend.get_array_module(logits)
    if logits.ndim != 3:
        raise ValueError(f"population_cross_entropy expects logits [N, P, K], got shape {tuple(logits.shape)}")
    on_host = backend.get_array_module(labels) is numpy  # GPU labels: unchecked, as in ops.cross_entropy
    labels = xp.asarray(labels)
    n, _, k = logits.shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"population_cross_entropy expects integer labels of shape ({n},), "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    if on_host and n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"population_cross_entropy labels must lie in [0, {k})")
    shifted = logits - logits.max(axis=2, keepdims=True)
    log_softmax = shifted - xp.log(xp.exp(shifted).sum(axis=2, keepdims=True))
    picked = xp.take_along_axis(log_softmax, labels[:, None, None].astype(xp.int64), axis=2)[:, :, 0]
    return -picked.mean(axis=0), (log_softmax, labels)


def backward(grad, cache):
    log_softmax, labels = cache
    xp = backend.get_array_module(log_softmax)
    n, _, k = log_softmax.shape
    onehot = (labels[:, None] == xp.arange(k)[None, :])[:, None, :]
    return ((xp.exp(log_softmax) - onehot) * (grad[None, :, None] / n),)
