"""The fused CUDA kernels (gee_ref/kernels/*.cu), compiled by g++ and run on the CPU, against
the plain NumPy ops they replace (ops/lif.py, ops/im2col.py, ops/batch_norm.py). No GPU needed.

``kernel_emulation.Emulation`` builds every .cu file for float and double and stands in for
``compiler.kernel``, so the Python wrappers (lif_fused, im2col_fused, batch_norm_fused) run as
they will on CuPy, only with NumPy arrays. LIF forward, im2col and batch norm in eval mode are
compared bit for bit (the same IEEE operations in the same order); the LIF backward (exp, atan
from another math library), col2im and batch norm in training mode (sums in another order, in
double) within 1e-10 (float64) and 1e-5 (float32), relative to the largest reference value.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gee_ref import autograd, kernels
from gee_ref.autograd import functional
from gee_ref.kernels import batch_norm_fused, compiler, im2col_fused, lif_fused
from gee_ref.ops import batch_norm as batch_norm_op
from gee_ref.ops import conv2d as conv2d_op
from gee_ref.ops import im2col as im2col_op
from gee_ref.ops import lif as lif_op

from gpu_emulation import kernel_emulation
from gpu_emulation.kernel_cases import (TOLERANCE, batch_norm_cases, batch_norm_dx_difference, conv_cases, lane_rule,
                          lif_cases, relative_difference)

pytestmark = pytest.mark.skipif(kernel_emulation.gxx() is None, reason="needs g++ to emulate the kernels")


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    """Every kernel built once for this module; compiler.kernel answers with the emulated ones."""
    built = kernel_emulation.Emulation(tmp_path_factory.mktemp("kernels"))
    built.names, built.index_types = [], []

    def emulated_kernel(file, name, dtype, index=numpy.int64):
        built.names.append(name)
        built.index_types.append(index)
        return built.kernel(file, name, dtype, index)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiler, "kernel", emulated_kernel)
        yield built


# ------------------------------------------------------------------------- LIF

@given(lif_cases())
def test_lif_forward_is_bit_identical_to_the_plain_op(emulation, case):
    x, _, params = case
    spikes, cache = lif_fused.forward(x, **params)
    spikes_ref, cache_ref = lif_op.forward(x, **params)
    assert spikes.dtype == x.dtype and spikes.shape == x.shape
    numpy.testing.assert_array_equal(spikes, spikes_ref)
    numpy.testing.assert_array_equal(cache[0], cache_ref[0])  # H
    assert cache[1:] == cache_ref[1:]


@given(lif_cases())
def test_lif_backward_matches_the_plain_op_after_either_forward(emulation, case):
    x, grad, params = case
    _, cache = lif_fused.forward(x, **params)
    _, cache_ref = lif_op.forward(x, **params)
    (reference,) = lif_op.backward(grad, cache_ref)
    tolerance = TOLERANCE[x.dtype]
    for forward_cache in (cache, cache_ref):
        (fused,) = lif_fused.backward(grad, forward_cache)
        assert fused.dtype == x.dtype
        assert relative_difference(fused, reference) <= tolerance
    (plain_after_fused,) = lif_op.backward(grad, cache)
    numpy.testing.assert_array_equal(plain_after_fused, reference)


def test_lif_backward_sees_the_reset_and_the_surrogate(emulation):
    """detach_reset and the surrogate change the fused gradient as they change the plain one."""
    rng = numpy.random.default_rng(5)
    x = rng.normal(1.0, 1.0, size=(4, 3, 5))
    grad = rng.standard_normal(x.shape)
    results = {}
    for surrogate in ("sigmoid", "atan", "rectangular"):
        for detach in (False, True):
            _, cache = lif_fused.forward(x, surrogate=surrogate, detach_reset=detach)
            (results[surrogate, detach],) = lif_fused.backward(grad, cache)
            (reference,) = lif_op.backward(grad, lif_op.forward(x, surrogate=surrogate, detach_reset=detach)[1])
            assert relative_difference(results[surrogate, detach], reference) <= 1e-12
    values = list(results.values())
    assert all(not numpy.allclose(a, b) for k, a in enumerate(values) for b in values[k + 1:])


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_rectangular_surrogate_is_zero_on_its_edges(emulation, dtype):
    """p'(x) = [|x| < a/2] / a: at H - v_th = -1/2 and +1/2 (x = 1 and 3) the gradient is zero."""
    x = numpy.array([[1.0, 3.0, 1.5, 2.5, 2.0]], dtype=dtype)  # T = 1: H = x / 2
    _, cache = lif_fused.forward(x, surrogate="rectangular")
    (fused,) = lif_fused.backward(numpy.ones_like(x), cache)
    numpy.testing.assert_array_equal(fused, numpy.array([[0.0, 0.0, 0.5, 0.5, 0.5]], dtype=dtype))
    numpy.testing.assert_array_equal(fused, lif_op.backward(numpy.ones_like(x), cache)[0])


