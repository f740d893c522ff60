"""When CMA-ES stops (Hansen's tutorial, 2016, Appendix B.3; two criteria of pycma).

``stop_criteria(es)`` returns the criteria that hold now as {name: threshold}, empty to go on:

    maxiter     generations >= maxiter
    tolfun      the range of the best f of the last 10 + ceil(30 n / lambda) generations and
                of all f of the last one is below tolfun
    tolx        sigma s_i sqrt(C_ii) < tolx and sigma s_i |p_c,i| < tolx for every i
    condition   cond(C) > max_condition
    tolupsigma  sigma / sigma0 > tolupsigma * max(D): sigma has grown by far more than the
                largest std of C can explain, while C shrinks ("creeping": sigma and C drift
                apart with little progress; pycma's tolupsigma, default 1e20). Seen on f(x) =
                sum(x) and on bbob's f19, where sigma otherwise grows to 1e36 and beyond.
    tolfacupx   sigma s_i sqrt(C_ii) > tolfacupx * sigma0 s_i for some i: a coordinate's std
                grew by tolfacupx since the start, so sigma0 was far too small or f decreases
                without bound (pycma's tolfacupx, default 1e3). On f(x) = sum(x) it stops the
                run long before tolupsigma.

s_i are the per-coordinate multipliers of sigma0 (``CMAES(stds=...)``), D the square roots of
C's eigenvalues at the latest (lazy) decomposition. math.inf switches off max_condition,
tolupsigma and tolfacupx, 0 switches off tolfun and tolx.
"""
from __future__ import annotations

import numpy


def stop_criteria(es) -> dict:
    """The termination criteria of the CMAES ``es`` that hold now (module docstring)."""
    xp = es.xp
    told = es.generation > 0
    criteria = {}
    if es.maxiter is not None and es.generation >= es.maxiter:
        criteria["maxiter"] = es.maxiter
    if told and es.last_f.size:
        recent = numpy.concatenate([es.last_f, numpy.asarray(es.best_history)])
        if recent.max() - recent.min() < es.tolfun:
            criteria["tolfun"] = es.tolfun
    sample_stds = es.sample_stds  # sigma s_i sqrt(C_ii)
    path_stds = es.sigma * (es.stds * xp.abs(es.p_c))  # sigma s_i |p_c,i|
    if told and bool(xp.all(sample_stds < es.tolx)) and bool(xp.all(path_stds < es.tolx)):
        criteria["tolx"] = es.tolx
    if es.condition_number > es.max_condition:
        criteria["condition"] = es.max_condition
    if told and es.sigma / es.sigma0 > es.tolupsigma * es.covariance.largest_std:
        criteria["tolupsigma"] = es.tolupsigma
    if told and bool(xp.any(sample_stds > es.tolfacupx * es.sigma0 * es.stds)):
        criteria["tolfacupx"] = es.tolfacupx
    return criteria
