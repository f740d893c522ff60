"""Finite-difference and CuPy checks of the small ops: add, mul (with broadcasting), sum, mean,
reshape, flatten, mean_over_time, mse."""
import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from gee_ref import backend
from gee_ref.autograd import gradcheck
from gee_ref.autograd import Tensor, apply
from gee_ref.ops import add, flatten, mean, mean_over_time, mse, mul, reshape, sum as sum_op

small_shapes = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3)
seeds = st.integers(0, 2**32 - 1)


def randn(seed, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


@pytest.mark.parametrize("op", [add, mul])
@given(shapes=broadcast_pairs, seed=seeds)
def test_broadcasting_binary_ops_match_finite_differences(op, shapes, seed):
    a, b = randn(seed, *shapes.input_shapes)
    errors = gradcheck.check_gradients(lambda x, y: apply(op, x, y), [a, b], seed=seed % 1000)
    assert max(errors.values()) <= 1e-6


@given(shape=small_shapes, seed=seeds)
def test_mse_matches_finite_differences(shape, seed):
    a, b = randn(seed, shape, shape)
    errors = gradcheck.check_gradients(lambda x, y: apply(mse, x, y), [a, b])
    assert max(errors.values()) <= 1e-6


@pytest.mark.parametrize("op", [sum_op, mean])
@given(shape=small_shapes, seed=seeds)
def test_reductions_match_finite_differences(op, shape, seed):
    (x,) = randn(seed, shape)
    assert gradcheck.check_gradients(lambda t: apply(op, t), [x])[0] <= 1e-6


@given(shape=hnp.array_shapes(min_dims=2, max_dims=5, min_side=1, max_side=3), seed=seeds)
def test_mean_over_time_matches_finite_differences(shape, seed):
    (x,) = randn(seed, shape)
    assert gradcheck.check_gradients(lambda t: apply(mean_over_time, t), [x], seed=seed % 1000)[0] <= 1e-6


@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, min_side=1, max_side=3), data=st.data(), seed=seeds)
def test_shape_ops_match_finite_differences(shape, data, seed):
    (x,) = randn(seed, shape)
    start = data.draw(st.integers(1, len(shape) - 1))
    target = (-1,) + tuple(reversed(shape[1:]))  # a different shape with the same size
    for fn in (lambda t: apply(flatten, t, start_dim=start), lambda t: apply(reshape, t, shape=target)):
        assert gradcheck.check_gradients(fn, [x], seed=seed % 1000)[0] <= 1e-6


def test_forward_values_by_hand():
    a, b = np.array([[1.0], [2.0]]), np.array([10.0, 20.0, 30.0])
    np.testing.assert_array_equal(add.forward(a, b)[0], [[11, 21, 31], [12, 22, 32]])
    np.testing.assert_array_equal(mul.forward(a, b)[0], [[10, 20, 30], [20, 40, 60]])
    assert sum_op.forward(b)[0] == 60.0 and mean.forward(b)[0] == 20.0
    assert mse.forward(np.array([1.0, 3.0]), np.array([0.0, 0.0]))[0] == 5.0
    x = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(mean_over_time.forward(x)[0], (x[0] + x[1]) / 2)
    assert flatten.forward(x, start_dim=1)[0].shape == (2, 12)
    assert flatten.forward(x, start_dim=2)[0].shape == (2, 3, 4)
    assert reshape.forward(x, shape=(6, 4))[0].shape == (6, 4)


def test_gradient_accumulates_for_a_tensor_used_twice():
    # y = x * x + x: dy/dx = 2x + 1, through a shared leaf (the global G pattern)
    x = Tensor(np.array([1.0, -2.0, 0.5]), requires_grad=True)
    apply(sum_op, apply(add, apply(mul, x, x), x)).backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1, rtol=1e-15)


CASES = [
    (add, [(2, 1, 3), (4, 1)], {}),
    (mul, [(2, 4, 3), (3,)], {}),
    (mse, [(3, 5), (3, 5)], {}),
    (sum_op, [(3, 4)], {}),
    (mean, [(3, 4)], {}),
    (mean_over_time, [(4, 2, 3)], {}),
    (flatten, [(2, 3, 4, 5)], dict(start_dim=1)),
    (reshape, [(2, 3, 4)], dict(shape=(6, 4))),
]


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("op, shapes, params", CASES)
def test_elementwise_gpu_matches_cpu(dtype, tol, op, shapes, params):
    cupy = backend.xp_for("gpu")
    arrays = [a.astype(dtype) for a in randn(8, *shapes)]
    upstream = np.random.default_rng(9).standard_normal(np.shape(op.forward(*arrays, **params)[0])).astype(dtype)
    results = []
    for xp in (np, cupy):
        tensors = [Tensor(xp.asarray(a), requires_grad=True) for a in arrays]
        y = apply(op, *tensors, **params)
        y.backward(xp.asarray(upstream))
        results.append([y.data] + [t.grad for t in tensors])
    for c, g in zip(*results):
        assert g.dtype == dtype
        assert gradcheck.relative_error(g, c) <= tol
