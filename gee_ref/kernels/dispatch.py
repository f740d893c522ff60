"""Which implementation an op runs: the plain ``xp`` code of ``gee_ref.ops`` or a fused kernel.

This is the one place that decides. ``gee_ref.autograd.functional`` asks it for every LIF,
batch norm and convolution; the ops themselves never look at the switch:

* ``lif_op``: ``kernels.lif_fused`` for hard spikes with a surrogate that ``lif.cu`` knows,
  else ``ops.lif``;
* ``batch_norm_op``: ``kernels.batch_norm_fused`` for one network's [N, C] or [N, C, H, W]
  with vectors of x's dtype, else ``ops.batch_norm``;
* ``gather``: the im2col/col2im implementation handed to the convolution ops,
  ``kernels.im2col_fused`` or ``ops.im2col``.

Each returns a plain op module when the kernels are off (``gee_ref.kernels.enabled``) or the
arrays are not CuPy float32/float64 (``gee_ref.kernels.applies``). A fused module has the
same ``forward``/``backward`` signatures and caches as the op it replaces, and the tape keeps
the module that ran forward for the backward.
"""
from __future__ import annotations

from gee_ref import kernels
from gee_ref.kernels import batch_norm_fused, im2col_fused, lif_fused
from gee_ref.ops import batch_norm, im2col, lif


def lif_op(x_seq, surrogate, soft):
    """The module that runs a LIF layer on ``x_seq``."""
    return lif_fused if kernels.applies(x_seq) and lif_fused.handles(surrogate, soft) else lif


def batch_norm_op(x, gamma, beta, running_mean, running_var, training):
    """The module that runs a batch normalisation of ``x``."""
    if kernels.applies(x) and batch_norm_fused.handles(x, gamma, beta, running_mean, running_var, training):
        return batch_norm_fused
    return batch_norm


def gather(x):
    """The im2col/col2im implementation for a convolution of ``x``."""
    return im2col_fused if kernels.applies(x) else im2col.PLAIN
