"""``python -m gee_ref.train``: train a genetic spiking network (or its dense twin) and report.

    python -m gee_ref.train                                  # genetic digits net, embedded digits
    python -m gee_ref.train --arch cifarnet --genes 100 --data cifar10.h5 --device gpu
    python -m gee_ref.train --dense --out runs/dense         # the dense twin
    python -m gee_ref.train --from-dense runs/dense/checkpoint.h5 --out runs/compressed
    python -m gee_ref.train --genome best_genome.h5          # the evolution's best genotype (eq. 9)
    python -m gee_ref.train ... --resume                     # continue a stopped run

Every epoch appends a line to ``OUT/log.jsonl`` (epoch, train loss and accuracy, validation
or test loss and accuracy, learning rate, seconds) and rewrites ``OUT/checkpoint.h5``
atomically (``gee_ref.storage.checkpoint``): a run stopped at any moment keeps its last complete
checkpoint. ``--resume`` continues from it exactly: epoch e's shuffle and augmentation depend
only on (seed, e), and the weights, BN statistics, optimiser state and epoch count are in
the checkpoint, so the resumed run ends with the same weights as an uninterrupted one (same
device). At the end the report (``gee_ref.measure.summary``) is printed and saved as ``OUT/report.json``.

``--from-dense CKPT`` starts from a trained dense twin's checkpoint: every dense weight
layer becomes its best rank-g genetic layer for the network's G (paper eq. 6-8,
``gee_ref.init.lowrank.from_dense``) and every other parameter and buffer is copied; the test
accuracy before fine-tuning is reported, then the network is fine-tuned for ``--epochs``.

Defaults by dataset, chosen by the image side (each one is an option):

    =========  ======  =====  ===========  ==========================================
    images     epochs  batch  augment      for
    =========  ======  =====  ===========  ==========================================
    <= 16 px   20      32     none         the embedded 8x8 digits
    <= 64 px   200     128    crop + flip  CIFAR-10/100 (the paper trains 200 epochs)
    larger     100     64     crop + flip  ImageNet-like folders
    =========  ======  =====  ===========  ==========================================

SGD (default): lr 0.1, momentum 0.9, Nesterov, weight decay 5e-4 on the weight matrices
only (``training.make_optimizer``); AdamW: lr 1e-3, weight decay 0.01. The learning rate
follows a cosine from lr to 0 over all the run's steps (``--schedule constant`` keeps it),
after ``--warmup-epochs`` of linear warmup (default 0). T = 4 time steps.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

from gee_ref import backend
from gee_ref.storage import atomic
from gee_ref.cli.errors import ArgumentParser, run_main

CHECKPOINT_NAME = "checkpoint.h5"
LOG_NAME = "log.jsonl"
REPORT_NAME = "report.json"
RUN_FORMAT = "gee_ref-train-v1"
EMBEDDED_DIGITS = "embedded digits"

DATASET_DEFAULTS = {  # by image side, see the module docstring
    "digits": {"epochs": 20, "batch_size": 32, "augment": False},
    "cifar": {"epochs": 200, "batch_size": 128, "augment": True},
    "large": {"epochs": 100, "batch_size": 64, "augment": True},
}
OPTIMIZER_DEFAULTS = {"sgd": {"lr": 0.1, "weight_decay": 5e-4}, "adamw": {"lr": 1e-3, "weight_decay": 0.01}}
DEFAULT_TIME_STEPS = 4
# Settings a resumed run may change; every other one must equal the checkpoint's.
RESUMABLE_CHANGES = ("epochs", "device", "tf32")
# Settings added after the first checkpoints were written: a checkpoint without one had this value.
LATER_SETTINGS = {"tf32": False, "width": None}


# ---------------------------------------------------------------------------- command line

def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m gee_ref.train",
                            description="Train a genetic (or dense) spiking network, then report its accuracy, "
                                        "parameters, spikes, energy (eq. 17) and accuracy under noise.")
    add = parser.add_argument
    add("--arch", default=None, help="architecture (default: digits, or the genome's)")
    add("--genes", type=int, default=None, help="number of genes g (default: the architecture's, or the genome's)")
    add("--dense", action="store_true", help="train the dense twin instead of the genetic network")
    add("--data", default=None, help="dataset HDF5 file (default: the embedded digits)")
    add("--epochs", type=int, default=None, help="epochs (default by dataset, see the module docstring)")
    add("--device", default="cpu", choices=backend.DEVICES)
    add("--tf32", action="store_true",
        help="GPU only: float32 matrix products on TF32 tensor cores (faster, 10-bit mantissa; off by default)")
    add("--genome", default=None, help="a genotype file from the evolution: its G and sigmas (eq. 9)")
    add("--from-dense", dest="from_dense", default=None, metavar="CKPT",
        help="compress this dense run's checkpoint into the genetic net (eq. 6-8), then fine-tune")
    add("--out", default=None, help="output folder (default runs/train-<arch>-<g<genes>|dense>-seed<seed>)")
    add("--resume", action="store_true", help="continue the run saved in OUT/checkpoint.h5")
    add("--batch-size", dest="batch_size", type=int, default=None, help="default by dataset")
    add("--lr", type=float, default=None, help="base learning rate (sgd 0.1, adamw 1e-3)")
    add("--optimizer", default="sgd", choices=sorted(OPTIMIZER_DEFAULTS))
    add("--weight-decay", dest="weight_decay", type=float, default=None, help="sgd 5e-4, adamw 0.01")
    add("--schedule", default="cosine", choices=("cosine", "constant"))
    add("--warmup-epochs", dest="warmup_epochs", type=int, default=0)
    add("--augment", default=None, action=argparse.BooleanOptionalAction,
        help="random crop and flip (default by dataset)")
    add("--time-steps", dest="time_steps", type=int, default=None, help="T (default 4, or the genome's)")
    add("--seed", type=int, default=0)
    add("--val-fraction", dest="val_fraction", type=float, default=0.0,
        help="hold out this fraction of train for the per-epoch log (default 0: the log shows the test split)")
    add("--steps-per-epoch", dest="steps_per_epoch", type=int, default=None,
        help="cap the batches per epoch (quick runs)")
    add("--noise-ratio", dest="noise_ratio", type=float, default=0.5,
        help="noise norm / input norm for the robustness test (paper section 4.2: 0.5)")
    add("--progress", default=None, action=argparse.BooleanOptionalAction,
        help="tqdm bars (default: when stderr is a terminal)")
    return parser


def dataset_kind(image_side: int) -> str:
    return "digits" if image_side <= 16 else "cifar" if image_side <= 64 else "large"


def default_genes(arch) -> int:
    """The architecture's default g; an unknown architecture is a ValueError."""
    from gee_ref.models import ARCHITECTURES

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[arch].genes


