"""im2col and col2im: a convolution as one matrix product (helpers, not an op).

A 2-D cross-correlation of x [N, C, H, W] with w [C_out, C, kh, kw] (PyTorch
semantics: zero padding, then the kernel slides with the given stride) is

    y[n, o, p, q] = sum_{c, i, j} w[o, c, i, j] * x_pad[n, c, s_h*p + i, s_w*q + j]

Gathering every input patch into the column matrix

    cols[(c, i, j), (n, p, q)] = x_pad[n, c, s_h*p + i, s_w*q + j],   cols: [C*kh*kw, N*Ho*Wo]

turns it into ``y_rows = w.reshape(C_out, -1) @ cols`` ([C_out, N*Ho*Wo]). The row
order of cols is C-major, then kh, then kw: exactly the order of a PyTorch
weight's ``flatten(1)``, so the same weight matrix W of paper eq. 1 serves both.

im2col copies x once into a zero-padded buffer laid out [C, N, H+2ph, W+2pw]
(the channel-major order of the rows of cols), then loops over the kh*kw kernel
offsets (i, j), never over pixels: for one offset, the values for all positions
(p, q) are one strided slice of that buffer, copied as it is. (Copying straight
from x and zeroing only the border strips was measured slower on NumPy: a
border column is a strided write of one element per row.) col2im, its
adjoint, adds each offset's slice back into the padded [N, C, ...] gradient
(measured faster than the [C, N] layout, which needs a transposing copy at the
end); within one offset the slice positions are distinct, so a plain ``+=``
on the slice is exact (no scatter-add needed) on NumPy and CuPy alike.

The columns are kh*kw times the input (75 MB for a 3x3 conv of 128 channels on
16 images of 32x32). The convolution ops use them at once and drop them, so
they ask for ``scratch=True``: the columns go into one buffer per thread,
dtype and array module (``column_scratch``), reused by every such call. On
NumPy a fresh array that large is fresh memory from the operating system on
every call, and touching it for the first time cost more than the copy itself
(measured: 21 ms against 9 ms for that 75 MB). The result of a scratch call
is valid only until the next scratch call on the same thread.

A population of networks (DESIGN.md section 2) puts its individuals on the second axis of an
activation, x [N, P, C, H, W]: individual p's columns are those of x[:, p]. ``im2col`` then
gathers all P at once from one [C, P*N, H, W] view and returns them as [P, C*kh*kw, N*Ho*Wo]
(a view of the [C*kh*kw, P*N*Ho*Wo] result); ``rows_to_nchw`` and ``nchw_to_rows`` carry the
same leading P.

On the CPU the convolution ops go through the images block by block (``image_blocks``): the
columns of a few images (about ``COLUMN_BLOCK_BYTES``) are gathered, multiplied and turned back
into images while they are still in the cache, instead of writing a column matrix of all
images to memory and reading it back. Every output column of a product comes from the same
numbers in the same order whichever block holds it (measured bit-identical with OpenBLAS), so
only the products that sum over the columns (the weight gradients) need all the columns at once.
A population whose individuals each have their own input goes block by block of individuals
too (``individual_blocks``): P individuals' columns are P times one network's, and no product
mixes two individuals.

The gather itself (``channel_major_im2col`` and ``col2im``) is an argument of the convolution
ops, ``gather``: this module, or the fused CUDA kernels of ``gee_ref.kernels.im2col_fused``
that ``gee_ref.autograd.functional`` hands in when they apply. The ops never choose.
"""
from __future__ import annotations

import math
import numbers
import threading

import sys

from gee_ref import backend


