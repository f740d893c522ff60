"""Benchmark (d): evaluating a population of genotypes, individuals per second.

One evaluation is gee_ref's real fitness evaluation (``gee_ref.evolution.evaluation.evaluate_individual``,
DESIGN.md section 5, paper eq. 16): build the phenotype of the genotype (eq. 9), train it for
``eval_steps`` SGD updates on the training images minus a validation split, then measure the
validation loss, R_T (eq. 13) and R_S (eq. 14-15). The genotypes are one CMA-ES generation
(``gee_ref.cmaes``) around the starting genome, evaluated one after another as
``python -m gee_ref.evolve`` does with its serial executor.

Beside it, the same generation evaluated as one batch (``gee_ref.evolution.evaluation.evaluate_population``:
the lambda networks stacked along a leading axis, batched matmul, one training loop for all),
which gives the same records; the row reports both rates, their ratio and the largest relative
difference of the validation losses (eq. 16's L_cls) between the two paths.

The populations: the digits net on the embedded 8x8 digits (g = 16, T = 4), and the small nets
of the experiments (issue 16) on 32x32 or 16x16 colour images at T = 2: the digits layout
(g = 32) and resnet14 (width 16, g = 16). Their images are a random CIFAR-shaped data set
(``random_colour_dataset``: ten classes, a colour per class plus noise) written to a
temporary file; the time of a step does not depend on what the pixels show.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy

from bench.run import make_row, median, ratio_target
from gee_ref import backend

POPSIZE, BATCH_SIZE, LR, VAL_FRACTION, SIGMA0 = 8, 32, 0.1, 0.2, 0.1


class PopulationCase(NamedTuple):
    arch: str
    genes: int
    time_steps: int
    image_side: int | None  # None: the embedded 8x8 digits; else a random colour data set of this side
    target: float           # batched / one by one, at least


CASES = (PopulationCase("digits", 16, 4, None, 4.0),
         PopulationCase("digits", 32, 2, 32, 2.0),
         PopulationCase("resnet14", 16, 2, 16, 2.0))


def eval_steps(ctx, case) -> int:
    if ctx.smoke:
        return 1
    if case.image_side is None:
        return 3 if ctx.quick else 20
    return 2 if ctx.quick else 5


def random_colour_dataset(path, side, per_class_train=32, per_class_test=4, seed=0):
    """A gee_ref dataset file of ten classes of ``side`` x ``side`` RGB images: a colour per class, and noise."""
    from gee_ref.data.datasets import write_dataset

    rng = numpy.random.default_rng(seed)
    colours = rng.integers(0, 256, (10, 3))
    splits = {}
    for split, count in (("train", per_class_train), ("test", per_class_test)):
        labels = numpy.repeat(numpy.arange(10), count)
        noise = rng.normal(0, 40, (labels.size, side, side, 3))
        images = numpy.clip(colours[labels][:, None, None, :] + noise, 0, 255).astype(numpy.uint8)
        splits[split] = (images, labels)
    return write_dataset(path, splits, [f"class{k}" for k in range(10)], "random colours per class (bench)")


def population_settings(ctx, case, data_path):
    """(EvaluationSettings, genotypes [lambda, n]) of one population case."""
    from gee_ref.cmaes import CMAES
    from gee_ref.data.datasets import load_dataset
    from gee_ref.evolution.evaluation import EvaluationSettings
    from gee_ref.evolution.genome import starting_genome
    from gee_ref.models import build_from_config as build

    images, _, classes = load_dataset(data_path, "train")
    config = {"arch": case.arch, "genetic": True, "genes": case.genes, "num_classes": len(classes),
              "image_shape": list(images.shape[1:]), "time_steps": case.time_steps, "seed": 0, "device": "cpu"}
    if case.arch == "resnet14":
        config["width"] = 16
    start = starting_genome(build(config))
    settings = EvaluationSettings(genome_template=start, data_path=str(data_path), seed=0, val_fraction=VAL_FRACTION,
                                  eval_steps=eval_steps(ctx, case), eval_epochs=None, batch_size=BATCH_SIZE,
                                  lr=LR, device=ctx.device)
    es = CMAES(start.vector, SIGMA0, popsize=POPSIZE, seed=0)
    return settings, backend.to_host(es.ask())


def run_population(ctx) -> list:
    from gee_ref.data.datasets import default_digits_path

    rows = []
    with tempfile.TemporaryDirectory(prefix="gee_ref-bench-") as folder:
        for case in CASES:
            if case.image_side is None:
                path = default_digits_path()
            else:
                side = 8 if ctx.smoke else case.image_side
                path = random_colour_dataset(Path(folder) / f"colours-{side}.h5", side)
            rows += _population_rows(ctx, case, path)
    return rows


def _population_rows(ctx, case, data_path) -> list:
    from gee_ref.evolution.evaluation import IndividualTask, evaluate_individual, evaluate_population
    from gee_ref.evolution.executors import SerialExecutor

    settings, genotypes = population_settings(ctx, case, data_path)
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
    side = None if case.image_side is None else 8 if ctx.smoke else case.image_side
    image = "8x8x1 digits" if side is None else f"{side}x{side}x3 random colours"
    config = {"arch": case.arch, "g": case.genes, "image": image, "lambda": len(tasks),
              "eval_steps": settings.eval_steps, "batch": BATCH_SIZE, "T": case.time_steps}
    nonfinite = sum(bool(r["nonfinite"]) for r in results)
    differences = [abs(a["loss"] - b["loss"]) / abs(a["loss"]) for a, b in zip(results, batched)
                   if not a["nonfinite"] and not b["nonfinite"]]
    same_flags = [a["nonfinite"] for a in results] == [b["nonfinite"] for b in batched]
    name = f"population/{case.arch}" + ("" if side is None else f" {side}px")
    return [make_row(ctx.device, "population", f"{name} one by one", config, unit="individuals/s", gee=rate,
                     note=f"evaluate_individual over one CMA-ES generation, serial executor; {nonfinite} nonfinite",
                     extra={"seconds_per_population": [r / 1e3 for r in runs["one_by_one"]],
                            "loss": [r["loss"] for r in results]}),
            make_row(ctx.device, "population", f"{name} batched", config, unit="individuals/s",
                     gee=batched_rate, reference_name="one by one", reference=rate,
                     ratio=batched_rate / rate,
                     target=ratio_target(f">= {case.target:g} x one by one", case.target, ("cpu", "gpu"),
                                         at_least=True),
                     note=f"evaluate_population (stacked, batched matmul), same generation; ratio = batched rate / "
                          f"one-by-one rate; loss max rel diff {max(differences, default=0.0):.1e}, nonfinite "
                          f"flags {'equal' if same_flags else 'DIFFER'}",
                     extra={"seconds_per_population": [r / 1e3 for r in runs["batched"]],
                            "loss": [r["loss"] for r in batched]})]
