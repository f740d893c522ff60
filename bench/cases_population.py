"""Benchmark (d): evaluating a population of digits-net genotypes, individuals per second.

One evaluation is gee_ref's real fitness evaluation (``gee_ref.evolution.evaluation.evaluate_individual``,
DESIGN.md section 5, paper eq. 16): build the phenotype of the genotype (eq. 9), train it for
``eval_steps`` SGD updates on the embedded digits minus a validation split, then measure the
validation loss, R_T (eq. 13) and R_S (eq. 14-15). The genotypes are one CMA-ES generation
(``gee_ref.cmaes``) around the starting genome, evaluated one after another as
``python -m gee_ref.evolve`` does with its serial executor.

Beside it, the same generation evaluated as one batch (``gee_ref.evolution.evaluation.evaluate_population``:
the lambda networks stacked along a leading axis, batched matmul, one training loop for all),
which gives the same records; the row reports both rates, their ratio and the largest relative
difference of the validation losses (eq. 16's L_cls) between the two paths.
"""
from __future__ import annotations

from bench.run import make_row, median, ratio_target
from gee_ref import backend

GENES, POPSIZE, BATCH_SIZE, LR, VAL_FRACTION, SIGMA0 = 16, 8, 32, 0.1, 0.2, 0.1


def population_settings(ctx):
    """(EvaluationSettings, genotypes [lambda, n]) of the benchmark's population."""
    from gee_ref.cmaes import CMAES
    from gee_ref.data.datasets import default_digits_path, load_dataset
    from gee_ref.evolution.genome import starting_genome
    from gee_ref.evolution.evaluation import EvaluationSettings
    from gee_ref.models import build_from_config as build

    path = default_digits_path()
    images, _, classes = load_dataset(path, "train")
    template = build({"arch": "digits", "genetic": True, "genes": GENES, "num_classes": len(classes),
                      "image_shape": list(images.shape[1:]), "time_steps": 4, "seed": 0, "device": "cpu"})
    start = starting_genome(template)
    settings = EvaluationSettings(genome_template=start, data_path=str(path), seed=0, val_fraction=VAL_FRACTION,
                                  eval_steps=1 if ctx.smoke else 3 if ctx.quick else 20, eval_epochs=None, batch_size=BATCH_SIZE,
                                  lr=LR, device=ctx.device)
    es = CMAES(start.vector, SIGMA0, popsize=POPSIZE, seed=0)
    return settings, backend.to_host(es.ask())


def run_population(ctx) -> list:
    from gee_ref.evolution.executors import SerialExecutor
    from gee_ref.evolution.evaluation import IndividualTask, evaluate_individual, evaluate_population

    settings, genotypes = population_settings(ctx)
    tasks = [IndividualTask(settings, genotypes[i].copy(), 0, i) for i in range(len(genotypes))]
    executor = SerialExecutor()
    results, batched = [], []

    def one_by_one():
        results[:] = executor.map(evaluate_individual, tasks)

    def all_at_once():
        batched[:] = evaluate_population(tasks)

    evaluate_individual(tasks[0])  # warm-up: the data file is read and cached once per process
    runs = ctx.time_ms({"one_by_one": one_by_one, "batched": all_at_once}, warmup=0,
                       repeats=1 if ctx.quick else 3)
    rate = len(tasks) / (median(runs["one_by_one"]) / 1e3)
    batched_rate = len(tasks) / (median(runs["batched"]) / 1e3)
    config = {"arch": "digits", "g": GENES, "lambda": len(tasks), "eval_steps": settings.eval_steps,
              "batch": BATCH_SIZE, "T": 4}
    nonfinite = sum(bool(r["nonfinite"]) for r in results)
    differences = [abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(results, batched)
                   if not a["nonfinite"] and not b["nonfinite"]]
    same_flags = [a["nonfinite"] for a in results] == [b["nonfinite"] for b in batched]
    rows = [make_row(ctx.device, "population", "population/one by one", config, unit="individuals/s", gee=rate,
                     note=f"evaluate_individual over one CMA-ES generation, serial executor; {nonfinite} nonfinite",
                     extra={"seconds_per_population": [r / 1e3 for r in runs["one_by_one"]],
                            "loss": [r["loss"] for r in results]}),
            make_row(ctx.device, "population", "population/batched", config, unit="individuals/s",
                     gee=batched_rate, reference_name="one by one", reference=rate,
                     target=ratio_target(">= 4 x one by one", 4.0, ("cpu", "gpu"), at_least=True),
                     note=f"evaluate_population (stacked, batched matmul), same generation; loss max rel diff "
                          f"{max(differences, default=0.0):.1e}, nonfinite flags {'equal' if same_flags else 'DIFFER'}",
                     extra={"seconds_per_population": [r / 1e3 for r in runs["batched"]],
                            "loss": [r["loss"] for r in batched]})]
    return rows
