"""``python -m gee_ref.train``: train a genetic spiking network (or its dense twin) and report.

    python -m gee_ref.train                                  # genetic digits net, embedded digits
    python -m gee_ref.train --arch cifarnet --genes 100 --data cifar10.h5 --device gpu
    python -m gee_ref.train --dense --out runs/dense         # the dense twin
    python -m gee_ref.train --from-dense runs/dense/checkpoint.h5 --out runs/compressed
    python -m gee_ref.train --genome best.h5                 # the evolution's best genotype
    python -m gee_ref.train ... --resume                     # continue a run from its checkpoint

Per epoch: a line in ``OUT/log.jsonl`` (epoch, train loss/accuracy, validation or test
loss/accuracy, learning rate, seconds) and ``OUT/checkpoint.h5``, written atomically.
``--resume`` continues from it exactly: the shuffle and augmentation of epoch e depend
only on (seed, e), the optimiser state and the step counter are in the checkpoint, so a
resumed run ends with the same weights as an uninterrupted one (on the same device).
At the end the report (``gee_ref.measure``) is printed and saved as ``OUT/report.json``.

``--from-dense CKPT`` starts from a trained dense twin's checkpoint: every dense weight
layer becomes its best rank-g genetic layer for the model's G (paper eq. 6-8,
``gee_ref.lowrank.from_dense``), the other parameters are copied; the accuracy before
fine-tuning is reported, then the network is fine-tuned for ``--epochs``.

Defaults by dataset (by image side; each is an option):

    ============  =====  ======  =====  ============  ===========================
    images        epochs  batch   lr    augment       notes
    ============  =====  ======  =====  ============  ===========================
    <= 16 px      40      32      0.1   no            the embedded 8x8 digits
    <= 64 px      200     128     0.1   crop + flip   CIFAR-10/100 (paper: 200 epochs)
    larger        100     64      0.1   crop + flip   ImageNet-like folders
    ============  =====  ======  =====  ============  ===========================

SGD: momentum 0.9, Nesterov, weight decay 5e-4 on weight matrices only
(``training.make_optimizer``); AdamW: lr 1e-3, weight decay 0.01. Cosine schedule to 0
over all epochs (``--schedule constant`` keeps the lr), no warmup unless ``--warmup-epochs``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

from gee_ref import backend
from gee_ref.cli_errors import ArgumentParser, run_main

CHECKPOINT_NAME = "checkpoint.h5"
LOG_NAME = "log.jsonl"
REPORT_NAME = "report.json"
RUN_FORMAT = "gee_ref-train-v1"

DATASET_DEFAULTS = {  # by image side: see the module docstring
    "digits": {"epochs": 40, "batch_size": 32, "augment": False},
    "cifar": {"epochs": 200, "batch_size": 128, "augment": True},
    "large": {"epochs": 100, "batch_size": 64, "augment": True},
}
OPTIMIZER_DEFAULTS = {"sgd": {"lr": 0.1, "weight_decay": 5e-4}, "adamw": {"lr": 1e-3, "weight_decay": 0.01}}
# Settings that may change when a run is resumed; every other one must match the checkpoint.
RESUMABLE_CHANGES = ("epochs", "device", "out", "progress")


# ---------------------------------------------------------------------------- command line

def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m gee_ref.train",
                            description="Train a genetic (or dense) spiking network and report "
                                        "accuracy, parameters, spikes, energy and robustness.")
    add = parser.add_argument
    add("--arch", default=None, help="architecture (default: digits, or the genome's)")
    add("--genes", type=int, default=None, help="number of genes g (default: the architecture's, or the genome's)")
    add("--dense", action="store_true", help="train the dense twin instead of the genetic network")
    add("--data", default=None, help="dataset HDF5 file (default: the embedded digits)")
    add("--epochs", type=int, default=None, help="epochs (default by dataset, see --help text)")
    add("--device", default="cpu", choices=backend.DEVICES)
    add("--genome", default=None, help="genotype HDF5 from the evolution: its sigmas and G")
    add("--from-dense", dest="from_dense", default=None, metavar="CKPT",
        help="compress this dense checkpoint into the genetic net (eq. 6-8), then fine-tune")
    add("--out", default=None, help="output folder (default runs/train-<arch>-<g|dense>-seed<seed>)")
    add("--resume", action="store_true", help="continue from OUT/checkpoint.h5")
    add("--batch-size", dest="batch_size", type=int, default=None)
    add("--lr", type=float, default=None, help="base learning rate (sgd 0.1, adamw 1e-3)")
    add("--optimizer", default="sgd", choices=sorted(OPTIMIZER_DEFAULTS))
    add("--weight-decay", dest="weight_decay", type=float, default=None, help="sgd 5e-4, adamw 0.01")
    add("--schedule", default="cosine", choices=("cosine", "constant"))
    add("--warmup-epochs", dest="warmup_epochs", type=int, default=0)
    add("--augment", default=None, action=argparse.BooleanOptionalAction, help="random crop + flip (default by dataset)")
    add("--time-steps", dest="time_steps", type=int, default=None, help="T (default 4, or the genome's)")
    add("--seed", type=int, default=0)
    add("--val-fraction", dest="val_fraction", type=float, default=0.0,
        help="hold out this fraction of train for the per-epoch log (default 0: log the test split)")
    add("--steps-per-epoch", dest="steps_per_epoch", type=int, default=None,
        help="cap the batches per epoch (quick runs)")
    add("--noise-ratio", dest="noise_ratio", type=float, default=0.5,
        help="relative norm of the report's Gaussian input noise (paper section 4.2: 0.5)")
    add("--progress", default=None, action=argparse.BooleanOptionalAction, help="tqdm bars (default: when stderr is a terminal)")
    return parser


def dataset_kind(image_side: int) -> str:
    return "digits" if image_side <= 16 else "cifar" if image_side <= 64 else "large"


def resolve_config(args, image_shape, classes, genome=None) -> dict:
    """The run's settings with every default filled in, checked; JSON-ready."""
    kind = dataset_kind(image_shape[0])
    arch = args.arch if args.arch is not None else (genome.arch if genome is not None else "digits")
    genes = args.genes if args.genes is not None else (int(genome.genes) if genome is not None else default_genes(arch))
    if genome is not None and (arch != genome.arch or genes != int(genome.genes)):
        raise ValueError(f"the genome is for --arch {genome.arch} --genes {genome.genes}, "
                         f"not --arch {arch} --genes {genes}")
    optimizer_defaults = OPTIMIZER_DEFAULTS[args.optimizer]
    genome_settings = genome.model_config if genome is not None else {}
    time_steps = args.time_steps if args.time_steps is not None else int(genome_settings.get("time_steps", 4))
    config = {
        "format": RUN_FORMAT,
        "arch": arch, "genetic": not args.dense, "genes": genes,
        "data": str(Path(args.data).resolve()) if args.data else "embedded digits",
        "num_classes": len(classes), "image_shape": list(image_shape),
        "epochs": args.epochs if args.epochs is not None else DATASET_DEFAULTS[kind]["epochs"],
        "batch_size": args.batch_size if args.batch_size is not None else DATASET_DEFAULTS[kind]["batch_size"],
        "optimizer": args.optimizer,
        "lr": args.lr if args.lr is not None else optimizer_defaults["lr"],
        "weight_decay": args.weight_decay if args.weight_decay is not None else optimizer_defaults["weight_decay"],
        "schedule": args.schedule, "warmup_epochs": args.warmup_epochs,
        "augment": args.augment if args.augment is not None else DATASET_DEFAULTS[kind]["augment"],
        "time_steps": time_steps, "seed": args.seed,
        "scope": genome_settings.get("scope"), "share_encodings": bool(genome_settings.get("share_encodings", False)), "val_fraction": args.val_fraction,
        "steps_per_epoch": args.steps_per_epoch, "device": args.device,
        "genome": str(Path(args.genome).resolve()) if args.genome else None,
        "from_dense": str(Path(args.from_dense).resolve()) if args.from_dense else None,
        "noise_ratio": args.noise_ratio,
    }
    _check_config(config)
    for key in ("num_classes", "time_steps"):
        if key in genome_settings and genome_settings[key] != config[key]:
            raise ValueError(f"the genome was made for {key}={genome_settings[key]}, this run has {config[key]}")
    return config


