"""The fused CUDA kernels (gee_ref/kernels/*.cu), compiled by g++ and run on the CPU, against
the plain NumPy ops they replace (ops/lif.py, ops/im2col.py). No GPU needed.

``kernel_emulation.Emulation`` builds every .cu file for float and double and stands in for
``compiler.kernel``, so the Python wrappers (lif_fused, im2col_fused) run as they will on
CuPy, only with NumPy arrays. LIF forward and im2col are compared bit for bit (the same IEEE
operations in the same order); the LIF backward (exp, atan from another math library) and
col2im within 1e-10 (float64) and 1e-5 (float32), relative to the largest reference value.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gee_ref import kernels
from gee_ref.kernels import compiler, im2col_fused, lif_fused
from gee_ref.ops import conv2d as conv2d_op
from gee_ref.ops import im2col as im2col_op
from gee_ref.ops import lif as lif_op

import kernel_emulation
from kernel_cases import TOLERANCE, conv_cases, lif_cases, relative_difference

pytestmark = pytest.mark.skipif(kernel_emulation.gxx() is None, reason="needs g++ to emulate the kernels")


@pytest.fixture(scope="module")
def emulation(tmp_path_factory):
    """Every kernel built once for this module; compiler.kernel answers with the emulated ones."""
    built = kernel_emulation.Emulation(tmp_path_factory.mktemp("kernels"))
    built.names = []

    def emulated_kernel(file, name, dtype):
        built.names.append(name)
        return built.kernel(file, name, dtype)

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
    assert not lif_fused.handles(soft_cache)
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


def test_each_thread_writes_only_its_grid_stride_share(emulation):
    """Thread r of R threads in all writes the elements r, r + R, r + 2R, ... and no other."""
    blocks, threads = kernel_emulation.EMULATED_GRID
    total = blocks * threads
    count = 4 * total + 1
    x = numpy.ones((2, count))
    one, zero, n = numpy.int64(1), numpy.int64(0), numpy.int64(count)
    for block in range(blocks):
        for thread in range(threads):
            share = numpy.arange(count) % total == block * threads + thread
            spikes, h = numpy.full_like(x, numpy.nan), numpy.full_like(x, numpy.nan)
            emulation.kernel("lif.cu", "lif_forward", x.dtype).run_thread(
                block, thread, (x, spikes, h, numpy.int64(2), n, numpy.float64(2.0), numpy.float64(1.0),
                                numpy.float64(0.0)))
            numpy.testing.assert_array_equal(~numpy.isnan(h), numpy.broadcast_to(share, x.shape))
            cols = numpy.full((1, count), numpy.nan)  # im2col of a 1 x count image, 1x1 kernel
            emulation.kernel("im2col.cu", "im2col", x.dtype).run_thread(
                block, thread, (numpy.ones((1, 1, 1, count)), cols, one, one, one, n, n, n, n, one,
                                one, one, one, one, zero, zero, one, n))
            numpy.testing.assert_array_equal(~numpy.isnan(cols[0]), share)
            pixels = numpy.full((1, 1, 1, count), numpy.nan)
            emulation.kernel("im2col.cu", "col2im", x.dtype).run_thread(
                block, thread, (numpy.ones((1, count)), pixels, one, one, one, n, n, one, one, one,
                                one, one, zero, zero, one, n))
            numpy.testing.assert_array_equal(~numpy.isnan(pixels.reshape(-1)), share)


@pytest.fixture
def kernels_apply_to_numpy(emulation, monkeypatch):
    """The ops dispatch as they would on CuPy: kernels.applies says yes to NumPy float arrays."""
    monkeypatch.setattr(kernels, "applies", lambda array: array.dtype in kernels.KERNEL_DTYPES)
    emulation.names.clear()
    return emulation


def test_the_lif_op_dispatches_hard_spikes_to_the_kernels(kernels_apply_to_numpy):
    rng = numpy.random.default_rng(0)
    x, grad = rng.normal(1.0, 1.0, size=(3, 2, 5)), rng.standard_normal((3, 2, 5))
    spikes, cache = lif_op.forward(x, surrogate="atan")
    (grad_x,) = lif_op.backward(grad, cache)
    assert kernels_apply_to_numpy.names == ["lif_forward", "lif_backward"]
    kernels_apply_to_numpy.names.clear()
    _, soft_cache = lif_op.forward(x, surrogate="atan", soft=True)
    lif_op.backward(grad, soft_cache)
    assert kernels_apply_to_numpy.names == []  # the soft LIF stays on the plain path
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "applies", lambda array: False)
        spikes_ref, cache_ref = lif_op.forward(x, surrogate="atan")
        (grad_x_ref,) = lif_op.backward(grad, cache_ref)
    numpy.testing.assert_array_equal(spikes, spikes_ref)
    assert relative_difference(grad_x, grad_x_ref) <= 1e-12


def test_the_conv2d_op_dispatches_to_the_kernels(kernels_apply_to_numpy):
    rng = numpy.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 7, 6)), rng.standard_normal((4, 3, 3, 3))
    grad_y = rng.standard_normal((2, 4, 4, 3))
    y, cache = conv2d_op.forward(x, w, stride=2, padding=1)
    fused = conv2d_op.backward(grad_y, cache)
    assert "im2col" in kernels_apply_to_numpy.names and "col2im" in kernels_apply_to_numpy.names
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kernels, "applies", lambda array: False)
        y_ref, cache_ref = conv2d_op.forward(x, w, stride=2, padding=1)
        plain = conv2d_op.backward(grad_y, cache_ref)
    numpy.testing.assert_array_equal(y, y_ref)
    assert len(fused) == len(plain)
    for a, b in zip(fused, plain):
        assert relative_difference(a, b) <= 1e-12


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