def _pick(value, default):
    return default if value is None else value


def resolve_config(args, image_shape, classes, genome=None) -> dict:
    """The run's settings, every default filled in and checked (JSON-ready, kept in checkpoints)."""
    height, width, channels = image_shape
    if height != width:
        raise ValueError(f"the models take square images, the dataset's are {height}x{width}")
    kind = dataset_kind(height)
    made_for = genome.model_config if genome is not None else {}
    arch = _pick(args.arch, genome.arch if genome is not None else "digits")
    genes = _pick(args.genes, int(genome.genes) if genome is not None else default_genes(arch))
    if genome is not None and (arch, genes) != (genome.arch, int(genome.genes)):
        raise ValueError(f"the genome is for --arch {genome.arch} --genes {genome.genes}, "
                         f"not --arch {arch} --genes {genes}")
    optimizer = OPTIMIZER_DEFAULTS[args.optimizer]
    config = {
        "format": RUN_FORMAT,
        "arch": arch, "genetic": not args.dense, "genes": genes,
        "data": str(Path(args.data).resolve()) if args.data else EMBEDDED_DIGITS,
        "num_classes": len(classes), "image_shape": [height, width, channels],
        "epochs": _pick(args.epochs, DATASET_DEFAULTS[kind]["epochs"]),
        "batch_size": _pick(args.batch_size, DATASET_DEFAULTS[kind]["batch_size"]),
        "optimizer": args.optimizer,
        "lr": _pick(args.lr, optimizer["lr"]),
        "weight_decay": _pick(args.weight_decay, optimizer["weight_decay"]),
        "schedule": args.schedule, "warmup_epochs": args.warmup_epochs,
        "augment": _pick(args.augment, DATASET_DEFAULTS[kind]["augment"]),
        "time_steps": _pick(args.time_steps, int(made_for.get("time_steps", DEFAULT_TIME_STEPS))),
        "scope": made_for.get("scope"), "share_encodings": bool(made_for.get("share_encodings", False)),
        "width": made_for.get("width"),
        "seed": args.seed, "val_fraction": args.val_fraction, "steps_per_epoch": args.steps_per_epoch,
        "device": args.device, "tf32": args.tf32, "noise_ratio": args.noise_ratio,
        "genome": str(Path(args.genome).resolve()) if args.genome else None,
        "from_dense": str(Path(args.from_dense).resolve()) if args.from_dense else None,
    }
    _check_config(config)
    for key, value in (("num_classes", len(classes)), ("in_channels", channels), ("image_size", height),
                       ("time_steps", config["time_steps"])):
        if key in made_for and made_for[key] != value:
            raise ValueError(f"the genome was made for {key}={made_for[key]}, this run has {key}={value}")
    return config


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
    if not 0 <= c["warmup_epochs"] <= c["epochs"]:
        raise ValueError(f"--warmup-epochs must lie in [0, epochs], got {c['warmup_epochs']}")
    if not (math.isfinite(c["noise_ratio"]) and c["noise_ratio"] >= 0):
        raise ValueError(f"--noise-ratio must be a number >= 0, got {c['noise_ratio']}")
    if c["tf32"] and c["device"] != "gpu":
        raise ValueError("--tf32 needs --device gpu: TF32 is a mode of the GPU's tensor cores")
    if not c["genetic"] and (c["genome"] or c["from_dense"]):
        raise ValueError("--dense cannot be combined with --genome or --from-dense")