def default_genes(arch) -> int:
    """The architecture's default g (``gee_ref.models.ARCHITECTURES``); an unknown arch is a ValueError."""
    from gee_ref.models import ARCHITECTURES

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch].genes


def _check_config(c) -> None:
    for name in ("epochs", "batch_size", "time_steps"):
        if c[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {c[name]}")
    if c["genes"] <= 0:
        raise ValueError(f"--genes must be a positive integer, got {c['genes']}")
    if c["steps_per_epoch"] is not None and c["steps_per_epoch"] < 1:
        raise ValueError(f"--steps-per-epoch must be >= 1, got {c['steps_per_epoch']}")
    if not (math.isfinite(c["lr"]) and c["lr"] > 0):
        raise ValueError(f"--lr must be a positive number, got {c['lr']}")
    if not (math.isfinite(c["weight_decay"]) and c["weight_decay"] >= 0):
        raise ValueError(f"--weight-decay must be a number >= 0, got {c['weight_decay']}")
    if not 0.0 <= c["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must lie in [0, 1), got {c['val_fraction']}")
    if c["warmup_epochs"] < 0 or c["warmup_epochs"] > c["epochs"]:
        raise ValueError(f"--warmup-epochs must lie in [0, epochs], got {c['warmup_epochs']}")
    if not (math.isfinite(c["noise_ratio"]) and c["noise_ratio"] >= 0):
        raise ValueError(f"--noise-ratio must be a number >= 0, got {c['noise_ratio']}")
    if c["genetic"] is False and (c["genome"] or c["from_dense"]):
        raise ValueError("--dense cannot be combined with --genome or --from-dense")


# ---------------------------------------------------------------------------- data and model

def load_data(data_path, config):
    """``(train_loader, eval_loader, eval_split, test_loader)`` for the config."""
    from gee_ref.datasets import load_dataset, split_validation
    from gee_ref.loader import Loader

    train_images, train_labels, _ = load_dataset(data_path, "train")
    test_images, test_labels, _ = load_dataset(data_path, "test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"{data_path}: train images are {train_images.shape[1:]}, test images {test_images.shape[1:]}")
    eval_split, eval_data = "test", (test_images, test_labels)
    if config["val_fraction"] > 0:
        kept, held = split_validation(train_labels, config["val_fraction"], config["seed"])
        eval_split, eval_data = "val", (train_images[held], train_labels[held])
        train_images, train_labels = train_images[kept], train_labels[kept]
    batch, device = config["batch_size"], config["device"]
    train_loader = Loader(train_images, train_labels, batch, shuffle=True, augment=config["augment"],
                          seed=config["seed"], device=device, drop_last=len(train_labels) > batch)
    def evaluation(images, labels):
        return Loader(images, labels, batch, shuffle=False, augment=False, mean=train_loader.mean,
                      std=train_loader.std, device=device)
    return train_loader, evaluation(*eval_data), eval_split, evaluation(test_images, test_labels)


def build(config, genetic=None):
    """The configured network (genetic, or the dense twin with ``genetic=False``) on its device."""
    from gee_ref.models import build_model

    height, width, channels = config["image_shape"]
    model = build_model(config["arch"], genetic=config["genetic"] if genetic is None else genetic,
                        genes=config["genes"], num_classes=config["num_classes"], in_channels=channels,
                        image_size=height, time_steps=config["time_steps"], scope=config["scope"],
                        share_encodings=config["share_encodings"],
                        seed=backend.derive_seed(config["seed"], "init"), device=config["device"])
    return model


# ---------------------------------------------------------------------------- checkpoints

def save_run(out: Path, model, optimizer, meta) -> None:
    """OUT/checkpoint.h5 (atomic): the model, the optimiser, and the run's meta data."""
    from gee_ref.checkpoint import save_checkpoint

    tensors = {"model": _host(model.state_dict()), "optimizer": _host(optimizer.state_dict())}
    save_checkpoint(out / CHECKPOINT_NAME, tensors, meta)


def _host(state):
    return {k: backend.to_host(v) for k, v in state.items()}


def load_run(path: Path):
    """``(tensors, meta)`` of a train checkpoint, checked to be one."""
    from gee_ref.checkpoint import CheckpointError, load_checkpoint

    tensors, meta = load_checkpoint(path)
    if meta.get("config", {}).get("format") != RUN_FORMAT or "model" not in tensors:
        raise CheckpointError(f"{path} is not a checkpoint written by gee_ref.train")
    return tensors, meta


def check_resumable(saved: dict, config: dict, path) -> None:
    """A resumed run must keep every setting but those in RESUMABLE_CHANGES."""
    for key in sorted(set(saved) | set(config)):
        if key in RESUMABLE_CHANGES:
            continue
        if saved.get(key) != config.get(key):
            raise ValueError(f"cannot resume {path}: it was written with {key}={saved.get(key)!r}, "
                             f"this run has {key}={config.get(key)!r}")


def write_log(out: Path, history) -> None:
    """OUT/log.jsonl with one JSON line per finished epoch (rewritten whole, atomically)."""
    temporary = out / f".{LOG_NAME}.{os.getpid()}.tmp"
    temporary.write_text("".join(json.dumps(record) + "\n" for record in history))
    os.replace(temporary, out / LOG_NAME)


# ---------------------------------------------------------------------------- from dense

def compress_dense(config, genetic_model):
    """Load the dense twin from ``config['from_dense']`` and write its low-rank factors into
    ``genetic_model`` (eq. 6-8); non-weight parameters and buffers are copied by name."""
    from gee_ref.lowrank import from_dense

    tensors, meta = load_run(Path(config["from_dense"]))
    dense_config = dict(meta["config"])
    if dense_config.get("genetic", True):
        raise ValueError(f"{config['from_dense']} holds a genetic network; --from-dense needs a --dense run")
    for key in ("arch", "num_classes", "image_shape", "time_steps"):
        if dense_config.get(key) != config[key]:
            raise ValueError(f"{config['from_dense']} was trained with {key}={dense_config.get(key)!r}, "
                             f"this run has {key}={config[key]!r}")
    dense_model = build(config, genetic=False)
    dense_model.load_state_dict(tensors["model"])
    state = genetic_model.state_dict()
    for name, value in dense_model.state_dict().items():  # BN, biases, layers kept dense
        if name in state and tuple(state[name].shape) == tuple(value.shape):
            state[name] = value
    genetic_model.load_state_dict(state)
    G = genetic_model.genes.G.data
    for dense_layer, layer in zip(dense_model.weight_layers(), genetic_model.weight_layers()):
        if not hasattr(layer, "x_out"):
            continue  # a dense layer of the genetic net: copied above
        if not layer.owns_x_in:
            raise ValueError("--from-dense cannot fill chained encodings (eq. 3): build without share_encodings")
        w = backend.to_device(dense_layer.w.data, config["device"]).astype("float64")
        x_out, x_in = from_dense(w, config["genes"], G.astype("float64"))  # in float64, stored in float32
        layer.x_out.data[...] = x_out
        layer.x_in.data[...] = x_in


# ---------------------------------------------------------------------------- main

def main(argv=None):
    from gee_ref import measure, training
    from gee_ref.datasets import dataset_info, default_digits_path

    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    data_path = Path(args.data) if args.data else default_digits_path()
    info = dataset_info(data_path)
    genome = None
    if args.genome:
        from gee_ref.genome import load_genome
        genome = load_genome(args.genome)
    config = resolve_config(args, info.shapes["train"][1:], info.classes, genome)
    out = Path(args.out) if args.out else Path("runs") / (
        f"train-{config['arch']}-{'dense' if args.dense else 'g' + str(config['genes'])}-seed{config['seed']}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress

    train_loader, eval_loader, eval_split, test_loader = load_data(data_path, config)
    steps_per_epoch = min(config["steps_per_epoch"] or len(train_loader), len(train_loader))
    model = build(config)
    optimizer = training.make_optimizer(model, config["optimizer"], config["lr"], config["weight_decay"])
    schedule = make_schedule(config, steps_per_epoch)
    checkpoint_path = out / CHECKPOINT_NAME

    if args.resume:
        if not checkpoint_path.exists():
            raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
        tensors, meta = load_run(checkpoint_path)
        check_resumable(meta["config"], config, checkpoint_path)
        if meta["config"]["epochs"] != config["epochs"] and config["schedule"] == "cosine":
            print(f"warning: resuming with --epochs {config['epochs']} instead of {meta['config']['epochs']} "
                  f"stretches the cosine schedule: the result differs from an uninterrupted run",
                  file=sys.stderr)
        model.load_state_dict(tensors["model"])
        optimizer.load_state_dict(tensors["optimizer"])
        history, extra = list(meta["history"]), dict(meta.get("extra", {}))
    else:
        if checkpoint_path.exists():
            raise ValueError(f"{out} already holds a run: use --resume to continue it, or another --out")
        if genome is not None:
            from gee_ref.genome import apply_genome
            apply_genome(model, genome, backend.rng(backend.derive_seed(config["seed"], "genome"), config["device"]))
        history, extra = [], {}
        if config["from_dense"]:
            compress_dense(config, model)
            before = training.evaluate(model, test_loader)
            extra["from_dense"] = {"checkpoint": config["from_dense"], "test_accuracy_before_fine_tuning":
                                   before["accuracy"], "test_loss_before_fine_tuning": before["loss"]}
            print(f"from dense: test accuracy before fine-tuning {before['accuracy']:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    write_log(out, history)

    memory = measure.PeakMemory(config["device"])
    signal.signal(signal.SIGTERM, _interrupt)  # a killed run stops like Ctrl-C: last checkpoint intact
    epochs_bar = _epochs_bar(progress, len(history), config["epochs"])
    for epoch in range(len(history), config["epochs"]):
        train_loader.set_epoch(epoch)
        started = time.perf_counter()
        lr = schedule.lr_at(epoch * steps_per_epoch) if schedule else config["lr"]
        trained = training.train_steps(model, train_loader, optimizer, steps=steps_per_epoch, epochs=1,
                                       schedule=schedule, start_step=epoch * steps_per_epoch, progress=progress)
        if trained["nonfinite"]:
            raise ValueError(f"epoch {epoch + 1}: the training loss became {trained['loss']}; "
                             f"try a smaller --lr (the last checkpoint is of epoch {epoch})")
        evaluated = training.evaluate(model, eval_loader)
        memory.sample()
        history.append({"epoch": epoch + 1, "train_loss": trained["loss"], "train_accuracy": trained["accuracy"],
                        f"{eval_split}_loss": evaluated["loss"], f"{eval_split}_accuracy": evaluated["accuracy"],
                        "lr": lr, "seconds": time.perf_counter() - started,
                        "train_images_per_second": trained["samples"] / trained["seconds"]})
        save_run(out, model, optimizer, {"config": config, "history": history, "extra": extra})
        write_log(out, history)
        if epochs_bar is not None:
            epochs_bar.update(1)
            epochs_bar.set_postfix(loss=f"{trained['loss']:.4f}", **{eval_split: f"{evaluated['accuracy']:.4f}"})
    if epochs_bar is not None:
        epochs_bar.close()

    report = final_report(config, model, test_loader, history, extra, memory)
    (out / REPORT_NAME).write_text(json.dumps(report, indent=2) + "\n")
    print_report(report, out / REPORT_NAME)
    return 0


def make_schedule(config, steps_per_epoch):
    """The cosine schedule over all the run's updates, or None for a constant lr."""
    if config["schedule"] == "constant":
        return None
    from gee_ref.optim import CosineSchedule
    return CosineSchedule(config["lr"], total_steps=config["epochs"] * steps_per_epoch,
                          warmup_steps=config["warmup_epochs"] * steps_per_epoch)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _epochs_bar(progress, done, total):
    if not progress:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, initial=done, desc="epochs", unit="epoch", dynamic_ncols=True)


def final_report(config, model, test_loader, history, extra, memory) -> dict:
    """Everything ``gee_ref.measure`` measures, with the run's settings, as one JSON-ready dict."""
    from gee_ref import measure

    measured = measure.measure_model(model, test_loader, config["time_steps"], noise_ratio=config["noise_ratio"],
                                     noise_seed=backend.derive_seed(config["seed"], "noise"))
    counts = measure.twin_parameter_counts(lambda genetic: build({**config, "device": "cpu"}, genetic=genetic))
    counts["this_model"] = measure.count_parameters(model)
    counts["compression"] = counts["dense"] / counts["genetic"]
    train_seconds = sum(record["seconds"] for record in history)
    rates = [record["train_images_per_second"] for record in history]
    return {
        "config": config,
        "epochs_done": len(history),
        **measured,
        "parameters": counts,
        "train_seconds": train_seconds,
        "train_images_per_second": sum(rates) / len(rates) if rates else None,
        "peak_memory": memory.report(),
        **extra,
    }


def print_report(report, path) -> None:
    p = report["parameters"]
    lines = [
        f"test accuracy        {report['test_accuracy']:.4f}  (loss {report['test_loss']:.4f}, "
        f"{report['test_samples']} images)",
        f"parameters           this model {p['this_model']:,}  (dense {p['dense']:,}, genetic {p['genetic']:,}, "
        f"x{p['compression']:.2f})",
        f"spikes per sample    {report['spikes_per_sample']:.1f}",
        "firing rates         " + ", ".join(f"{k} {v:.4f}" for k, v in report["firing_rates"].items()),
        f"energy (eq. 17)      {report['energy']['millijoules']:.6f} mJ per sample",
        f"noisy accuracy       {report['noise']['accuracy']:.4f}  (noise norm {report['noise']['ratio']:.0%} "
        f"of the input's)",
        f"inference            {report['inference_images_per_second']:.1f} images/s",
        f"peak memory          {report['peak_memory']['mebibytes']:.1f} MiB ({report['peak_memory']['what']})",
        f"report               {path}",
    ]
    if "from_dense" in report:
        lines.insert(1, f"before fine-tuning   {report['from_dense']['test_accuracy_before_fine_tuning']:.4f} "
                        f"(compressed from {report['from_dense']['checkpoint']})")
    print("\n".join(lines))


if __name__ == "__main__":
    run_main(main)
