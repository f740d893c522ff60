"""The terms of eq. 16 for a generation's individuals: genotype -> network -> short training (DESIGN.md 5).

For the genotype x of individual ``index`` in generation ``generation``, and each of the
run's ``draws`` draws k = 0 .. K-1:

1. the network is built (``models.build_from_config``, the network ``train`` builds) and made
   the phenotype of x (``genome.apply_genome``: G from x, every encoding X_l = sigma_l Z_l);
2. it is trained for a short budget (``eval_steps`` updates, or ``eval_epochs`` passes) on the
   training split minus the held-out validation split;
3. L_cls is the cross-entropy on the validation split (never the test split); R_T (eq. 13,
   ``gee_ref.measure.spikes``) is measured on the spikes of that same validation pass; R_S
   (eq. 14-15) on x's G.

The record holds the means over the K draws. The fitness F itself (eq. 16) is scored for the
whole generation at once (``fitness.generation_fitness``, by ``gee_ref.evolution.search``): it
may standardise each term over the generation.

Common random numbers (DESIGN.md section 5): every random number of draw k comes from
``draw_seed(run seed, generation, k)``, the same for every individual of the generation. The
standard draws Z_l of the encodings (a normal cut at +-2, so that sigma_l Z_l is exactly a
normal cut at +-2 sigma_l), the weights of any dense layer and the mini-batch order are
therefore shared: two individuals differ by their genotypes, not by their luck, and two equal
genotypes get equal records. A result never depends on the process, worker or order that
computed it.

``evaluate_individual`` does this for one task with one network (the serial and Dask
executors); ``evaluate_population`` for a whole generation at once, its networks stacked into
one (``gee_ref.nn.population``) and trained by the same ``training.train_steps`` and
``training.evaluate`` (the batched executor). Both give the same records up to rounding.

Training uses SGD (momentum 0.9, Nesterov, weight decay 5e-4) at a constant learning rate
(reconstruction: the paper does not say). An individual whose training loss or validation loss
is NaN or infinite in any draw, or whose sigmas overflow, is flagged ``nonfinite`` and ranked
last.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy

from gee_ref import backend
from gee_ref.data.datasets import load_dataset, split_validation
from gee_ref.data.loader import Loader, channel_stats
from gee_ref.evolution import fitness
from gee_ref.evolution.genome import GenomeError, apply_genome
from gee_ref.models import build_from_config
from gee_ref.nn.population import stack_population
from gee_ref.training.loop import evaluate, train_steps
from gee_ref.training.optimizer import make_optimizer

# Training splits loaded by this process, by (path, validation fraction, seed): a Dask worker
# reads the data file once, not once per individual.
_DATA_CACHE: dict = {}


@dataclass(frozen=True)
class EvaluationSettings:
    """Everything an evaluation needs besides the genotype; the same for a whole run."""

    genome_template: object  # a genome.Genome: arch, g, layer names, model settings
    data_path: str
    seed: int
    val_fraction: float
    eval_steps: int | None
    eval_epochs: int | None
    batch_size: int
    lr: float
    device: str = "cpu"
    draws: int = 1  # K: draws of the encodings (and batches) per individual, shared by the generation
    tf32: bool = False  # GPU: float32 matrix products on TF32 tensor cores (``backend.set_tf32``)


@dataclass(frozen=True)
class IndividualTask:
    """One evaluation: a genotype and its place (generation, index) in the run. The generation
    names the draws (``draw_seed``): a number, or a word such as "selection" for the final
    re-evaluation."""

    settings: EvaluationSettings
    vector: numpy.ndarray
    generation: int | str
    index: int


def draw_seed(run_seed: int, generation, draw: int) -> int:
    """The seed of draw k of a generation: the same for all its individuals (common random numbers)."""
    return backend.derive_seed(run_seed, generation, "draw", draw)


def _data(settings: EvaluationSettings):
    """((train images, train labels, validation images, validation labels), (mean, std)), cached."""
    key = (settings.data_path, settings.val_fraction, settings.seed)
    if key not in _DATA_CACHE:
        images, labels, _ = load_dataset(settings.data_path, "train")
        kept, held = split_validation(labels, settings.val_fraction, settings.seed)
        _DATA_CACHE.clear()
        splits = (images[kept], labels[kept], images[held], labels[held])
        _DATA_CACHE[key] = (splits, channel_stats(splits[0]))
    return _DATA_CACHE[key]


def build_phenotype(settings: EvaluationSettings, vector, seed: int, num_classes: int, image_shape):
    """The network of genotype ``vector`` (eq. 9), its random numbers from ``seed``."""
    template = settings.genome_template
    config = {"arch": template.arch, "genetic": True, "genes": template.genes, "num_classes": num_classes,
              "image_shape": list(image_shape), "time_steps": template.model_config.get("time_steps", 4),
              "scope": template.model_config.get("scope"),
              "share_encodings": template.model_config.get("share_encodings", False),
              "width": template.model_config.get("width"), "seed": seed, "device": settings.device}
    model = build_from_config(config)
    apply_genome(model, template.with_vector(vector),
                 backend.rng(backend.derive_seed(seed, "encodings")))  # on the host: the same on any device
    return model


def _new_record(task: IndividualTask) -> dict:
    """The record of an individual before its training: R_S (eq. 14-15) and "nonfinite" until scored."""
    G = task.settings.genome_template.with_vector(numpy.asarray(task.vector, dtype=numpy.float64)).G
    return {"index": int(task.index), "fitness": math.nan, "loss": math.nan, "accuracy": math.nan,
            "r_t": math.nan, "r_s": float(fitness.spatial_entropy(G)), "train_loss": math.nan,
            "train_steps": 0, "nonfinite": True, "draws": []}


def _train_and_validate(model, settings: EvaluationSettings, seed: int):
    """The short training and the validation pass (records per individual for a population)."""
    (train_images, train_labels, val_images, val_labels), (mean, std) = _data(settings)
    train_loader = Loader(train_images, train_labels, settings.batch_size, shuffle=True, augment=False,
                          seed=backend.derive_seed(seed, "batches"), device=settings.device,
                          drop_last=len(train_labels) > settings.batch_size, mean=mean, std=std)
    val_loader = Loader(val_images, val_labels, settings.batch_size, shuffle=False, augment=False,
                        mean=mean, std=std, device=settings.device)
    trained = train_steps(model, train_loader, make_optimizer(model, "sgd", lr=settings.lr),
                          steps=settings.eval_steps, epochs=settings.eval_epochs)
    validated = evaluate(model, val_loader, record=True)
    return trained, validated


def _draw_result(trained: dict, validated: dict) -> dict:
    """One draw's short training and validation: its loss, accuracy and R_T (eq. 13); NaN where the
    training diverged."""
    loss = float(validated["loss"]) if not trained["nonfinite"] else math.nan
    return {"train_loss": float(trained["loss"]), "train_steps": int(trained["steps"]),
            "loss": loss, "accuracy": float(validated["accuracy"]) if math.isfinite(loss) else math.nan,
            "r_t": float(validated["temporal_difference"]) if math.isfinite(loss) else math.nan}


def _summarise(record: dict, expected: int) -> None:
    """The record's terms: the means over its draws; nonfinite when any draw was, or missed."""
    draws = record["draws"]
    finite = len(draws) == expected and all(math.isfinite(d["loss"]) and math.isfinite(d["r_t"]) for d in draws)
    for key in ("loss", "accuracy", "r_t", "train_loss"):
        values = [d[key] for d in draws]
        record[key] = float(numpy.mean(values)) if draws else math.nan
    record["train_steps"] = min((d["train_steps"] for d in draws), default=0)
    record["nonfinite"] = not finite
    if not finite:
        record.update(loss=math.nan, accuracy=math.nan, r_t=math.nan)


