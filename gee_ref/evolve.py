"""``python -m gee_ref.evolve``: the whole GEE method (paper section 3.2, Algorithm 1).

    python -m gee_ref.evolve                          # digits net, embedded digits, CPU, minutes
    python -m gee_ref.evolve --device gpu             # the same on CuPy
    python -m gee_ref.evolve --arch cifarnet --data cifar10.h5 --genes 100 --device gpu
    python -m gee_ref.evolve --executor dask --workers 4          # a LocalCluster
    python -m gee_ref.evolve --executor dask --dask-scheduler tcp://host:8786
    python -m gee_ref.evolve --executor batched       # a generation trained at once (gee_ref.evolution.population)
    python -m gee_ref.evolve --out runs/x --resume    # continue a stopped run (same options)
    python -m gee_ref.evolve --ablation --seeds 3     # paper Table 4: five variants x seeds

1. The genotype x = [log sigma_1..L, vec(G)] (eq. 9, ``gee_ref.evolution.genome``) starts at G = I and
   Kaiming-matching sigmas; a CMA-ES (eq. 10-12, ``gee_ref.cmaes``) searches it for
   ``--generations`` generations of ``--popsize`` individuals.
2. Each individual is built, trained briefly and scored by the dynamic fitness (eq. 16) on
   a validation split held out from the training split (``gee_ref.evolution.individual``). The
   population goes through an executor (``gee_ref.evolution.executors``): in this process, or on Dask,
   or stacked and trained all at once (``--executor batched``).
3. The best genotype is trained fully by ``gee_ref.train`` (the same code and report as
   ``python -m gee_ref.train --genome``) and tested.

Files in ``--out`` (default ``runs/evolve-<arch>-g<genes>-<variant>-seed<seed>``): config.json
(the settings), the evolution's log.jsonl, checkpoint.h5, cmaes-<k>.h5 and best_genome.h5
(``gee_ref.evolution.search``), final/ (``train``'s folder for the best genotype, with report.json)
and summary.json (best genotype, final test accuracy, times). ``--resume`` continues a run
stopped at any point (even by SIGKILL) into the same log and the same best genotype.

Choices of gee_ref (reconstruction, the paper does not say them): the selection of the best
and the CMA-ES variant are described in ``gee_ref.evolution.search``; eq. 16's alpha = beta = 1
(R_T and R_S lie in [0, 1]); the CMA-ES starts with sigma_0 = ``--sigma0`` = 0.1 on every
coordinate (10% on every sigma_l, +-0.1 on every entry of G = I); the defaults of the budget
depend on the dataset (``EVOLVE_DEFAULTS``).
"""
from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from pathlib import Path

from gee_ref import backend
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.evolution.search import (AUTO_DIAGONAL_ABOVE, BEST_GENOME_NAME, LOG_NAME, Evolution, data_path,
                               read_log, write_json_atomic)

RUN_FORMAT = "gee_ref-evolve-v1"
CONFIG_NAME, SUMMARY_NAME, FINAL_DIR = "config.json", "summary.json", "final"
CMAES_MODES = ("auto", "full", "diagonal")
SELECT_MODES = ("loss", "fitness")
# Settings that a resumed run may change; any other must match the run's config.json.
RESUMABLE_CHANGES = ("executor", "dask_scheduler", "workers", "progress")
# Settings added after the first runs were written: a config.json without one had this value.
LATER_SETTINGS = {"tf32": False}

# Defaults by dataset kind (``train.dataset_kind``, by image side); each is an option. The
# digits budget is sized so that the no-option run ends in a few minutes on two CPU cores;
# the CIFAR/ImageNet ones follow the paper's scale (section 4.4: five generations, and the
# final training of train's defaults, 200 epochs for CIFAR).
EVOLVE_DEFAULTS = {
    "digits": {"generations": 5, "popsize": 8, "eval_steps": 20, "eval_epochs": None,
               "final_epochs": 10},
    "cifar": {"generations": 5, "popsize": 10, "eval_steps": None, "eval_epochs": 1,
              "final_epochs": 200},
    "large": {"generations": 5, "popsize": 10, "eval_steps": None, "eval_epochs": 1,
              "final_epochs": 100},
}
# eq. 16's constants (reconstruction: the paper gives no values). R_T and R_S both lie in
# [0, 1], so with unit weights each moves F by at most lambda(gen).
DEFAULT_ALPHA, DEFAULT_BETA = 1.0, 1.0
DIGITS_NET_GENES = 16  # g of the digits net (n = 4 + 256); other architectures: their own default
COMMON_DEFAULTS = {"arch": "digits", "eval_lr": 0.1, "val_fraction": 0.2, "sigma0": 0.1}


# ---------------------------------------------------------------------------- command line