def test_lif_fused_refuses_what_it_has_no_kernel_for(emulation):
    x = numpy.ones((2, 3))
    _, soft_cache = lif_op.forward(x, soft=True)
    assert not lif_fused.handles("sigmoid", soft=True) and lif_fused.handles("atan", soft=False)
    with pytest.raises(ValueError, match="hard spikes"):
        lif_fused.backward(x, soft_cache)
    _, cache = lif_fused.forward(x)
    with pytest.raises(ValueError, match="grad has shape"):
        lif_fused.backward(numpy.ones((2, 4)), cache)
    with pytest.raises(ValueError, match="float32 and float64"):
        lif_fused.forward(x.astype(numpy.float16))
    with pytest.raises(ValueError, match="x_seq of shape"):
        lif_fused.forward(numpy.ones(3))
    with pytest.raises(ValueError, match="tau > 0"):
        lif_fused.forward(x, tau=0.0)
    with pytest.raises(ValueError, match="unknown surrogate"):
        lif_fused.forward(x, surrogate="relu")


def test_lif_takes_non_contiguous_input_and_gradients_of_another_dtype(emulation):
    rng = numpy.random.default_rng(2)
    base = rng.normal(1.0, 1.0, size=(5, 6, 3))
    x = base.transpose(1, 0, 2)[::2]  # [T=3, N=5, 3], strided
    spikes, cache = lif_fused.forward(x)
    spikes_ref, cache_ref = lif_op.forward(x)
    numpy.testing.assert_array_equal(spikes, spikes_ref)
    grad = rng.standard_normal(x.shape).astype(numpy.float32)[:, ::-1]
    (fused,) = lif_fused.backward(grad, cache)
    (reference,) = lif_op.backward(grad.astype(numpy.float64), cache_ref)
    assert relative_difference(fused, reference) <= 1e-12


# ------------------------------------------------------------------------- im2col / col2im

@given(conv_cases())
def test_im2col_copies_exactly_what_the_plain_im2col_copies(emulation, case):
    x, kernel, stride, padding, _ = case
    cols = im2col_fused.channel_major_im2col(x, kernel, stride, padding)
    reference = im2col_op.channel_major_im2col(x, kernel, stride, padding)
    assert cols.flags.c_contiguous and cols.dtype == x.dtype
    numpy.testing.assert_array_equal(cols, reference)


@given(conv_cases(), st.booleans())
def test_col2im_matches_the_plain_col2im_and_is_the_adjoint(emulation, case, transposed_cols):
    x, kernel, stride, padding, rng = case
    x_shape = (x.shape[1], x.shape[0]) + x.shape[2:]
    rows, columns = im2col_op.channel_major_im2col(x, kernel, stride, padding).shape
    if transposed_cols:  # e.g. the product dY.T @ W, seen transposed
        cols = rng.standard_normal((columns, rows)).astype(x.dtype).T
    else:
        cols = rng.standard_normal((rows, columns)).astype(x.dtype)
    fused = im2col_fused.col2im(cols, x_shape, kernel, stride, padding)
    reference = im2col_op.col2im(cols, x_shape, kernel, stride, padding)
    assert fused.flags.c_contiguous and fused.shape == x_shape and fused.dtype == x.dtype
    assert relative_difference(fused, reference) <= TOLERANCE[x.dtype]
    # <im2col(x), cols> = <x, col2im(cols)>, in float64
    x_nchw = x.transpose(1, 0, 2, 3).astype(numpy.float64)
    cols64 = cols.astype(numpy.float64)
    left = numpy.sum(im2col_fused.channel_major_im2col(x_nchw.transpose(1, 0, 2, 3), kernel, stride, padding) * cols64)
    right = numpy.sum(x_nchw * im2col_fused.col2im(cols64, x_shape, kernel, stride, padding))
    assert abs(left - right) <= 1e-10 * max(1.0, abs(left))


