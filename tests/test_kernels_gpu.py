"""On a GPU: the fused CuPy kernels against the plain CuPy ops they replace (skipped without one).

Both paths run on the same CuPy arrays, once with ``kernels.using(False)`` (the plain xp code,
the reference) and once with ``kernels.using(True)`` (gee_ref/kernels/dispatch.py then hands out
the fused modules). Spikes, im2col columns and batch norm in eval mode must be
equal; H, dL/dx, col2im and batch norm in training mode within 1e-10 (float64) and 1e-5
(float32), relative to the largest reference value.
"""
from __future__ import annotations


import numpy
import pytest
from hypothesis import given

from gee_ref import backend, kernels
from gee_ref.kernels import batch_norm_fused, compiler, dispatch, im2col_fused, lif_fused
from gee_ref.ops import batch_norm as batch_norm_op
from gee_ref.ops import conv2d as conv2d_op
from gee_ref.ops import lif as lif_op

from gpu_emulation.kernel_cases import (TOLERANCE, batch_norm_cases, batch_norm_dx_difference, conv_cases, lane_rule,
                          lif_cases, relative_difference)

pytestmark = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


@pytest.fixture(scope="module")
def cupy():
    return backend.xp_for("gpu")


@pytest.fixture(scope="module")
def launches():
    """Names of the kernels launched while a test runs (compiler.launch, recorded)."""
    names = []
    original = compiler.launch

    def recording(run, count, args):
        names.append(getattr(run, "name", None) or getattr(run, "kernel", run))
        return original(run, count, args)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(compiler, "launch", recording)
        yield names


def _lif_both_ways(cupy, x, grad, params):
    """(spikes, H, dL/dx) of the plain op and of the fused one, on the GPU."""
    x_gpu, grad_gpu = cupy.asarray(x), cupy.asarray(grad)
    results = {}
    for fused in (False, True):
        with kernels.using(fused):
            op = dispatch.lif_op(x_gpu, params.get("surrogate", "sigmoid"), params.get("soft", False))
            spikes, cache = op.forward(x_gpu, **params)
            (grad_x,) = op.backward(grad_gpu, cache)
        results[fused] = (spikes, cache, grad_x)
    return results[False], results[True]


@given(lif_cases())
def test_lif_fused_matches_plain_cupy(cupy, launches, case):
    x, grad, params = case
    launches.clear()
    (spikes, cache, grad_x), (spikes_f, cache_f, grad_x_f) = _lif_both_ways(cupy, x, grad, params)
    assert len(launches) == 2  # one kernel forward, one backward, and only on the fused run
    assert spikes_f.dtype == spikes.dtype and spikes_f.shape == spikes.shape
    numpy.testing.assert_array_equal(backend.to_host(spikes_f), backend.to_host(spikes))
    tolerance = TOLERANCE[numpy.dtype(x.dtype)]
    assert relative_difference(cache_f[0], cache[0]) <= tolerance
    assert relative_difference(grad_x_f, grad_x) <= tolerance
    # either backward after either forward
    (cross,) = lif_fused.backward(cupy.asarray(grad), cache)
    assert relative_difference(cross, grad_x) <= tolerance
    (cross,) = lif_op.backward(cupy.asarray(grad), cache_f)
    assert relative_difference(cross, grad_x) <= tolerance


def test_lif_beyond_one_grid(cupy):
    """More neurons than MAX_BLOCKS x 256 threads: the grid-stride loop covers the rest."""
    neurons = compiler.MAX_BLOCKS * compiler.THREADS_PER_BLOCK + 1000
    rng = backend.rng(0, "gpu")
    x = rng.standard_normal((2, neurons), dtype=cupy.float32) + 1.0
    grad = rng.standard_normal((2, neurons), dtype=cupy.float32)
    (spikes, _, grad_x), (spikes_f, _, grad_x_f) = _lif_both_ways(cupy, x, grad, {})
    assert bool((spikes_f == spikes).all())
    assert relative_difference(grad_x_f, grad_x) <= 1e-5


def test_soft_lif_stays_plain(cupy, launches):
    x = cupy.ones((2, 3, 4))
    launches.clear()
    with kernels.using(True):
        op = dispatch.lif_op(x, "sigmoid", soft=True)
        _, cache = op.forward(x, soft=True)
        op.backward(cupy.ones_like(x), cache)
    assert op is lif_op and launches == []


def _to_gpu(array):
    return backend.to_device(array, "gpu")


