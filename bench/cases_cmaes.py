"""Benchmark (c): one CMA-ES generation, ask + tell, for n = 10 .. 10000 (paper eq. 10-12).

The objective is the sphere f(x) = sum x_i^2, evaluated in the same array module, so the
figure is the optimiser's own cost. gee_ref's ``CMAES`` (full covariance, default lambda =
4 + floor(3 ln n), Hansen's tutorial eq. 48) runs on NumPy, and on CuPy on a GPU; pycma's
``CMAEvolutionStrategy`` at its defaults is the reference when installed.

The eigendecomposition of C is lazy (tutorial: every lambda / (c_1 + c_mu) / n / 10
evaluations), so single generations differ by orders of magnitude. The timed window spans at
least one decomposition gap (plus two generations, at least 20), capped in count and in wall
time; the optimisers take turns generation by generation, so a passing load on the machine
falls on all of them alike. Each generation is flagged by whether it decomposed C (the
optimiser's own counter), and the figure is the amortised cost per generation: the medians
of the two kinds, weighted by how often each occurred (``amortised``).
"""
from __future__ import annotations

import math
import time

import numpy

from bench.run import make_row, median, ratio_target
from gee_ref.cmaes import CMAES
from gee_ref.cmaes.parameters import cma_parameters

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


def time_generations(steps: dict, counters: dict, ctx, generations, budget) -> dict:
    """{name: [(ms, decomposed), ...]} per generation: warm-up, then the optimisers take turns;
    each stops after ``generations`` or, once it has ctx.repeats, when its own time passes
    ``budget`` s. ``counters[name]()`` is the optimiser's count of eigendecompositions (or
    None), read around each generation to flag the ones that decomposed C."""
    for step in steps.values():
        for _ in range(ctx.warmup):
            step()
    runs = {name: [] for name in steps}
    spent = dict.fromkeys(steps, 0.0)
    for _ in range(generations):
        for name, step in steps.items():
            if len(runs[name]) >= ctx.repeats and spent[name] > budget:
                continue
            before = counters[name]()
            t0 = time.perf_counter()
            ms = ctx.time_one(step)
            spent[name] += time.perf_counter() - t0
            after = counters[name]()
            runs[name].append((ms, None if before is None else after > before))
    return runs


def amortised(runs) -> dict:
    """Per-generation figures of one optimiser's window (module docstring).

    ``amortised_ms`` = (1 - f) * median(generations without a decomposition)
    + f * median(generations with one), f the fraction that decomposed: the mean cost of a
    generation, robust to the stray slow generation of a loaded machine."""
    times = [ms for ms, _ in runs]
    flags = [d for _, d in runs]
    result = {"generations_timed": len(runs), "mean_ms": float(numpy.mean(times)), "median_ms": median(times)}
    if any(flag is None for flag in flags):  # no counter: the plain median
        return {**result, "amortised_ms": median(times), "decompositions_in_window": None}
    with_d = [ms for ms, d in runs if d]
    without = [ms for ms, d in runs if not d]
    f = len(with_d) / len(runs)
    value = (1 - f) * (median(without) if without else 0.0) + f * (median(with_d) if with_d else 0.0)
    return {**result, "amortised_ms": value, "decompositions_in_window": len(with_d),
            "median_ms_without_decomposition": median(without), "median_ms_with_decomposition": median(with_d)}


def run_cmaes(ctx) -> list:
    try:
        import cma  # noqa: F401
        have_pycma = True
    except ImportError:
        have_pycma = False
    devices = ("cpu",) + (("gpu",) if ctx.device == "gpu" else ())
    rows = []
    for n in _sizes(ctx):
        steps, optimisers, counters = {}, {}, {}
        for device in devices:
            steps[device], optimisers[device] = _gee_ref(n, device)
            counters[device] = (lambda es: lambda: es.eigen_updates)(optimisers[device])
        if have_pycma:
            steps["pycma"], optimisers["pycma"] = _pycma(n)
            sampler = getattr(optimisers["pycma"], "sm", None)
            counters["pycma"] = lambda: getattr(sampler, "count_eigen", None)
        runs = time_generations(steps, counters, ctx, *_window(n, ctx))
        pycma = amortised(runs["pycma"]) if have_pycma else {}
        for device in devices:
            es = optimisers[device]
            figures = amortised(runs[device])
            extra = {"popsize": es.popsize, **figures,
                     "decomposition_gap_generations": round(es.params.eigen_gap_evaluations / es.popsize, 2),
                     "pycma": pycma}
            value = figures["amortised_ms"]
            if device == "cpu":
                target = ratio_target("NumPy <= pycma (n <= 2000)", 1.0, ("cpu", "gpu")) if n <= 2000 else None
            else:
                target = (ratio_target("<= 30 ms per generation at n = 10000", 30.0, ("gpu",), value=value)
                          if n == 10000 else None)
            reference = pycma.get("amortised_ms")
            notes = ["ms per generation, eigendecompositions amortised"]
            if figures["decompositions_in_window"] == 0:
                notes.append("no eigendecomposition fell in the window: not included")
            theirs = pycma.get("decompositions_in_window")
            if device == "cpu" and theirs is not None and (theirs == 0) != (figures["decompositions_in_window"] == 0):
                # one side's window holds a decomposition, the other's none: compare like with like
                value = figures["median_ms_without_decomposition"]
                reference = pycma["median_ms_without_decomposition"]
                notes = [f"ms per generation between eigendecompositions (only one side decomposed C in its "
                         f"window; gee_ref's amortised figure {figures['amortised_ms']:,.0f} ms in the JSON)"]
            if not have_pycma:
                notes.append("pycma not installed (pip install cma)")
            if ctx.quick:
                notes.append(f"{ctx.size}: n up to {_sizes(ctx)[-1]}")
            xp_name = "numpy" if device == "cpu" else "cupy"
            rows.append(make_row(ctx.device, "cmaes", f"cmaes/{xp_name}/n={n}",
                                 {"n": n, "lambda": es.popsize, "xp": xp_name}, gee=value,
                                 gee_runs=[ms for ms, _ in runs[device]],
                                 reference_name="pycma" if have_pycma else None,
                                 reference=reference, target=target, note="; ".join(notes),
                                 extra=extra))
    return rows
