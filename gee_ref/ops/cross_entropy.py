"""Cross-entropy of logits [N, K] against integer labels [N] (DESIGN.md section 3, readout):

    L = -1/N sum_n log softmax(z_n)[y_n],   log softmax(z) = z - logsumexp(z),
    logsumexp(z) = m + log sum_k exp(z_k - m),  m = max_k z_k   (no overflow),
    dL/dz_n = (softmax(z_n) - onehot(y_n)) / N.

The labels are a parameter, not an input: they are not differentiated. Labels given as a
NumPy array are checked to lie in [0, K); labels already on the GPU are not (that check would
wait for the GPU at every step; ``gee_ref.data.loader`` checks a dataset's labels when it loads them).

A population (DESIGN.md section 2) has logits [N, P, K] for one batch of labels [N] and gets
one loss per individual, L [P]: the same lines with the individual's logits. Summed over P,
its gradient in individual p's parameters is exactly that of p's own loss.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy

from gee_ref import backend


class Cache(NamedTuple):
    log_softmax: object
    labels: object


def forward(logits, labels):
    xp = backend.get_array_module(logits)
    if logits.ndim not in (2, 3):
        raise ValueError(f"cross_entropy expects logits of shape [N, K] (or [N, P, K] for a population), "
                         f"got shape {tuple(logits.shape)}")
    on_host = backend.get_array_module(labels) is numpy
    labels = xp.asarray(labels)
    n, k = logits.shape[0], logits.shape[-1]
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy expects integer labels of shape ({n},), "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    if on_host and n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"cross_entropy labels must lie in [0, {k}), "
                         f"got values from {int(labels.min())} to {int(labels.max())}")
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    if logits.ndim == 2:
        loss = -log_softmax[xp.arange(n), labels].mean()
    else:
        loss = -xp.take_along_axis(log_softmax, labels.astype(xp.int64)[:, None, None], axis=2)[:, :, 0].mean(axis=0)
    return loss, Cache(log_softmax, labels)


def backward(grad, cache):
    log_softmax, labels = cache
    xp = backend.get_array_module(log_softmax)
    n, k = log_softmax.shape[0], log_softmax.shape[-1]
    onehot = labels[:, None] == xp.arange(k)[None, :]
    if log_softmax.ndim == 3:  # a population: one upstream gradient per individual
        onehot, grad = onehot[:, None, :], grad[None, :, None]
    return ((xp.exp(log_softmax) - onehot) * (grad / n),)