def as_pair(value, name: str) -> tuple[int, int]:
    """An int or a pair of ints as a pair (``3 -> (3, 3)``); anything else is a ValueError."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        pair = tuple(value)
    else:
        pair = (value, value)
    if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def conv_geometry(x_shape, kernel_size, stride, padding):
    """Check a convolution's arguments and return ((kh, kw), (sh, sw), (ph, pw), (Ho, Wo))."""
    if len(x_shape) != 4:
        raise ValueError(f"convolution input must be [N, C, H, W], got shape {tuple(x_shape)}")
    kernel, step = as_pair(kernel_size, "kernel_size"), as_pair(stride, "stride")
    pad = as_pair(padding, "padding")
    if min(kernel) < 1 or min(step) < 1 or min(pad) < 0:
        raise ValueError(f"need kernel_size >= 1, stride >= 1, padding >= 0; got kernel_size={kernel_size}, "
                         f"stride={stride}, padding={padding}")
    padded = (x_shape[2] + 2 * pad[0], x_shape[3] + 2 * pad[1])
    if padded[0] < kernel[0] or padded[1] < kernel[1]:
        raise ValueError(f"kernel {kernel} is larger than the padded input {padded}")
    out = tuple((padded[a] - kernel[a]) // step[a] + 1 for a in range(2))
    return kernel, step, pad, out


def _offset_slices(i, j, step, out):
    """The strided slices of x_pad that kernel offset (i, j) reads for every output position."""
    return (slice(i, i + step[0] * (out[0] - 1) + 1, step[0]),
            slice(j, j + step[1] * (out[1] - 1) + 1, step[1]))


_scratch = threading.local()  # per thread: {(array module, dtype): the flat column buffer}


def column_scratch(xp, shape, dtype):
    """A ``shape`` array from this thread's reusable buffer for ``xp`` and ``dtype`` (contents undefined).

    The buffer grows to the largest shape asked for and is then reused: every call returns a view
    of the same memory, valid until the next call with the same module and dtype on this thread.
    """
    buffers = _scratch.__dict__.setdefault("buffers", {})
    key, size = (xp.__name__, xp.dtype(dtype).str), math.prod(shape)
    if key not in buffers or buffers[key].size < size:
        buffers.pop(key, None)  # free the old buffer before allocating the larger one
        buffers[key] = xp.empty(size, dtype=dtype)
    return buffers[key][:size].reshape(shape)


#: Bytes of columns per block of images on the CPU: 4 MiB stay in the L3 cache beside the
#: product's packed copies (measured on this project's EPYC, 32 MiB of L3: forward convolutions
#: 10-40% faster than with all images at once; blocks of 1-2 images lose it to per-call costs).
COLUMN_BLOCK_BYTES = 4 * 2 ** 20
#: Fewest columns in a block. A product with few columns may take OpenBLAS's small-matrix
#: kernel, which sums a long inner dimension (e.g. 576 = 64 channels x 3 x 3) in one chain,
#: where the kernel that the product of all columns takes sums it in chunks: other roundings.
#: From 4096 columns on, every product of a genetic layer (at least 1 x 256 x 4096 multiply-adds
#: when the inner dimension exceeds OpenBLAS's chunk) stays on the large kernel.
MIN_BLOCK_COLUMNS = 4096


def image_blocks(xp, images: int, positions: int, column_bytes_per_image: int) -> list:
    """Slices of the image axis whose columns take about ``COLUMN_BLOCK_BYTES`` each, and at least
    ``MIN_BLOCK_COLUMNS`` columns (``positions`` per image), on the CPU; one slice of every image
    on a GPU, whose memory is not a cache."""
    size = max(COLUMN_BLOCK_BYTES // max(column_bytes_per_image, 1), -(-MIN_BLOCK_COLUMNS // max(positions, 1)))
    return backend.cpu_blocks(xp, images, size)


def individual_blocks(xp, individuals, bytes_per_individual: int) -> list:
    """Slices of a population's individual axis for an op that runs block by block of individuals
    (no individual reads another's numbers): on the CPU as many individuals as fit in
    ``COLUMN_BLOCK_BYTES`` (at least one), on a GPU all at once; ``[None]`` when there is no
    such axis (one network, or a population reading one shared input)."""
    if individuals is None:
        return [None]
    return backend.cpu_blocks(xp, individuals, COLUMN_BLOCK_BYTES // max(bytes_per_individual, 1))


#: The plain gather: this module (``channel_major_im2col``, ``col2im``).
PLAIN = sys.modules[__name__]


def merged_shape(x_shape) -> tuple:
    """[N, C, H, W], or [N, P, C, H, W] of a population seen as its P*N images [P*N, C, H, W]."""
    if len(x_shape) not in (4, 5):
        raise ValueError(f"convolution input must be [N, C, H, W] (or [N, P, C, H, W] for a population), "
                         f"got shape {tuple(x_shape)}")
    return (math.prod(x_shape[:-3]),) + tuple(x_shape[-3:])


def channel_major(x):
    """x [N, C, H, W] -> [C, N, H, W] (a view); a population's [N, P, C, H, W] -> [C, P*N, H, W]."""
    if x.ndim == 4:
        return x.transpose(1, 0, 2, 3)
    c, h, w = x.shape[-3:]
    return x.transpose(2, 1, 0, 3, 4).reshape(c, -1, h, w)


def im2col(x, kernel_size, stride=1, padding=0, scratch=False, gather=PLAIN):
    """x [N, C, H, W] -> cols [C*kh*kw, N*Ho*Wo] (rows C-major, then kh, then kw); a population's
    x [N, P, C, H, W] -> cols [P, C*kh*kw, N*Ho*Wo].

    ``scratch=True``: the columns live in ``column_scratch`` (module docstring), valid until the
    next scratch call on this thread; for callers that use them at once and drop them.
    """
    conv_geometry(merged_shape(x.shape), kernel_size, stride, padding)
    cols = gather.channel_major_im2col(channel_major(x), kernel_size, stride, padding, scratch)
    if x.ndim == 4:
        return cols
    return cols.reshape(cols.shape[0], x.shape[1], -1).transpose(1, 0, 2)


def channel_major_im2col(x_cnhw, kernel_size, stride=1, padding=0, scratch=False):
    """im2col of an input laid out [C, N, H, W] (e.g. GEMM rows [C, N*H*W] reshaped, no copy)."""
    xp = backend.get_array_module(x_cnhw)
    c, n, h, w = x_cnhw.shape
    (kh, kw), step, (ph, pw), out = conv_geometry((n, c, h, w), kernel_size, stride, padding)
    shape = (c, kh, kw, n) + out
    cols = column_scratch(xp, shape, x_cnhw.dtype) if scratch else xp.empty(shape, dtype=x_cnhw.dtype)
    if step[0] == 1 and out[1] <= SHORT_ROWS:
        _gather_row_blocks(x_cnhw, cols, step[1], (ph, pw))
        return cols.reshape(c * kh * kw, n * out[0] * out[1])
    x_pad = xp.zeros((c, n, h + 2 * ph, w + 2 * pw), dtype=x_cnhw.dtype)
    x_pad[:, :, ph:ph + h, pw:pw + w] = x_cnhw
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, step, out)
            cols[:, i, j] = x_pad[:, :, rows, columns]
    return cols.reshape(c * kh * kw, n * out[0] * out[1])


#: Output rows of at most this many values are gathered by ``_gather_row_blocks`` (stride 1 down
#: the rows): a strided copy pays a fixed cost per row, which dominates for short rows (measured
#: on 3x3 kernels: 1.3-2x faster for 16x16 down to 4x4 images, no gain for 32-wide rows).
SHORT_ROWS = 16


def _gather_row_blocks(x_cnhw, cols, step_w, padding):
    """Fill cols [C, kh, kw, N, Ho, Wo] for a stride of 1 down the rows, copying whole row blocks.

    For kernel column j, the input shifted sideways (output column q reads input column
    step_w*q + j - pw, zero outside) and zero-padded above and below holds, for each image and
    channel, the Ho rows that offset (i, j) reads as one contiguous block (rows i .. i+Ho-1): one
    copy per image and channel instead of one per output row.
    """
    xp = backend.get_array_module(x_cnhw)
    c, n, h, w = x_cnhw.shape
    kw, (ho, wo) = cols.shape[2], cols.shape[4:]
    ph, pw = padding
    shifted = xp.zeros((c, n, h + 2 * ph, wo), dtype=x_cnhw.dtype)
    inside = shifted[:, :, ph:ph + h]
    for j in range(kw):
        first = min(wo, max(0, -((j - pw) // step_w)))           # first q that reads inside the image
        last = max(first, min(wo, (w - 1 - j + pw) // step_w + 1))  # one past the last such q
        inside[..., :first] = 0
        inside[..., last:] = 0
        if last > first:
            start = step_w * first + j - pw
            inside[..., first:last] = x_cnhw[..., start:start + step_w * (last - first - 1) + 1:step_w]
        for i in range(cols.shape[1]):
            cols[:, i, j] = shifted[:, :, i:i + ho]


def col2im(cols, x_shape, kernel_size, stride=1, padding=0):
    """The adjoint of im2col: cols [C*kh*kw, N*Ho*Wo] -> x-shaped sum of every patch's entries."""
    xp = backend.get_array_module(cols)
    (kh, kw), step, (ph, pw), out = conv_geometry(x_shape, kernel_size, stride, padding)
    n, c, h, w = x_shape
    patches = cols.reshape((c, kh, kw, n) + out)
    grad_pad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            rows, columns = _offset_slices(i, j, step, out)
            grad_pad[:, :, rows, columns] += patches[:, i, j].transpose(1, 0, 2, 3)
    return xp.ascontiguousarray(grad_pad[:, :, ph:ph + h, pw:pw + w])


def rows_to_nchw(y_rows, n, out):
    """[C_out, N*Ho*Wo] (the GEMM result) -> [N, C_out, Ho, Wo], contiguous; a population's
    [P, C_out, N*Ho*Wo] -> [N, P, C_out, Ho, Wo]."""
    xp = backend.get_array_module(y_rows)
    if y_rows.ndim == 2:
        return xp.ascontiguousarray(y_rows.reshape((y_rows.shape[0], n) + tuple(out)).transpose(1, 0, 2, 3))
    size, c_out = y_rows.shape[:2]
    return xp.ascontiguousarray(y_rows.reshape((size, c_out, n) + tuple(out)).transpose(2, 0, 1, 3, 4))


def nchw_to_rows(y):
    """[N, C_out, Ho, Wo] -> [C_out, N*Ho*Wo], the inverse of rows_to_nchw (a population's
    [N, P, C_out, Ho, Wo] -> [P, C_out, N*Ho*Wo])."""
    if y.ndim == 4:
        return y.transpose(1, 0, 2, 3).reshape(y.shape[1], -1)
    return y.transpose(1, 2, 0, 3, 4).reshape(y.shape[1], y.shape[2], -1)
