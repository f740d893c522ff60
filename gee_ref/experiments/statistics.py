"""The statistics the reproduction tables report, besides ``gee_ref.measure.statistics``'
mean +- sd and paired differences (no equation of the paper).

* ``spearman``: Spearman's rank correlation, rho = the Pearson correlation of the two samples'
  ranks, ties given their average rank (Spearman 1904; the convention of
  ``scipy.stats.spearmanr``);
* ``bootstrap_interval``: a percentile bootstrap interval of any statistic of paired samples
  (Efron & Tibshirani 1993, ch. 13): resample the pairs with replacement, recompute the
  statistic, take the (1 - level)/2 and (1 + level)/2 quantiles;
* ``paired_by_seed``: ``measure.statistics.paired_differences`` of two configurations' results
  keyed by seed (a configuration's result minus a reference's on the same seed), with the seeds
  and the differences listed.
"""
from __future__ import annotations

import math

import numpy
from scipy.stats import rankdata

from gee_ref.measure.statistics import paired_differences


def _paired_arrays(x, y):
    x, y = numpy.asarray(x, dtype=numpy.float64), numpy.asarray(y, dtype=numpy.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired samples must be 1-D and of one length, got shapes {x.shape} and {y.shape}")
    if not (numpy.all(numpy.isfinite(x)) and numpy.all(numpy.isfinite(y))):
        raise ValueError("paired samples must be finite")
    return x, y


def spearman(x, y) -> float:
    """Spearman's rho of paired samples ``x``, ``y``: the Pearson correlation of their average
    ranks. NaN when either sample is constant (its ranks have no spread)."""
    x, y = _paired_arrays(x, y)
    if x.size < 2:
        raise ValueError(f"spearman needs at least 2 pairs, got {x.size}")
    rx, ry = rankdata(x) - (x.size + 1) / 2, rankdata(y) - (y.size + 1) / 2  # centred ranks
    spread = math.sqrt(float(rx @ rx) * float(ry @ ry))
    return float(rx @ ry) / spread if spread > 0 else math.nan


def bootstrap_interval(x, y, statistic=spearman, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> tuple:
    """The percentile bootstrap interval ``(low, high)`` of ``statistic(x, y)`` at ``level``.

    Each of ``resamples`` draws picks n pairs with replacement (``numpy.random.default_rng(seed)``);
    a draw whose statistic is NaN (e.g. all pairs alike) is left out, and the interval is None
    when fewer than half the draws give a number.
    """
    x, y = _paired_arrays(x, y)
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = numpy.random.default_rng(seed)
    picks = rng.integers(0, x.size, size=(resamples, x.size))
    values = numpy.array([statistic(x[p], y[p]) for p in picks])
    values = values[numpy.isfinite(values)]
    if values.size < resamples / 2:
        return None
    low, high = numpy.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def paired_by_seed(values: dict, reference: dict) -> dict:
    """``gee_ref.measure.statistics.paired_differences`` over the seeds both dicts (seed -> result)
    have, with those seeds and the differences themselves."""
    seeds = sorted(set(values) & set(reference))
    if not seeds:
        raise ValueError("paired differences need at least one seed in common")
    paired = paired_differences([values[s] for s in seeds], [reference[s] for s in seeds])
    return {"seeds": seeds, "differences": [float(values[s]) - float(reference[s]) for s in seeds], **paired}
