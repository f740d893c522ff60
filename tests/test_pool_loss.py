"""Pooling and the cross-entropy loss: finite differences, hand cases, PyTorch, CuPy."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import backend
from gee_ref.autograd import gradcheck
from gee_ref.autograd import Tensor, apply
from gee_ref.ops import avg_pool2d, cross_entropy, global_avg_pool2d, max_pool2d


@st.composite
def pool_cases(draw):
    """(x shape, kernel, stride, padding) with padding <= kernel/2 and at least one output."""
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
    padding = (draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2)))
    h = draw(st.integers(max(1, kh - 2 * padding[0]), 6))
    w = draw(st.integers(max(1, kw - 2 * padding[1]), 6))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 2)), h, w)
    return shape, (kh, kw), stride, padding


def distinct_values(shape, order, spacing=0.1):
    """x whose values are a permutation of distinct levels `spacing` apart: FD steps of 1e-6
    never swap two of them, so max pooling's arg-max is stable under the check."""
    return (np.asarray(order, dtype=np.float64) * spacing - 1.0).reshape(shape)


@given(case=pool_cases(), seed=st.integers(0, 2**32 - 1))
def test_avg_pool_gradient_matches_finite_differences(case, seed):
    shape, kernel, stride, padding = case
    x = np.random.default_rng(seed).standard_normal(shape)
    fn = lambda t: apply(avg_pool2d, t, kernel_size=kernel, stride=stride, padding=padding)  # noqa: E731
    assert gradcheck.check_gradients(fn, [x], seed=seed % 1000)[0] <= 1e-6


@given(case=pool_cases(), data=st.data())
def test_max_pool_gradient_matches_finite_differences(case, data):
    shape, kernel, stride, padding = case
    order = data.draw(st.permutations(range(int(np.prod(shape)))))
    x = distinct_values(shape, order)
    fn = lambda t: apply(max_pool2d, t, kernel_size=kernel, stride=stride, padding=padding)  # noqa: E731
    assert gradcheck.check_gradients(fn, [x])[0] <= 1e-6


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
       seed=st.integers(0, 2**32 - 1))
def test_global_avg_pool_gradient_matches_finite_differences(shape, seed):
    x = np.random.default_rng(seed).standard_normal(shape)
    assert gradcheck.check_gradients(lambda t: apply(global_avg_pool2d, t), [x])[0] <= 1e-6


@given(n=st.integers(1, 5), k=st.integers(2, 6), scale=st.floats(0.1, 30.0), seed=st.integers(0, 2**32 - 1))
def test_cross_entropy_gradient_matches_finite_differences(n, k, scale, seed):
    rng = np.random.default_rng(seed)
    logits, labels = rng.standard_normal((n, k)) * scale, rng.integers(0, k, n)
    assert gradcheck.check_gradients(lambda t: apply(cross_entropy, t, labels=labels), [logits])[0] <= 1e-6


