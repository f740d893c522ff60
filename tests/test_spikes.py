"""Spike counts (gee_ref.measure.spikes): paper Table 3's spikes per sample and firing rates, and
eq. 13's R_T, for one network and per individual of a population."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gee_ref import backend
from gee_ref.measure.spikes import SpikeCounts

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


def counts_of(spike_list, population_size=None):
    counts = SpikeCounts(population_size)
    counts.add(spike_list)
    return counts


def spike_example():
    # layer A: [T=2, N=2, 3]; layer B: [T=2, N=2, 2, 2]
    a = np.array([[[1, 0, 1], [0, 0, 0]], [[1, 1, 1], [0, 1, 0]]], np.float32)   # 6 spikes of 12
    b = np.zeros((2, 2, 2, 2), np.float32)
    b[0, 0, 0, 0] = b[1, 1, 1, 1] = 1.0                                           # 2 spikes of 16
    return a, b


# ---------------------------------------------------------------- Table 3
def test_spikes_per_sample_and_firing_rates_by_hand():
    a, b = spike_example()
    counts = counts_of([a, b])
    assert counts.spikes_per_sample() == 4.0            # (6 + 2) spikes / 2 samples
    assert counts.firing_rates() == [0.5, 0.125]
    assert counts.spikes_per_sample_by_layer() == [3.0, 1.0]


def test_batches_add_up_to_the_whole():
    rng = np.random.default_rng(3)
    layers = [(rng.random((4, 6, 5)) < 0.3).astype(np.float32), (rng.random((4, 6, 2, 3)) < 0.6).astype(np.float32)]
    whole = counts_of(layers)
    by_batch = SpikeCounts()
    for part in (slice(0, 2), slice(2, 5), slice(5, 6)):
        by_batch.add([layer[:, part] for layer in layers])
    assert by_batch.samples == whole.samples == 6
    assert by_batch.firing_rates() == pytest.approx(whole.firing_rates(), rel=1e-12)
    assert by_batch.temporal_difference() == pytest.approx(whole.temporal_difference(), rel=1e-12)


@pytest.mark.parametrize("bad", [[], [np.ones(4)], [np.ones((3, 0))], "spikes"])
def test_bad_spike_trains_are_value_errors(bad):
    with pytest.raises(ValueError):
        SpikeCounts().add(bad)


def test_layers_and_time_steps_must_stay_the_same():
    counts = counts_of([np.ones((3, 2, 4))])
    with pytest.raises(ValueError):
        counts.add([np.ones((3, 2, 4)), np.ones((3, 2, 4))])
    with pytest.raises(ValueError):
        counts.add([np.ones((2, 2, 4))])


# ---------------------------------------------------------------- R_T, eq. 13
def test_temporal_difference_alternating_spikes_is_one():
    spikes = np.zeros((6, 3, 4), dtype=np.float32)
    spikes[0::2] = 1.0  # 1, 0, 1, 0, ... for every neuron
    assert counts_of([spikes]).temporal_difference() == 1.0


def test_temporal_difference_constant_spikes_is_zero():
    assert counts_of([np.ones((5, 2, 3, 4, 4)), np.zeros((5, 2, 7))]).temporal_difference() == 0.0


def test_temporal_difference_hand_computed():
    # layer 1: one neuron, T=4, spikes 1,1,0,1: |diffs| = 0,1,1 -> 2/3
    # layer 2: two neurons, T=4: 1,1,1,1 (no change) and 0,1,0,0 (2 of 3 steps change) -> mean 1/3
    layer1 = np.array([1, 1, 0, 1], dtype=np.float32).reshape(4, 1, 1)
    layer2 = np.array([[1, 0], [1, 1], [1, 0], [1, 0]], dtype=np.float32).reshape(4, 1, 2)
    counts = counts_of([layer1, layer2])
    assert counts.temporal_difference() == pytest.approx((2 / 3 + 1 / 3) / 2, abs=1e-12)
    assert counts.temporal_difference_by_layer() == pytest.approx([2 / 3, 1 / 3], abs=1e-12)


def test_temporal_difference_single_time_step_is_zero():
    assert counts_of([np.ones((1, 4, 8))]).temporal_difference() == 0.0


def test_temporal_difference_accepts_boolean_spikes():
    spikes = np.array([True, False, True]).reshape(3, 1, 1)
    assert counts_of([spikes]).temporal_difference() == 1.0


@given(st.integers(1, 5).flatmap(lambda t: st.lists(
    hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5).map(lambda s: (t,) + s),
               elements=st.sampled_from([0.0, 1.0])), min_size=1, max_size=3)))
def test_temporal_difference_in_unit_interval(spike_list):
    r_t = counts_of(spike_list).temporal_difference()
    assert 0.0 <= r_t <= 1.0


# ---------------------------------------------------------------- a population
def test_a_population_is_counted_per_individual():
    """Spikes [T, N, P, ...]: every figure for individual p equals that of its own slice."""
    rng = np.random.default_rng(5)
    layers = [(rng.random((3, 4, 2, 5)) < 0.4).astype(np.float32), (rng.random((3, 4, 2, 2, 2)) < 0.7).astype(np.float32)]
    together = counts_of(layers, population_size=2)
    for p in range(2):
        alone = counts_of([layer[:, :, p] for layer in layers])
        assert together.temporal_difference()[p] == pytest.approx(alone.temporal_difference(), rel=1e-12)
        assert [rate[p] for rate in together.firing_rates()] == pytest.approx(alone.firing_rates(), rel=1e-12)
        assert together.spikes_per_sample()[p] == pytest.approx(alone.spikes_per_sample(), rel=1e-12)


@requires_gpu
def test_spike_counts_on_the_gpu():
    xp = backend.xp_for("gpu")
    a, b = spike_example()
    counts = counts_of([xp.asarray(a), xp.asarray(b)])
    assert counts.spikes_per_sample() == 4.0
    assert counts.firing_rates() == [0.5, 0.125]
