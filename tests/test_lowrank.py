"""from_dense (paper eq. 6-8): a dense weight as X_out G X_in^T, exact or Eckart-Young optimal."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import backend
from gee_ref.init.lowrank import from_dense
from gee_ref.autograd.gradcheck import relative_difference
from gee_ref.ops import conv2d as conv2d_op, genetic_conv2d as genetic_conv2d_op


def well_conditioned_g(rng, genes):
    """Q1 diag(s) Q2 with s in [0.5, 2]: a random invertible G with condition number <= 4."""
    q1, _ = np.linalg.qr(rng.standard_normal((genes, genes)))
    q2, _ = np.linalg.qr(rng.standard_normal((genes, genes)))
    return q1 @ np.diag(rng.uniform(0.5, 2.0, genes)) @ q2


def reconstruct(x_out, g, x_in):
    return x_out @ g @ x_in.T


@given(c_out=st.integers(1, 10), fan_in=st.integers(1, 10), rank=st.integers(0, 10),
       genes=st.integers(1, 8), seed=st.integers(0, 2**32 - 1))
def test_exact_when_rank_at_most_g(c_out, fan_in, rank, genes, seed):
    rank = min(rank, genes, c_out, fan_in)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, rank)) @ rng.standard_normal((rank, fan_in))
    g = well_conditioned_g(rng, genes)
    x_out, x_in = from_dense(w, genes, g)
    assert x_out.shape == (c_out, genes) and x_in.shape == (fan_in, genes)
    assert np.abs(reconstruct(x_out, g, x_in) - w).max() <= 1e-10 * max(1.0, np.abs(w).max())


@given(c_out=st.integers(2, 10), fan_in=st.integers(2, 10), genes=st.integers(1, 8),
       seed=st.integers(0, 2**32 - 1))
def test_optimal_rank_g_approximation(c_out, fan_in, genes, seed):
    """||W - X_out G X_in^T||_F^2 is the sum of the discarded squared singular values, and
    neither random rank-g factorisations nor small perturbations of the answer do better."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c_out, fan_in))
    g = well_conditioned_g(rng, genes)
    x_out, x_in = from_dense(w, genes, g)
    error = np.sum((w - reconstruct(x_out, g, x_in)) ** 2)
    singular_values = np.linalg.svd(w, compute_uv=False)
    discarded = np.sum(singular_values[genes:] ** 2)
    assert abs(error - discarded) <= 1e-10 * np.sum(singular_values ** 2)
    for _ in range(10):
        trial_out, trial_in = rng.standard_normal(x_out.shape), rng.standard_normal(x_in.shape)
        assert np.sum((w - reconstruct(trial_out, g, trial_in)) ** 2) >= error * (1 - 1e-12)
        nearby_out = x_out + 1e-3 * rng.standard_normal(x_out.shape)
        nearby_in = x_in + 1e-3 * rng.standard_normal(x_in.shape)
        assert np.sum((w - reconstruct(nearby_out, g, nearby_in)) ** 2) >= error * (1 - 1e-12)


def test_identity_g_gives_scaled_left_and_orthonormal_right_singular_vectors():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((6, 9))
    x_out, x_in = from_dense(w, 4, np.eye(4))
    u, s, vt = np.linalg.svd(w, full_matrices=False)
    np.testing.assert_allclose(x_in.T @ x_in, np.eye(4), atol=1e-12)
    # Singular vectors are unique up to sign: compare the products U_g S_g V_g^T column by column.
    for k in range(4):
        np.testing.assert_allclose(np.outer(x_out[:, k], x_in[:, k]), s[k] * np.outer(u[:, k], vt[k]), atol=1e-12)


def test_g_larger_than_the_rank_pads_zero_columns():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((3, 5))
    g = well_conditioned_g(rng, 7)
    x_out, x_in = from_dense(w, 7, g)
    assert x_out.shape == (3, 7) and x_in.shape == (5, 7)
    np.testing.assert_array_equal(x_in[:, 3:], 0.0)
    assert relative_difference(reconstruct(x_out, g, x_in), w) <= 1e-12


def test_conv_weight_becomes_an_equivalent_genetic_conv():
    """A 4-D weight is flattened in im2col order: with g >= its rank the genetic layer is the conv."""
    rng = np.random.default_rng(3)
    w = rng.standard_normal((4, 2, 3, 3))
    x = rng.standard_normal((2, 2, 6, 6))
    genes = 4
    g = well_conditioned_g(rng, genes)
    x_out, x_in = from_dense(w, genes, g)
    assert x_in.shape == (2 * 3 * 3, genes)
    y_dense, _ = conv2d_op.forward(x, w, stride=1, padding=1)
    for path in ("materialised", "factored"):
        y, _ = genetic_conv2d_op.forward(x, x_out, g, x_in, kernel_size=3, padding=1, path=path)
        assert relative_difference(y, y_dense) <= 1e-10


def test_keeps_the_weight_dtype():
    rng = np.random.default_rng(4)
    w = rng.standard_normal((5, 6)).astype(np.float32)
    x_out, x_in = from_dense(w, 3, np.eye(3))
    assert x_out.dtype == np.float32 and x_in.dtype == np.float32


@pytest.mark.parametrize("w_shape, genes, g, message", [
    ((4, 5), 2, np.array([[1.0, 2.0], [2.0, 4.0]]), "singular"),
    ((4, 5), 2, np.zeros((2, 2)), "singular"),
    ((4, 5), 2, np.eye(3), r"\[g, g\]"),
    ((4, 5, 6), 2, np.eye(2), "2-D"),
    ((4, 5), 0, np.eye(0), "positive int"),
])
def test_rejects_bad_input(w_shape, genes, g, message):
    with pytest.raises(ValueError, match=message):
        from_dense(np.ones(w_shape), genes, g)


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_from_dense_on_gpu_equals_numpy():
    rng = np.random.default_rng(5)
    w = rng.standard_normal((8, 3, 3, 3))
    g = well_conditioned_g(rng, 6)
    x_out, x_in = from_dense(w, 6, g)
    gpu_out, gpu_in = from_dense(backend.to_device(w, "gpu"), 6, backend.to_device(g, "gpu"))
    assert backend.device_of(gpu_out) == "gpu"
    gpu_reconstruction = reconstruct(gpu_out, backend.to_device(g, "gpu"), gpu_in)
    assert relative_difference(gpu_reconstruction, reconstruct(x_out, g, x_in)) <= 1e-10
    with pytest.raises(ValueError, match="singular"):
        from_dense(backend.to_device(w, "gpu"), 2, backend.to_device(np.zeros((2, 2)), "gpu"))