def _phenotype_or_none(task: IndividualTask, draw: int):
    """The task's network for draw ``draw``, or None when its genotype has no phenotype (e.g. a
    sigma that overflows)."""
    s = task.settings
    (train_images, *_), _ = _data(s)
    try:
        return build_phenotype(s, numpy.asarray(task.vector, dtype=numpy.float64),
                               draw_seed(s.seed, task.generation, draw),
                               s.genome_template.model_config.get("num_classes"), train_images.shape[1:])
    except GenomeError:
        return None


def evaluate_individual(task: IndividualTask) -> dict:
    """Train the phenotype of ``task.vector`` briefly (once per draw) and return its record.

    The record (JSON-ready): ``index``, ``loss`` (validation L_cls), ``accuracy`` (validation),
    ``r_t`` (eq. 13), ``train_loss`` (means over the draws), ``r_s`` (eq. 14-15), ``train_steps``,
    ``nonfinite``, ``draws`` (each draw's numbers), ``fitness`` (NaN until the generation is
    scored, ``fitness.generation_fitness``), ``seconds`` (wall time, the one entry that varies
    between runs).
    """
    return _evaluate([task], stacked=False)[0]


def evaluate_population(tasks, dtype=None) -> list:
    """The records ``[evaluate_individual(t) for t in tasks]``, computed for all tasks at once,
    their networks stacked into one (``gee_ref.nn.population``).

    Every task must share one ``EvaluationSettings`` and one generation (the same batches).
    ``dtype``: train in this dtype instead of the networks' own (e.g. float64 to compare with a
    float64 run of the individuals). The records' ``seconds`` is the wall time of the whole
    population divided by its size.
    """
    return _evaluate(list(tasks), stacked=True, dtype=dtype)


def _evaluate(tasks, stacked: bool, dtype=None) -> list:
    if not tasks:
        return []
    started = time.perf_counter()
    s, generation = tasks[0].settings, tasks[0].generation
    if any(t.settings is not s or t.generation != generation for t in tasks):
        raise ValueError("a population is evaluated with one EvaluationSettings and one generation")
    if s.tf32:  # set in this process: a Dask worker does not share the caller's switch
        backend.set_tf32(True)
    records = [_new_record(t) for t in tasks]
    with numpy.errstate(all="ignore"):  # a diverging individual is expected, not a warning
        for draw in range(s.draws):
            models = [_phenotype_or_none(t, draw) for t in tasks]
            members = [i for i, m in enumerate(models) if m is not None]
            if not members:
                break
            seed = draw_seed(s.seed, generation, draw)
            if stacked:
                trained, validated = _train_and_validate(stack_population([models[i] for i in members], dtype=dtype),
                                                         s, seed)
            else:
                trained, validated = [[result] for result in _train_and_validate(models[members[0]], s, seed)]
            for i, t, v in zip(members, trained, validated):
                records[i]["draws"].append(_draw_result(t, v))
    for record in records:
        _summarise(record, s.draws)
    seconds = (time.perf_counter() - started) / len(tasks)
    for record in records:
        record["seconds"] = seconds
    return records


__all__ = ["EvaluationSettings", "IndividualTask", "build_phenotype", "draw_seed", "evaluate_individual",
           "evaluate_population"]
