"""Tests of gee_ref.init.truncnorm (paper eq. 9): against scipy.stats.truncnorm, ranges, devices."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from gee_ref import backend
from gee_ref.init.truncnorm import truncated_normal, truncated_normal_std

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


@pytest.mark.parametrize("std, bound", [(1.0, 2.0), (0.05, 2.0), (3.0, 1.0), (0.5, 0.3)])
def test_matches_scipy_truncnorm_by_kolmogorov_smirnov(std, bound):
    samples = truncated_normal(backend.rng(1234), 20000, std, bound, dtype=np.float64)
    reference = stats.truncnorm(-bound, bound, loc=0.0, scale=std)
    result = stats.kstest(samples, reference.cdf)
    assert result.pvalue > 0.001


def test_kolmogorov_smirnov_detects_the_untruncated_normal():
    # the check above can fail: the plain normal with the same std is rejected
    samples = backend.rng(1234).standard_normal(20000)
    assert stats.kstest(samples, stats.truncnorm(-2.0, 2.0).cdf).pvalue < 1e-6


@given(st.floats(1e-4, 1e3), st.floats(0.1, 4.0), st.integers(0, 2**32 - 1),
       st.sampled_from([np.float32, np.float64]))
def test_samples_stay_in_range_with_shape_and_dtype(std, bound, seed, dtype):
    x = truncated_normal(backend.rng(seed), (7, 31), std, bound, dtype=dtype)
    assert x.shape == (7, 31) and x.dtype == dtype
    assert np.all(np.abs(x) <= dtype(bound) * dtype(std))


def test_default_dtype_is_the_training_dtype_and_draws_are_reproducible():
    a = truncated_normal(backend.rng(7), (3, 4), 0.1)
    b = truncated_normal(backend.rng(7), (3, 4), 0.1)
    assert a.dtype == backend.TRAIN_DTYPE
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("std, bound", [(1.0, 2.0), (0.2, 2.0), (2.0, 1.5)])
def test_truncated_std_formula_matches_scipy(std, bound):
    assert truncated_normal_std(std, bound) == pytest.approx(stats.truncnorm(-bound, bound, scale=std).std(), rel=1e-12)


def test_sample_std_matches_truncated_std():
    samples = truncated_normal(backend.rng(5), 200000, 0.3, 2.0, dtype=np.float64)
    assert samples.std() == pytest.approx(truncated_normal_std(0.3, 2.0), rel=0.01)
    assert abs(samples.mean()) < 0.005


@pytest.mark.parametrize("kwargs", [dict(std=0.0), dict(std=-1.0), dict(std=np.nan), dict(bound=0.0),
                                    dict(bound=np.inf), dict(dtype=np.int32)])
def test_bad_arguments_raise_value_error(kwargs):
    arguments = dict(std=1.0, bound=2.0, dtype=np.float32)
    arguments.update(kwargs)
    with pytest.raises(ValueError):
        truncated_normal(backend.rng(0), 10, **arguments)


def test_rejects_a_seed_in_place_of_a_generator():
    with pytest.raises(ValueError, match="Generator"):
        truncated_normal(42, 10, 1.0)


@requires_gpu
def test_cupy_generator_matches_scipy():
    cupy = backend.xp_for("gpu")
    samples = truncated_normal(backend.rng(99, "gpu"), 20000, 0.7, 2.0, dtype=np.float64)
    assert isinstance(samples, cupy.ndarray)
    host = backend.to_host(samples)
    assert np.all(np.abs(host) <= 1.4)
    assert stats.kstest(host, stats.truncnorm(-2.0, 2.0, scale=0.7).cdf).pvalue > 0.001
