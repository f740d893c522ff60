"""Default strategy parameters of CMA-ES (Hansen, "The CMA Evolution Strategy: A Tutorial", 2016).

The numbers in the comments are the tutorial's equation numbers (its Table 1, eqs. 48-58).
The first mu = floor(lambda/2) samples get the tutorial's log weights, normalised to sum to
one (eq. 53, positive branch); they alone move the mean. With ``active=True`` (the
tutorial's default, and pycma's) the other lambda - mu samples get negative weights in the
rank-mu update of C (eqs. 50-53, "active CMA"), scaled so that C stays positive definite;
with ``active=False`` they get weight zero (positive recombination weights only).

For the rank-mu learning rate the 2016 tutorial's form `mu_eff - 2 + 1/mu_eff` is used
(pycma 4.5 adds an offset of 1/4 to it, a barely visible difference).

The separable variant (Ros & Hansen 2008, sep-CMA-ES) keeps a diagonal covariance matrix,
which can learn faster: c_1 and c_mu are multiplied by (n + 2) / 3.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

ALPHA_COV = 2.0  # the tutorial's alpha_cov, eqs. 57-58


@dataclass(frozen=True)
class CMAParameters:
    """The constants of one CMA-ES run; derived from n (and lambda) only."""

    n: int              # search-space dimension
    popsize: int        # lambda
    mu: int             # number of parents, floor(lambda / 2)
    weights: numpy.ndarray  # [lambda]: first mu positive (sum one), then negative or zero
    mu_eff: float       # variance effective selection mass
    c_m: float          # learning rate of the mean
    c_sigma: float      # cumulation constant of the step-size path p_sigma
    d_sigma: float      # damping of the step-size update
    c_c: float          # cumulation constant of the rank-one path p_c
    c_1: float          # learning rate of the rank-one update
    c_mu: float         # learning rate of the rank-mu update
    chi_n: float        # E||N(0, I)||
    diagonal: bool      # separable (sep-CMA-ES) constants
    active: bool        # negative weights for the worst lambda - mu samples
    eigen_gap_evaluations: float  # evaluations between two eigendecompositions


def default_popsize(n: int) -> int:
    """lambda = 4 + floor(3 ln n) (tutorial eq. 48)."""
    return 4 + int(math.floor(3.0 * math.log(n)))  # (48)


def expected_norm_of_standard_normal(n: int) -> float:
    """E||N(0, I)|| ~ sqrt(n) (1 - 1/(4n) + 1/(21 n^2)), the tutorial's approximation."""
    return math.sqrt(n) * (1.0 - 1.0 / (4.0 * n) + 1.0 / (21.0 * n * n))


def cma_parameters(n: int, popsize: int | None = None, diagonal: bool = False,
                   active: bool = True) -> CMAParameters:
    """All default strategy parameters for dimension n (tutorial Table 1, eqs. 48-58)."""
    if not isinstance(n, (int, numpy.integer)) or n < 1:
        raise ValueError(f"CMA-ES needs a dimension n >= 1, got {n!r}")
    n = int(n)
    lam = default_popsize(n) if popsize is None else popsize  # (48)
    if not isinstance(lam, (int, numpy.integer)) or lam < 2:
        raise ValueError(f"popsize (lambda) must be an integer >= 2, got {popsize!r}")
    lam = int(lam)
    mu = lam // 2  # (48)

    ranks = numpy.arange(1, lam + 1, dtype=numpy.float64)
    raw_weights = math.log((lam + 1) / 2.0) - numpy.log(ranks)  # w'_i (49)
    positive, negative = raw_weights[:mu], raw_weights[mu:]
    mu_eff = float(positive.sum() ** 2 / numpy.sum(positive ** 2))  # (8), over w'_1..w'_mu

    c_m = 1.0  # (54)
    c_sigma = (mu_eff + 2.0) / (n + mu_eff + 5.0)  # (55)
    d_sigma = 1.0 + 2.0 * max(0.0, math.sqrt((mu_eff - 1.0) / (n + 1.0)) - 1.0) + c_sigma  # (55)
    c_c = (4.0 + mu_eff / n) / (n + 4.0 + 2.0 * mu_eff / n)  # (56)
    c_1 = ALPHA_COV / ((n + 1.3) ** 2 + mu_eff)  # (57)
    c_mu = min(1.0 - c_1,
               ALPHA_COV * (mu_eff - 2.0 + 1.0 / mu_eff)
               / ((n + 2.0) ** 2 + ALPHA_COV * mu_eff / 2.0))  # (58)
    if diagonal:
        # Ros & Hansen 2008: a diagonal C has n, not n^2/2, free entries to learn
        c_1 = c_1 * (n + 2.0) / 3.0
        c_mu = min(1.0 - c_1, c_mu * (n + 2.0) / 3.0)
        gap = 0.0  # a diagonal "decomposition" is a square root: do it every generation
    else:
        # the tutorial's rule for O(n^2) work per evaluation: decompose C only after
        # lambda / (c_1 + c_mu) / n / 10 evaluations
        gap = lam / (c_1 + c_mu) / n / 10.0

    weights = numpy.zeros(lam)
    weights[:mu] = positive / positive.sum()  # (53), w'_i >= 0: sum of positive weights is one
    if active and numpy.any(negative < 0):
        mu_eff_minus = float(negative.sum() ** 2 / numpy.sum(negative ** 2))  # (8) for w'^-
        alpha_mu_minus = 1.0 + c_1 / c_mu if c_mu > 0 else math.inf  # (50)
        alpha_mu_eff_minus = 1.0 + 2.0 * mu_eff_minus / (mu_eff + 2.0)  # (51)
        alpha_posdef_minus = (1.0 - c_1 - c_mu) / (n * c_mu) if c_mu > 0 else math.inf  # (52)
        scale = min(alpha_mu_minus, alpha_mu_eff_minus, alpha_posdef_minus)
        weights[mu:] = numpy.where(negative < 0, scale * negative / numpy.abs(negative[negative < 0]).sum(),
                                   0.0)  # (53), w'_i < 0

    return CMAParameters(
        n=n, popsize=lam, mu=mu, weights=weights, mu_eff=mu_eff, c_m=c_m,
        c_sigma=c_sigma, d_sigma=d_sigma, c_c=c_c, c_1=c_1, c_mu=c_mu,
        chi_n=expected_norm_of_standard_normal(n), diagonal=bool(diagonal), active=bool(active),
        eigen_gap_evaluations=gap)
