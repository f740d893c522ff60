"""A training run: one genetic network (or its dense twin) trained, checkpointed and reported.

This is what ``python -m gee_ref.train`` runs, and what ``evolve`` runs on its best genotype.

Every epoch appends a line to ``OUT/log.jsonl`` (epoch, train loss and accuracy, validation
or test loss and accuracy, learning rate, seconds) and rewrites ``OUT/checkpoint.h5``
atomically (``gee_ref.storage.checkpoint``): a run stopped at any moment keeps its last
complete checkpoint. A resumed run continues from it exactly: epoch e's shuffle and
augmentation depend only on (seed, e), and the weights, BN statistics, optimiser state and
epoch count are in the checkpoint, so it ends with the same weights as an uninterrupted one
(same device). At the end the report (``gee_ref.runs.report``) is saved as ``OUT/report.json``.

A genetic network starts from ``start`` (``gee_ref.evolution.genome.starting_genome``): "calibrated"
(the default: encodings with the Kaiming-matching sigma_l, G = I) or "paper" (sigma_l = 1, G = I),
unless a ``genome`` gives its G and sigmas. ``freeze_genes`` keeps G as it starts (the paper's text
admits that reading: "indirectly optimize neuronal encoding instead of weight"); only the
encodings and the other parameters train. With G = I frozen, a genetic layer is a plain rank-g
factorisation W = X_out X_in^T.

``from_dense`` starts from a trained dense twin's checkpoint: every dense weight layer becomes
its best rank-g genetic layer for the network's G (paper eq. 6-8, ``gee_ref.init.lowrank``)
and every other parameter and buffer is copied; the test accuracy before fine-tuning is
reported, then the network is fine-tuned.

Defaults by dataset, chosen by the image side (``gee_ref.runs.data.dataset_kind``):

    =========  ======  =====  ===========  ==========================================
    images     epochs  batch  augment      for
    =========  ======  =====  ===========  ==========================================
    <= 16 px   20      32     none         the embedded 8x8 digits
    <= 64 px   200     128    crop + flip  CIFAR-10/100 (the paper trains 200 epochs)
    larger     100     64     crop + flip  ImageNet-like folders
    =========  ======  =====  ===========  ==========================================

SGD (default): lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4 on the weight matrices
only (``gee_ref.training.optimizer``); AdamW: lr 1e-3, weight decay 0.01. The learning rate
follows a cosine from lr to 0 over all the run's steps (``schedule="constant"`` keeps it),
after ``warmup_epochs`` of linear warmup (default 0). T = 4 time steps.

Quick runs: ``steps_per_epoch`` caps the batches of an epoch; ``eval_batches`` caps the
per-epoch evaluation (0: none) and ``report_batches`` the final report's passes. Both default
to all batches, or to ``steps_per_epoch`` when that is given, so a quick run is quick from end
to end ("all" asks for every batch whatever ``steps_per_epoch``); a report computed on a subset
says so.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from gee_ref import backend
from gee_ref.data.datasets import split_validation
from gee_ref.data.loader import Loader
from gee_ref.evolution.genome import STARTS, apply_genome, digest, load_genome, starting_genome
from gee_ref.init.lowrank import from_dense
from gee_ref.measure.memory import PeakMemory
from gee_ref.models import ARCHITECTURES, build_from_config
from gee_ref.optim import CosineSchedule
from gee_ref.runs import report as run_report
from gee_ref.runs.checks import require_at_least
from gee_ref.runs.data import RunData, dataset_kind, describe
from gee_ref.runs.folder import check_same_settings, claimed
from gee_ref.storage import atomic
from gee_ref.storage.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gee_ref.storage.json_file import json_line, write_json
from gee_ref.training.loop import evaluate, train_steps
from gee_ref.training.optimizer import make_optimizer
from gee_ref.training.progress import Progress, duration

CHECKPOINT_NAME = "checkpoint.h5"
LOG_NAME = "log.jsonl"
REPORT_NAME = "report.json"
RUN_FORMAT = "gee_ref-train-v1"

DATASET_DEFAULTS = {  # by image side, see the module docstring
    "digits": {"epochs": 20, "batch_size": 32, "augment": False},
    "cifar": {"epochs": 200, "batch_size": 128, "augment": True},
    "large": {"epochs": 100, "batch_size": 64, "augment": True},
}
OPTIMIZER_DEFAULTS = {"sgd": {"lr": 0.1, "weight_decay": 5e-4}, "adamw": {"lr": 1e-3, "weight_decay": 0.01}}
DEFAULT_ARCH = "digits"
DEFAULT_TIME_STEPS = 4
#: The options of a training run that have a fixed default (None elsewhere means "by dataset").
OPTION_DEFAULTS = {"arch": None, "genes": None, "width": None, "start": "calibrated", "freeze_genes": False,
                   "dense": False, "data": None, "epochs": None, "device": "cpu",
                   "tf32": False, "genome": None, "from_dense": None, "batch_size": None, "lr": None,
                   "optimizer": "sgd", "weight_decay": None, "schedule": "cosine", "warmup_epochs": 0,
                   "augment": None, "time_steps": None, "seed": 0, "val_fraction": 0.0, "steps_per_epoch": None,
                   "eval_batches": None, "report_batches": None, "noise_ratio": 0.5}
# What a NaN or infinite loss does to a training (``train_epochs``): a one-line error, or the end
# of the training with the last finite weights; how a run ends, not one of its settings.
DIVERGENCE_CHOICES = ("error", "stop")
# Settings a resumed run may change; every other one must equal the checkpoint's. The genome and
# from-dense files may move (with the run folder, say): their contents are checked instead.
RESUMABLE_CHANGES = ("epochs", "device", "tf32", "genome", "from_dense")
# Settings added after the first checkpoints were written: a checkpoint without one had this value.
LATER_SETTINGS = {"tf32": False, "eval_batches": None, "report_batches": None, "width": None,
                  "start": "calibrated", "freeze_genes": False, "genome_digest": None}


# ---------------------------------------------------------------------------- settings

def _pick(value, default):
    return default if value is None else value


def batch_count(text: str):
    """The text of an evaluation or report cap: a number of batches, or "all"."""
    return "all" if text == "all" else int(text)


def _batches(value, quick):
    """A cap on evaluation batches: "all" -> None (no cap); not given -> ``steps_per_epoch``'s."""
    return None if value == "all" else _pick(value, quick)