def build_parser() -> ArgumentParser:
    from gee_ref.evolution.fitness import VARIANTS

    parser = ArgumentParser(prog="python -m gee_ref.evolve",
                            description="Evolve the genetic encoding of a spiking network (GEE), "
                                        "train the best genotype and report.")
    add = parser.add_argument
    kinds = EVOLVE_DEFAULTS
    add("--arch", default=COMMON_DEFAULTS["arch"], help="architecture (default digits)")
    add("--data", default=None, help="dataset HDF5 file (default: the embedded digits)")
    add("--genes", type=int, default=None,
        help=f"number of genes g (default {DIGITS_NET_GENES} for the digits net, else the architecture's)")
    add("--generations", type=int, default=None,
        help=f"default {kinds['cifar']['generations']}, as the paper's section 4.4 (digits too)")
    add("--popsize", type=int, default=None,
        help=f"lambda (default {kinds['digits']['popsize']} on digits, {kinds['cifar']['popsize']} else; "
             f"0: the CMA-ES default 4 + 3 ln n)")
    add("--eval-steps", dest="eval_steps", type=int, default=None,
        help=f"training updates per individual (default {kinds['digits']['eval_steps']} on digits)")
    add("--eval-epochs", dest="eval_epochs", type=int, default=None,
        help=f"training epochs per individual, instead of --eval-steps (default {kinds['cifar']['eval_epochs']} "
             f"beyond digits)")
    add("--eval-lr", dest="eval_lr", type=float, default=COMMON_DEFAULTS["eval_lr"], help="lr of the short training")
    add("--batch-size", dest="batch_size", type=int, default=None, help="default: train's for the dataset")
    add("--val-fraction", dest="val_fraction", type=float, default=COMMON_DEFAULTS["val_fraction"],
        help="fraction of the training split held out to score individuals")
    add("--time-steps", dest="time_steps", type=int, default=4)
    add("--alpha", type=float, default=None, help=f"weight of R_T in eq. 16 (default {DEFAULT_ALPHA})")
    add("--beta", type=float, default=None, help=f"weight of R_S in eq. 16 (default {DEFAULT_BETA})")
    add("--variant", default="ste", choices=list(VARIANTS), help="fitness variant (paper Table 4)")
    add("--sigma0", type=float, default=COMMON_DEFAULTS["sigma0"], help="CMA-ES initial step size")
    add("--cmaes", default="auto", choices=CMAES_MODES,
        help=f"full or separable covariance; auto: diagonal above n = {AUTO_DIAGONAL_ABOVE}")
    add("--select", default="loss", choices=SELECT_MODES, help="how the best genotype is chosen")
    add("--seed", type=int, default=0)
    add("--device", default="cpu", choices=backend.DEVICES)
    add("--tf32", action="store_true",
        help="GPU only: float32 matrix products on TF32 tensor cores (faster, 10-bit mantissa; off by default)")
    add("--out", default=None, help="output folder")
    add("--resume", action="store_true", help="continue the run in --out")
    add("--executor", default="serial", choices=("serial", "dask", "batched"),
        help="batched: the whole generation trained at once (gee_ref.evolution.population)")
    add("--dask-scheduler", dest="dask_scheduler", default=None, metavar="ADDR",
        help="Dask scheduler address (with --executor dask); default: a LocalCluster")
    add("--workers", type=int, default=None, help="LocalCluster worker processes (default 2)")
    add("--dask-timeout", dest="dask_timeout", type=float, default=10.0, help="seconds to reach the scheduler")
    add("--final-epochs", dest="final_epochs", type=int, default=None,
        help=f"epochs of the final training of the best genotype (default {kinds['digits']['final_epochs']} "
             f"on digits, {kinds['cifar']['final_epochs']} on CIFAR)")
    add("--final-steps-per-epoch", dest="final_steps_per_epoch", type=int, default=None,
        help="cap the batches per epoch of the final training (quick runs)")
    add("--ablation", action="store_true", help="run the five variants over --seeds seeds (Table 4)")
    add("--seeds", type=int, default=3, help="with --ablation: seeds seed, seed+1, ...")
    add("--progress", default=None, action=argparse.BooleanOptionalAction,
        help="tqdm bars (default: when stderr is a terminal)")
    return parser


