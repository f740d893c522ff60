"""``python -m gee_ref.evolve``: the whole GEE method (paper section 3.2, Algorithm 1).

    python -m gee_ref.evolve                          # digits net, embedded digits, CPU, minutes
    python -m gee_ref.evolve --device gpu             # the same on CuPy
    python -m gee_ref.evolve --arch cifarnet --data cifar10.h5 --genes 100 --device gpu
    python -m gee_ref.evolve --executor dask --workers 4          # a LocalCluster
    python -m gee_ref.evolve --executor dask --dask-scheduler tcp://host:8786
    python -m gee_ref.evolve --out runs/x --resume    # continue a stopped run (same options)
    python -m gee_ref.evolve --ablation --seeds 3     # paper Table 4: five variants x seeds

1. The genotype x = [log sigma_1..L, vec(G)] (eq. 9, ``gee_ref.genome``) starts at G = I and
   Kaiming-matching sigmas; a CMA-ES (eq. 10-12, ``gee_ref.cmaes``) searches it for
   ``--generations`` generations of ``--popsize`` individuals.
2. Each individual is built, trained briefly and scored by the dynamic fitness (eq. 16) on
   a validation split held out from the training split (``gee_ref.individual``). The
   population goes through an executor (``gee_ref.executors``): in this process, or on Dask.
3. The best genotype is trained fully by ``gee_ref.train`` (the same code and report as
   ``python -m gee_ref.train --genome``) and tested.

Files in ``--out`` (default ``runs/evolve-<arch>-g<genes>-<variant>-seed<seed>``):

    config.json        the run's settings
    log.jsonl          one line a generation (see ``generation_record``)
    checkpoint.h5      after every generation (atomic): log length, best so far, the CMA-ES file
    cmaes-<k>.h5       the CMA-ES state after k generations (``CMAES.save``, atomic)
    best_genome.h5     the best genotype so far (``genome.save_genome``; ``train --genome``)
    final/             the full training of the best genotype (``train``'s folder: report.json)
    summary.json       the end: best genotype, final test accuracy, times

Reliability. The checkpoint is written last in a generation and names its CMA-ES file, which
is written before it and deleted only after a newer checkpoint exists; the log is cut back to
the length the checkpoint records. A run killed at any moment and then ``--resume``d ends with
the same log (bar the wall times) and the same best genotype as an uninterrupted one, since
every evaluation is seeded from (seed, generation, index) and the CMA-ES state is restored bit
for bit.

Choices of gee_ref (reconstruction, the paper does not say them):
- "best" is the individual with the lowest validation loss L_cls over the whole run
  (``--select loss``): the dynamic fitness tends to L_cls as lambda(gen) -> 0, and its
  earlier values, inflated by the regularisers, are not comparable across generations.
  ``--select fitness`` takes the lowest eq. 16 value instead.
- ``--cmaes auto`` uses the separable (diagonal) CMA-ES when n = L + g^2 exceeds
  ``AUTO_DIAGONAL_ABOVE`` = 2000 (g >= 45): the full C then costs n^2 memory and O(n^3)
  decompositions (g = 100 gives n ~ 10^4: an 800 MB C), while the separable variant is O(n).
- the CMA-ES runs on the host (NumPy) whatever ``--device``: the networks are the cost.
- the starting step size sigma_0 = ``--sigma0`` (0.1) for every coordinate: a 10% change of
  every sigma_l and +-0.1 on every entry of G = I.
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

import numpy

from gee_ref import backend
from gee_ref.cli_errors import ArgumentParser, run_main

RUN_FORMAT = "gee_ref-evolve-v1"
CHECKPOINT_FORMAT = "gee_ref-evolve-checkpoint-v1"
CONFIG_NAME, LOG_NAME, CHECKPOINT_NAME = "config.json", "log.jsonl", "checkpoint.h5"
BEST_GENOME_NAME, SUMMARY_NAME, FINAL_DIR = "best_genome.h5", "summary.json", "final"
AUTO_DIAGONAL_ABOVE = 2000
CMAES_MODES = ("auto", "full", "diagonal")
SELECT_MODES = ("loss", "fitness")
# Settings that a resumed run may change; any other must match the run's config.json.
RESUMABLE_CHANGES = ("executor", "dask_scheduler", "workers", "progress")
# Log entries that measure time and so differ between two otherwise identical runs.
WALL_TIME_KEYS = ("wall_seconds", "evaluation_seconds")

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
# [0, 1], so equal unit weights let each move F by at most lambda(gen).
DEFAULT_ALPHA, DEFAULT_BETA = 1.0, 1.0
DIGITS_NET_GENES = 16  # g of the digits net (n = 4 + 256); other architectures: their own default
COMMON_DEFAULTS = {"arch": "digits", "eval_lr": 0.1, "val_fraction": 0.2, "sigma0": 0.1}


# ---------------------------------------------------------------------------- command line

def build_parser() -> ArgumentParser:
    from gee_ref.fitness import VARIANTS

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
        help=f"default {kinds['digits']['generations']} on digits, {kinds['cifar']['generations']} else")
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
    add("--out", default=None, help="output folder")
    add("--resume", action="store_true", help="continue the run in --out")
    add("--executor", default="serial", choices=("serial", "dask"))
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
    from gee_ref import fitness
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
        "device": args.device,
        "executor": args.executor, "dask_scheduler": args.dask_scheduler, "workers": args.workers,
    }
    check_config(config)
    return config


def check_config(c: dict) -> None:
    """ValueError, one line, for a setting that cannot run."""
    from gee_ref import fitness

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


def data_path(config: dict) -> Path:
    from gee_ref.datasets import default_digits_path
    return Path(config["data"]) if config["data"] else default_digits_path()


# ---------------------------------------------------------------------------- small file helpers

def write_json_atomic(path: Path, value) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "w") as stream:
        stream.write(json.dumps(value, indent=2) + "\n")
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(temporary, path)


def append_line(path: Path, record: dict) -> int:
    """Append one JSON line, flushed to disk; returns the file's new length in bytes."""
    with open(path, "ab") as stream:
        stream.write((json.dumps(record, allow_nan=False) + "\n").encode())
        stream.flush()
        os.fsync(stream.fileno())
        return stream.tell()