def resolve_config(options: dict, data: RunData, genome=None) -> dict:
    """The run's settings, every default filled in and checked (JSON-ready, kept in checkpoints).

    ``options``: any of ``OPTION_DEFAULTS``' keys (missing ones take their default); ``genome``:
    a loaded genotype whose architecture, g and model settings the run must match.
    """
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown training options {unknown}")
    o = {**OPTION_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    height, width, channels = data.image_shape
    kind = dataset_kind(height)
    made_for = genome.model_config if genome is not None else {}
    arch = _pick(o["arch"], genome.arch if genome is not None else DEFAULT_ARCH)
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    genes = _pick(o["genes"], int(genome.genes) if genome is not None else ARCHITECTURES[arch].genes)
    if genome is not None and (arch, genes) != (genome.arch, int(genome.genes)):
        raise ValueError(f"the genome is for --arch {genome.arch} --genes {genome.genes}, "
                         f"not --arch {arch} --genes {genes}")
    optimizer = OPTIMIZER_DEFAULTS.get(o["optimizer"])
    if optimizer is None:
        raise ValueError(f"unknown optimizer {o['optimizer']!r}: expected one of {', '.join(OPTIMIZER_DEFAULTS)}")
    quick = o["steps_per_epoch"]
    config = {
        "format": RUN_FORMAT,
        "arch": arch, "genetic": not o["dense"], "genes": genes,
        "start": o["start"], "freeze_genes": bool(o["freeze_genes"]),  # start: unless a genome says otherwise
        "data": describe(o["data"]),
        "num_classes": len(data.classes), "image_shape": [height, width, channels],
        "epochs": _pick(o["epochs"], DATASET_DEFAULTS[kind]["epochs"]),
        "batch_size": _pick(o["batch_size"], DATASET_DEFAULTS[kind]["batch_size"]),
        "optimizer": o["optimizer"],
        "lr": _pick(o["lr"], optimizer["lr"]),
        "weight_decay": _pick(o["weight_decay"], optimizer["weight_decay"]),
        "schedule": o["schedule"], "warmup_epochs": o["warmup_epochs"],
        "augment": _pick(o["augment"], DATASET_DEFAULTS[kind]["augment"]),
        "time_steps": _pick(o["time_steps"], int(made_for.get("time_steps", DEFAULT_TIME_STEPS))),
        "scope": made_for.get("scope"), "share_encodings": bool(made_for.get("share_encodings", False)),
        "width": _pick(o["width"], made_for.get("width")),
        "seed": o["seed"], "val_fraction": o["val_fraction"], "steps_per_epoch": quick,
        "eval_batches": _batches(o["eval_batches"], quick), "report_batches": _batches(o["report_batches"], quick),
        "device": o["device"], "tf32": bool(o["tf32"]), "noise_ratio": o["noise_ratio"],
        "genome": str(Path(o["genome"]).resolve()) if o["genome"] else None,
        "genome_digest": digest(genome) if genome is not None else None,
        "from_dense": str(Path(o["from_dense"]).resolve()) if o["from_dense"] else None,
    }
    check_config(config)
    for key, value in (("num_classes", len(data.classes)), ("in_channels", channels), ("image_size", height),
                       ("time_steps", config["time_steps"]), ("width", config["width"])):
        if key in made_for and made_for[key] != value:
            raise ValueError(f"the genome was made for {key}={made_for[key]}, this run has {key}={value}")
    return config


def check_config(c) -> None:
    """ValueError, one line naming the option, for a setting that cannot run."""
    require_at_least(c, ("epochs", "batch_size", "time_steps"))
    if c["genes"] <= 0:
        raise ValueError(f"--genes must be a positive integer, got {c['genes']}")
    if c["width"] is not None and c["width"] < 1:
        raise ValueError(f"--width must be a positive integer, got {c['width']}")
    if c["width"] is not None and ARCHITECTURES[c["arch"]].width is None:
        raise ValueError(f"--width: {c['arch']} has no width option (vgg8 and resnet14 have one)")
    require_at_least(c, ("steps_per_epoch",), unset_allowed=True)
    require_at_least(c, ("eval_batches",), least=0, unset_allowed=True)
    require_at_least(c, ("report_batches",), unset_allowed=True)
    if not (math.isfinite(c["lr"]) and c["lr"] > 0):
        raise ValueError(f"--lr must be a positive number, got {c['lr']}")
    if not (math.isfinite(c["weight_decay"]) and c["weight_decay"] >= 0):
        raise ValueError(f"--weight-decay must be a number >= 0, got {c['weight_decay']}")
    if not 0.0 <= c["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must lie in [0, 1), got {c['val_fraction']}")
    if not 0 <= c["warmup_epochs"] <= c["epochs"]:
        raise ValueError(f"--warmup-epochs must lie in [0, epochs], got {c['warmup_epochs']}")
    if not (math.isfinite(c["noise_ratio"]) and c["noise_ratio"] >= 0):
        raise ValueError(f"--noise-ratio must be a number >= 0, got {c['noise_ratio']}")
    if c["schedule"] not in ("cosine", "constant"):
        raise ValueError(f"--schedule must be cosine or constant, got {c['schedule']!r}")
    if c["tf32"] and c["device"] != "gpu":
        raise ValueError("--tf32 needs --device gpu: TF32 is a mode of the GPU's tensor cores")
    if not c["genetic"] and (c["genome"] or c["from_dense"] or c["freeze_genes"]):
        raise ValueError("--dense cannot be combined with --genome, --from-dense or --freeze-genes")
    if c["start"] not in STARTS:
        raise ValueError(f"--start must be one of {', '.join(STARTS)}, got {c['start']!r}")


def default_out(config: dict) -> Path:
    kind = "dense" if not config["genetic"] else f"g{config['genes']}"
    return Path("runs") / f"train-{config['arch']}-{kind}-seed{config['seed']}"


# ---------------------------------------------------------------------------- data and schedule

def make_loaders(data: RunData, config: dict):
    """``(train_loader, eval_loader, eval_split, test_loader)``: the per-epoch log evaluates
    ``eval_loader``, a held-out part of train ("val") or, without one, the test split."""
    train_images, train_labels = data.train_images, data.train_labels
    eval_split, eval_data = "test", (data.test_images, data.test_labels)
    if config["val_fraction"] > 0:
        kept, held = split_validation(train_labels, config["val_fraction"], config["seed"])
        eval_split, eval_data = "val", (train_images[held], train_labels[held])
        train_images, train_labels = train_images[kept], train_labels[kept]
    batch, device = config["batch_size"], config["device"]
    train_loader = Loader(train_images, train_labels, batch, shuffle=True, augment=config["augment"],
                          seed=config["seed"], device=device, drop_last=len(train_labels) > batch)

    def evaluation_loader(images, labels):
        return Loader(images, labels, batch, shuffle=False, mean=train_loader.mean, std=train_loader.std,
                      device=device)

    return train_loader, evaluation_loader(*eval_data), eval_split, evaluation_loader(data.test_images,
                                                                                      data.test_labels)


def make_schedule(config, steps_per_epoch):
    """Cosine (with warmup) over all the run's updates, or None for a constant lr."""
    if config["schedule"] == "constant":
        return None
    return CosineSchedule(config["lr"], total_steps=config["epochs"] * steps_per_epoch,
                          warmup_steps=config["warmup_epochs"] * steps_per_epoch)


# ---------------------------------------------------------------------------- checkpoints and log

def save_run(out: Path, model, optimizer, meta) -> None:
    """OUT/checkpoint.h5, atomically: model and optimiser arrays, the run's meta data."""
    save_checkpoint(out / CHECKPOINT_NAME, {"model": model.state_dict(), "optimizer": optimizer.state_dict()}, meta)


def load_run(path: Path):
    """``(tensors, meta)`` of a checkpoint written by a training run (else a CheckpointError)."""
    tensors, meta = load_checkpoint(path)
    config = meta.get("config")
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT or "model" not in tensors \
            or not isinstance(meta.get("history"), list):
        raise CheckpointError(f"{path} is not a checkpoint written by python -m gee_ref.train")
    return tensors, meta


def check_resumable(saved: dict, config: dict, path, warn) -> None:
    """A resumed run keeps every setting of the checkpoint but those in RESUMABLE_CHANGES."""
    check_same_settings(saved, config, path, RESUMABLE_CHANGES, LATER_SETTINGS)
    if saved["epochs"] != config["epochs"] and config["schedule"] == "cosine":
        warn(f"warning: --epochs {config['epochs']} instead of the checkpoint's {saved['epochs']} stretches "
             f"the cosine schedule: the run will differ from an uninterrupted one")


def write_log(out: Path, history) -> None:
    """OUT/log.jsonl, one JSON line per finished epoch (rewritten whole, then renamed into place)."""
    atomic.write_text(out / LOG_NAME, "".join(json_line(record) for record in history), what="log")


# ---------------------------------------------------------------------------- from dense (eq. 6-8)

def compress_dense(config, genetic_model) -> None:
    """Fill ``genetic_model`` from the dense run checkpointed at ``config['from_dense']``:
    each genetic layer gets ``from_dense(W, g, G)`` of its dense twin's W (computed in
    float64); every other parameter and buffer (BN, biases, layers that stay dense) is copied."""
    tensors, meta = load_run(Path(config["from_dense"]))
    dense_config = meta["config"]
    if dense_config.get("genetic", True):
        raise ValueError(f"{config['from_dense']} holds a genetic network; --from-dense needs a --dense run's")
    for key in ("arch", "num_classes", "image_shape", "time_steps"):
        if dense_config.get(key) != config[key]:
            raise ValueError(f"{config['from_dense']} was trained with {key}={dense_config.get(key)!r}, "
                             f"this run has {key}={config[key]!r}")
    dense_model = build_from_config(config, genetic=False)
    dense_model.load_state_dict(tensors["model"])
    state = genetic_model.state_dict()
    for name, value in dense_model.state_dict().items():
        if name in state and state[name].shape == value.shape:
            state[name] = value
    genetic_model.load_state_dict(state)
    G = genetic_model.genes.G.data.astype("float64")
    for dense_layer, layer in zip(dense_model.weight_layers(), genetic_model.weight_layers()):
        if not hasattr(layer, "x_out"):
            continue  # a layer the genetic network keeps dense: copied above
        if not layer.owns_x_in:
            raise ValueError("--from-dense cannot fill chained encodings (eq. 3)")
        x_out, x_in = from_dense(dense_layer.w.data.astype("float64"), config["genes"], G)
        layer.x_out.data[...] = x_out
        layer.x_in.data[...] = x_in


# ---------------------------------------------------------------------------- the run

def start(config, out: Path, model, genome, resume: bool, test_loader, say):
    """Prepare the model (and optimiser state) for the first epoch still to run.

    Returns ``(history, extra, tensors)``: the finished epochs' log records, facts for the
    report (the accuracy before fine-tuning of ``from_dense``), and the checkpoint's arrays
    when resuming (else None).
    """
    path = out / CHECKPOINT_NAME
    if resume:
        if not path.exists():
            raise FileNotFoundError(f"--resume: there is no checkpoint at {path}")
        tensors, meta = load_run(path)
        check_resumable(meta["config"], config, path, say)
        if len(meta["history"]) > config["epochs"]:
            raise ValueError(f"cannot resume {path} with --epochs {config['epochs']}: it has already run "
                             f"{len(meta['history'])} epochs")
        model.load_state_dict(tensors["model"])
        return list(meta["history"]), dict(meta.get("extra", {})), tensors
    if path.exists():
        raise ValueError(f"{out} already holds a run: continue it with --resume, or choose another --out")
    extra = {}
    if genome is None and config["start"] == "paper":
        genome = starting_genome(model, "paper")  # sigma_l = 1, G = I (the calibrated start is the built model)
    if genome is not None:
        # encodings drawn on the host (then moved), so a genome gives the same network on any device
        apply_genome(model, genome, backend.rng(backend.derive_seed(config["seed"], "genome")))
    if config["from_dense"]:
        compress_dense(config, model)
        before = evaluate(model, test_loader, max_batches=config["report_batches"])
        extra["from_dense"] = {"checkpoint": config["from_dense"],
                               "test_accuracy_before_fine_tuning": before["accuracy"],
                               "test_loss_before_fine_tuning": before["loss"]}
        say(f"compressed from the dense run: test accuracy {before['accuracy']:.4f} before fine-tuning")
    return [], extra, None


def train_epochs(config, out, model, optimizer, loaders, history, extra, memory, progress,
                 on_divergence="error") -> None:
    """Run the epochs from ``len(history)`` to ``config['epochs']``: train, evaluate, checkpoint, log.

    A loss or gradient that turns NaN or infinite is, with ``on_divergence="error"``, a one-line
    error (the checkpoint keeps the last finished epoch); with ``"stop"`` the training stops
    there, the weights of the last finished epoch (or of the start) are put back, and
    ``extra["diverged"]`` records when: a result, as a diverged run is in an experiment.
    """
    if on_divergence not in DIVERGENCE_CHOICES:
        raise ValueError(f"on_divergence must be one of {', '.join(DIVERGENCE_CHOICES)}, got {on_divergence!r}")
    if "diverged" in extra:
        return  # a run that diverged before, resumed: nothing more to train
    train_loader, eval_loader, eval_split = loaders
    last_finite = model.state_dict()
    steps_per_epoch = min(config["steps_per_epoch"] or len(train_loader), len(train_loader))
    schedule = make_schedule(config, steps_per_epoch)
    started_run, first_epoch = time.perf_counter(), len(history)
    with Progress(config["epochs"], "epochs", "epoch", progress, every_seconds=math.inf) as shown:
        shown.update(first_epoch)
        for epoch in range(first_epoch, config["epochs"]):
            started = time.perf_counter()
            first_step = epoch * steps_per_epoch
            train_loader.set_epoch(epoch)
            trained = train_steps(model, train_loader, optimizer, steps=steps_per_epoch, epochs=1,
                                  schedule=schedule, start_step=first_step, progress=progress,
                                  description=f"epoch {epoch + 1}/{config['epochs']}")
            if trained["nonfinite"] and on_divergence == "stop":
                model.load_state_dict(last_finite)
                extra["diverged"] = {"epoch": epoch + 1, "loss": _finite_or_none(trained["loss"]),
                                     "weights": f"after epoch {epoch}" if epoch else "of the start"}
                save_run(out, model, optimizer, {"config": config, "history": history, "extra": extra})
                shown.write(f"epoch {epoch + 1}: the training loss or its gradient became {trained['loss']}: "
                            f"training stops, with the weights {extra['diverged']['weights']}")
                return
            if trained["nonfinite"]:
                raise ValueError(f"epoch {epoch + 1}: the training loss or its gradient became {trained['loss']}; "
                                 f"try a smaller --lr (the checkpoint holds epoch {epoch})")
            record = {"epoch": epoch + 1, "train_loss": trained["loss"], "train_accuracy": trained["accuracy"]}
            if config["eval_batches"] != 0:
                evaluated = evaluate(model, eval_loader, max_batches=config["eval_batches"])
                record.update({f"{eval_split}_loss": evaluated["loss"], f"{eval_split}_accuracy": evaluated["accuracy"],
                               f"{eval_split}_samples": evaluated["samples"]})
            memory.sample()
            record.update({"lr": schedule.lr_at(first_step) if schedule else config["lr"],
                           "seconds": time.perf_counter() - started,
                           "train_images_per_second": trained["samples"] / trained["seconds"]})
            history.append(record)
            save_run(out, model, optimizer, {"config": config, "history": history, "extra": extra})
            write_log(out, history)
            if on_divergence == "stop":
                last_finite = model.state_dict()
            left = (time.perf_counter() - started_run) / (epoch + 1 - first_epoch) * (config["epochs"] - epoch - 1)
            shown.update(1)
            shown.write(epoch_line(record, eval_split, config["epochs"], left))


def _finite_or_none(value):
    return float(value) if math.isfinite(value) else None


def epoch_line(record: dict, eval_split: str, epochs: int, left: float) -> str:
    """The one line a finished epoch leaves: step counts, losses, accuracy, speed, time left."""
    text = f"epoch {record['epoch']}/{epochs}: train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"
    if f"{eval_split}_accuracy" in record:
        text += f", {eval_split} loss {record[f'{eval_split}_loss']:.4f} acc {record[f'{eval_split}_accuracy']:.4f}"
    return (text + f", {record['train_images_per_second']:.1f} images/s, {record['seconds']:.1f} s"
            + f", {duration(left)} left")


def run_training(options: dict, data: RunData, out=None, resume: bool = False, progress: str = "off",
                 say=print, genome=None, on_divergence: str = "error") -> tuple:
    """Train (or resume) the run ``options`` describe into ``out``; returns ``(report, path)``.

    ``progress``: "bar", "lines" or "off" (``gee_ref.training.progress``); ``say`` prints the
    run's few messages (the command passes ``print``). ``genome``: the loaded genotype of
    ``options["genome"]`` when the caller has it already. ``on_divergence``: see ``train_epochs``.
    """
    if genome is None and options.get("genome"):
        genome = load_genome(options["genome"])
    config = resolve_config(options, data, genome)
    if config["tf32"]:
        backend.set_tf32(True)
    if options.get("arch") is None and genome is None:
        say(f"architecture: {config['arch']} (the default, whatever the data; --arch chooses another)")
    out = Path(out) if out is not None else default_out(config)
    train_loader, eval_loader, eval_split, test_loader = make_loaders(data, config)
    model = build_from_config(config)
    if config["freeze_genes"]:
        model.genes.G.requires_grad = False  # G stays as the genotype set it; the encodings train
    optimizer = make_optimizer(model, config["optimizer"], config["lr"], config["weight_decay"])
    with claimed(out):
        history, extra, tensors = start(config, out, model, genome, resume, test_loader, say)
        if tensors is not None:
            optimizer.load_state_dict(tensors["optimizer"])
        write_log(out, history)
        memory = PeakMemory(config["device"])
        train_epochs(config, out, model, optimizer, (train_loader, eval_loader, eval_split), history, extra,
                     memory, progress, on_divergence)
        report = run_report.final_report(config, model, test_loader, history, extra, memory)
        report["data_source"] = data.source
        write_json(out / REPORT_NAME, report, what="report")
    return report, out / REPORT_NAME