def test_im2col_fused_refuses_bad_shapes(emulation):
    with pytest.raises(ValueError, match=r"\[C, N, H, W\]"):
        im2col_fused.channel_major_im2col(numpy.ones((2, 3, 4)), 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        im2col_fused.channel_major_im2col(numpy.ones((1, 1, 2, 2)), 3)
    with pytest.raises(ValueError, match="cols has shape"):
        im2col_fused.col2im(numpy.ones((9, 5)), (1, 1, 3, 3), 3, 1, 1)
    with pytest.raises(ValueError, match="float32 and float64"):
        im2col_fused.channel_major_im2col(numpy.ones((1, 1, 3, 3), dtype=numpy.int32), 3)


def test_empty_batches_launch_nothing(emulation):
    emulation.names.clear()
    cols = im2col_fused.channel_major_im2col(numpy.ones((2, 0, 3, 3)), 3, 1, 1)
    assert cols.shape == (18, 0)
    assert im2col_fused.col2im(cols, (0, 2, 3, 3), 3, 1, 1).shape == (0, 2, 3, 3)
    spikes, _ = lif_fused.forward(numpy.ones((3, 0, 4)))
    assert spikes.shape == (3, 0, 4)
    assert emulation.names == ["im2col", "col2im", "lif_forward"]  # looked up, then not launched


# ------------------------------------------------------------------------- BatchNorm

def own_statistics(arguments):
    """The forward arguments with copies of the running statistics (a forward changes them)."""
    copies = {k: arguments[k].copy() for k in ("running_mean", "running_var") if arguments[k] is not None}
    return {**arguments, **copies}


@given(batch_norm_cases())
def test_batch_norm_forward_matches_the_plain_op(emulation, case):
    arguments, _, lanes = case
    fused_arguments, plain_arguments = own_statistics(arguments), own_statistics(arguments)
    with lane_rule(lanes):
        y, cache = batch_norm_fused.forward(**fused_arguments)
    y_ref, cache_ref = batch_norm_op.forward(**plain_arguments)
    assert y.dtype == y_ref.dtype and y.shape == y_ref.shape and y.flags.c_contiguous
    assert type(cache) is type(cache_ref) is batch_norm_op.Cache
    assert cache.gamma is arguments["gamma"] and cache[3:] == cache_ref[3:]  # has_beta, count, training
    assert (y is cache.x_hat) == (y_ref is cache_ref.x_hat)  # y is x_hat only without gamma and beta
    statistics = ("running_mean", "running_var")
    if arguments["training"]:
        tolerance = TOLERANCE[y.dtype]
        for fused, plain in [(y, y_ref), (cache[0], cache_ref[0]), (cache[1], cache_ref[1])] + [
                (fused_arguments[k], plain_arguments[k]) for k in statistics if arguments[k] is not None]:
            assert fused.dtype == plain.dtype
            assert relative_difference(fused, plain) <= tolerance
        assert all(not numpy.array_equal(fused_arguments[k], arguments[k])
                   for k in statistics if arguments[k] is not None)  # updated in place
    else:  # the same mean and inv_std: bit for bit, and the running statistics untouched
        for fused, plain in ((y, y_ref), (cache[0], cache_ref[0]), (cache[1], cache_ref[1])):
            numpy.testing.assert_array_equal(fused, plain)
        for k in statistics:
            numpy.testing.assert_array_equal(fused_arguments[k], arguments[k])


@given(batch_norm_cases())
def test_batch_norm_backward_matches_the_plain_op_after_either_forward(emulation, case):
    arguments, grad, lanes = case
    with lane_rule(lanes):
        _, cache = batch_norm_fused.forward(**own_statistics(arguments))
    _, cache_ref = batch_norm_op.forward(**own_statistics(arguments))
    reference = batch_norm_op.backward(grad, cache_ref)
    tolerance = TOLERANCE[grad.dtype]
    for forward_cache in (cache, cache_ref):
        with lane_rule(lanes):
            fused = batch_norm_fused.backward(grad, forward_cache)
        assert fused[0].dtype == grad.dtype and fused[0].shape == grad.shape
        assert batch_norm_dx_difference(fused[0], reference[0], grad, arguments["gamma"], cache_ref[1],
                                        cache_ref[5]) <= tolerance
        for got, expected in zip(fused[1:], reference[1:]):  # dgamma, dbeta, or None for each
            assert (got is None) == (expected is None)
            if expected is not None:
                assert got.dtype == expected.dtype and relative_difference(got, expected) <= tolerance
    plain_after_fused = batch_norm_op.backward(grad, cache)
    assert batch_norm_dx_difference(plain_after_fused[0], reference[0], grad, arguments["gamma"],
                                    cache_ref[1], cache_ref[5]) <= tolerance


@pytest.mark.parametrize("lanes", [(1, 2**16), (2, 2**16), (32, 2**16), (1, 3)])
def test_batch_norm_statistics_by_hand(emulation, lanes):
    """One channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased 5/3; running
    statistics that are strided views are updated in place too."""
    x = numpy.array([1.0, 2.0, 3.0, 4.0]).reshape(2, 1, 2, 1)
    buffers = numpy.array([0.0, -7.0]), numpy.array([1.0, -7.0, 8.0])
    running_mean, running_var = buffers[0][::2], buffers[1][::3]
    with lane_rule(lanes):
        y, cache = batch_norm_fused.forward(x, numpy.array([2.0]), numpy.array([0.5]), running_mean, running_var,
                                            training=True, momentum=0.1, eps=0.0)
    assert running_mean[0] == pytest.approx(0.9 * 0.0 + 0.1 * 2.5, rel=1e-15)
    assert running_var[0] == pytest.approx(0.9 * 1.0 + 0.1 * 5.0 / 3.0, rel=1e-15)
    assert buffers[0][1] == buffers[1][1] == -7.0 and buffers[1][2] == 8.0
    x_hat = (numpy.array([1.0, 2.0, 3.0, 4.0]) - 2.5) / numpy.sqrt(1.25)
    numpy.testing.assert_allclose(cache[0].ravel(), x_hat, rtol=1e-15)
    numpy.testing.assert_allclose(y.ravel(), 2.0 * x_hat + 0.5, rtol=1e-15)
    assert cache[1][0] == pytest.approx(1.0 / numpy.sqrt(1.25), rel=1e-15)
    # dy = 1: dbeta = 4, dgamma = sum(x_hat) = 0, dx = 0 (a shift of y's input changes nothing)
    grad_x, grad_gamma, grad_beta = batch_norm_fused.backward(numpy.ones_like(x), cache)
    assert grad_beta[0] == 4.0 and abs(grad_gamma[0]) <= 1e-15
    numpy.testing.assert_allclose(grad_x, 0.0, atol=1e-15)


@pytest.mark.parametrize("dtype, tolerance", [(numpy.float64, 1e-12), (numpy.float32, 1e-6)])
@pytest.mark.parametrize("lanes", [(32, 2**16), (1, 2**16), (7, 2**16)])
def test_batch_norm_variance_is_centred_however_far_the_mean(emulation, dtype, tolerance, lanes):
    """Values 1e8 (1e4 in float32) +- about 1: sum(x^2)/n - mu^2 would cancel to noise; Welford's
    lanes and the within- plus between-lane sum of squares keep every digit."""
    rng = numpy.random.default_rng(11)
    offset = 1e8 if dtype == numpy.float64 else 1e4
    x = (offset + rng.standard_normal((50, 2, 3, 1)) * numpy.array([1.0, 0.5]).reshape(1, 2, 1, 1)).astype(dtype)
    with lane_rule(lanes):
        _, cache = batch_norm_fused.forward(x, None, None, training=True, eps=1e-5)
    x64 = x.astype(numpy.float64)
    var = x64.var(axis=(0, 2, 3))  # two-pass, in double
    assert var.min() > 0.1
    assert relative_difference(cache[1], 1.0 / numpy.sqrt(var + 1e-5)) <= tolerance


def test_batch_norm_lanes():
    assert batch_norm_fused.lanes_for(524288, 64) == 1024  # 2**16 threads, 512 values a lane
    assert batch_norm_fused.lanes_for(216, 5) == 7  # at least 32 values a lane
    assert batch_norm_fused.lanes_for(2, 1) == batch_norm_fused.lanes_for(0, 3) == 1
    for count in (1, 2, 31, 32, 33, 1000, 10**6):
        for channels in (1, 3, 512, 10**5):
            lanes = batch_norm_fused.lanes_for(count, channels)
            assert 1 <= lanes <= count
            assert (lanes - 1) * batch_norm_fused.VALUES_PER_LANE < count
            assert lanes == 1 or (lanes - 1) * channels < batch_norm_fused.STAGE_ONE_THREADS


def test_batch_norm_fused_refuses_what_it_cannot_do(emulation):
    x, ones, zeros = numpy.ones((4, 3)), numpy.ones(3), numpy.zeros(3)
    with pytest.raises(ValueError, match=r"\[N, C\] or \[N, C, H, W\]"):
        batch_norm_fused.forward(numpy.ones((2, 3, 4)), None, None)
    with pytest.raises(ValueError, match="gamma has shape"):
        batch_norm_fused.forward(x, numpy.ones(2), zeros)
    with pytest.raises(ValueError, match="more than one value per channel"):
        batch_norm_fused.forward(numpy.ones((1, 3)), ones, zeros, training=True)
    with pytest.raises(ValueError, match="eval mode needs running_mean"):
        batch_norm_fused.forward(x, ones, zeros, None, ones, training=False)
    with pytest.raises(ValueError, match="at least one channel"):
        batch_norm_fused.forward(numpy.ones((4, 0)), None, None)
    with pytest.raises(ValueError, match="float32 and float64"):
        half = numpy.ones(3, dtype=numpy.float16)
        batch_norm_fused.forward(x.astype(numpy.float16), None, None, half, half, training=False)
    single = ones.astype(numpy.float32)
    assert not batch_norm_fused.handles(x, single, zeros)
    assert not batch_norm_fused.handles(x, ones, zeros, single, ones, training=True)
    assert batch_norm_fused.handles(x, ones, zeros, single, single, training=False)  # cast, as the plain op does
    with pytest.raises(ValueError, match="x's dtype"):
        batch_norm_fused.forward(x, single, zeros)

    _, cache = batch_norm_fused.forward(x.copy(), ones, zeros, zeros.copy(), ones.copy())
    with pytest.raises(ValueError, match="grad has shape"):
        batch_norm_fused.backward(numpy.ones((4, 2)), cache)
    population = batch_norm_op.forward(numpy.ones((4, 2, 3)), numpy.ones((2, 3)), numpy.zeros((2, 3)))[1]
    for broken in (tuple(cache), list(cache), population):
        with pytest.raises(ValueError, match="Cache of one network"):
            batch_norm_fused.backward(numpy.ones((4, 3)), broken)
    float_gamma_cache = cache._replace(gamma=single)
    assert not batch_norm_fused.handles_cache(float_gamma_cache)
    with pytest.raises(ValueError, match="x_hat's dtype"):
        batch_norm_fused.backward(numpy.ones((4, 3)), float_gamma_cache)


def test_batch_norm_on_an_empty_batch(emulation):
    """Eval mode on N = 0 launches nothing over x; dgamma and dbeta are sums of nothing."""
    x = numpy.ones((0, 3, 2, 2), dtype=numpy.float32)
    gamma, beta = numpy.full(3, 2.0, numpy.float32), numpy.ones(3, numpy.float32)
    statistics = numpy.zeros(3, numpy.float32), numpy.ones(3, numpy.float32)
    emulation.names.clear()
    y, cache = batch_norm_fused.forward(x, gamma, beta, *statistics, training=False)
    grads = batch_norm_fused.backward(numpy.ones_like(x), cache)
    assert emulation.names == ["bn_normalise", "bn_lane_gradient_sums", "bn_backward_totals", "bn_backward_dx"]
    assert y.shape == x.shape and y.dtype == x.dtype
    assert grads[0].shape == x.shape and grads[0].dtype == x.dtype
    for total in grads[1:]:
        assert total.dtype == x.dtype
        numpy.testing.assert_array_equal(total, numpy.zeros(3))


def test_batch_norm_launches(emulation):
    """Training: three kernels each way; eval without gamma and beta: one each way."""
    rng = numpy.random.default_rng(4)
    x = rng.standard_normal((600, 2))
    emulation.names.clear()
    _, cache = batch_norm_fused.forward(x, rng.standard_normal(2), None, training=True)
    batch_norm_fused.backward(x, cache)
    assert emulation.names == ["bn_lane_moments", "bn_forward_statistics", "bn_normalise",
                               "bn_lane_gradient_sums", "bn_backward_totals", "bn_backward_dx"]
    emulation.names.clear()
    _, cache = batch_norm_fused.forward(x, None, None, numpy.zeros(2), numpy.ones(2), training=False)
    batch_norm_fused.backward(x, cache)
    assert emulation.names == ["bn_normalise", "bn_backward_dx"]

# ------------------------------------------------------------------------- index width

def _every_fused_op(rng, dtype=numpy.float64):
    """(fused, plain) results of LIF, im2col, col2im and training batch norm on one small case."""
    x = rng.normal(1.0, 1.0, size=(3, 2, 5)).astype(dtype)
    grad = rng.standard_normal(x.shape).astype(dtype)
    image = rng.standard_normal((2, 3, 7, 6)).astype(dtype).transpose(1, 0, 2, 3)[:, :, ::-1]  # strided view
    bn_x = rng.normal(2.0, 1.5, size=(4, 3, 5, 5)).astype(dtype)
    bn_grad = rng.standard_normal(bn_x.shape).astype(dtype)
    gamma, beta = rng.uniform(0.5, 2.0, 3).astype(dtype), rng.standard_normal(3).astype(dtype)
    results = []
    for lif, im2col, bn in ((lif_fused, im2col_fused, batch_norm_fused), (lif_op, im2col_op, batch_norm_op)):
        spikes, cache = lif.forward(x)
        cols = im2col.channel_major_im2col(image, 3, 2, 1)
        y, bn_cache = bn.forward(bn_x, gamma, beta, numpy.zeros(3, dtype), numpy.ones(3, dtype), training=True)
        results.append([spikes, cache[0], lif.backward(grad, cache)[0], cols,
                        im2col.col2im(cols.T.copy().T, (2, 3, 7, 6), 3, 2, 1), y, *bn.backward(bn_grad, bn_cache)])
    return results


def test_small_launches_index_in_32_bits(emulation):
    emulation.index_types.clear()
    _every_fused_op(numpy.random.default_rng(0))
    assert len(emulation.index_types) == 10 and set(emulation.index_types) == {numpy.int32}


def test_the_64_bit_fallback_gives_the_same_numbers(emulation, monkeypatch):
    """With the 32-bit limit lowered to nothing every launch takes long long indices, and every
    op still equals the plain one (and the 32-bit run)."""
    narrow = _every_fused_op(numpy.random.default_rng(1))[0]
    monkeypatch.setattr(compiler, "INT32_MAX", 0)
    emulation.index_types.clear()
    wide, plain = _every_fused_op(numpy.random.default_rng(1))
    assert len(emulation.index_types) == 10 and set(emulation.index_types) == {numpy.int64}
    for a, b, reference in zip(wide, narrow, plain):
        numpy.testing.assert_array_equal(a, b)
        assert relative_difference(a, reference) <= 1e-12


def test_largest_offset_of_strided_views():
    base = numpy.zeros((4, 5, 6))
    assert im2col_fused.largest_offset(base) == base.size - 1
    assert im2col_fused.largest_offset(base[:, ::-2, 1:]) == 3 * 30 + 2 * 2 * 6 + 4
    assert im2col_fused.largest_offset(base.transpose(2, 0, 1)) == base.size - 1
    assert im2col_fused.largest_offset(base[:0]) == 0


# ------------------------------------------------------------------------- the switch and the wiring

def test_the_switch():
    # off unless GEE_REF_FUSED_KERNELS=1 (a GPU session may run the whole suite with it on)
    assert kernels.enabled() is (os.environ.get("GEE_REF_FUSED_KERNELS") == "1")
    initial = kernels.enabled()
    with kernels.using(True):
        assert kernels.enabled()
        assert not kernels.applies(numpy.ones(3))  # NumPy arrays keep the plain path
        with kernels.using(False):
            assert not kernels.enabled()
        assert kernels.enabled()
    assert kernels.enabled() is initial
    with pytest.raises(ValueError, match="True or False"):
        kernels.set_enabled(1)
    assert kernels.enabled() is initial


def test_the_environment_variable_switches_them_on():
    code = "from gee_ref import kernels; print(kernels.enabled())"
    for value, expected in (("1", "True"), ("0", "False"), ("", "False")):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env={**os.environ, "GEE_REF_FUSED_KERNELS": value})
        assert done.stdout.strip() == expected