@given(conv_cases(to_device=_to_gpu))
def test_im2col_and_col2im_fused_match_plain_cupy(cupy, case):
    x, kernel, stride, padding, rng = case  # x: a CuPy [C, N, H, W] array or view
    with kernels.using(False):
        cols = dispatch.gather(x).channel_major_im2col(x, kernel, stride, padding)
    with kernels.using(True):
        cols_f = dispatch.gather(x).channel_major_im2col(x, kernel, stride, padding)
    numpy.testing.assert_array_equal(backend.to_host(cols_f), backend.to_host(cols))

    x_shape = (x.shape[1], x.shape[0]) + tuple(x.shape[2:])
    upstream = cupy.asarray(rng.standard_normal(cols.shape[::-1]).astype(x.dtype)).T  # a transposed view
    with kernels.using(False):
        dx = dispatch.gather(upstream).col2im(upstream, x_shape, kernel, stride, padding)
    with kernels.using(True):
        dx_f = dispatch.gather(upstream).col2im(upstream, x_shape, kernel, stride, padding)
    assert dx_f.shape == dx.shape and dx_f.flags.c_contiguous
    assert relative_difference(dx_f, dx) <= TOLERANCE[numpy.dtype(x.dtype)]


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv2d_op_with_and_without_the_kernels(cupy, dtype, stride):
    rng = numpy.random.default_rng(3)
    x = cupy.asarray(rng.standard_normal((4, 8, 13, 11)).astype(dtype))
    w = cupy.asarray(rng.standard_normal((6, 8, 3, 3)).astype(dtype))
    results = {}
    for fused in (False, True):
        with kernels.using(fused):
            y, cache = conv2d_op.forward(x, w, stride=stride, padding=1, gather=dispatch.gather(x))
            grads = conv2d_op.backward(cupy.ones_like(y), cache)
        results[fused] = (y,) + tuple(grads)
    for plain, fused in zip(results[False], results[True]):
        assert relative_difference(fused, plain) <= TOLERANCE[numpy.dtype(dtype)]


def test_one_module_per_file_dtype_and_index_type(cupy):
    for dtype in (numpy.float32, numpy.float64):
        assert compiler.kernel("lif.cu", "lif_forward", dtype) is not None
        assert compiler.kernel("im2col.cu", "col2im", dtype, numpy.int32) is not None
    modules = {(f, d, i): compiler._module(f, numpy.dtype(d), numpy.dtype(i))
               for f in compiler.SOURCES for d in ("float32", "float64") for i in ("int32", "int64")}
    assert len({id(m) for m in modules.values()}) == 4 * len(compiler.SOURCES)
    assert compiler._module("lif.cu", numpy.dtype(numpy.float32), numpy.dtype(numpy.int64)) is modules[
        "lif.cu", "float32", "int64"]
    same = compiler.kernel("lif.cu", "lif_forward", numpy.float32)
    assert compiler.kernel("lif.cu", "lif_forward", "float32", "int64") is same
    x = cupy.ones((1, 1, 3, 3), dtype=cupy.float32)
    assert im2col_fused.channel_major_im2col(x, 3, 1, 1).shape == (9, 9)


@pytest.mark.parametrize("dtype", [numpy.float32, numpy.float64])
def test_the_64_bit_index_fallback_matches_the_32_bit_kernels(cupy, monkeypatch, dtype):
    """Every kernel once with int indices (the sizes here allow them) and once with long long
    ones (the limit lowered): the same numbers to the bit."""
    rng = numpy.random.default_rng(8)
    x = cupy.asarray(rng.normal(1.0, 1.0, (3, 4, 6)).astype(dtype))
    image = cupy.asarray(rng.standard_normal((2, 3, 9, 8)).astype(dtype)).transpose(1, 0, 2, 3)
    bn_x = cupy.asarray(rng.normal(2.0, 1.5, (5, 3, 4, 4)).astype(dtype))
    gamma, beta = cupy.linspace(0.5, 2.0, 3, dtype=dtype), cupy.linspace(-1.0, 1.0, 3, dtype=dtype)

    def every_kernel():
        spikes, cache = lif_fused.forward(x)
        cols = im2col_fused.channel_major_im2col(image, 3, 2, 1)
        y, bn_cache = batch_norm_fused.forward(bn_x, gamma, beta, cupy.zeros(3, dtype), cupy.ones(3, dtype))
        return [spikes, cache[0], lif_fused.backward(cupy.ones_like(x), cache)[0], cols,
                im2col_fused.col2im(cols, (2, 3, 9, 8), 3, 2, 1), y, *batch_norm_fused.backward(cupy.ones_like(y),
                                                                                                bn_cache)]
    narrow = every_kernel()
    monkeypatch.setattr(compiler, "INT32_MAX", 0)
    wide = every_kernel()
    for a, b in zip(wide, narrow):
        numpy.testing.assert_array_equal(backend.to_host(a), backend.to_host(b))


# ------------------------------------------------------------------------- BatchNorm

def _bn_on_gpu(cupy, arguments):
    """The forward arguments as CuPy arrays (x keeps its strided layout), statistics copied."""
    moved = {k: (cupy.asarray(v) if isinstance(v, numpy.ndarray) else v) for k, v in arguments.items()}
    x = arguments["x"]
    if not x.flags.c_contiguous:  # the same view of a CuPy array
        wide = numpy.zeros((x.shape[0], 2 * x.shape[1]) + x.shape[2:], dtype=x.dtype)
        wide[:, ::2] = x
        moved["x"] = cupy.asarray(wide)[:, ::2]
    return moved


