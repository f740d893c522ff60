"""Test helper: the hypothesis cases shared by the fused-kernel tests (emulated and on the GPU).

Arrays are drawn on the host (NumPy); the GPU tests move them to CuPy.
"""
from __future__ import annotations

import contextlib

import numpy
import pytest
from hypothesis import strategies as st

from gee_ref import backend
from gee_ref.autograd import gradcheck
from gee_ref.kernels import batch_norm_fused

#: fused against plain: the largest difference relative to the largest reference value
TOLERANCE = {numpy.dtype(numpy.float64): 1e-10, numpy.dtype(numpy.float32): 1e-5}
DTYPES = st.sampled_from([numpy.float32, numpy.float64])
SURROGATES = st.sampled_from(["sigmoid", "atan", "rectangular"])


def relative_difference(a, b) -> float:
    """gradcheck.relative_difference in float64 (in float32 its 1e-300 floor rounds to 0: 0/0)."""
    a64 = numpy.asarray(backend.to_host(a), numpy.float64)
    b64 = numpy.asarray(backend.to_host(b), numpy.float64)
    return gradcheck.relative_difference(a64, b64)


@st.composite
def lif_cases(draw, neurons=(1, 3, 7, 16)):
    """(x [T, N, C], upstream gradient, LIF keyword arguments), values around the threshold."""
    dtype = draw(DTYPES)
    shape = (draw(st.integers(1, 5)), draw(st.integers(1, 4)), draw(st.sampled_from(neurons)))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.normal(1.0, 1.5, size=shape).astype(dtype)
    # with the defaults, x = 2 makes H_1 = 1 = v_th (fires), x = 3 or 1 puts H_1 - v_th on the
    # edges +-1/2 of the rectangular surrogate (alpha = 1)
    x.reshape(-1)[rng.random(x.size) < 0.15] = rng.choice([1.0, 2.0, 3.0])
    params = {"tau": draw(st.sampled_from([2.0, 1.5, 3.7])), "v_th": draw(st.sampled_from([1.0, 0.3, 1.1])),
              "v_reset": draw(st.sampled_from([0.0, -0.2])), "surrogate": draw(SURROGATES),
              "alpha": draw(st.sampled_from([None, None, 0.7, 3.0])), "detach_reset": draw(st.booleans())}
    grad = rng.standard_normal(shape).astype(dtype)
    return x, grad, params


@st.composite
def conv_cases(draw, to_device=None):
    """(x [C, N, H, W], kernel, stride, padding, rng); x contiguous, a transposed [N, C, H, W],
    or a strided view (every second row, columns reversed). ``to_device`` (e.g. cupy.asarray)
    moves the drawn array before the view is taken, so a GPU test gets the same kind of view."""
    to_device = to_device or (lambda a: a)
    dtype = draw(DTYPES)
    n, c, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    kernel = (draw(st.integers(1, min(5, h + 2 * padding[0]))), draw(st.integers(1, min(5, w + 2 * padding[1]))))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    layout = draw(st.sampled_from(["cnhw", "nchw-transposed", "strided"]))
    if layout == "cnhw":
        x = to_device(rng.standard_normal((c, n, h, w)).astype(dtype))
    elif layout == "nchw-transposed":
        x = to_device(rng.standard_normal((n, c, h, w)).astype(dtype)).transpose(1, 0, 2, 3)
    else:
        x = to_device(rng.standard_normal((n, c, 2 * h, w + 1)).astype(dtype))[:, :, ::2, :0:-1].transpose(1, 0, 2, 3)
    return x, kernel, stride, padding, rng


def batch_norm_dx_difference(fused, reference, grad, gamma, inv_std, count) -> float:
    """relative_difference of a batch-norm dL/dx, except with two values per channel (count = 2):
    there x_hat = +-1 (up to eps) and dx = gamma inv_std (dy - dbeta / n - x_hat dgamma / n)
    cancels to rounding noise, which two summation orders need not share, so the difference is
    taken relative to the size of the cancelling terms, max|dy gamma inv_std|, instead."""
    if count > 2:
        return relative_difference(fused, reference)
    grad64 = numpy.asarray(backend.to_host(grad), numpy.float64)
    scale = numpy.asarray(backend.to_host(inv_std), numpy.float64)
    if gamma is not None:
        scale = scale * numpy.abs(numpy.asarray(backend.to_host(gamma), numpy.float64))
    terms = float(numpy.abs(grad64 * scale.reshape((1, -1) + (1,) * (grad64.ndim - 2))).max(initial=0.0))
    a64 = numpy.asarray(backend.to_host(fused), numpy.float64)
    b64 = numpy.asarray(backend.to_host(reference), numpy.float64)
    return float(numpy.abs(a64 - b64).max(initial=0.0) / max(numpy.abs(b64).max(initial=0.0), terms, 1e-300))


@st.composite
def batch_norm_cases(draw):
    """A dict of forward arguments (x [N, C] or [N, C, H, W], gamma, beta, running statistics,
    training, momentum, eps), the upstream gradient ``grad``, and the lane rule
    ``lanes`` = (VALUES_PER_LANE, STAGE_ONE_THREADS) of batch_norm_fused to run it with.
    Each channel has its own mean in [-2, 2] and spread in [0.3, 3]; x is sometimes a strided view."""
    dtype = draw(DTYPES)
    n, c = draw(st.integers(2, 6)), draw(st.integers(1, 5))
    shape = draw(st.sampled_from([(n, c), (n, c, draw(st.integers(1, 6)), draw(st.integers(1, 6)))]))
    rng = numpy.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    per_channel = (1, c) + (1,) * (len(shape) - 2)
    loc, spread = rng.uniform(-2, 2, c).reshape(per_channel), rng.uniform(0.3, 3.0, c).reshape(per_channel)
    x = (loc + spread * rng.standard_normal(shape)).astype(dtype)
    if draw(st.booleans()):  # the same values, as every second row of a wider array
        wide = numpy.zeros((shape[0], 2 * c) + shape[2:], dtype=dtype)
        wide[:, ::2] = x
        x = wide[:, ::2]
    training = draw(st.booleans())
    track = draw(st.booleans()) or not training  # eval mode needs the running statistics
    arguments = {
        "x": x,
        "gamma": rng.uniform(0.5, 2.0, c).astype(dtype) if draw(st.booleans()) else None,
        "beta": rng.normal(0.0, 1.0, c).astype(dtype) if draw(st.booleans()) else None,
        "running_mean": rng.normal(0.0, 1.0, c).astype(dtype) if track else None,
        "running_var": rng.uniform(0.5, 2.0, c).astype(dtype) if track else None,
        "training": training,
        "momentum": draw(st.sampled_from([0.1, 0.3])),
        "eps": draw(st.sampled_from([1e-5, 1e-3])),
    }
    grad = rng.standard_normal(shape).astype(dtype)
    lanes = draw(st.sampled_from([(32, 2**16), (1, 2**16), (3, 2**16), (1, 4), (5, 7)]))
    return arguments, grad, lanes


@contextlib.contextmanager
def lane_rule(lanes):
    """batch_norm_fused with (VALUES_PER_LANE, STAGE_ONE_THREADS) = lanes inside the block."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(batch_norm_fused, "VALUES_PER_LANE", lanes[0])
        patch.setattr(batch_norm_fused, "STAGE_ONE_THREADS", lanes[1])
        yield
