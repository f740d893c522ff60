"""The fitness of a generation's individuals: genotype -> network -> short training -> eq. 16 (DESIGN.md 5).

    F(x) = L_cls - lambda(gen) * (alpha * R_T + beta * R_S)          (eq. 16, minimised)

For the genotype x of individual ``index`` in generation ``generation``:

1. its random numbers come from ``backend.derive_seed(run seed, generation, index)``, so the
   result never depends on the process, worker or order that computed it;
2. the network is built (``models.build_from_config``, the network ``train`` builds) and made
   the phenotype of x (``genome.apply_genome``: G from x, encodings drawn with x's sigmas);
3. it is trained for a short budget (``eval_steps`` updates, or ``eval_epochs`` passes) on the
   training split minus the held-out validation split;
4. L_cls is the cross-entropy on the validation split (never the test split); R_T (eq. 13,
   ``gee_ref.measure.spikes``) is measured on the spikes of that same validation pass; R_S
   (eq. 14-15) on x's G;
5. F is ``fitness.dynamic_fitness`` with the variant's weights.

``evaluate_individual`` does this for one task with one network (the serial and Dask
executors); ``evaluate_population`` for a whole generation at once, its networks stacked into
one (``gee_ref.nn.population``) and trained by the same ``training.train_steps`` and
``training.evaluate`` (the batched executor). Both give the same records up to rounding.

Choices of gee_ref (reconstruction, the paper does not say): the mini-batch order of the short
training is common to a generation (seeded from (run seed, generation), "common random
numbers": individuals are compared on the same batches), while each individual's encodings
are its own draw. Training uses SGD (momentum 0.9, Nesterov, weight decay 5e-4) at a constant
learning rate. An individual whose training loss or validation loss is NaN or infinite, or
whose sigmas overflow, gets F = NaN, which the CMA-ES ranks last; it is flagged ``nonfinite``.
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
    alpha: float  # effective weights of the variant (``fitness.variant_weights``)
    beta: float
    device: str = "cpu"
    tf32: bool = False  # GPU: float32 matrix products on TF32 tensor cores (``backend.set_tf32``)


@dataclass(frozen=True)
class IndividualTask:
    """One evaluation: a genotype and its place (generation, index) in the run."""

    settings: EvaluationSettings
    vector: numpy.ndarray
    generation: int
    index: int


def individual_seed(run_seed: int, generation: int, index: int) -> int:
    return backend.derive_seed(run_seed, generation, index)


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
            "train_steps": 0, "nonfinite": True}


def _train_and_validate(model, settings: EvaluationSettings, generation: int):
    """The short training and the validation pass (records per individual for a population)."""
    (train_images, train_labels, val_images, val_labels), (mean, std) = _data(settings)
    train_loader = Loader(train_images, train_labels, settings.batch_size, shuffle=True, augment=False,
                          seed=backend.derive_seed(settings.seed, generation, "batches"), device=settings.device,
                          drop_last=len(train_labels) > settings.batch_size, mean=mean, std=std)
    val_loader = Loader(val_images, val_labels, settings.batch_size, shuffle=False, augment=False,
                        mean=mean, std=std, device=settings.device)
    trained = train_steps(model, train_loader, make_optimizer(model, "sgd", lr=settings.lr),
                          steps=settings.eval_steps, epochs=settings.eval_epochs)
    validated = evaluate(model, val_loader, record=True)
    return trained, validated


def _score(record: dict, trained: dict, validated: dict, generation: int, settings: EvaluationSettings) -> None:
    """Fill ``record`` from one individual's training and validation results (eq. 16)."""
    record.update(train_loss=float(trained["loss"]), train_steps=int(trained["steps"]))
    if trained["nonfinite"]:
        return
    loss, r_t = float(validated["loss"]), float(validated["temporal_difference"])
    record.update(loss=loss, accuracy=float(validated["accuracy"]), r_t=r_t)
    if math.isfinite(loss):
        record["fitness"] = float(fitness.dynamic_fitness(loss, r_t, record["r_s"], generation,
                                                          settings.alpha, settings.beta))
        record["nonfinite"] = not math.isfinite(record["fitness"])


def _phenotype_or_none(task: IndividualTask):
    """The task's network, or None when its genotype has no phenotype (e.g. a sigma that overflows)."""
    s = task.settings
    (train_images, *_), _ = _data(s)
    try:
        return build_phenotype(s, numpy.asarray(task.vector, dtype=numpy.float64),
                               individual_seed(s.seed, task.generation, task.index),
                               s.genome_template.model_config.get("num_classes"), train_images.shape[1:])
    except GenomeError:
        return None


def evaluate_individual(task: IndividualTask) -> dict:
    """Train the phenotype of ``task.vector`` briefly and return its fitness record.

    The record (JSON-ready): ``index``, ``fitness`` (eq. 16; NaN when nonfinite), ``loss``
    (validation L_cls), ``accuracy`` (validation), ``r_t`` (eq. 13), ``r_s`` (eq. 14-15),
    ``train_loss``, ``train_steps``, ``nonfinite``, ``seconds`` (wall time, the one entry that
    varies between runs).
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
        models = [_phenotype_or_none(t) for t in tasks]
        members = [i for i, m in enumerate(models) if m is not None]
        if members:
            if stacked:
                model = stack_population([models[i] for i in members], dtype=dtype)
                trained, validated = _train_and_validate(model, s, generation)
            else:
                (index,) = members
                trained, validated = _train_and_validate(models[index], s, generation)
                trained, validated = [trained], [validated]
            for i, t, v in zip(members, trained, validated):
                _score(records[i], t, v, generation, s)
    seconds = (time.perf_counter() - started) / len(tasks)
    for record in records:
        record["seconds"] = seconds
    return records


__all__ = ["EvaluationSettings", "IndividualTask", "build_phenotype", "evaluate_individual", "evaluate_population",
           "individual_seed"]
