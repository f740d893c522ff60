"""Benchmark (c): one CMA-ES generation, ask + tell, for n = 10 .. 10000 (paper eq. 10-12).

The objective is the sphere f(x) = sum x_i^2, evaluated in the same array module, so the
figure is the optimiser's own cost. gee_ref's ``CMAES`` (full covariance, default lambda =
4 + floor(3 ln n), Hansen's tutorial eq. 48) runs on NumPy, and on CuPy on a GPU; pycma's
``CMAEvolutionStrategy`` at its defaults is the reference when installed.

The eigendecomposition of C is lazy (tutorial: every lambda / (c_1 + c_mu) / n / 10
evaluations), so single generations differ by orders of magnitude. The timed window spans at
least one decomposition gap (plus two generations, at least 20), capped in count and in wall
time. The optimisers take turns generation by generation, so a passing load on the machine
falls on all of them alike. Two figures per optimiser: the median time per generation (a
generation between decompositions; robust to a loaded machine: the NumPy-vs-pycma ratio uses
it) and the mean over the window (decompositions amortised; the CuPy ms target uses it).
"""
from __future__ import annotations

import math
import time

import numpy

from bench.run import make_row, median, ratio_target
from gee_ref.cmaes import CMAES
from gee_ref.cmaes_parameters import cma_parameters

SIGMA0 = 0.3
MIN_GENERATIONS = 20


def _sizes(ctx):
    if ctx.smoke:
        return (10,)
    return (10, 100, 1000, 2000) if ctx.quick else (10, 100, 1000, 2000, 10000)


def _gee_ref(n, device):
    """(one-generation function, optimiser) of gee_ref's CMAES on ``device``."""
    es = CMAES(numpy.full(n, 0.5), SIGMA0, seed=1, backend=device)
    xp = es.xp

    def generation():
        X = es.ask()
        es.tell(X, xp.sum(X * X, axis=1))
    return generation, es


def _pycma(n):
    import cma

    es = cma.CMAEvolutionStrategy(numpy.full(n, 0.5), SIGMA0,
                                  {"seed": 1, "verbose": -9, "verb_log": 0, "verb_disp": 0})

    def generation():
        X = es.ask()
        es.tell(X, numpy.sum(numpy.asarray(X) ** 2, axis=1).tolist())
    return generation, es


def _window(n, ctx):
    """(generations to time, wall-time budget in s): one decomposition gap plus two."""
    p = cma_parameters(n)
    if ctx.smoke:
        return ctx.repeats, 1.0
    cap, budget = (40, 8.0) if ctx.quick else (100, 90.0)
    wanted = max(ctx.repeats, MIN_GENERATIONS, math.ceil(p.eigen_gap_evaluations / p.popsize) + 2)
    return min(cap, wanted), budget


def time_generations(steps: dict, ctx, generations, budget, after_warmup=None) -> dict:
    """{name: per-generation ms}: warm-up (then ``after_warmup()``), then the optimisers take
    turns; each stops after ``generations`` or, once it has ctx.repeats, when its own time
    passes ``budget`` s."""
    for step in steps.values():
        for _ in range(ctx.warmup):
            step()
    if after_warmup is not None:
        after_warmup()
    runs = {name: [] for name in steps}
    spent = dict.fromkeys(steps, 0.0)
    for _ in range(generations):
        for name, step in steps.items():
            if len(runs[name]) >= ctx.repeats and spent[name] > budget:
                continue
            t0 = time.perf_counter()
            runs[name].append(ctx.time_one(step))
            spent[name] += time.perf_counter() - t0
    return runs


def run_cmaes(ctx) -> list:
    try:
        import cma  # noqa: F401
        have_pycma = True
    except ImportError:
        have_pycma = False
    devices = ("cpu",) + (("gpu",) if ctx.device == "gpu" else ())
    rows = []
    for n in _sizes(ctx):
        steps, optimisers = {}, {}
        for device in devices:
            steps[device], optimisers[device] = _gee_ref(n, device)
        if have_pycma:
            steps["pycma"], optimisers["pycma"] = _pycma(n)
        generations, budget = _window(n, ctx)
        updates_before = {}
        runs = time_generations(steps, ctx, generations, budget, after_warmup=lambda: updates_before.update(
            {d: optimisers[d].eigen_updates for d in devices}))
        reference = median(runs["pycma"]) if have_pycma else None
        pycma_extra = {}
        if have_pycma:
            pycma_extra = {"generations_timed": len(runs["pycma"]), "mean_ms": float(numpy.mean(runs["pycma"])),
                           "eigendecompositions_total": getattr(getattr(optimisers["pycma"], "sm", None),
                                                                "count_eigen", None)}
        for device in devices:
            es = optimisers[device]
            mean = float(numpy.mean(runs[device]))
            extra = {"popsize": es.popsize, "generations_timed": len(runs[device]), "mean_ms": mean,
                     "decomposition_gap_generations": round(es.params.eigen_gap_evaluations / es.popsize, 2),
                     "decompositions_in_window": es.eigen_updates - updates_before[device],
                     "pycma": pycma_extra}
            if device == "cpu":
                target = ratio_target("NumPy <= pycma (n <= 2000)", 1.0, ("cpu", "gpu")) if n <= 2000 else None
            else:
                target = (ratio_target("window mean <= 30 ms per generation at n = 10000", 30.0, ("gpu",),
                                       value=mean)
                          if n == 10000 else None)
            notes = ["median ms per generation; window mean (decompositions amortised) "
                     f"{mean:.3g} ms" + (f" vs pycma {pycma_extra['mean_ms']:.3g} ms" if have_pycma else "")]
            if extra["decompositions_in_window"] == 0:
                notes.append("no eigendecomposition fell in the window")
            if not have_pycma:
                notes.append("pycma not installed (pip install cma)")
            if ctx.quick:
                notes.append(f"{ctx.size}: n up to {_sizes(ctx)[-1]}")
            xp_name = "numpy" if device == "cpu" else "cupy"
            rows.append(make_row(ctx.device, "cmaes", f"cmaes/{xp_name}/n={n}",
                                 {"n": n, "lambda": es.popsize, "xp": xp_name}, gee_runs=runs[device],
                                 reference_name="pycma" if have_pycma else None, reference=reference,
                                 target=target, note="; ".join(notes), extra=extra))
    return rows

