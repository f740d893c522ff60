"""im2col and col2im as single gather kernels (``im2col.cu``), same layouts as ``ops.im2col``.

``channel_major_im2col`` reads its [C, N, H, W] input through the input's element
strides, so a transposed view of an [N, C, H, W] array is never copied; zero padding is
an index test in the kernel, not a padded buffer. ``col2im`` is the adjoint: each thread
owns one pixel of the result and sums the column entries that read it (no atomics, so
the result is deterministic). The plain ``xp`` code of ``gee_ref.ops.im2col`` is the
reference; its docstring gives the layouts and eq. 1 of the paper.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.kernels import compiler
from gee_ref.ops.im2col import conv_geometry


def element_strides(array) -> tuple:
    """The array's strides counted in elements (they may be negative)."""
    return tuple(s // array.itemsize for s in array.strides)


def largest_offset(array) -> int:
    """The largest distance, in elements, between two elements of a strided view: every
    partial sum i_0 s_0 + i_1 s_1 + ... a kernel forms while indexing it is at most this."""
    if array.size == 0:
        return 0
    return sum((n - 1) * abs(s) for n, s in zip(array.shape, element_strides(array)))


def channel_major_im2col(x_cnhw, kernel_size, stride=1, padding=0, scratch=False):
    """im2col of an input laid out [C, N, H, W]: cols [C*kh*kw, N*Ho*Wo], contiguous.

    ``scratch`` is accepted for the plain gather's signature and ignored: on the GPU, CuPy's
    memory pool already reuses the columns' memory."""
    if x_cnhw.ndim != 4:
        raise ValueError(f"channel-major im2col input must be [C, N, H, W], got shape {tuple(x_cnhw.shape)}")
    xp = backend.get_array_module(x_cnhw)
    c, n, h, w = x_cnhw.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = conv_geometry((n, c, h, w), kernel_size, stride, padding)
    cols = xp.empty((c * kh * kw, n * oh * ow), dtype=x_cnhw.dtype)
    index = compiler.index_type(max(cols.size, largest_offset(x_cnhw)))
    run = compiler.kernel("im2col.cu", "im2col", x_cnhw.dtype, index)
    scalars = (c, n, h, w) + element_strides(x_cnhw) + (kh, kw, sh, sw, ph, pw, oh, ow)
    compiler.launch(run, cols.size, (x_cnhw, cols) + tuple(index(v) for v in scalars))
    return cols


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: cols [C*kh*kw, N*Ho*Wo] -> x_shape [N, C, H, W], contiguous."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = conv_geometry(x_shape, kernel_size, stride, padding)
    n, c, h, w = (int(v) for v in x_shape)
    expected = (c * kh * kw, n * oh * ow)
    if tuple(cols.shape) != expected:
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, expected {expected} for input {tuple(x_shape)}")
    xp = backend.get_array_module(cols)
    x = xp.empty((n, c, h, w), dtype=cols.dtype)
    index = compiler.index_type(max(x.size, largest_offset(cols)))
    run = compiler.kernel("im2col.cu", "col2im", cols.dtype, index)
    scalars = (c, n, h, w) + element_strides(cols) + (kh, kw, sh, sw, ph, pw, oh, ow)
    compiler.launch(run, x.size, (cols, x) + tuple(index(v) for v in scalars))
    return x