def resolve_config(args, image_shape, classes) -> dict:
    """The run's settings with every default filled in and checked; JSON-ready."""
    from gee_ref.models import ARCHITECTURES
    from gee_ref.train import DATASET_DEFAULTS, dataset_kind

    if args.arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {args.arch!r}: expected one of {', '.join(ARCHITECTURES)}")
    kind = dataset_kind(image_shape[0])
    defaults = EVOLVE_DEFAULTS[kind]

    def pick(name):
        value = getattr(args, name)
        return defaults[name] if value is None else value

    if args.genes is not None:
        genes = args.genes
    else:
        genes = DIGITS_NET_GENES if args.arch == "digits" else ARCHITECTURES[args.arch].genes
    if args.eval_steps is not None and args.eval_epochs is not None:
        raise ValueError("give --eval-steps or --eval-epochs, not both")
    if args.eval_steps is None and args.eval_epochs is None:
        eval_steps, eval_epochs = defaults["eval_steps"], defaults["eval_epochs"]
    else:
        eval_steps, eval_epochs = args.eval_steps, args.eval_epochs
    batch_size = DATASET_DEFAULTS[kind]["batch_size"] if args.batch_size is None else args.batch_size
    alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
    beta = DEFAULT_BETA if args.beta is None else args.beta
    config = {
        "format": RUN_FORMAT, "arch": args.arch, "genes": genes,
        "data": str(Path(args.data).resolve()) if args.data else None,
        "num_classes": len(classes), "image_shape": list(image_shape), "time_steps": args.time_steps,
        "variant": args.variant, "alpha": alpha, "beta": beta,
        "generations": pick("generations"), "popsize": pick("popsize"), "sigma0": args.sigma0,
        "cmaes": args.cmaes, "select": args.select,
        "eval_steps": eval_steps, "eval_epochs": eval_epochs, "eval_lr": args.eval_lr,
        "batch_size": batch_size, "val_fraction": args.val_fraction, "seed": args.seed,
        "final_epochs": pick("final_epochs"), "final_steps_per_epoch": args.final_steps_per_epoch,
        "device": args.device, "tf32": args.tf32,
        "executor": args.executor, "dask_scheduler": args.dask_scheduler, "workers": args.workers,
    }
    check_config(config)
    return config