def test_pools_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    avg, _ = avg_pool2d.forward(x, 2)
    np.testing.assert_array_equal(avg[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    mx, _ = max_pool2d.forward(x, 2)
    np.testing.assert_array_equal(mx[0, 0], [[5, 7], [13, 15]])
    # padding 1, kernel 3, stride 2: the corner window holds 0, 1, 4, 5 and five padded zeros
    avg, _ = avg_pool2d.forward(x, 3, stride=2, padding=1)
    assert avg[0, 0, 0, 0] == pytest.approx((0 + 1 + 4 + 5) / 9)
    np.testing.assert_array_equal(global_avg_pool2d.forward(x)[0], [[7.5]])


def test_max_pool_tie_goes_to_first_window_offset():
    x = np.array([[3.0, 3.0], [1.0, 3.0]]).reshape(1, 1, 2, 2)
    y, cache = max_pool2d.forward(x, 2)
    (grad,) = max_pool2d.backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(grad[0, 0], [[1, 0], [0, 0]])


def test_max_pool_padding_is_never_the_maximum():
    x = -np.ones((1, 1, 2, 2)) * 5.0
    y, _ = max_pool2d.forward(x, 2, stride=1, padding=1)
    assert np.all(y == -5.0)


def test_cross_entropy_by_hand_and_stable():
    # uniform logits over K classes: loss log K; gradient (1/K - onehot) / N
    logits, labels = np.zeros((2, 4)), np.array([1, 3])
    loss, cache = cross_entropy.forward(logits, labels)
    assert loss == pytest.approx(np.log(4.0), rel=1e-15)
    (grad,) = cross_entropy.backward(np.float64(1.0), cache)
    np.testing.assert_allclose(grad, (0.25 - np.eye(4)[labels]) / 2, rtol=1e-15)
    # huge logits do not overflow
    loss, _ = cross_entropy.forward(np.array([[1000.0, 0.0]]), np.array([1]))
    assert loss == pytest.approx(1000.0, rel=1e-12)


@pytest.mark.parametrize("bad", [
    dict(kernel_size=0), dict(kernel_size=2, padding=2), dict(kernel_size=7), dict(kernel_size="2"),
    dict(kernel_size=2, stride=0), dict(x=np.ones((4, 4)), kernel_size=2)])
@pytest.mark.parametrize("op", [avg_pool2d, max_pool2d])
def test_bad_pool_arguments_raise_value_error(op, bad):
    args = dict(x=np.ones((1, 1, 4, 4)))
    args.update(bad)
    with pytest.raises(ValueError):
        op.forward(**args)


@pytest.mark.parametrize("labels", [np.array([0, 3]), np.array([0.0, 1.0]), np.array([0]), np.array([-1, 0])])
def test_bad_labels_raise_value_error(labels):
    with pytest.raises(ValueError):
        cross_entropy.forward(np.zeros((2, 3)), labels)


# --- PyTorch --------------------------------------------------------------------------------

def _ours(op, x, upstream, **params):
    t = Tensor(x.copy(), requires_grad=True)
    y = apply(op, t, **params)
    y.backward(upstream)
    return y.data, t.grad


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1), ((3, 2), (1, 2), (1, 0)), (3, 1, 1)])
@pytest.mark.parametrize("name", ["avg", "max"])
def test_pools_match_pytorch(name, kernel, stride, padding):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6))
    op, t_op = {"avg": (avg_pool2d, torch.nn.functional.avg_pool2d),
                "max": (max_pool2d, torch.nn.functional.max_pool2d)}[name]
    tx = torch.tensor(x, requires_grad=True)
    ty = t_op(tx, kernel, stride, padding)
    upstream = rng.standard_normal(tuple(ty.shape))
    ty.backward(torch.tensor(upstream))
    y, grad = _ours(op, x, upstream, kernel_size=kernel, stride=stride, padding=padding)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-13, atol=1e-14)


def test_global_avg_pool_and_cross_entropy_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 5, 2))
    upstream = rng.standard_normal((3, 4))
    tx = torch.tensor(x, requires_grad=True)
    tx.mean(dim=(2, 3)).backward(torch.tensor(upstream))
    y, grad = _ours(global_avg_pool2d, x, upstream)
    np.testing.assert_allclose(y, x.mean(axis=(2, 3)), rtol=1e-14)
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-14)

    logits, labels = rng.standard_normal((5, 7)) * 4, rng.integers(0, 7, 5)
    tl = torch.tensor(logits, requires_grad=True)
    t_loss = torch.nn.functional.cross_entropy(tl, torch.tensor(labels))
    t_loss.backward()
    loss, grad = _ours(cross_entropy, logits, np.float64(1.0), labels=labels)
    assert float(loss) == pytest.approx(t_loss.item(), rel=1e-13)
    np.testing.assert_allclose(grad, tl.grad.numpy(), rtol=1e-12, atol=1e-15)


# --- CuPy equals NumPy ----------------------------------------------------------------------

GPU_CASES = [
    (avg_pool2d, (2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    (max_pool2d, (2, 3, 7, 6), dict(kernel_size=3, stride=2, padding=1)),
    (max_pool2d, (2, 3, 8, 8), dict(kernel_size=2)),
    (global_avg_pool2d, (2, 3, 5, 4), {}),
    (cross_entropy, (6, 10), dict(labels=np.array([0, 9, 3, 3, 5, 1]))),
]


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("op, shape, params", GPU_CASES)
def test_pool_and_loss_gpu_match_cpu(dtype, tol, op, shape, params):
    cupy = backend.xp_for("gpu")
    rng = np.random.default_rng(6)
    x = rng.standard_normal(shape).astype(dtype)
    upstream = rng.standard_normal(np.shape(op.forward(x, **params)[0])).astype(dtype)
    cpu = _ours(op, x, upstream, **params)
    gpu_params = {k: cupy.asarray(v) if isinstance(v, np.ndarray) else v for k, v in params.items()}
    gpu = _ours(op, cupy.asarray(x), cupy.asarray(upstream), **gpu_params)
    for c, g in zip(cpu, gpu):
        assert g.dtype == dtype
        assert gradcheck.relative_error(g, c) <= tol