@pytest.mark.parametrize("index", [numpy.int32, numpy.int64])
def test_each_thread_writes_only_its_grid_stride_share(emulation, index):
    """Thread r of R threads in all writes the elements r, r + R, r + 2R, ... and no other."""
    blocks, threads = kernel_emulation.EMULATED_GRID
    total = blocks * threads
    count = 4 * total + 1
    x = numpy.ones((2, count))
    one, zero, n = index(1), index(0), index(count)
    for block in range(blocks):
        for thread in range(threads):
            share = numpy.arange(count) % total == block * threads + thread
            spikes, h = numpy.full_like(x, numpy.nan), numpy.full_like(x, numpy.nan)
            emulation.kernel("lif.cu", "lif_forward", x.dtype, index).run_thread(
                block, thread, (x, spikes, h, index(2), n, numpy.float64(2.0), numpy.float64(1.0),
                                numpy.float64(0.0)))
            numpy.testing.assert_array_equal(~numpy.isnan(h), numpy.broadcast_to(share, x.shape))
            cols = numpy.full((1, count), numpy.nan)  # im2col of a 1 x count image, 1x1 kernel
            emulation.kernel("im2col.cu", "im2col", x.dtype, index).run_thread(
                block, thread, (numpy.ones((1, 1, 1, count)), cols, one, one, one, n, n, n, n, one,
                                one, one, one, one, zero, zero, one, n))
            numpy.testing.assert_array_equal(~numpy.isnan(cols[0]), share)
            pixels = numpy.full((1, 1, 1, count), numpy.nan)
            emulation.kernel("im2col.cu", "col2im", x.dtype, index).run_thread(
                block, thread, (numpy.ones((1, count)), pixels, one, one, one, n, n, one, one, one,
                                one, one, zero, zero, one, n))
            numpy.testing.assert_array_equal(~numpy.isnan(pixels.reshape(-1)), share)


