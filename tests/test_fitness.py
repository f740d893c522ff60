"""Tests of gee_ref.evolution.fitness: R_T (eq. 13), R_S (eqs. 14-15), the dynamic fitness (eq. 16), Table 4."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gee_ref import backend
from gee_ref.evolution.fitness import (VARIANTS, dynamic_fitness, dynamic_lambda, generation_fitness,
                                      spatial_entropy, variant_weights)

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


# ---------------------------------------------------------------- R_S, eq. 14-15 (R_T, eq. 13: tests/test_spikes.py)
def test_spatial_entropy_uniform_is_one():
    g = 7
    G = np.full((g, g), 0.3)
    G[::2] *= -1  # signs do not matter: P uses |G|
    assert spatial_entropy(G) == pytest.approx(1.0, abs=1e-12)


def test_spatial_entropy_single_entry_is_zero():
    G = np.zeros((5, 5))
    G[2, 3] = -4.0
    assert spatial_entropy(G) == 0.0


def test_spatial_entropy_hand_computed():
    # |G| = [[1, 1], [2, 0]] -> P = [1/4, 1/4, 1/2, 0]: H = 1.5 ln 2, divided by ln 4
    G = np.array([[1.0, -1.0], [2.0, 0.0]])
    assert spatial_entropy(G) == pytest.approx(0.75, abs=1e-12)


def test_spatial_entropy_degenerate_cases():
    assert spatial_entropy(np.array([[3.0]])) == 0.0  # g = 1: log(g^2) = 0, defined as 0
    assert spatial_entropy(np.zeros((4, 4))) == 0.0  # no distribution, defined as 0


@pytest.mark.parametrize("bad", [np.ones(4), np.ones((2, 3)), np.ones((0, 0)), np.array([[np.nan, 1.0], [1.0, 1.0]])])
def test_spatial_entropy_rejects_bad_input(bad):
    with pytest.raises(ValueError):
        spatial_entropy(bad)


@given(hnp.arrays(np.float64, st.integers(1, 8).map(lambda g: (g, g)),
                  elements=st.floats(-1e6, 1e6, allow_nan=False)))
def test_spatial_entropy_in_unit_interval(G):
    r_s = spatial_entropy(G)
    assert 0.0 <= r_s <= 1.0


@given(st.integers(2, 6), st.integers(0, 2**32 - 1))
def test_spatial_entropy_is_invariant_to_scale_and_permutation(g, seed):
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((g, g))
    permuted = rng.permutation(G.ravel()).reshape(g, g)
    assert spatial_entropy(3.5 * permuted) == pytest.approx(spatial_entropy(G), abs=1e-12)


# ---------------------------------------------------------------- eq. 16
def test_dynamic_lambda_decays_as_one_over_one_plus_generation():
    assert [dynamic_lambda(g) for g in range(4)] == [1.0, 0.5, 1 / 3, 0.25]
    assert dynamic_lambda(np.int64(9)) == 0.1


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3"])
def test_dynamic_lambda_rejects_bad_generation(bad):
    with pytest.raises(ValueError):
        dynamic_lambda(bad)


def test_dynamic_fitness_formula():
    # F = L - 1/(1+gen) (alpha R_T + beta R_S)
    assert dynamic_fitness(2.0, 0.5, 0.25, 0, alpha=1.0, beta=2.0) == pytest.approx(2.0 - (0.5 + 0.5))
    assert dynamic_fitness(2.0, 0.5, 0.25, 3, alpha=1.0, beta=2.0) == pytest.approx(2.0 - 0.25 * 1.0)
    assert dynamic_fitness(2.0, 0.5, 0.25, 3, alpha=0.0, beta=0.0) == 2.0


@pytest.mark.parametrize("loss, r_t, r_s", [(math.nan, 0.1, 0.1), (math.inf, 0.1, 0.1),
                                            (-math.inf, 0.1, 0.1), (1.0, math.nan, 0.1)])
def test_dynamic_fitness_nonfinite_ranks_last(loss, r_t, r_s):
    assert dynamic_fitness(loss, r_t, r_s, 2, 1.0, 1.0) == math.inf


@given(st.floats(0, 10), st.floats(0, 1), st.floats(0, 1), st.integers(0, 100), st.floats(0, 5), st.floats(0, 5))
def test_dynamic_fitness_regularisers_only_lower_the_loss_and_fade(loss, r_t, r_s, gen, alpha, beta):
    now = dynamic_fitness(loss, r_t, r_s, gen, alpha, beta)
    later = dynamic_fitness(loss, r_t, r_s, gen + 1, alpha, beta)
    assert now <= loss
    assert now <= later <= loss


# ---------------------------------------------------------------- Table 4 variants
def test_variant_weights_follow_table_4():
    assert list(VARIANTS) == ["random", "random-search", "baseline", "rt", "rs", "ste", "calibrated"]
    assert variant_weights("random", 0.3, 0.7) == (0.0, 0.0, "draw")
    assert variant_weights("random-search", 0.3, 0.7) == (0.0, 0.0, "random-search")
    assert variant_weights("baseline", 0.3, 0.7) == (0.0, 0.0, "cmaes")
    assert variant_weights("rt", 0.3, 0.7) == (0.3, 0.0, "cmaes")
    assert variant_weights("rs", 0.3, 0.7) == (0.0, 0.7, "cmaes")
    assert variant_weights("ste", 0.3, 0.7) == (0.3, 0.7, "cmaes")
    assert variant_weights("calibrated", 0.3, 0.7) == (0.0, 0.0, "start")
    assert VARIANTS["calibrated"].start == "calibrated" and all(
        v.start is None for k, v in VARIANTS.items() if k != "calibrated")


def test_unknown_variant_lists_the_known_ones():
    with pytest.raises(ValueError, match="random, random-search, baseline, rt, rs, ste, calibrated"):
        variant_weights("STE+", 1.0, 1.0)


# ---------------------------------------------------------------- a generation's fitness, raw or standardised
def test_standardised_fitness_by_hand():
    """Each term divided by its sample sd over the generation; a constant term drops out."""
    losses, r_ts, r_ss = [1.0, 2.0, 3.0], [0.1, 0.2, 0.1], [0.5, 0.5, 0.5]
    sd_t = np.std(r_ts, ddof=1)  # sd(L) = 1
    expected = [loss - 1.0 * (r / sd_t) for loss, r in zip(losses, r_ts)]  # generation 0: lambda = 1
    assert generation_fitness(losses, r_ts, r_ss, 0, 1.0, 1.0, "standardised") == pytest.approx(expected, rel=1e-12)
    raw = generation_fitness(losses, r_ts, r_ss, 2, 0.5, 2.0, "raw")
    assert raw == pytest.approx([dynamic_fitness(*t, 2, 0.5, 2.0) for t in zip(losses, r_ts, r_ss)], rel=1e-15)


@given(st.lists(st.tuples(st.floats(0.01, 5), st.floats(0, 1), st.floats(0, 1)), min_size=2, max_size=12),
       st.integers(0, 10))
def test_standardising_keeps_the_losss_own_ranking(terms, generation):
    """With alpha = beta = 0 (the baseline) the standardised fitness ranks exactly as L_cls."""
    losses, r_ts, r_ss = zip(*terms)
    scores = generation_fitness(losses, r_ts, r_ss, generation, 0.0, 0.0, "standardised")
    assert np.argsort(scores, kind="stable").tolist() == np.argsort(losses, kind="stable").tolist()


def test_a_nonfinite_individual_stays_last_and_out_of_the_spread():
    scores = generation_fitness([1.0, math.nan, 2.0, 4.0], [0.1, 0.2, 0.3, 0.1], [0.5, 0.4, 0.6, 0.5], 0,
                                1.0, 1.0, "standardised")
    assert math.isnan(scores[1]) and all(math.isfinite(s) for s in (scores[0], scores[2], scores[3]))
    with pytest.raises(ValueError, match="standardised, raw"):
        generation_fitness([1.0], [0.1], [0.5], 0, 1.0, 1.0, "z-score")


# ---------------------------------------------------------------- GPU
@requires_gpu
def test_spatial_entropy_agrees_on_gpu():
    cupy = backend.xp_for("gpu")
    rng = np.random.default_rng(0)
    G = rng.standard_normal((9, 9))
    assert spatial_entropy(cupy.asarray(G)) == pytest.approx(spatial_entropy(G), abs=1e-12)
