"""Which genotype an evolution hands to the final training (DESIGN.md section 5).

Every generation's fitness is measured on draws of the encodings and a short training, so the
single lowest validation loss of a run is partly the luck of its draw: a winner's curse, as the
final training draws new encodings anyway. Three rules (``select``):

* ``"reeval"`` (the default): re-evaluate the final CMA-ES mean and the ``CANDIDATES`` genotypes
  with the lowest validation loss of the run, each with ``reeval_draws`` fresh draws (common to
  all candidates, ``evaluation.draw_seed(run seed, "selection", k)``), and keep the lowest mean
  validation loss;
* ``"mean"``: the final CMA-ES mean, the search distribution's own estimate (for random search,
  which has no mean to move, its best candidate);
* ``"loss"``: the genotype with the single lowest validation loss of the run.

The validation loss L_cls ranks across generations, not the fitness: eq. 16's lambda(gen) and
a standardised fitness change their scale from one generation to the next.
"""
from __future__ import annotations

import math

import numpy

from gee_ref.evolution.evaluation import IndividualTask, evaluate_individual

SELECT_MODES = ("reeval", "mean", "loss")
CANDIDATES = 3  # the best few genotypes of a run kept for "reeval"
FACT_KEYS = ("generation", "index", "loss", "fitness", "accuracy", "r_t", "r_s")


def update_candidates(candidates: list, results, X_host, generation: int, keep: int = CANDIDATES) -> list:
    """The ``keep`` individuals of the run so far with the lowest validation loss (ties: the earlier)."""
    pool = list(candidates)
    for r in results:
        if r["nonfinite"] or not math.isfinite(r["loss"]):
            continue
        pool.append({"vector": X_host[r["index"]].copy(), **{k: r[k] for k in FACT_KEYS if k != "generation"},
                     "generation": generation})
    pool.sort(key=lambda c: c["loss"])  # a stable sort: among equal losses the earlier stays first
    return pool[:keep]


def choose(mode: str, candidates: list, mean, settings, executor, draws: int):
    """(vector, facts) of the genotype to train; ``mean`` is the final CMA-ES mean (or None).

    ``settings``: the run's ``EvaluationSettings`` (its draws are replaced by ``draws`` for the
    re-evaluation); ``executor`` runs the re-evaluations.
    """
    if mode not in SELECT_MODES:
        raise ValueError(f"unknown selection {mode!r}: expected one of {', '.join(SELECT_MODES)}")
    if mode == "mean" and mean is not None:
        return numpy.asarray(mean, dtype=numpy.float64), {"source": "final CMA-ES mean", "selected_by": "mean"}
    if not candidates:
        return None, {"source": "no finite individual", "selected_by": mode}
    if mode != "reeval":
        best = candidates[0]
        return best["vector"], {**{k: best[k] for k in FACT_KEYS}, "selected_by": mode}
    pool = ([{"vector": numpy.asarray(mean, dtype=numpy.float64), "source": "final CMA-ES mean"}] if mean is not None
            else []) + [dict(c, source=f"generation {c['generation']}, individual {c['index']}") for c in candidates]
    again = settings.__class__(**{**settings.__dict__, "draws": int(draws)})
    tasks = [IndividualTask(again, c["vector"], "selection", i) for i, c in enumerate(pool)]
    records = executor.map(evaluate_individual, tasks)
    losses = [r["loss"] if not r["nonfinite"] else math.inf for r in records]
    winner = int(numpy.argmin(losses))
    table = [{"source": c["source"], "reevaluated_loss": _finite_or_none(r["loss"]),
              "reevaluated_accuracy": _finite_or_none(r["accuracy"]), "run_loss": c.get("loss")}
             for c, r in zip(pool, records)]
    chosen = pool[winner]
    facts = {**{k: chosen.get(k) for k in FACT_KEYS}, "source": chosen["source"], "selected_by": "reeval",
             "reevaluation_draws": int(draws), "reevaluated_loss": _finite_or_none(records[winner]["loss"]),
             "candidates": table}
    return chosen["vector"], facts


def _finite_or_none(value):
    return float(value) if value is not None and math.isfinite(value) else None