@pytest.mark.parametrize("index", [numpy.int32, numpy.int64])
def test_batch_norm_threads_write_only_their_grid_stride_share(emulation, index):
    """Thread r of R writes element (or channel, or lane) r, r + R, ...; the stage-1 kernels
    number their threads over lanes first, except for an [N, C] input (S = 1): channels first."""
    blocks, threads = kernel_emulation.EMULATED_GRID
    total_threads = blocks * threads
    count = 4 * total_threads + 1
    i32, f64 = numpy.int32, numpy.float64  # index: the kernels' index_t, i32: their int flags
    ones, nan = numpy.ones(count), lambda shape: numpy.full(shape, numpy.nan)

    def written(name, args, output, block, thread):
        emulation.kernel("batch_norm.cu", name, numpy.float64, index).run_thread(block, thread, args)
        return ~numpy.isnan(output)

    # C = 5, L = 5 lanes of 5 values, S = 1: thread k is (channel k % 5, lane k // 5) -> index c L + l
    k = numpy.arange(25)
    lane_index_by_thread = (k % 5) * 5 + k // 5
    for block in range(blocks):
        for thread in range(threads):
            rank = block * threads + thread
            share = numpy.arange(count) % total_threads == rank
            x_hat, lane, channel = nan(count), nan(count), nan(count)
            assert (written("bn_normalise", (ones, ones[:1], ones[:1], ones[:1], ones[:1], x_hat, nan(count),
                                             index(count), index(1), index(1), i32(1), i32(1)), x_hat, block, thread)
                    == share).all()
            grad_x = nan(count)
            assert (written("bn_backward_dx", (ones, ones, ones[:1], ones[:1], ones[:1], ones[:1], grad_x,
                                               index(count), index(1), index(1), i32(1), i32(1)),
                            grad_x, block, thread) == share).all()
            # one channel of 9 x 3 values (S = 3), L = count lanes: thread k is lane k
            assert (written("bn_lane_moments", (numpy.ones(27), lane, nan(count), index(9), index(1), index(3), index(count)),
                            lane, block, thread) == share).all()
            lane = nan(count)
            assert (written("bn_lane_gradient_sums", (numpy.ones(27), numpy.ones(27), lane, nan(count), index(9),
                                                      index(1), index(3), index(count)), lane, block, thread) == share).all()
            # count channels, one lane each: thread k is channel k
            assert (written("bn_forward_statistics", (numpy.ones(2 * count), numpy.zeros(count), numpy.zeros(count),
                                                      channel, nan(count), nan(count), nan(count), index(count), index(1),
                                                      index(2), index(1), f64(0.1), f64(1e-5), i32(0), i32(0)),
                            channel, block, thread) == share).all()
            channel = nan(count)
            assert (written("bn_backward_totals", (numpy.zeros(count), numpy.zeros(count), ones, ones, channel,
                                                   nan(count), nan(count), nan(count), index(count), index(2), index(1),
                                                   i32(1)), channel, block, thread) == share).all()
            lane = nan(25)
            mine = written("bn_lane_moments", (numpy.ones(25), lane, nan(25), index(5), index(5), index(1), index(5)),
                           lane, block, thread)
            numpy.testing.assert_array_equal(mine[lane_index_by_thread], k % total_threads == rank)