# ---------------------------------------------------------------------------- data and model

def read_splits(data_path):
    """``(train_images, train_labels, test_images, test_labels, classes)``, every array checked
    (``gee_ref.data.datasets``: shapes, dtypes, label range, NaN pixels)."""
    from gee_ref.data.datasets import load_dataset

    train_images, train_labels, classes = load_dataset(data_path, "train")
    test_images, test_labels, _ = load_dataset(data_path, "test")
    if train_images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"{data_path}: train images are {train_images.shape[1:]}, test images {test_images.shape[1:]}")
    return train_images, train_labels, test_images, test_labels, classes


def make_loaders(splits, config):
    """``(train_loader, eval_loader, eval_split, test_loader)``: the per-epoch log evaluates
    ``eval_loader``, a held-out part of train ("val") or, without one, the test split."""
    from gee_ref.data.datasets import split_validation
    from gee_ref.data.loader import Loader

    train_images, train_labels, test_images, test_labels, _ = splits
    eval_split, eval_data = "test", (test_images, test_labels)
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

    return train_loader, evaluation_loader(*eval_data), eval_split, evaluation_loader(test_images, test_labels)


def build(config, genetic=None):
    """The configured network on its device: genetic, or the dense twin with ``genetic=False``.

    ``config`` needs arch, genetic, genes, num_classes, image_shape, time_steps, seed, device
    (and optionally scope, share_encodings, width); the weights are drawn from the run's seed.
    """
    from gee_ref.models import build_model

    height, _, channels = config["image_shape"]
    options = {} if config.get("width") is None else {"width": config["width"]}
    return build_model(config["arch"], genetic=config["genetic"] if genetic is None else genetic,
                       genes=config["genes"], num_classes=config["num_classes"], in_channels=channels,
                       image_size=height, time_steps=config["time_steps"], scope=config.get("scope"),
                       share_encodings=config.get("share_encodings", False),
                       seed=backend.derive_seed(config["seed"], "init"), device=config["device"], **options)


