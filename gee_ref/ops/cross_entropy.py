"""Cross-entropy of logits [N, K] against integer labels [N] (DESIGN.md section 3, readout):

    L = -1/N sum_n log softmax(z_n)[y_n],   log softmax(z) = z - logsumexp(z),
    logsumexp(z) = m + log sum_k exp(z_k - m),  m = max_k z_k   (no overflow),
    dL/dz_n = (softmax(z_n) - onehot(y_n)) / N.

The labels are a parameter, not an input: they are not differentiated.
"""
from __future__ import annotations

from gee_ref import backend


def forward(logits, labels):
    xp = backend.get_array_module(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape [N, K], got shape {tuple(logits.shape)}")
    labels = xp.asarray(labels)
    n, k = logits.shape
    if labels.shape != (n,) or labels.dtype.kind not in "iu":
        raise ValueError(f"cross_entropy expects integer labels of shape ({n},), "
                         f"got {labels.dtype} of shape {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= k):
        raise ValueError(f"cross_entropy labels must lie in [0, {k}), "
                         f"got values from {int(labels.min())} to {int(labels.max())}")
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_softmax[xp.arange(n), labels].mean()
    return loss, (log_softmax, labels)


def backward(grad, cache):
    log_softmax, labels = cache
    xp = backend.get_array_module(log_softmax)
    n, k = log_softmax.shape
    onehot = labels[:, None] == xp.arange(k)[None, :]
    return ((xp.exp(log_softmax) - onehot) * (grad / n),)