@pytest.fixture
def kernels_apply_to_numpy(emulation, monkeypatch):
    """gee_ref.kernels.dispatch decides as it would on CuPy: kernels.applies says yes to NumPy float arrays."""
    monkeypatch.setattr(kernels, "applies", lambda array: array.dtype in kernels.KERNEL_DTYPES)
    emulation.names.clear()
    return emulation


def forward_and_backward(function, inputs, grad, **params):
    """Run ``function`` (of gee_ref.autograd.functional) on the tape: its output and the inputs' gradients."""
    tensors = [autograd.Tensor(a, requires_grad=True) for a in inputs]
    out = function(*tensors, **params)
    out.backward(grad)
    return out.data, [t.grad for t in tensors]


def test_the_lif_dispatches_hard_spikes_to_the_kernels(kernels_apply_to_numpy):
    rng = numpy.random.default_rng(0)
    x, grad = rng.normal(1.0, 1.0, size=(3, 2, 5)), rng.standard_normal((3, 2, 5))
    spikes, (grad_x,) = forward_and_backward(functional.lif, [x], grad, surrogate="atan")
    assert kernels_apply_to_numpy.names == ["lif_forward", "lif_backward"]
    kernels_apply_to_numpy.names.clear()
    forward_and_backward(functional.lif, [x], grad, surrogate="atan", soft=True)
    assert kernels_apply_to_numpy.names == []  # the soft LIF stays on the plain path
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "applies", lambda array: False)
        spikes_ref, (grad_x_ref,) = forward_and_backward(functional.lif, [x], grad, surrogate="atan")
    numpy.testing.assert_array_equal(spikes, spikes_ref)
    assert relative_difference(grad_x, grad_x_ref) <= 1e-12


