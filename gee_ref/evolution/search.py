"""The evolution loop of GEE: CMA-ES generations over genotypes, with a log and checkpoints
(paper section 3.2, Algorithm 1; eq. 9-12 and 16 through ``genome``, ``cmaes``, ``individual``).

``Evolution`` owns one run folder::

    log.jsonl          one JSON line a generation (``Evolution.generation_record``)
    checkpoint.h5      after every generation (atomic): generation count, log length in bytes,
                       best so far, the name of the CMA-ES file
    cmaes-<k>.h5       the CMA-ES state after k generations (``CMAES.save``, atomic)
    best_genome.h5     the best genotype so far (``genome.save_genome``)

A generation is: ask lambda genotypes, evaluate them on the executor (``individual``), tell
the CMA-ES their fitness (NaN for a diverged individual: ranked last), update the best,
append the log line, write the CMA-ES file, then the checkpoint naming it, then delete older
CMA-ES files. ``begin`` restarts from the checkpoint and cuts the log back to the length it
records, so a process killed at any moment resumes into the same log (bar the wall times)
and the same best genotype: evaluations are seeded from (seed, generation, index) and the
CMA-ES state, random generator included, is restored bit for bit.

Choices of gee_ref (reconstruction): "best" is the lowest validation loss L_cls of the run
(``select = "loss"``; eq. 16's regularised values are not comparable across generations, as
lambda(gen) changes) or the lowest fitness (``"fitness"``); ``cmaes = "auto"`` takes the
separable CMA-ES above n = ``AUTO_DIAGONAL_ABOVE`` = 2000 (a full C of n = 10^4, g = 100, is
800 MB and needs O(n^3) decompositions); the CMA-ES runs on the host whatever the device.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy

from gee_ref import backend
from gee_ref.cmaes import CMAES
from gee_ref.evolution import fitness
from gee_ref.evolution.evaluation import EvaluationSettings, IndividualTask, evaluate_individual
from gee_ref.evolution.genome import save_genome, starting_genome
from gee_ref.models import build_from_config
from gee_ref.storage import atomic, run_lock
from gee_ref.storage.checkpoint import load_checkpoint, save_checkpoint
from gee_ref.training.progress import Progress

CHECKPOINT_FORMAT = "gee_ref-evolve-checkpoint-v1"
LOG_NAME, CHECKPOINT_NAME, BEST_GENOME_NAME = "log.jsonl", "checkpoint.h5", "best_genome.h5"
AUTO_DIAGONAL_ABOVE = 2000
# Log entries that measure time and so differ between two otherwise identical runs.
WALL_TIME_KEYS = ("wall_seconds", "evaluation_seconds")


# ---------------------------------------------------------------------------- small file helpers

def append_line(path: Path, record: dict) -> int:
    """Append one JSON line, flushed to disk; returns the file's new length in bytes. A full disk
    is one DiskFullError line (a resumed run cuts the log back to its checkpointed length)."""
    line = (json.dumps(record, allow_nan=False) + "\n").encode()
    try:
        with open(path, "ab") as stream:
            stream.write(line)
            stream.flush()
            os.fsync(stream.fileno())
            return stream.tell()
    except OSError as error:
        if error.errno in atomic.DISK_FULL_ERRNOS:
            raise atomic.disk_full_error(error, path, len(line), "log") from None
        raise


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

    def __init__(self, config: dict, out: Path, executor, data_file, progress: str = "off"):
        self.config, self.out, self.executor, self.progress = config, Path(out), executor, progress
        c = config
        template_model = build_from_config({"arch": c["arch"], "genetic": True, "genes": c["genes"],
                                            "width": c.get("width"), "num_classes": c["num_classes"],
                                            "image_shape": c["image_shape"], "time_steps": c["time_steps"],
                                            "seed": 0, "device": "cpu"})
        self.start = starting_genome(template_model)
        self.n = self.start.vector.size
        alpha, beta, self.evolves = fitness.variant_weights(c["variant"], c["alpha"], c["beta"])
        self.settings = EvaluationSettings(
            genome_template=self.start, data_path=str(data_file), seed=c["seed"],
            val_fraction=c["val_fraction"], eval_steps=c["eval_steps"], eval_epochs=c["eval_epochs"],
            batch_size=c["batch_size"], lr=c["eval_lr"], alpha=alpha, beta=beta, device=c["device"],
            tf32=bool(c.get("tf32")))
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
        popsize = self.config["popsize"] or None
        return CMAES(self.start.vector, self.config["sigma0"], popsize=popsize,
                     seed=backend.derive_seed(self.config["seed"], "cmaes"), diagonal=self.diagonal, backend="cpu")

    def begin(self) -> None:
        """Start at generation 0, or where the checkpoint says (cutting the log back to it)."""
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
        run_lock.remove_stale_temporaries(self.out)  # half-written files of a killed process

    @staticmethod
    def _cmaes_name(generation: int) -> str:
        return f"cmaes-{generation:05d}.h5"

    def checkpoint(self, log_bytes: int) -> None:
        """CMA-ES file, then the checkpoint naming it (atomic each), then clean up."""
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
        genome = self.start.with_vector(self.best["vector"])
        facts = {k: v for k, v in self.best.items() if k != "vector"}
        save_genome(self.path(BEST_GENOME_NAME), genome, extra={**facts, "seed": self.config["seed"],
                                                                 "variant": self.config["variant"]})

    # --- the loop -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.evolves or self.generation >= self.config["generations"] or self.stopped is not None

    def run(self) -> None:
        """Evolve generation by generation until the budget or a CMA-ES stop criterion; one line
        per generation on stdout (``generation_line``)."""
        with Progress(self.config["generations"], "generations", "generation", self.progress,
                      every_seconds=math.inf) as shown:
            shown.update(self.generation)
            while not self.finished:
                record = self.step()
                shown.update(1, best_loss=self.best["loss"] if self.best else "-")
                if self.progress == "bar":
                    shown.write(self.generation_line(record), file=sys.stdout)
                else:
                    print(self.generation_line(record), flush=True)

    def step(self) -> dict:
        """One generation: ask, evaluate (on the executor), tell, log, checkpoint."""
        started = time.perf_counter()
        generation = self.generation
        X = self.es.ask()
        X_host = numpy.asarray(backend.to_host(X), dtype=numpy.float64)
        tasks = [IndividualTask(self.settings, X_host[i].copy(), generation, i) for i in range(X_host.shape[0])]
        with Progress(len(tasks), f"generation {generation}", "individual", self.progress) as shown:
            results = self.executor.map(evaluate_individual, tasks, on_result=lambda i, result: shown.update(1))
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
        L = self.start.num_layers
        finite = [r for r in results if not r["nonfinite"]]
        gen_best = min(finite, key=lambda r: r["fitness"]) if finite else None
        mean = numpy.asarray(backend.to_host(self.es.mean))
        return {
            "generation": generation,
            "evaluations": int(self.es.evaluations),
            "lambda": fitness.dynamic_lambda(generation),
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

    def generation_line(self, record) -> str:
        """The line a finished generation leaves: fitness, loss, regularisers, step size, time."""
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
