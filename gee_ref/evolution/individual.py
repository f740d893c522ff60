"""The fitness of one individual: genotype -> network -> short training -> eq. 16 (DESIGN.md 5).

    F(x) = L_cls - lambda(gen) * (alpha * R_T + beta * R_S)          (eq. 16, minimised)

For the genotype x of individual ``index`` in generation ``generation``:

1. its random numbers come from ``backend.derive_seed(run seed, generation, index)``, so the
   result never depends on the process, worker or order that computed it;
2. the network is built (``gee_ref.train.build``, the same network ``train`` builds) and made
   the phenotype of x (``genome.apply_genome``: G from x, encodings drawn with x's sigmas);
3. it is trained for a short budget (``eval_steps`` updates, or ``eval_epochs`` passes) on the
   training split minus the held-out validation split;
4. L_cls is the cross-entropy on the validation split (never the test split); R_T (eq. 13) is
   measured on the spikes of that same validation pass; R_S (eq. 14-15) on x's G;
5. F is ``fitness.dynamic_fitness`` with the variant's weights.

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
from gee_ref.training import loop as training

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


def _splits(settings: EvaluationSettings):
    """(train images, train labels, validation images, validation labels), cached."""
    return _cached_data(settings)[0]


def _train_channel_stats(settings: EvaluationSettings):
    """(mean, std) per channel of the training split (``loader.channel_stats``), cached."""
    return _cached_data(settings)[1]


def _cached_data(settings: EvaluationSettings):
    from gee_ref.data.datasets import load_dataset, split_validation
    from gee_ref.data.loader import channel_stats

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
    from gee_ref.evolution.genome import apply_genome
    from gee_ref.train import build

    template = settings.genome_template
    config = {"arch": template.arch, "genetic": True, "genes": template.genes, "num_classes": num_classes,
              "image_shape": list(image_shape), "time_steps": template.model_config.get("time_steps", 4),
              "seed": seed, "device": settings.device, "width": template.model_config.get("width")}
    model = build(config)
    apply_genome(model, template.with_vector(vector),
                 backend.rng(backend.derive_seed(seed, "encodings")))  # on the host: the same on any device
    return model


def evaluate_individual(task: IndividualTask) -> dict:
    """Train the phenotype of ``task.vector`` briefly and return its fitness record.

    The record (JSON-ready): ``index``, ``fitness`` (eq. 16; NaN when nonfinite), ``loss``
    (validation L_cls), ``accuracy`` (validation), ``r_t`` (eq. 13), ``r_s`` (eq. 14-15),
    ``train_loss``, ``train_steps``, ``nonfinite``, ``seconds`` (wall time, the one entry that
    varies between runs).
    """
    from gee_ref.evolution import fitness
    from gee_ref.evolution.genome import GenomeError
    from gee_ref.data.loader import Loader

    started = time.perf_counter()
    s = task.settings
    if s.tf32:  # set in this process: a Dask worker does not share the caller's switch
        backend.set_tf32(True)
    vector = numpy.asarray(task.vector, dtype=numpy.float64)
    template = s.genome_template
    r_s = float(fitness.spatial_entropy(template.with_vector(vector).G))
    record = {"index": int(task.index), "fitness": math.nan, "loss": math.nan, "accuracy": math.nan,
              "r_t": math.nan, "r_s": r_s, "train_loss": math.nan, "train_steps": 0, "nonfinite": True}

    train_images, train_labels, val_images, val_labels = _splits(s)
    num_classes = template.model_config.get("num_classes")
    seed = individual_seed(s.seed, task.generation, task.index)
    with numpy.errstate(all="ignore"):  # a diverging individual is expected, not a warning
        try:
            model = build_phenotype(s, vector, seed, num_classes, train_images.shape[1:])
        except GenomeError:  # e.g. a sigma that overflows: rank last
            return _finish(record, started)
        mean, std = _train_channel_stats(s)
        train_loader = Loader(train_images, train_labels, s.batch_size, shuffle=True, augment=False,
                              seed=backend.derive_seed(s.seed, task.generation, "batches"), device=s.device,
                              drop_last=len(train_labels) > s.batch_size, mean=mean, std=std)
        val_loader = Loader(val_images, val_labels, s.batch_size, shuffle=False, augment=False,
                            mean=mean, std=std, device=s.device)
        optimizer = training.make_optimizer(model, "sgd", lr=s.lr)
        trained = training.train_steps(model, train_loader, optimizer, steps=s.eval_steps, epochs=s.eval_epochs)
        record.update(train_loss=float(trained["loss"]), train_steps=int(trained["steps"]))
        if trained["nonfinite"]:
            return _finish(record, started)
        validated = training.evaluate(model, val_loader, record=True)
    loss, r_t = float(validated["loss"]), float(validated["temporal_difference"])
    record.update(loss=loss, accuracy=float(validated["accuracy"]), r_t=r_t)
    if math.isfinite(loss):
        record["fitness"] = float(fitness.dynamic_fitness(loss, r_t, r_s, task.generation, s.alpha, s.beta))
        record["nonfinite"] = not math.isfinite(record["fitness"])
    return _finish(record, started)


def _finish(record: dict, started: float) -> dict:
    record["seconds"] = time.perf_counter() - started
    return record


__all__ = ["EvaluationSettings", "IndividualTask", "build_phenotype", "evaluate_individual", "individual_seed"]