def make_schedule(config, steps_per_epoch):
    """Cosine (with warmup) over all the run's updates, or None for a constant lr."""
    if config["schedule"] == "constant":
        return None
    from gee_ref.optim import CosineSchedule

    return CosineSchedule(config["lr"], total_steps=config["epochs"] * steps_per_epoch,
                          warmup_steps=config["warmup_epochs"] * steps_per_epoch)


# ---------------------------------------------------------------------------- checkpoints and log

def save_run(out: Path, model, optimizer, meta) -> None:
    """OUT/checkpoint.h5, atomically: model and optimiser arrays, the run's meta data."""
    from gee_ref.storage.checkpoint import save_checkpoint

    save_checkpoint(out / CHECKPOINT_NAME, {"model": model.state_dict(), "optimizer": optimizer.state_dict()}, meta)


def load_run(path: Path):
    """``(tensors, meta)`` of a checkpoint written by this command (else a CheckpointError)."""
    from gee_ref.storage.checkpoint import CheckpointError, load_checkpoint

    tensors, meta = load_checkpoint(path)
    config = meta.get("config")
    if not isinstance(config, dict) or config.get("format") != RUN_FORMAT or "model" not in tensors \
            or not isinstance(meta.get("history"), list):
        raise CheckpointError(f"{path} is not a checkpoint written by python -m gee_ref.train")
    return tensors, meta


def check_same_settings(saved: dict, config: dict, path, may_change, later_settings) -> None:
    """ValueError unless a resumed run has the saved settings, but for those in ``may_change``;
    a setting missing from an older save (``later_settings``) had its default there."""
    saved = {**later_settings, **saved}
    for key in sorted(set(saved) | set(config)):
        if key not in may_change and saved.get(key) != config.get(key):
            raise ValueError(f"cannot resume {path}: it was written with {key}={saved.get(key)!r}, "
                             f"this run has {key}={config.get(key)!r}")


def check_resumable(saved: dict, config: dict, path) -> None:
    """A resumed run keeps every setting of the checkpoint but those in RESUMABLE_CHANGES."""
    check_same_settings(saved, config, path, RESUMABLE_CHANGES, LATER_SETTINGS)
    if saved["epochs"] != config["epochs"] and config["schedule"] == "cosine":
        print(f"warning: --epochs {config['epochs']} instead of the checkpoint's {saved['epochs']} stretches "
              f"the cosine schedule: the run will differ from an uninterrupted one", file=sys.stderr)


def write_log(out: Path, history) -> None:
    """OUT/log.jsonl, one JSON line per finished epoch (rewritten whole, then renamed into place)."""
    atomic.write_text(out / LOG_NAME, "".join(json.dumps(record) + "\n" for record in history))


# ---------------------------------------------------------------------------- from dense (eq. 6-8)

def compress_dense(config, genetic_model) -> None:
    """Fill ``genetic_model`` from the dense run checkpointed at ``config['from_dense']``:
    each genetic layer gets ``from_dense(W, g, G)`` of its dense twin's W (computed in
    float64); every other parameter and buffer (BN, biases, layers that stay dense) is copied."""
    from gee_ref.init.lowrank import from_dense

    tensors, meta = load_run(Path(config["from_dense"]))
    dense_config = meta["config"]
    if dense_config.get("genetic", True):
        raise ValueError(f"{config['from_dense']} holds a genetic network; --from-dense needs a --dense run's")
    for key in ("arch", "num_classes", "image_shape", "time_steps"):
        if dense_config.get(key) != config[key]:
            raise ValueError(f"{config['from_dense']} was trained with {key}={dense_config.get(key)!r}, "
                             f"this run has {key}={config[key]!r}")
    dense_model = build(config, genetic=False)
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

