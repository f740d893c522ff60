"""The statistics of the reproduction tables on hand-made data: Spearman's rho, its bootstrap
interval, paired differences, and the gene-scale table built from hand-made runs."""
import math

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy import stats

from gee_ref.experiments import gene_scale
from gee_ref.experiments.statistics import bootstrap_interval, paired_by_seed, spearman


def test_spearman_of_a_hand_computed_example():
    """Ranks 1..5 against 2,1,4,3,5: d = (-1, 1, -1, 1, 0), rho = 1 - 6 * 4 / (5 * 24) = 0.8."""
    assert spearman([10, 20, 30, 40, 50], [0.2, 0.1, 0.4, 0.3, 0.5]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [5, 6, 70]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_spearman_gives_ties_their_average_rank():
    """x = (1, 2, 2, 3): ranks (1, 2.5, 2.5, 4); y = (1, 2, 3, 4). Centred: (-1.5, 0, 0, 1.5) and
    (-1.5, -0.5, 0.5, 1.5): rho = 4.5 / sqrt(4.5 * 5) = sqrt(0.9)."""
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(math.sqrt(0.9))


def test_spearman_of_a_constant_sample_is_nan():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=3, max_size=30))
def test_spearman_agrees_with_scipy(pairs):
    x, y = np.array(pairs, dtype=float).T
    expected = stats.spearmanr(x, y).statistic if np.ptp(x) and np.ptp(y) else math.nan
    got = spearman(x, y)
    assert (math.isnan(got) and math.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_spearman_refuses_unpaired_or_too_short_samples():
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])
    with pytest.raises(ValueError):
        spearman([1], [1])
    with pytest.raises(ValueError):
        spearman([1, 2, float("nan")], [1, 2, 3])


def test_bootstrap_interval_of_a_perfect_ranking_is_one():
    """Every resample of a monotone sample is monotone: rho = 1 (or NaN, left out, when a
    resample repeats one pair only)."""
    assert bootstrap_interval([1, 2, 3, 4, 5, 6], [2, 4, 8, 16, 32, 64]) == (1.0, 1.0)


def test_bootstrap_interval_is_reproducible_and_nested_by_level():
    rng = np.random.default_rng(3)
    x = rng.normal(size=40)
    y = x + rng.normal(size=40)
    wide = bootstrap_interval(x, y, level=0.95, seed=1)
    assert wide == bootstrap_interval(x, y, level=0.95, seed=1)
    narrow = bootstrap_interval(x, y, level=0.5, seed=1)
    assert wide[0] <= narrow[0] <= spearman(x, y) <= narrow[1] <= wide[1]


def test_bootstrap_interval_of_a_mean_matches_the_normal_theory_interval():
    """For the mean difference of 400 normal pairs the percentile interval is close to
    mean +- 1.96 sd / sqrt(n) (a deterministic draw, seed fixed)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(1.0, 1.0, size=400), rng.normal(0.0, 1.0, size=400)
    low, high = bootstrap_interval(x, y, statistic=lambda a, b: float(np.mean(a - b)), resamples=4000, seed=2)
    d = x - y
    half = 1.96 * d.std(ddof=1) / math.sqrt(d.size)
    assert low == pytest.approx(d.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(d.mean() + half, abs=0.1 * half)


def test_bootstrap_interval_is_none_when_most_resamples_have_no_value():
    assert bootstrap_interval([1, 1, 1, 2], [1, 1, 1, 2], resamples=200) is not None
    assert bootstrap_interval([1, 1, 1, 1], [1, 2, 3, 4], resamples=50) is None


def test_paired_by_seed_of_a_hand_made_table():
    """Seeds 0-2 in common (seed 3 only in the reference): differences -0.02, +0.02, 0."""
    row = {0: 0.50, 1: 0.60, 2: 0.55}
    reference = {0: 0.52, 1: 0.58, 2: 0.55, 3: 0.90}
    paired = paired_by_seed(row, reference)
    assert paired["seeds"] == [0, 1, 2] and paired["count"] == 3
    assert paired["differences"] == pytest.approx([-0.02, 0.02, 0.0])
    assert paired["mean"] == pytest.approx(0.0, abs=1e-15)
    assert paired["sd"] == pytest.approx(0.02)
    assert (paired["wins"], paired["losses"], paired["ties"]) == (1, 1, 1)
    with pytest.raises(ValueError):
        paired_by_seed({0: 1.0}, {1: 1.0})


def _run(configuration, seed, accuracy, parameters):
    return {"key": f"{configuration}-seed{seed}", "configuration": configuration, "seed": seed,
            "test_accuracy": accuracy, "parameters": parameters, "train_seconds": 10.0, "wall_seconds": 12.0,
            "final_train_accuracy": 0.5, "noise_accuracy": 0.3, "spikes_per_sample": 100.0}


def test_gene_scale_table_from_hand_made_runs():
    rows = [{"key": "g4", "kind": "genetic", "label": "g4", "genes": 4, "width": 16, "matched_with": None},
            {"key": "dense", "kind": "dense", "label": "dense", "genes": None, "width": 16, "matched_with": None},
            {"key": "dense-w5", "kind": "narrowed dense", "label": "w5", "genes": None, "width": 5,
             "matched_with": "g4"}]
    accuracies = {"g4": [0.50, 0.54], "dense": [0.55, 0.53], "dense-w5": [0.45, 0.50]}
    parameters = {"g4": 300, "dense": 1000, "dense-w5": 320}
    runs = [_run(k, s, accuracies[k][s], parameters[k]) for k in accuracies for s in (0, 1)]
    table = gene_scale.summarise({}, rows, runs)
    by = {r["configuration"]: r for r in table["rows"]}
    assert by["g4"]["mean"] == pytest.approx(0.52) and by["g4"]["sd"] == pytest.approx(math.sqrt(0.0008))
    assert by["g4"]["share_of_dense"] == pytest.approx(0.3)
    assert by["g4"]["paired_differences"]["dense"]["differences"] == pytest.approx([-0.05, 0.01])
    assert by["dense-w5"]["paired_differences"]["g4"]["differences"] == pytest.approx([-0.05, -0.04])
    assert by["dense-w5"]["paired_differences"]["g4"]["losses"] == 2
    assert "dense" not in by["dense"]["paired_differences"]
    assert [c["configuration"] for c in table["compression_claim"]] == ["g4"]  # 70% fewer parameters
    assert "| g4 | 300 | 30.0% | 52.00 +- 2.83 | -2.00 +- 4.24 (1/1) |" in gene_scale.markdown(
        {**table, "scale": "hand-made", "commands": ["python -m gee_ref.reproduce gene-scale ..."]})


def test_paired_differences_of_numpy_numbers_are_json_numbers():
    """A training report's accuracy is a NumPy float; the table written from it must stay JSON."""
    import json

    paired = paired_by_seed({0: np.float64(0.5), 1: np.float64(0.7)}, {0: np.float64(0.6), 1: np.float64(0.6)})
    assert json.loads(json.dumps(paired))["wins"] == 1
