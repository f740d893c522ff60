"""Summaries of paired experiments: every configuration run with the same seeds (no equation of
the paper; the paper reports mean +- standard deviation over runs, Table 4).

``mean_and_sd``: the mean and the sample standard deviation (ddof = 1; reconstruction, the paper
does not say which) of one configuration's results over its seeds. ``paired_differences``: a
configuration against a reference run with the same seeds, seed by seed: the differences' mean
and sample standard deviation, and how many seeds it won, lost and tied. Pairing removes what
the two share (the same data order, the same final training's batches), so a consistent small
gain shows even when both spreads are larger than it.
"""
from __future__ import annotations

import math

import numpy


def mean_and_sd(values) -> tuple:
    """(mean, sample sd) of finite values; sd is None for fewer than two."""
    values = numpy.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=numpy.float64)
    if values.size == 0:
        return None, None
    return float(values.mean()), (float(values.std(ddof=1)) if values.size > 1 else None)


def paired_differences(values, reference) -> dict:
    """``values[i] - reference[i]`` over the seeds i: mean, sd, wins, losses, ties, count."""
    values, reference = list(values), list(reference)
    if len(values) != len(reference):
        raise ValueError(f"paired differences need one value per seed on both sides, got {len(values)} "
                         f"and {len(reference)}")
    differences = [float(v) - float(r) for v, r in zip(values, reference)
                   if v is not None and r is not None and math.isfinite(v) and math.isfinite(r)]
    mean, sd = mean_and_sd(differences)
    return {"mean": mean, "sd": sd, "wins": int(sum(d > 0 for d in differences)),
            "losses": int(sum(d < 0 for d in differences)), "ties": int(sum(d == 0 for d in differences)),
            "count": len(differences)}
