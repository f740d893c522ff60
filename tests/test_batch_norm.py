"""Batch normalisation (gee_ref.ops.batch_norm): finite differences in training and eval mode,
the running-statistics update by hand, PyTorch's F.batch_norm, CuPy against NumPy."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import backend
from gee_ref.autograd import gradcheck
from gee_ref.autograd import Tensor, apply
from gee_ref.ops import batch_norm

# [N, C] or [N, C, H, W]; N >= 2 so that a training batch has a variance
bn_shapes = st.one_of(
    st.tuples(st.integers(2, 6), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
    .filter(lambda s: s[0] * s[2] * s[3] >= 2))


def bn_arrays(shape, seed, spread):
    """x with a clear spread per channel (a near-constant channel makes 1/sigma ill-conditioned),
    plus gamma, beta and running statistics."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = rng.normal(rng.uniform(-2, 2), spread, shape)
    gamma, beta = rng.uniform(0.5, 2.0, c), rng.normal(0, 1, c)
    running_mean, running_var = rng.normal(0, 1, c), rng.uniform(0.5, 2.0, c)
    return x, gamma, beta, running_mean, running_var


def bn(training, running_mean, running_var, momentum=0.1, eps=1e-5):
    return lambda x, g, b: apply(batch_norm, x, g, b, running_mean=running_mean,
                                 running_var=running_var, training=training, momentum=momentum, eps=eps)


@pytest.mark.parametrize("training", [True, False])
@given(shape=bn_shapes, seed=st.integers(0, 2**32 - 1), spread=st.floats(0.3, 3.0))
def test_batch_norm_gradient_matches_finite_differences(training, shape, seed, spread):
    x, gamma, beta, rm, rv = bn_arrays(shape, seed, spread)
    errors = gradcheck.check_gradients(bn(training, rm, rv), [x, gamma, beta], seed=seed % 1000)
    assert max(errors.values()) <= 1e-6, errors


def test_running_statistics_update_by_hand():
    # one channel holding 1, 2, 3, 4: mean 2.5, biased var 1.25, unbiased var 5/3
    x = np.array([1.0, 2.0, 3.0, 4.0]).reshape(2, 1, 2, 1)
    running_mean, running_var = np.array([0.0]), np.array([1.0])
    y, _ = batch_norm.forward(x, np.array([1.0]), np.array([0.0]), running_mean, running_var,
                              training=True, momentum=0.1, eps=0.0)
    assert running_mean[0] == pytest.approx(0.9 * 0.0 + 0.1 * 2.5, rel=1e-15)
    assert running_var[0] == pytest.approx(0.9 * 1.0 + 0.1 * 5.0 / 3.0, rel=1e-15)
    np.testing.assert_allclose(y.ravel(), (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25), rtol=1e-14)
    # eval mode normalises with the running statistics, and leaves them alone
    before = running_mean.copy(), running_var.copy()
    y, _ = batch_norm.forward(x, np.array([2.0]), np.array([0.5]), running_mean, running_var,
                              training=False, eps=0.0)
    np.testing.assert_allclose(y, 2.0 * (x - 0.25) / np.sqrt(running_var[0]) + 0.5, rtol=1e-14)
    assert running_mean == before[0] and running_var == before[1]


def test_statistics_run_over_batch_and_space_per_channel():
    rng = np.random.default_rng(5)
    x = rng.normal(3.0, 2.0, (4, 2, 3, 3))
    y, _ = batch_norm.forward(x, None, None, np.zeros(2), np.ones(2), training=True)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1.0 / (1.0 + 1e-5 / x.var(axis=(0, 2, 3))), rtol=1e-12)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(6, 3), (3, 4, 5, 2)])