def test_the_conv2d_dispatches_to_the_kernels(kernels_apply_to_numpy):
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    grad_y = rng.standard_normal((2, 4, 4, 3))
    y, fused = forward_and_backward(functional.conv2d, [x, w], grad_y, stride=2, padding=1)
    assert "im2col" in kernels_apply_to_numpy.names and "col2im" in kernels_apply_to_numpy.names
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "applies", lambda array: False)
        y_ref, plain = forward_and_backward(functional.conv2d, [x, w], grad_y, stride=2, padding=1)
    numpy.testing.assert_array_equal(y, y_ref)
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain):
        assert relative_difference(a, b) <= 1e-12



def test_the_batch_norm_dispatches_to_the_kernels(kernels_apply_to_numpy):
    rng = numpy.random.default_rng(6)
    x, grad = rng.normal(1.0, 2.0, size=(3, 2, 4, 5)), rng.standard_normal((3, 2, 4, 5))
    gamma, beta = rng.uniform(0.5, 2.0, 2), rng.standard_normal(2)
    statistics = [numpy.zeros(2), numpy.ones(2)]

    def batch_norm(x, gamma, beta, statistics):
        return functional.batch_norm(x, gamma, beta, *statistics, training=True)

    y, fused = forward_and_backward(batch_norm, [x, gamma, beta], grad, statistics=statistics)
    assert kernels_apply_to_numpy.names == ["bn_lane_moments", "bn_forward_statistics", "bn_normalise",
                                            "bn_lane_gradient_sums", "bn_backward_totals", "bn_backward_dx"]
    statistics_ref = [numpy.zeros(2), numpy.ones(2)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "applies", lambda array: False)
        y_ref, plain = forward_and_backward(batch_norm, [x, gamma, beta], grad, statistics=statistics_ref)
    for a, b in zip([y, *statistics, *fused], [y_ref, *statistics_ref, *plain]):
        assert relative_difference(a, b) <= 1e-12
    kernels_apply_to_numpy.names.clear()
    functional.batch_norm(x, gamma.astype(numpy.float32), beta, *statistics, training=True)
    assert kernels_apply_to_numpy.names == []  # a gamma of another dtype stays on the plain path
    functional.batch_norm(x[:, None], gamma[None], beta[None], statistics[0][None], statistics[1][None], training=True)
    assert kernels_apply_to_numpy.names == []  # so does a population


def test_the_wrappers_launch_with_the_compiler_geometry(emulation):
    launched = []
    original = kernel_emulation.EmulatedKernel.__call__

    def recording(self, grid, block, args):
        launched.append((grid, block))
        return original(self, grid, block, args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernel_emulation.EmulatedKernel, "__call__", recording)
        lif_fused.forward(numpy.zeros((2, 300)))
        im2col_fused.channel_major_im2col(numpy.zeros((2, 1, 4, 4)), 3, 1, 1)
    blocks, threads = compiler.launch_geometry(300)
    assert launched[0] == ((blocks,), (threads,)) == ((2,), (256,))
    assert launched[1] == ((2,), (256,))  # 2*9 rows x 16 columns = 288 entries: 2 blocks