def start(config, out: Path, model, genome, resume: bool, test_loader):
    """Prepare the model (and optimiser state) for the first epoch still to run.

    Returns ``(history, extra, tensors)``: the finished epochs' log records, facts for the
    report (the accuracy before fine-tuning of ``--from-dense``), and the checkpoint's
    arrays when resuming (else None).
    """
    from gee_ref.training import loop as training

    path = out / CHECKPOINT_NAME
    if resume:
        if not path.exists():
            raise FileNotFoundError(f"--resume: there is no checkpoint at {path}")
        tensors, meta = load_run(path)
        check_resumable(meta["config"], config, path)
        model.load_state_dict(tensors["model"])
        return list(meta["history"]), dict(meta.get("extra", {})), tensors
    if path.exists():
        raise ValueError(f"{out} already holds a run: continue it with --resume, or choose another --out")
    extra = {}
    if genome is not None:
        from gee_ref.evolution.genome import apply_genome
        # encodings drawn on the host (then moved), so a genome gives the same network on any device
        apply_genome(model, genome, backend.rng(backend.derive_seed(config["seed"], "genome")))
    if config["from_dense"]:
        compress_dense(config, model)
        before = training.evaluate(model, test_loader)
        extra["from_dense"] = {"checkpoint": config["from_dense"],
                               "test_accuracy_before_fine_tuning": before["accuracy"],
                               "test_loss_before_fine_tuning": before["loss"]}
        print(f"compressed from the dense run: test accuracy {before['accuracy']:.4f} before fine-tuning")
    return [], extra, None


def train_epochs(config, out, model, optimizer, loaders, history, extra, memory, progress) -> None:
    """Run the epochs from ``len(history)`` to ``config['epochs']``: train, evaluate, checkpoint, log."""
    from gee_ref.training import loop as training

    train_loader, eval_loader, eval_split = loaders
    steps_per_epoch = min(config["steps_per_epoch"] or len(train_loader), len(train_loader))
    schedule = make_schedule(config, steps_per_epoch)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=config["epochs"], initial=len(history), desc="epochs", unit="epoch", dynamic_ncols=True)
    for epoch in range(len(history), config["epochs"]):
        started = time.perf_counter()
        first_step = epoch * steps_per_epoch
        train_loader.set_epoch(epoch)
        trained = training.train_steps(model, train_loader, optimizer, steps=steps_per_epoch, epochs=1,
                                       schedule=schedule, start_step=first_step, progress=progress)
        if trained["nonfinite"]:
            raise ValueError(f"epoch {epoch + 1}: the training loss or its gradient became {trained['loss']}; "
                             f"try a smaller --lr (the checkpoint holds epoch {epoch})")
        evaluated = training.evaluate(model, eval_loader)
        memory.sample()
        history.append({"epoch": epoch + 1, "train_loss": trained["loss"], "train_accuracy": trained["accuracy"],
                        f"{eval_split}_loss": evaluated["loss"], f"{eval_split}_accuracy": evaluated["accuracy"],
                        "lr": schedule.lr_at(first_step) if schedule else config["lr"],
                        "seconds": time.perf_counter() - started,
                        "train_images_per_second": trained["samples"] / trained["seconds"]})
        save_run(out, model, optimizer, {"config": config, "history": history, "extra": extra})
        write_log(out, history)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{trained['loss']:.4f}", **{eval_split: f"{evaluated['accuracy']:.4f}"})
    if bar is not None:
        bar.close()