def test_batch_norm_matches_pytorch(training, shape):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, gamma, beta, rm, rv = bn_arrays(shape, 9, 1.5)
    upstream = np.random.default_rng(1).standard_normal(shape)
    t_x, t_g, t_b = (torch.tensor(a, requires_grad=True) for a in (x, gamma, beta))
    t_rm, t_rv = torch.tensor(rm), torch.tensor(rv)
    t_y = F.batch_norm(t_x, t_rm, t_rv, t_g, t_b, training=training, momentum=0.1, eps=1e-5)
    t_y.backward(torch.tensor(upstream))
    tensors = [Tensor(a.copy(), requires_grad=True) for a in (x, gamma, beta)]
    y = bn(training, rm, rv)(*tensors)
    y.backward(upstream)
    np.testing.assert_allclose(y.data, t_y.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm, t_rm.numpy(), rtol=1e-14)
    np.testing.assert_allclose(rv, t_rv.numpy(), rtol=1e-14)
    for ours, theirs in zip(tensors, (t_x, t_g, t_b)):
        np.testing.assert_allclose(ours.grad, theirs.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [
    dict(x=np.ones((2, 3, 4))),                                       # neither [N, C] nor [N, C, H, W]
    dict(gamma=np.ones(2)),                                           # wrong channel count
    dict(x=np.ones((1, 3)), training=True),                           # one value per channel
    dict(running_mean=None, training=False),                          # eval without statistics
])
def test_bad_input_raises_value_error(bad):
    args = dict(x=np.ones((4, 3)), gamma=np.ones(3), beta=np.zeros(3), running_mean=np.zeros(3),
                running_var=np.ones(3), training=True)
    args.update(bad)
    with pytest.raises(ValueError):
        batch_norm.forward(**args)


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 5)])
def test_batch_norm_gpu_matches_cpu(dtype, tol, training, shape):
    cupy = backend.xp_for("gpu")
    arrays = [a.astype(dtype) for a in bn_arrays(shape, 4, 1.0)]
    upstream = np.random.default_rng(2).standard_normal(shape).astype(dtype)
    results = []
    for xp in (np, cupy):
        x, gamma, beta, rm, rv = (xp.array(a) for a in arrays)  # copies: training updates rm, rv in place
        tensors = [Tensor(a, requires_grad=True) for a in (x, gamma, beta)]
        y = bn(training, rm, rv)(*tensors)
        y.backward(xp.asarray(upstream))
        results.append([y.data, rm, rv] + [t.grad for t in tensors])
    for c, g in zip(*results):
        assert g.dtype == dtype
        assert gradcheck.relative_error(g, c) <= tol


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("affine", ["both", "gamma", "beta", "none"])
@pytest.mark.parametrize("shape", [(7, 3), (3, 4, 5, 6)])
def test_forward_matches_the_formulas_and_leaves_its_inputs_alone(dtype, rtol, training, affine, shape):
    """y = gamma (x - mu) / sqrt(var + eps) + beta written with x.var (biased) and x.var(ddof=1)
    for the running variance, for every affine combination; x is not overwritten and the cached
    x_hat is not the returned y (backward needs x_hat after the caller changes y)."""
    x, gamma, beta, rm, rv = (a.astype(dtype) for a in bn_arrays(shape, 3, 1.7))
    gamma = gamma if affine in ("both", "gamma") else None
    beta = beta if affine in ("both", "beta") else None
    x_before, rm_before, rv_before = x.copy(), rm.copy(), rv.copy()
    axes = (0,) if x.ndim == 2 else (0, 2, 3)
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    y, cache = batch_norm.forward(x, gamma, beta, rm, rv, training=training, momentum=0.1, eps=1e-5)

    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes) if training else rm_before.astype(np.float64)
    var = x64.var(axis=axes) if training else rv_before.astype(np.float64)
    expected = (x64 - mean.reshape(per_channel)) / np.sqrt(var.reshape(per_channel) + 1e-5)
    np.testing.assert_allclose(cache[0], expected, rtol=rtol, atol=rtol)
    if gamma is not None:
        expected = expected * gamma.reshape(per_channel)
    if beta is not None:
        expected = expected + beta.reshape(per_channel)
    assert y.dtype == dtype and y.shape == x.shape
    np.testing.assert_allclose(y, expected, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(x, x_before)
    if training:
        unbiased = x64.var(axis=axes, ddof=1)
        np.testing.assert_allclose(rm, 0.9 * rm_before + 0.1 * mean, rtol=rtol)
        np.testing.assert_allclose(rv, 0.9 * rv_before + 0.1 * unbiased, rtol=rtol)
    else:
        np.testing.assert_array_equal(rm, rm_before)
        np.testing.assert_array_equal(rv, rv_before)
    if gamma is not None or beta is not None:
        assert not np.shares_memory(y, cache[0])


@pytest.mark.parametrize("affine", ["gamma and beta", "gamma", "beta", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_blocks_of_samples_change_no_bit(monkeypatch, affine, training):
    """The elementwise lines run block by block of samples on the CPU: any blocks, the same numbers."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 4, 5)).astype(np.float32)
    upstream = rng.standard_normal(x.shape).astype(np.float32)
    gamma = rng.standard_normal(3).astype(np.float32) if "gamma" in affine else None
    beta = rng.standard_normal(3).astype(np.float32) if "beta" in affine else None

    def run():
        stats = (np.zeros(3, np.float32) + 0.1, np.ones(3, np.float32) * 1.5)
        y, cache = batch_norm.forward(x, gamma, beta, *stats, training=training)
        return (y, cache.x_hat) + tuple(g for g in batch_norm.backward(upstream, cache) if g is not None)

    whole = run()
    monkeypatch.setattr(batch_norm, "BLOCK", 7)  # one sample (60 values) a block
    assert len(batch_norm.sample_blocks(np, x)) == 9
    for blocked, one_block in zip(run(), whole):
        assert np.array_equal(blocked, one_block)
