"""The evolution loop of GEE: CMA-ES generations over genotypes, with a log and checkpoints
(paper section 3.2, Algorithm 1; eq. 9-12 and 16 through ``genome``, ``cmaes``, ``evaluation``).

``Evolution`` owns one run folder::

    log.jsonl          one JSON line a generation (``Evolution.generation_record``)
    checkpoint.h5      after every generation (atomic): generation count, log length in bytes,
                       the best few genotypes so far, the name of the CMA-ES file
    cmaes-<k>.h5       the CMA-ES state after k generations (``CMAES.save``, atomic)
    best_genome.h5     the best genotype so far, and at the end the one selected

A generation is: ask lambda genotypes, evaluate them on the executor (``evaluation``: the
terms of eq. 16 on common random numbers), score the generation (``fitness.generation_fitness``:
eq. 16, raw or standardised), tell the CMA-ES (NaN for a diverged individual: ranked last),
keep the best few, append the log line, write the CMA-ES file, then the checkpoint naming it,
then delete older CMA-ES files. ``begin`` restarts from the checkpoint and cuts the log back to
the length it records, so a process killed at any moment resumes into the same log (bar the
wall times) and the same genotypes: evaluations are seeded from (seed, generation, draw) and the
CMA-ES state, random generator included, is restored bit for bit. After the last generation,
``select`` makes the final choice (``gee_ref.evolution.selection``).

The search distribution starts at the genotype of the run's ``start`` (``genome.starting_genome``)
with an initial standard deviation per block of coordinates (CMA-ES ``stds``): ``sigma0_log_sigma``
for the L log sigma_l, ``sigma0_genes`` for the g*g entries of G (``initial_stds``).

The variants of the paper's Table 4 (``fitness.VARIANTS``) search in four ways: "cmaes" (the
method), "random-search" (the same evaluations, every generation drawn from the generation-0
distribution: the CMA-ES is asked but never told), "draw" (no evaluation: one draw from that
distribution) and "start" (no evaluation: the start itself).

Choices of gee_ref (reconstruction): ``cmaes = "auto"`` takes the separable CMA-ES above
n = ``AUTO_DIAGONAL_ABOVE`` = 2000 (a full C of n = 10^4, g = 100, is 800 MB and needs O(n^3)
decompositions); the CMA-ES runs on the host whatever the device.
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
from gee_ref.evolution.selection import choose, update_candidates
from gee_ref.models import build_from_config
from gee_ref.storage import atomic, run_lock
from gee_ref.storage.checkpoint import load_checkpoint, save_checkpoint
from gee_ref.storage.json_file import read_json, write_json
from gee_ref.training.progress import Progress

CHECKPOINT_FORMAT = "gee_ref-evolve-checkpoint-v2"
LOG_NAME, CHECKPOINT_NAME, BEST_GENOME_NAME = "log.jsonl", "checkpoint.h5", "best_genome.h5"
SELECTION_NAME = "selection.json"  # the final choice, once made (its re-evaluations are not repeated)
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
        self.alpha, self.beta, self.search = fitness.variant_weights(c["variant"], c["alpha"], c["beta"])
        self.start = starting_genome(template_model, fitness.VARIANTS[c["variant"]].start or c["start"])
        self.n = self.start.vector.size
        self.settings = EvaluationSettings(
            genome_template=self.start, data_path=str(data_file), seed=c["seed"],
            val_fraction=c["val_fraction"], eval_steps=c["eval_steps"], eval_epochs=c["eval_epochs"],
            batch_size=c["batch_size"], lr=c["eval_lr"], device=c["device"], tf32=bool(c.get("tf32")),
            draws=c["draws"])
        self.diagonal = c["cmaes"] == "diagonal" or (c["cmaes"] == "auto" and self.n > AUTO_DIAGONAL_ABOVE)
        self.es = None
        self.generation = 0
        self.candidates = []  # the best few genotypes so far (``selection.update_candidates``)
        self.selected = None  # (vector, facts) once ``select`` has chosen
        self.stopped = None
        self.nonfinite_total = 0

    @property
    def evaluates(self) -> bool:
        """Whether this variant evaluates genotypes at all (the "draw" and "start" variants do not)."""
        return self.search in ("cmaes", "random-search")

    @property
    def best(self):
        """The genotype with the lowest validation loss so far (a dict with "vector"), or None."""
        return self.candidates[0] if self.candidates else None

    # --- state on disk ----------------------------------------------------------------
    def path(self, name) -> Path:
        return self.out / name

    def new_cmaes(self):
        """The search distribution at generation 0: mean the start, per-block stds (``initial_stds``)."""
        return CMAES(self.start.vector, 1.0, popsize=self.config["popsize"] or None,
                     seed=backend.derive_seed(self.config["seed"], "cmaes"), diagonal=self.diagonal, backend="cpu",
                     stds=initial_stds(self.start, self.config))

    def begin(self) -> None:
        """Start at generation 0, or where the checkpoint says (cutting the log back to it)."""
        log_bytes = 0
        if self.path(CHECKPOINT_NAME).exists():
            tensors, meta = load_checkpoint(self.path(CHECKPOINT_NAME))
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError(f"{self.path(CHECKPOINT_NAME)} is not an evolve checkpoint of this gee_ref "
                                 f"(format {meta.get('format')!r}, expected {CHECKPOINT_FORMAT!r})")
            self.generation, log_bytes = int(meta["generation"]), int(meta["log_bytes"])
            self.stopped, self.nonfinite_total = meta.get("stopped"), int(meta.get("nonfinite_total", 0))
            self.candidates = [dict(facts, vector=tensors["candidates"][str(i)])
                               for i, facts in enumerate(meta.get("candidates", []))]
            if meta.get("cmaes_file"):
                self.es = CMAES.load(self.path(meta["cmaes_file"]))
        if self.path(SELECTION_NAME).exists():
            chosen = read_json(self.path(SELECTION_NAME))
            self.selected = (numpy.array(chosen["vector"], dtype=numpy.float64), chosen["facts"])
        if self.es is None and self.search != "start":
            self.es = self.new_cmaes()
        log = self.path(LOG_NAME)
        with open(log, "ab") as stream:  # exists, and holds exactly the checkpointed lines
            stream.truncate(log_bytes)
        self._remove_stale_cmaes_files()
        if self.best is not None:
            self._save_best_genome(self.best["vector"], self._facts(self.best))

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
        tensors = {"candidates": {str(i): c["vector"] for i, c in enumerate(self.candidates)}} if self.candidates else {}
        save_checkpoint(self.path(CHECKPOINT_NAME), tensors, {
            "format": CHECKPOINT_FORMAT, "generation": self.generation, "log_bytes": log_bytes,
            "cmaes_file": cmaes_file, "candidates": [self._facts(c) for c in self.candidates],
            "stopped": self.stopped, "nonfinite_total": self.nonfinite_total})
        if self.best is not None:
            self._save_best_genome(self.best["vector"], self._facts(self.best))
        self._remove_stale_cmaes_files()

    @staticmethod
    def _facts(candidate: dict) -> dict:
        return {k: v for k, v in candidate.items() if k != "vector"}

    def _save_best_genome(self, vector, facts) -> None:
        save_genome(self.path(BEST_GENOME_NAME), self.start.with_vector(vector),
                    extra={**facts, "seed": self.config["seed"], "variant": self.config["variant"]})

    # --- the loop -----------------------------------------------------------------------
    @property
    def finished(self) -> bool:
        return not self.evaluates or self.generation >= self.config["generations"] or self.stopped is not None

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
        scores = fitness.generation_fitness([r["loss"] for r in results], [r["r_t"] for r in results],
                                            [r["r_s"] for r in results], generation, self.alpha, self.beta,
                                            self.config["fitness_scale"])
        for r, score in zip(results, scores):
            r["fitness"] = score
        if self.search == "cmaes":  # random search asks the generation-0 distribution again and again
            self.es.tell(X, numpy.array(scores))
            stop = self.es.stop()
            self.stopped = dict(stop) if stop else None
        self.candidates = update_candidates(self.candidates, results, X_host, generation)
        self.nonfinite_total += sum(1 for r in results if r["nonfinite"])
        self.generation = generation + 1
        record = self.generation_record(generation, results, X_host, time.perf_counter() - started)
        log_bytes = append_line(self.path(LOG_NAME), record)
        self.checkpoint(log_bytes)
        return record

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
            "evaluations": (generation + 1) * len(results) * self.settings.draws,
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
            "draws": [[{k: _finite_or_none(v) if isinstance(v, float) else v for k, v in d.items()}
                       for d in r["draws"]] for r in results] if self.settings.draws > 1 else None,
            "evaluation_seconds": [r["seconds"] for r in results],
            "wall_seconds": seconds,
        }

    def generation_line(self, record) -> str:
        """The line a finished generation leaves: fitness, loss, regularisers, step size, time."""
        fit, loss = record["fitness"], record["loss"]
        best = record["best_so_far"]
        scale = " (standardised terms)" if self.config["fitness_scale"] == "standardised" else ""
        text = (f"generation {record['generation']}: fitness{scale} min {_fmt(fit['min'])} median {_fmt(fit['median'])}"
                f" | val loss min {_fmt(loss['min'])} | R_T {_fmt(record['r_t']['mean'])}"
                f" R_S {_fmt(record['r_s']['mean'])} | CMA sigma {record['cma_sigma']:.4g}"
                f" | nonfinite {record['nonfinite']} | {record['wall_seconds']:.1f} s")
        if best is not None:
            text += f" | best loss {best['loss']:.4f} (gen {best['generation']}, #{best['index']})"
        if record["stopped"]:
            text += f" | CMA-ES stopped: {', '.join(record['stopped'])}"
        return text

    # --- the end ------------------------------------------------------------------------
    def select(self):
        """(Genome, facts) to train fully, by the run's ``select`` rule (``gee_ref.evolution.selection``);
        the "draw" variant takes one draw of the generation-0 distribution, "start" the start."""
        if self.selected is None:
            if self.search == "start":
                vector, facts = self.start.vector, {"source": "the starting genotype (no search)"}
            elif self.search == "draw":
                vector = numpy.asarray(backend.to_host(self.new_cmaes().ask()), dtype=numpy.float64)[0]
                facts = {"source": "one draw of the generation-0 search distribution (no search)"}
            else:
                mean = numpy.asarray(backend.to_host(self.es.mean)) if self.search == "cmaes" else None
                vector, facts = choose(self.config["select"], self.candidates, mean, self.settings, self.executor,
                                       self.config["reeval_draws"])
                if vector is None:
                    vector = self.start.vector
            self.selected = (numpy.array(vector, dtype=numpy.float64), facts)
            write_json(self.path(SELECTION_NAME), {"vector": self.selected[0].tolist(), "facts": facts})
            self._save_best_genome(*self.selected)
        vector, facts = self.selected
        return self.start.with_vector(vector), facts


def initial_stds(start, config: dict) -> list:
    """The CMA-ES initial standard deviation of every coordinate of x = [log sigma_1..L, vec(G)]:
    ``sigma0_log_sigma`` for the L log-sigmas, ``sigma0_genes`` for the g*g entries of G."""
    L, g = start.num_layers, start.genes
    return [float(config["sigma0_log_sigma"])] * L + [float(config["sigma0_genes"])] * (g * g)


def _mean_or_none(values):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(numpy.mean(finite)) if finite else None


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"
