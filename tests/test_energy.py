"""Energy (paper eq. 17), spike counts (paper Table 3) and relative Gaussian noise (section 4.2),
on hand-computed cases."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import backend
from gee_ref.measure.energy import E_AC, E_MAC, energy_joules
from gee_ref.data.noise import add_relative_gaussian_noise, relative_gaussian_noise

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


def test_energy_of_a_three_layer_network_by_hand():
    # conv 3->8 3x3 on a 32x32 output: 3*9*8*1024 MACs; conv 8->16 3x3 on 16x16; FC 16*64 -> 10
    conv1, conv2, fc = 3 * 9 * 8 * 1024, 8 * 9 * 16 * 256, 16 * 64 * 10
    joules, parts = energy_joules([(conv1, None), (conv2, 0.25), (fc, 0.1)], time_steps=4)
    mac = 4.6e-12 * 221184                        # = 1.0174464e-06 J
    ac = 0.9e-12 * 4 * (0.25 * 294912 + 0.1 * 10240)  # = 0.9e-12 * 4 * 74752 = 2.691072e-07 J
    assert joules == pytest.approx(mac + ac, rel=1e-14)
    assert joules == pytest.approx(1.2865536e-06, rel=1e-12)
    assert parts.mac_joules == pytest.approx(1.0174464e-06, rel=1e-14)
    assert parts.ac_joules == pytest.approx(2.691072e-07, rel=1e-14)
    assert parts.mac_operations == 221184 and parts.ac_operations == pytest.approx(4 * 74752)
    assert sum(parts.per_layer_joules) == pytest.approx(joules, rel=1e-14)
    assert parts.per_layer_joules[2] == pytest.approx(0.9e-12 * 4 * 1024, rel=1e-14)


def test_energy_constants_are_horowitz_45nm():
    assert (E_MAC, E_AC) == (4.6e-12, 0.9e-12)


def test_first_layer_is_counted_once_and_silent_layers_cost_nothing():
    one, _ = energy_joules([(1000, 0.7)], time_steps=1)
    many, _ = energy_joules([(1000, 0.7), (5000, 0.0)], time_steps=8)
    assert one == many == pytest.approx(4.6e-9)  # independent of T and of the first layer's "rate"


@given(macs=st.lists(st.integers(0, 10**9), min_size=2, max_size=6),
       rates=st.lists(st.floats(0.0, 1.0), min_size=6, max_size=6), t=st.integers(1, 16))
def test_energy_is_linear_in_time_steps_for_the_spiking_part(macs, rates, t):
    layers = list(zip(macs, rates))
    joules_1, parts_1 = energy_joules(layers, 1)
    joules_t, parts_t = energy_joules(layers, t)
    assert parts_t.mac_joules == parts_1.mac_joules
    assert parts_t.ac_joules == pytest.approx(t * parts_1.ac_joules, rel=1e-12, abs=1e-300)
    custom, _ = energy_joules(layers, t, e_mac=1.0, e_ac=1.0)
    assert custom == pytest.approx(parts_t.mac_operations + parts_t.ac_operations, rel=1e-12)


def test_energy_bad_arguments():
    for layers, t in (([], 4), ([(100, None), (100, None)], 4), ([(100, None), (-1, 0.1)], 4),
                      ([(100, None), (10, float("nan"))], 4), ([(100, None)], 0), ([(100, None)], 2.5),
                      ([100], 4)):
        with pytest.raises(ValueError):
            energy_joules(layers, t)
    with pytest.raises(ValueError):
        energy_joules([(100, None)], 4, e_ac=-1e-12)


@given(shape=st.sampled_from([(1, 5), (4, 3, 8, 8), (7, 10), (2, 1)]), ratio=st.one_of(st.just(0.0), st.floats(1e-3, 3.0)),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float64, np.float32]))
def test_noise_norm_is_ratio_times_each_samples_norm(shape, ratio, seed, dtype):
    gen = np.random.default_rng(seed)
    scales = gen.uniform(0.1, 10.0, size=(shape[0],) + (1,) * (len(shape) - 1))  # samples of different norms
    x = (gen.normal(size=shape) * scales).astype(dtype)
    noise = relative_gaussian_noise(x, ratio, rng=np.random.default_rng(seed + 1))
    assert noise.shape == x.shape and noise.dtype == x.dtype
    flat_x, flat_noise = x.reshape(len(x), -1).astype(np.float64), noise.reshape(len(x), -1).astype(np.float64)
    tolerance = 1e-12 if dtype == np.float64 else 1e-6
    np.testing.assert_allclose(np.linalg.norm(flat_noise, axis=1), ratio * np.linalg.norm(flat_x, axis=1),
                               rtol=tolerance, atol=0)


def test_noise_is_gaussian_per_sample_independent_and_seeded():
    x = np.ones((2, 20000))
    x[1] *= 3.0
    noise = relative_gaussian_noise(x, 0.5, rng=np.random.default_rng(0))
    # each element: N(0, s^2) with s = 0.5 * ||x_n|| / sqrt(d) (= 0.5 and 1.5 here)
    np.testing.assert_allclose(np.sqrt(np.mean(noise ** 2, axis=1)), [0.5, 1.5], rtol=1e-12)
    assert abs(noise[0].mean()) < 5 * 0.5 / np.sqrt(20000)
    assert abs(np.mean(noise[0] ** 4) / np.mean(noise[0] ** 2) ** 2 - 3.0) < 0.15  # Gaussian kurtosis
    assert not np.allclose(noise[0] * 3.0, noise[1])  # fresh draws for every sample
    np.testing.assert_array_equal(noise, relative_gaussian_noise(x, 0.5, rng=np.random.default_rng(0)))
    zero = relative_gaussian_noise(np.zeros((3, 4)), 0.5, rng=np.random.default_rng(0))
    assert np.all(zero == 0.0)
    noisy = add_relative_gaussian_noise(x, 0.5, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(noisy, x + noise)


def test_noise_bad_arguments():
    rng = np.random.default_rng(0)
    for x, ratio in ((np.ones((2, 3), np.uint8), 0.5), (np.ones((0, 3)), 0.5), (np.float64(1.0), 0.5),
                     (np.ones((2, 3)), -0.5), (np.ones((2, 3)), float("inf"))):
        with pytest.raises(ValueError):
            relative_gaussian_noise(x, ratio, rng=rng)


@requires_gpu
def test_noise_on_the_gpu():
    xp = backend.xp_for("gpu")
    x = xp.asarray(np.random.default_rng(0).normal(size=(3, 4, 5)), dtype=xp.float32)
    noise = relative_gaussian_noise(x, 0.5, rng=backend.rng(1))
    assert backend.get_array_module(noise) is xp
    np.testing.assert_allclose(backend.to_host(xp.linalg.norm(noise.reshape(3, -1), axis=1)),
                               0.5 * backend.to_host(xp.linalg.norm(x.reshape(3, -1), axis=1)), rtol=1e-6)
    host_noise = relative_gaussian_noise(backend.to_host(x), 0.5, rng=backend.rng(1))
    np.testing.assert_allclose(backend.to_host(noise), host_noise, rtol=1e-6)  # the same seed, the same noise
    with pytest.raises(ValueError):
        relative_gaussian_noise(x, 0.5, rng=backend.rng(1, "gpu"))