def read_log(path) -> list:
    """The records of a log.jsonl (every complete line)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def without_wall_times(record: dict) -> dict:
    """A log record without its wall-time entries (what two equal runs share)."""
    return {k: v for k, v in record.items() if k not in WALL_TIME_KEYS}


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


def _stats(values) -> dict:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"min": None, "median": None, "max": None}
    return {"min": min(finite), "median": float(numpy.median(finite)), "max": max(finite)}


# ---------------------------------------------------------------------------- the evolution

class Evolution:
    """One run: the CMA-ES over genotypes, its log and checkpoints, and the best so far."""

    def __init__(self, config: dict, out: Path, executor, progress: bool = False):
        from gee_ref import fitness
        from gee_ref.genome import starting_genome
        from gee_ref.individual import EvaluationSettings
        from gee_ref.train import build

        self.config, self.out, self.executor, self.progress = config, Path(out), executor, progress
        c = config
        template_model = build({"arch": c["arch"], "genetic": True, "genes": c["genes"],
                                "num_classes": c["num_classes"], "image_shape": c["image_shape"],
                                "time_steps": c["time_steps"], "seed": 0, "device": "cpu"})
        self.start = starting_genome(template_model)
        self.n = self.start.vector.size
        alpha, beta, self.evolves = fitness.variant_weights(c["variant"], c["alpha"], c["beta"])
        self.settings = EvaluationSettings(
            genome_template=self.start, data_path=str(data_path(c)), seed=c["seed"],
            val_fraction=c["val_fraction"], eval_steps=c["eval_steps"], eval_epochs=c["eval_epochs"],
            batch_size=c["batch_size"], lr=c["eval_lr"], alpha=alpha, beta=beta, device=c["device"])
        self.diagonal = c["cmaes"] == "diagonal" or (c["cmaes"] == "auto" and self.n > AUTO_DIAGONAL_ABOVE)
        self.es = None
        self.generation = 0
        self.best = None  # {"vector", "generation", "index", "loss", "fitness", ...}
        self.stopped = None
        self.nonfinite_total = 0

    # --- state on disk ----------------------------------------------------------------
    def path(self, name) -> Path:
        return self.out / name

    def new_cmaes(self):
        from gee_ref.cmaes import CMAES

        popsize = self.config["popsize"] or None
        return CMAES(self.start.vector, self.config["sigma0"], popsize=popsize,
                     seed=backend.derive_seed(self.config["seed"], "cmaes"), diagonal=self.diagonal, backend="cpu")

    def begin(self) -> None:
        """Start at generation 0, or where the checkpoint says (cutting the log back to it)."""
        from gee_ref.checkpoint import load_checkpoint
        from gee_ref.cmaes import CMAES

        log_bytes = 0
        if self.path(CHECKPOINT_NAME).exists():
            tensors, meta = load_checkpoint(self.path(CHECKPOINT_NAME))
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"{self.path(CHECKPOINT_NAME)} is not an evolve checkpoint")
            self.generation, log_bytes = int(meta["generation"]), int(meta["log_bytes"])
            self.stopped, self.nonfinite_total = meta.get("stopped"), int(meta.get("nonfinite_total", 0))
            if meta.get("best") is not None:
                self.best = dict(meta["best"], vector=tensors["best"]["vector"])
            if meta.get("cmaes_file"):
                self.es = CMAES.load(self.path(meta["cmaes_file"]))
        if self.es is None and self.evolves:
            self.es = self.new_cmaes()
        log = self.path(LOG_NAME)
        with open(log, "ab") as stream:  # exists, and holds exactly the checkpointed lines
            stream.truncate(log_bytes)
        self._remove_stale_cmaes_files()
        if self.best is not None:
            self._save_best_genome()

    def _remove_stale_cmaes_files(self) -> None:
        keep = self._cmaes_name(self.generation) if self.es is not None else None
        for file in self.out.glob("cmaes-*.h5"):
            if file.name != keep:
                file.unlink()
        for file in self.out.glob(".*.tmp"):  # half-written files of a killed process
            file.unlink()

    @staticmethod
    def _cmaes_name(generation: int) -> str:
        return f"cmaes-{generation:05d}.h5"

    def checkpoint(self, log_bytes: int) -> None:
        """CMA-ES file, then the checkpoint naming it (atomic each), then clean up."""
        from gee_ref.checkpoint import save_checkpoint

        cmaes_file = self._cmaes_name(self.generation)
        self.es.save(self.path(cmaes_file))
        best_meta = None if self.best is None else {k: v for k, v in self.best.items() if k != "vector"}
        tensors = {} if self.best is None else {"best": {"vector": self.best["vector"]}}
        save_checkpoint(self.path(CHECKPOINT_NAME), tensors, {
            "format": CHECKPOINT_FORMAT, "generation": self.generation, "log_bytes": log_bytes,
            "cmaes_file": cmaes_file, "best": best_meta, "stopped": self.stopped,
            "nonfinite_total": self.nonfinite_total})
        self._save_best_genome()
        self._remove_stale_cmaes_files()

    def _save_best_genome(self) -> None:
        from gee_ref.genome import save_genome

        genome = self.start.with_vector(self.best["vector"])
        facts = {k: v for k, v in self.best.items() if k != "vector"}
        save_genome(self.path(BEST_GENOME_NAME), genome, extra={**facts, "seed": self.config["seed"],
                                                                 "variant": self.config["variant"]})

    # --- the loop -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.evolves or self.generation >= self.config["generations"] or self.stopped is not None

    def run(self) -> None:
        """Evolve generation by generation until the budget or a CMA-ES stop criterion."""
        bar = self._bar(total=self.config["generations"], initial=self.generation, desc="generations",
                        unit="gen", position=0, leave=True)
        try:
            while not self.finished:
                record = self.step()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(best_loss=f"{self.best['loss']:.4f}" if self.best else "-")
                self._say(self._summary_line(record))
        finally:
            if bar is not None:
                bar.close()

    def step(self) -> dict:
        """One generation: ask, evaluate (on the executor), tell, log, checkpoint."""
        from gee_ref.individual import IndividualTask, evaluate_individual

        started = time.perf_counter()
        generation = self.generation
        X = self.es.ask()
        X_host = numpy.asarray(backend.to_host(X), dtype=numpy.float64)
        tasks = [IndividualTask(self.settings, X_host[i].copy(), generation, i) for i in range(X_host.shape[0])]
        bar = self._bar(total=len(tasks), desc=f"generation {generation}", unit="ind", position=1, leave=False)

        def arrived(i, result):
            if bar is not None:
                bar.update(1)
        try:
            results = self.executor.map(evaluate_individual, tasks, on_result=arrived)
        finally:
            if bar is not None:
                bar.close()
        f = numpy.array([r["fitness"] if not r["nonfinite"] else math.nan for r in results])
        self.es.tell(X, f)
        self._update_best(results, X_host, generation)
        self.nonfinite_total += sum(1 for r in results if r["nonfinite"])
        self.generation = generation + 1
        stop = self.es.stop()
        self.stopped = dict(stop) if stop else None
        record = self.generation_record(generation, results, X_host, time.perf_counter() - started)
        log_bytes = append_line(self.path(LOG_NAME), record)
        self.checkpoint(log_bytes)
        return record

    def _rank_key(self, r) -> float:
        return r["loss"] if self.config["select"] == "loss" else r["fitness"]

    def _update_best(self, results, X_host, generation) -> None:
        for r in results:
            key = self._rank_key(r)
            if r["nonfinite"] or key is None or not math.isfinite(key):
                continue
            if self.best is None or key < self._rank_key(self.best):  # ties: the earlier one stays
                self.best = {"vector": X_host[r["index"]].copy(), "generation": generation, "index": r["index"],
                             "loss": r["loss"], "fitness": r["fitness"], "accuracy": r["accuracy"],
                             "r_t": r["r_t"], "r_s": r["r_s"]}

    def generation_record(self, generation, results, X_host, seconds) -> dict:
        """The log line of one generation (JSON; NaN written as null).

        fitness/loss/accuracy: min, median, max over the finite individuals; r_t, r_s: the
        population mean and the generation's best (lowest fitness); sigmas of the CMA-ES mean
        after the update and of the generation's best; the CMA-ES step size and cond(C);
        nonfinite individuals; every individual's numbers; wall time.
        """
        from gee_ref.fitness import dynamic_lambda

        L = self.start.num_layers
        finite = [r for r in results if not r["nonfinite"]]
        gen_best = min(finite, key=lambda r: r["fitness"]) if finite else None
        mean = numpy.asarray(backend.to_host(self.es.mean))
        return {
            "generation": generation,
            "evaluations": int(self.es.evaluations),
            "lambda": dynamic_lambda(generation),
            "fitness": _stats([r["fitness"] for r in finite]),
            "loss": _stats([r["loss"] for r in finite]),
            "accuracy": _stats([r["accuracy"] for r in finite]),
            "r_t": {"mean": _mean_or_none([r["r_t"] for r in finite]),
                    "best": None if gen_best is None else gen_best["r_t"]},
            "r_s": {"mean": _mean_or_none([r["r_s"] for r in results]),
                    "best": None if gen_best is None else gen_best["r_s"]},
            "sigmas_mean": numpy.exp(mean[:L]).tolist(),
            "sigmas_best": None if gen_best is None else numpy.exp(X_host[gen_best["index"], :L]).tolist(),
            "cma_sigma": float(self.es.sigma),
            "condition_number": float(self.es.condition_number),
            "nonfinite": len(results) - len(finite),
            "nonfinite_total": self.nonfinite_total,
            "best_so_far": None if self.best is None else {
                k: self.best[k] for k in ("generation", "index", "loss", "fitness", "accuracy")},
            "stopped": self.stopped,
            "individuals": [{k: _finite_or_none(r[k]) if isinstance(r[k], float) else r[k]
                             for k in ("index", "fitness", "loss", "accuracy", "r_t", "r_s", "train_loss",
                                       "train_steps", "nonfinite")} for r in results],
            "evaluation_seconds": [r["seconds"] for r in results],
            "wall_seconds": seconds,
        }

    def _summary_line(self, record) -> str:
        fit, loss = record["fitness"], record["loss"]
        best = record["best_so_far"]
        text = (f"generation {record['generation']}: fitness min {_fmt(fit['min'])} median {_fmt(fit['median'])}"
                f" | val loss min {_fmt(loss['min'])} | R_T {_fmt(record['r_t']['mean'])}"
                f" R_S {_fmt(record['r_s']['mean'])} | CMA sigma {record['cma_sigma']:.4g}"
                f" | nonfinite {record['nonfinite']} | {record['wall_seconds']:.1f} s")
        if best is not None:
            text += f" | best loss {best['loss']:.4f} (gen {best['generation']}, #{best['index']})"
        if record["stopped"]:
            text += f" | CMA-ES stopped: {', '.join(record['stopped'])}"
        return text

    def _bar(self, **kwargs):
        if not self.progress:
            return None
        from tqdm.auto import tqdm
        return tqdm(dynamic_ncols=True, **kwargs)

    def _say(self, text: str) -> None:
        if self.progress:
            from tqdm.auto import tqdm
            tqdm.write(text)
        else:
            print(text, flush=True)

    # --- the end ------------------------------------------------------------------------
    def best_genome(self):
        """The genotype to train fully: the best found, or the start ("random" variant)."""
        if self.best is None:
            return self.start, {"generation": None, "index": None, "source": "starting genotype (no evolution)"}
        facts = {k: v for k, v in self.best.items() if k != "vector"}
        return self.start.with_vector(self.best["vector"]), facts


def _mean_or_none(values):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(numpy.mean(finite)) if finite else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


# ---------------------------------------------------------------------------- one run

def check_resumable(saved: dict, config: dict, path) -> None:
    for key in sorted(set(saved) | set(config)):
        if key not in RESUMABLE_CHANGES and saved.get(key) != config.get(key):
            raise ValueError(f"cannot resume {path}: it was written with {key}={saved.get(key)!r}, "
                             f"this run has {key}={config.get(key)!r}")


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
    from gee_ref.genome import save_genome
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
        return json.loads(report_path.read_text())
    argv = ["--arch", config["arch"], "--genes", str(config["genes"]), "--genome", str(out / BEST_GENOME_NAME),
            "--out", str(final), "--epochs", str(config["final_epochs"]), "--device", config["device"],
            "--seed", str(config["seed"]), "--time-steps", str(config["time_steps"]),
            "--batch-size", str(config["batch_size"]), "--progress" if progress else "--no-progress"]
    if config["data"]:
        argv += ["--data", config["data"]]
    if config["final_steps_per_epoch"]:
        argv += ["--steps-per-epoch", str(config["final_steps_per_epoch"])]
    if (final / train.CHECKPOINT_NAME).exists():
        argv.append("--resume")
    print(f"training the best genotype fully: python -m gee_ref.train {' '.join(argv)}", flush=True)
    train.main(argv)
    return json.loads(report_path.read_text())


# ---------------------------------------------------------------------------- main

def make_run_executor(config: dict):
    from gee_ref.executors import make_executor

    workers = config["workers"] if config["workers"] is not None or config["dask_scheduler"] else 2
    if config["executor"] == "serial":
        workers = None
    return make_executor(config["executor"], address=config["dask_scheduler"], workers=workers,
                         timeout=config.get("dask_timeout", 10.0))


def main(argv=None):
    from gee_ref.datasets import dataset_info

    args = build_parser().parse_args(argv)
    backend.xp_for(args.device)  # a GPU asked for but missing: one line, before any work
    info = dataset_info(Path(args.data) if args.data else data_path({"data": None}))
    config = resolve_config(args, info.shapes["train"][1:], info.classes)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    if args.ablation and args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    signal.signal(signal.SIGTERM, _interrupt)
    executor = make_run_executor({**config, "dask_timeout": args.dask_timeout})
    try:
        if args.ablation:
            from gee_ref.ablation import run_ablation
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