def final_report(config, model, test_loader, history, extra, memory) -> dict:
    """Everything ``gee_ref.measure.summary`` measures on the test split, with the run's settings."""
    from gee_ref.measure import summary as measure

    measured = measure.measure_model(model, test_loader, config["time_steps"], noise_ratio=config["noise_ratio"],
                                     noise_seed=backend.derive_seed(config["seed"], "noise"))
    counts = measure.twin_parameter_counts(lambda genetic: build({**config, "device": "cpu"}, genetic=genetic))
    counts["this_model"] = measure.count_parameters(model)
    counts["compression"] = counts["dense"] / counts["genetic"]
    rates = [record["train_images_per_second"] for record in history]
    return {"config": config, "epochs_done": len(history), **measured, "parameters": counts,
            "train_seconds": sum(record["seconds"] for record in history),
            "train_images_per_second": sum(rates) / len(rates) if rates else None,
            "peak_memory": memory.report(), **extra}


def print_report(report, path) -> None:
    p, memory = report["parameters"], report["peak_memory"]
    lines = [
        f"test accuracy      {report['test_accuracy']:.4f}  (loss {report['test_loss']:.4f}, "
        f"{report['test_samples']} images)",
        f"parameters         {p['this_model']:,}  (dense twin {p['dense']:,}, genetic {p['genetic']:,}: "
        f"{p['compression']:.2f}x fewer)",
        f"spikes per sample  {report['spikes_per_sample']:.1f}",
        "firing rates       " + ", ".join(f"{name} {rate:.4f}" for name, rate in report["firing_rates"].items()),
        f"energy (eq. 17)    {report['energy']['millijoules']:.6g} mJ per image",
        f"under noise        accuracy {report['noise']['accuracy']:.4f} (noise norm {report['noise']['ratio']:.0%} "
        f"of each input's)",
        f"throughput         {report['inference_images_per_second']:.1f} images/s inference",
        f"peak memory        {memory['mebibytes']:.1f} MiB: {memory['what']}",
        f"report             {path}",
    ]
    if "from_dense" in report:
        lines.insert(1, f"before fine-tuning {report['from_dense']['test_accuracy_before_fine_tuning']:.4f}  "
                        f"(compressed from {report['from_dense']['checkpoint']})")
    print("\n".join(lines))


def main(argv=None):
    from gee_ref.measure import summary as measure
    from gee_ref.training import loop as training
    from gee_ref.data.datasets import default_digits_path

    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    splits = read_splits(Path(args.data) if args.data else default_digits_path())
    genome = None
    if args.genome:
        from gee_ref.evolution.genome import load_genome
        genome = load_genome(args.genome)
    config = resolve_config(args, splits[0].shape[1:], splits[4], genome)
    if config["tf32"]:
        backend.set_tf32(True)
    out = Path(args.out) if args.out else Path("runs") / (
        f"train-{config['arch']}-{'dense' if args.dense else 'g' + str(config['genes'])}-seed{config['seed']}")
    progress = sys.stderr.isatty() if args.progress is None else args.progress

    train_loader, eval_loader, eval_split, test_loader = make_loaders(splits, config)
    model = build(config)
    optimizer = training.make_optimizer(model, config["optimizer"], config["lr"], config["weight_decay"])
    history, extra, tensors = start(config, out, model, genome, args.resume, test_loader)
    if tensors is not None:
        optimizer.load_state_dict(tensors["optimizer"])
    out.mkdir(parents=True, exist_ok=True)
    write_log(out, history)

    memory = measure.PeakMemory(config["device"])
    with _sigterm_as_interrupt():
        train_epochs(config, out, model, optimizer, (train_loader, eval_loader, eval_split), history, extra,
                     memory, progress)
    report = final_report(config, model, test_loader, history, extra, memory)
    atomic.write_text(out / REPORT_NAME, json.dumps(report, indent=2) + "\n")
    print_report(report, out / REPORT_NAME)
    return 0


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Inside the block, ``kill`` (SIGTERM) stops the run as Ctrl-C does (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    run_main(main)
