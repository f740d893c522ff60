"""The spatio-temporal dynamic fitness of GEE (paper eqs. 13-16, reconstruction).

The paper's extracted text lost the symbols of these equations; DESIGN.md Sec. 4 fixes our
reading, and each function below says which equation it reconstructs.

- eq. 13, temporal difference R_T: how much the spikes of each layer change from one time
  step to the next, averaged over layers, samples, neurons and time; in [0, 1] for spikes in
  {0, 1} (1 = every neuron flips at every step, 0 = constant spike trains). It is counted
  where the spikes are, during the validation pass: ``gee_ref.measure.spikes.SpikeCounts``
  (``temporal_difference``), and comes here as a number.
- eqs. 14-15, spatial entropy R_S: the Shannon entropy of the gene interaction matrix G read
  as a probability distribution P = |G| / sum |G|, divided by its maximum log(g^2); in [0, 1].
- eq. 16, dynamic fitness (minimised): F = L_cls - lambda(gen) (alpha R_T + beta R_S) with
  lambda(gen) = 1 / (1 + gen): the regularisers reward rich spike dynamics and an informative
  G early in the evolution and fade out later. ``generation_fitness`` scores a whole
  generation, either on the raw terms or on terms standardised within the generation (below).
- paper Table 4: the ablation variants, each a choice of weights and of search.

Standardised terms (reconstruction; the paper gives neither alpha and beta nor the terms'
scales): within one generation the validation loss varies by about 0.2 while R_S varies by
about 0.007 (g = 16) or 0.0003 (g = 150) and R_T by about 0.014, so with alpha = beta = 1 the
raw regularisers cannot change a ranking and the ablation would not test them. With
``scale="standardised"`` each term is divided by its standard deviation over the generation
before the weights apply,

    F_i = L_i / sd(L) - lambda(gen) (alpha R_T,i / sd(R_T) + beta R_S,i / sd(R_S)),

so alpha and beta weigh each regulariser's spread against the loss's. Dividing by a positive
number per generation does not change the ranking by L alone (the baseline), and a term that
does not vary within a generation (sd 0) drops out, as it cannot rank anything.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy

from gee_ref import backend


def spatial_entropy(G) -> float:
    """R_S (eqs. 14-15): -sum P log P / log(g^2) with P = |G| / sum |G| (eq. 14).

    0 log 0 is taken as 0. Defined as 0.0 when g = 1 (log(g^2) = 0) and when G is all zeros
    (no distribution). The result is clipped to [0, 1] against rounding only.
    """
    if getattr(G, "ndim", None) != 2 or G.shape[0] != G.shape[1] or G.shape[0] < 1:
        raise ValueError(f"G must be a square [g, g] array, got shape {getattr(G, 'shape', None)}")
    xp = backend.get_array_module(G)
    magnitude = xp.abs(G.astype(xp.float64))
    total = float(magnitude.sum())
    if not math.isfinite(total):
        raise ValueError("G contains NaN or inf")
    if G.size == 1 or total == 0.0:
        return 0.0
    P = magnitude / total  # (14)
    plogp = P * xp.log(xp.where(P > 0, P, 1.0))  # 0 log 0 = 0
    entropy = -float(plogp.sum()) / math.log(G.size)  # (15), normalised by log(g^2)
    return min(max(entropy, 0.0), 1.0)


def dynamic_lambda(generation: int) -> float:
    """lambda(gen) = 1 / (1 + gen), the fading weight of the regularisers (eq. 16)."""
    if isinstance(generation, bool) or not isinstance(generation, (int, numpy.integer)) or generation < 0:
        raise ValueError(f"generation must be an integer >= 0, got {generation!r}")
    return 1.0 / (1.0 + int(generation))


def dynamic_fitness(loss, r_t, r_s, generation: int, alpha: float, beta: float) -> float:
    """F = L_cls - lambda(gen) (alpha R_T + beta R_S) (eq. 16), to be minimised.

    A NaN or infinite loss or regulariser gives +inf, so that CMA-ES ranks the individual last.
    """
    weight = dynamic_lambda(generation)
    values = [float(loss), float(r_t), float(r_s)]
    if not all(math.isfinite(v) for v in values):
        return math.inf
    loss, r_t, r_s = values
    return loss - weight * (alpha * r_t + beta * r_s)


SCALES = ("standardised", "raw")


def generation_fitness(losses, r_ts, r_ss, generation: int, alpha: float, beta: float, scale: str = "raw") -> list:
    """Eq. 16 for every individual of one generation (NaN stays NaN: ranked last).

    ``scale="raw"``: ``dynamic_fitness`` of each individual's own terms; "standardised": each
    term first divided by its standard deviation over the generation's finite individuals
    (module docstring).
    """
    if scale not in SCALES:
        raise ValueError(f"unknown fitness scale {scale!r}: expected one of {', '.join(SCALES)}")
    terms = numpy.array([losses, r_ts, r_ss], dtype=numpy.float64).reshape(3, -1)
    finite = numpy.isfinite(terms).all(axis=0)
    if scale == "standardised" and finite.sum() >= 2:
        spread = terms[:, finite].std(axis=1, ddof=1)
        terms = numpy.where(spread[:, None] > 0, terms / numpy.where(spread > 0, spread, 1.0)[:, None], 0.0)
    return [dynamic_fitness(l, rt, rs, generation, alpha, beta) if ok else math.nan
            for (l, rt, rs), ok in zip(terms.T, finite)]


class Variant(NamedTuple):
    """One row of the paper's Table 4 ablation: the weights it gives R_T and R_S, how it
    searches, and (for "calibrated") the start it uses instead of the run's."""
    uses_r_t: bool
    uses_r_s: bool
    search: str   # "cmaes", "random-search", "draw" (one draw, no search) or "start" (the start itself)
    description: str
    start: str | None = None


SEARCHES = ("cmaes", "random-search", "draw", "start")
VARIANTS = {
    "random": Variant(False, False, "draw", "no search: one draw from the generation-0 search distribution, trained"),
    "random-search": Variant(False, False, "random-search", "the best of as many generation-0 draws as the "
                             "evolution evaluates, scored by L_cls alone (the equal-budget control)"),
    "baseline": Variant(False, False, "cmaes", "evolved with the loss L_cls only"),
    "rt": Variant(True, False, "cmaes", "baseline + temporal difference R_T"),
    "rs": Variant(False, True, "cmaes", "baseline + spatial entropy R_S"),
    "ste": Variant(True, True, "cmaes", "STE: baseline + R_T + R_S"),
    "calibrated": Variant(False, False, "start", "no search: gee_ref's calibrated start (Kaiming-matching "
                          "sigma_l, G = I), trained", start="calibrated"),
}


def variant_weights(variant: str, alpha: float, beta: float):
    """(alpha_eff, beta_eff, search) of an ablation variant of Table 4."""
    if not isinstance(variant, str) or variant not in VARIANTS:
        raise ValueError(f"unknown fitness variant {variant!r}: expected one of {', '.join(VARIANTS)}")
    spec = VARIANTS[variant]
    return (float(alpha) if spec.uses_r_t else 0.0,
            float(beta) if spec.uses_r_s else 0.0,
            spec.search)