@given(batch_norm_cases())
def test_batch_norm_fused_matches_plain_cupy(cupy, launches, case):
    arguments, grad, lanes = case
    plain_arguments, fused_arguments = _bn_on_gpu(cupy, arguments), _bn_on_gpu(cupy, arguments)
    grad_gpu = cupy.asarray(grad)
    with kernels.using(False):
        y, cache = batch_norm_op.forward(**plain_arguments)
        grads = batch_norm_op.backward(grad_gpu, cache)
    launches.clear()
    with lane_rule(lanes):
        y_f, cache_f = batch_norm_fused.forward(**fused_arguments)
        grads_f = batch_norm_fused.backward(grad_gpu, cache_f)
    expected_launches = 3 if arguments["training"] else 1
    if arguments["training"] or arguments["gamma"] is not None or arguments["beta"] is not None:
        expected_launches += 3
    else:
        expected_launches += 1
    assert len(launches) == expected_launches
    assert y_f.dtype == y.dtype and y_f.shape == y.shape and cache_f[3:] == cache[3:]
    tolerance = TOLERANCE[numpy.dtype(grad.dtype)]
    statistics = [k for k in ("running_mean", "running_var") if arguments[k] is not None]
    if arguments["training"]:
        for fused, plain in [(y_f, y), (cache_f[0], cache[0]), (cache_f[1], cache[1])] + [
                (fused_arguments[k], plain_arguments[k]) for k in statistics]:
            assert relative_difference(fused, plain) <= tolerance
    else:
        for fused, plain in [(y_f, y), (cache_f[0], cache[0]), (cache_f[1], cache[1])] + [
                (fused_arguments[k], plain_arguments[k]) for k in statistics]:
            numpy.testing.assert_array_equal(backend.to_host(fused), backend.to_host(plain))
    assert batch_norm_dx_difference(grads_f[0], grads[0], grad, arguments["gamma"], cache[1], cache[5]) <= tolerance
    for fused, plain in zip(grads_f[1:], grads[1:]):
        assert (fused is None) == (plain is None)
        if plain is not None:
            assert relative_difference(fused, plain) <= tolerance
    # either backward after either forward
    cross = batch_norm_fused.backward(grad_gpu, cache)
    assert batch_norm_dx_difference(cross[0], grads[0], grad, arguments["gamma"], cache[1], cache[5]) <= tolerance
    with kernels.using(False):
        cross = batch_norm_op.backward(grad_gpu, cache_f)
    assert batch_norm_dx_difference(cross[0], grads[0], grad, arguments["gamma"], cache[1], cache[5]) <= tolerance


@pytest.mark.parametrize("shape", [(2, 4, 2048, 1100), (compiler.MAX_BLOCKS * compiler.THREADS_PER_BLOCK + 1000, 3)])
def test_batch_norm_beyond_one_grid(cupy, shape):
    """More elements than MAX_BLOCKS x 256 threads: the grid-stride loops cover the rest; with the
    default lanes, channels of millions of values (mean 3, so the centring matters). In float64:
    dgamma and dbeta are sums of millions of terms of either sign, which float32 sums in another
    order would not reproduce to 1e-5."""
    rng = backend.rng(1, "gpu")
    x = rng.standard_normal(shape, dtype=cupy.float64) + 3.0
    grad = rng.standard_normal(shape, dtype=cupy.float64)
    gamma = cupy.linspace(0.5, 2.0, shape[1], dtype=cupy.float64)
    beta = cupy.linspace(-1.0, 1.0, shape[1], dtype=cupy.float64)
    results = []
    for module in (batch_norm_op, batch_norm_fused):
        statistics = [cupy.zeros(shape[1]), cupy.ones(shape[1])]
        with kernels.using(False):
            y, cache = module.forward(x, gamma, beta, *statistics, training=True)
            results.append([y, *statistics, *module.backward(grad, cache)])
    for fused, plain in zip(results[1], results[0]):
        assert relative_difference(fused, plain) <= 1e-10


def test_batch_norm_dispatches_to_the_kernels(cupy, launches):
    x = cupy.asarray(numpy.random.default_rng(2).normal(1.0, 2.0, (4, 3, 5, 5)).astype(numpy.float32))
    gamma, beta = cupy.ones(3, cupy.float32), cupy.zeros(3, cupy.float32)
    statistics = cupy.zeros(3, cupy.float32), cupy.ones(3, cupy.float32)
    launches.clear()
    with kernels.using(True):
        op = dispatch.batch_norm_op(x, gamma, beta, *statistics, True)
        y, cache = op.forward(x, gamma, beta, *statistics)
        op.backward(cupy.ones_like(y), cache)
    assert op is batch_norm_fused and len(launches) == 6
    launches.clear()
    with kernels.using(False):
        op = dispatch.batch_norm_op(x, gamma, beta, *statistics, True)
        op.forward(x, gamma, beta, *statistics)
    assert op is batch_norm_op and launches == []