def check_config(c: dict) -> None:
    """ValueError, one line, for a setting that cannot run."""
    from gee_ref.evolution import fitness

    if c["genes"] is None or c["genes"] <= 0:
        raise ValueError(f"--genes must be a positive integer, got {c['genes']}")
    if c["popsize"] != 0 and c["popsize"] < 2:
        raise ValueError(f"--popsize must be >= 2 (or 0 for the CMA-ES default), got {c['popsize']}")
    if c["generations"] < 1:
        raise ValueError(f"--generations must be >= 1, got {c['generations']}")
    for name in ("eval_steps", "eval_epochs", "final_steps_per_epoch"):
        if c[name] is not None and c[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {c[name]}")
    for name in ("batch_size", "time_steps", "final_epochs"):
        if c[name] < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {c[name]}")
    for name in ("eval_lr", "sigma0"):
        if not (math.isfinite(c[name]) and c[name] > 0):
            raise ValueError(f"--{name.replace('_', '-')} must be a positive number, got {c[name]}")
    for name in ("alpha", "beta"):
        if not (math.isfinite(c[name]) and c[name] >= 0):
            raise ValueError(f"--{name} must be a number >= 0, got {c[name]}")
    if c["tf32"] and c["device"] != "gpu":
        raise ValueError("--tf32 needs --device gpu: TF32 is a mode of the GPU's tensor cores")
    if not 0.0 < c["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must lie strictly between 0 and 1, got {c['val_fraction']}")
    if c["variant"] not in fitness.VARIANTS:
        raise ValueError(f"unknown variant {c['variant']!r}: expected one of {', '.join(fitness.VARIANTS)}")
    if c["workers"] is not None and c["workers"] < 1:
        raise ValueError(f"--workers must be >= 1, got {c['workers']}")
    if c["executor"] != "dask" and (c["dask_scheduler"] is not None or c["workers"] is not None):
        raise ValueError("--dask-scheduler and --workers need --executor dask")
    if c["dask_scheduler"] is not None and c["workers"] is not None:
        raise ValueError("give --dask-scheduler (an existing cluster) or --workers (a LocalCluster), not both")


def default_out(config: dict) -> Path:
    return Path("runs") / f"evolve-{config['arch']}-g{config['genes']}-{config['variant']}-seed{config['seed']}"


# ---------------------------------------------------------------------------- one run

def check_resumable(saved: dict, config: dict, path) -> None:
    from gee_ref.train import check_same_settings

    check_same_settings(saved, config, path, RESUMABLE_CHANGES, LATER_SETTINGS)


def prepare_out(config: dict, out: Path, resume: bool) -> None:
    """Create ``out`` for a new run, or check that ``--resume`` continues the same run."""
    config_path = out / CONFIG_NAME
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(f"--resume: no run in {out} (no {CONFIG_NAME})")
        check_resumable(json.loads(config_path.read_text()), config, out)
        return
    if config_path.exists():
        raise ValueError(f"{out} already holds a run: use --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(config_path, config)


def run_evolution(config: dict, out, executor, resume: bool = False, progress: bool = False) -> dict:
    """Evolve (or resume), train the best genotype with ``train``, return the summary."""
    out = Path(out)
    prepare_out(config, out, resume)
    summary_path = out / SUMMARY_NAME
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        print(f"{out}: this run is complete; final test accuracy {summary['test_accuracy']:.4f}")
        return summary
    evolution = Evolution(config, out, executor, progress)
    evolution.begin()
    if not evolution.evolves:
        print(f"variant {config['variant']}: no evolution, the starting genotype is trained")
    evolution.run()
    evolve_seconds = sum(r["wall_seconds"] for r in read_log(out / LOG_NAME))

    genome, facts = evolution.best_genome()
    from gee_ref.evolution.genome import save_genome
    save_genome(out / BEST_GENOME_NAME, genome, extra={**facts, "seed": config["seed"], "variant": config["variant"]})
    started = time.perf_counter()
    report = train_final(config, out, progress)
    summary = {
        "format": RUN_FORMAT, "config": config, "best": facts,
        "sigmas": genome.sigmas.tolist(), "layer_names": list(genome.layer_names),
        "generations_done": evolution.generation, "stopped": evolution.stopped,
        "nonfinite_total": evolution.nonfinite_total,
        "test_accuracy": report["test_accuracy"], "test_loss": report["test_loss"],
        "evolve_seconds": evolve_seconds, "final_seconds": time.perf_counter() - started,
        "report": str(out / FINAL_DIR / "report.json"),
    }
    write_json_atomic(summary_path, summary)
    print(f"best genotype: {_describe_best(facts)}; saved to {out / BEST_GENOME_NAME}")
    print(f"evolution {evolve_seconds:.1f} s, final training {summary['final_seconds']:.1f} s; summary {summary_path}")
    return summary


def _describe_best(facts) -> str:
    if facts.get("generation") is None:
        return facts.get("source", "starting genotype")
    return (f"generation {facts['generation']}, individual {facts['index']}, "
            f"validation loss {facts['loss']:.4f}, accuracy {facts['accuracy']:.4f}")


def train_final(config: dict, out: Path, progress: bool) -> dict:
    """Train ``best_genome.h5`` with ``python -m gee_ref.train``'s own code into ``out/final``
    (resuming it when a previous attempt was stopped), which prints and saves its report."""
    from gee_ref import train

    final = out / FINAL_DIR
    report_path = final / train.REPORT_NAME
    if report_path.exists():
        try:
            return json.loads(report_path.read_text())
        except json.JSONDecodeError:
            pass  # cut short by a kill while it was written: train --resume writes it again
    argv = ["--arch", config["arch"], "--genes", str(config["genes"]), "--genome", str(out / BEST_GENOME_NAME),
            "--out", str(final), "--epochs", str(config["final_epochs"]), "--device", config["device"],
            "--seed", str(config["seed"]), "--time-steps", str(config["time_steps"]),
            "--batch-size", str(config["batch_size"]), "--progress" if progress else "--no-progress"]
    if config["data"]:
        argv += ["--data", config["data"]]
    if config["final_steps_per_epoch"]:
        argv += ["--steps-per-epoch", str(config["final_steps_per_epoch"])]
    if config.get("tf32"):
        argv.append("--tf32")
    if (final / train.CHECKPOINT_NAME).exists():
        argv.append("--resume")
    print(f"training the best genotype fully: python -m gee_ref.train {' '.join(argv)}", flush=True)
    train.main(argv)
    return json.loads(report_path.read_text())


# ---------------------------------------------------------------------------- main

def make_run_executor(config: dict):
    from gee_ref.evolution.executors import make_executor

    workers = config["workers"] if config["workers"] is not None or config["dask_scheduler"] else 2
    if config["executor"] != "dask":
        workers = None
    return make_executor(config["executor"], address=config["dask_scheduler"], workers=workers,
                         timeout=config.get("dask_timeout", 10.0))


def main(argv=None):
    from gee_ref.data.datasets import dataset_info

    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    info = dataset_info(Path(args.data) if args.data else data_path({"data": None}))
    config = resolve_config(args, info.shapes["train"][1:], info.classes)
    if config["tf32"]:
        backend.set_tf32(True)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.ablation and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    signal.signal(signal.SIGTERM, _interrupt)
    executor = make_run_executor({**config, "dask_timeout": args.dask_timeout})
    try:
        if args.ablation:
            from gee_ref.runs.ablation import run_ablation
            out = Path(args.out) if args.out else Path("runs") / f"ablation-{config['arch']}-g{config['genes']}"
            run_ablation(config, out, executor, seeds=[args.seed + k for k in range(args.seeds)],
                         resume=args.resume, progress=progress)
        else:
            out = Path(args.out) if args.out else default_out(config)
            run_evolution(config, out, executor, resume=args.resume, progress=progress)
    finally:
        executor.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    run_main(main)
