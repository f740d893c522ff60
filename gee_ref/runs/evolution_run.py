"""An evolution run: the method end to end (paper section 3.2, Algorithm 1), then the final training.

1. The genotype x = [log sigma_1..L, vec(G)] (eq. 9, ``gee_ref.evolution.genome``) starts at G = I
   and Kaiming-matching sigmas; a CMA-ES (eq. 10-12, ``gee_ref.cmaes``) searches it for
   ``generations`` generations of ``popsize`` individuals (``gee_ref.evolution.search``).
2. Each individual is built, trained briefly and scored by the dynamic fitness (eq. 16) on a
   validation split held out from the training split (``gee_ref.evolution.evaluation``). The
   population goes through an executor (``gee_ref.evolution.executors``): in this process, or
   on Dask, or stacked and trained all at once (``executor="batched"``).
3. The genotype chosen (``gee_ref.evolution.selection``) is trained fully by the training run
   (``gee_ref.runs.training_run``, the code and report of ``python -m gee_ref.train --genome``)
   and tested. A final training whose loss turns NaN or infinite stops there and is tested
   with the weights of its last finished epoch (``on_divergence="stop"``); the summary says so.

Files in the run's folder: config.json (the settings), the evolution's log.jsonl,
checkpoint.h5, cmaes-<k>.h5 and best_genome.h5, final/ (the training run of the best genotype,
with report.json) and summary.json (best genotype, final test accuracy, times). A run stopped at
any point (even by SIGKILL) resumes into the same log and the same best genotype.

Choices of gee_ref (reconstruction, the paper does not say them): the search starts from the
paper start (sigma_l = 1, G = I; ``start="calibrated"`` is gee_ref's Kaiming-matching one); the
CMA-ES's initial standard deviations per block (``SIGMA0_LOG_SIGMA``, ``SIGMA0_GENES_SCALE``);
eq. 16 with alpha = beta = 1 on terms standardised within each generation
(``gee_ref.evolution.fitness``); common random numbers and K draws per individual
(``gee_ref.evolution.evaluation``); the final choice by re-evaluation (``gee_ref.evolution.selection``);
the CMA-ES variant (``gee_ref.evolution.search``); the defaults of the budget depend on the dataset
(``EVOLVE_DEFAULTS``).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

from gee_ref.evolution import fitness
from gee_ref.evolution.executors import make_executor
from gee_ref.evolution.genome import STARTS
from gee_ref.evolution.selection import SELECT_MODES
from gee_ref.evolution.search import AUTO_DIAGONAL_ABOVE, BEST_GENOME_NAME, LOG_NAME, Evolution, read_log
from gee_ref.models import ARCHITECTURES
from gee_ref.runs.checks import require_at_least
from gee_ref.runs.data import RunData, dataset_kind
from gee_ref.runs.folder import check_same_settings, claimed
from gee_ref.runs.report import format_report
from gee_ref.runs.training_run import CHECKPOINT_NAME as TRAIN_CHECKPOINT_NAME
from gee_ref.runs.training_run import DATASET_DEFAULTS, REPORT_NAME, run_training
from gee_ref.storage.json_file import read_json, write_json

RUN_FORMAT = "gee_ref-evolve-v2"  # v2: common random numbers, per-block stds, generation-level fitness
CONFIG_NAME, SUMMARY_NAME, FINAL_DIR = "config.json", "summary.json", "final"
CMAES_MODES = ("auto", "full", "diagonal")
EXECUTORS = ("serial", "dask", "batched")
# Settings that a resumed run may change; any other must match the run's config.json.
RESUMABLE_CHANGES = ("executor", "dask_scheduler", "workers", "progress")
# Settings added after the first runs of this format were written: a config.json without one had this value.
LATER_SETTINGS = {"tf32": False, "width": None}

# Defaults by dataset kind (``gee_ref.runs.data.dataset_kind``, by image side); each is an
# option. The digits budget is sized so that the no-option run ends in a few minutes on two
# CPU cores; the CIFAR/ImageNet ones follow the paper's scale (section 4.4: five generations,
# and the final training of train's defaults, 200 epochs for CIFAR).
EVOLVE_DEFAULTS = {
    "digits": {"generations": 5, "popsize": 8, "eval_steps": 20, "eval_epochs": None, "final_epochs": 10},
    "cifar": {"generations": 5, "popsize": 10, "eval_steps": None, "eval_epochs": 1, "final_epochs": 200},
    "large": {"generations": 5, "popsize": 10, "eval_steps": None, "eval_epochs": 1, "final_epochs": 100},
}
# eq. 16's constants (reconstruction: the paper gives no values). R_T and R_S both lie in
# [0, 1], so with unit weights each moves F by at most lambda(gen).
DEFAULT_ALPHA, DEFAULT_BETA = 1.0, 1.0
DIGITS_NET_GENES = 16  # g of the digits net (n = 4 + 256); other architectures: their own default
# The CMA-ES initial standard deviation of each block of the genotype (``search.initial_stds``):
# log sigma_l moves by about +-SIGMA0_LOG_SIGMA at generation 0 (a factor of exp(0.5) = 1.65 on
# sigma_l); the entries of G by SIGMA0_GENES_SCALE / sqrt(g), so that the perturbation of G = I,
# a g x g Gaussian matrix, has a spectral norm of about 2 * 0.25 = 0.5 whatever g (a fixed entry
# std of 0.1 gives about 0.2 sqrt(g): 2 at g = 100, where generation 0 is in effect a random G).
SIGMA0_LOG_SIGMA, SIGMA0_GENES_SCALE = 0.5, 0.25
#: The options of an evolution run that have a fixed default (None elsewhere: by dataset or architecture).
OPTION_DEFAULTS = {"arch": "digits", "data": None, "genes": None, "width": None, "start": "paper",
                   "generations": None, "popsize": None, "eval_steps": None, "eval_epochs": None, "eval_lr": 0.1,
                   "batch_size": None, "val_fraction": 0.2, "time_steps": 4, "alpha": None, "beta": None,
                   "variant": "ste", "fitness_scale": "standardised", "draws": 1, "sigma0": None,
                   "sigma0_log_sigma": None, "sigma0_genes": None, "cmaes": "auto", "select": "reeval",
                   "reeval_draws": 3, "seed": 0, "device": "cpu", "tf32": False, "executor": "serial",
                   "dask_scheduler": None, "workers": None, "final_epochs": None, "final_steps_per_epoch": None}


# ---------------------------------------------------------------------------- settings

def resolve_config(options: dict, data: RunData) -> dict:
    """The run's settings with every default filled in and checked; JSON-ready."""
    unknown = sorted(set(options) - set(OPTION_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown evolution options {unknown}")
    o = {**OPTION_DEFAULTS, **{k: v for k, v in options.items() if v is not None}}
    if o["arch"] not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {o['arch']!r}: expected one of {', '.join(ARCHITECTURES)}")
    kind = dataset_kind(data.image_shape[0])
    defaults = EVOLVE_DEFAULTS[kind]
    genes = o["genes"] if o["genes"] is not None else (
        DIGITS_NET_GENES if o["arch"] == "digits" else ARCHITECTURES[o["arch"]].genes)
    if o["eval_steps"] is not None and o["eval_epochs"] is not None:
        raise ValueError("give --eval-steps or --eval-epochs, not both")
    if o["eval_steps"] is None and o["eval_epochs"] is None:
        eval_steps, eval_epochs = defaults["eval_steps"], defaults["eval_epochs"]
    else:
        eval_steps, eval_epochs = o["eval_steps"], o["eval_epochs"]
    sigma0_genes = SIGMA0_GENES_SCALE / math.sqrt(genes) if genes and genes > 0 else math.nan
    config = {
        "format": RUN_FORMAT, "arch": o["arch"], "genes": genes, "width": o["width"], "start": o["start"],
        "data": str(Path(o["data"]).resolve()) if o["data"] else None,
        "num_classes": len(data.classes), "image_shape": data.image_shape, "time_steps": o["time_steps"],
        "variant": o["variant"], "alpha": DEFAULT_ALPHA if o["alpha"] is None else o["alpha"],
        "beta": DEFAULT_BETA if o["beta"] is None else o["beta"], "fitness_scale": o["fitness_scale"],
        "draws": o["draws"],
        "generations": defaults["generations"] if o["generations"] is None else o["generations"],
        "popsize": defaults["popsize"] if o["popsize"] is None else o["popsize"],
        "sigma0_log_sigma": next(v for v in (o["sigma0"], o["sigma0_log_sigma"], SIGMA0_LOG_SIGMA) if v is not None),
        "sigma0_genes": next(v for v in (o["sigma0"], o["sigma0_genes"], sigma0_genes) if v is not None),
        "cmaes": o["cmaes"], "select": o["select"], "reeval_draws": o["reeval_draws"],
        "eval_steps": eval_steps, "eval_epochs": eval_epochs, "eval_lr": o["eval_lr"],
        "batch_size": DATASET_DEFAULTS[kind]["batch_size"] if o["batch_size"] is None else o["batch_size"],
        "val_fraction": o["val_fraction"], "seed": o["seed"],
        "final_epochs": defaults["final_epochs"] if o["final_epochs"] is None else o["final_epochs"],
        "final_steps_per_epoch": o["final_steps_per_epoch"],
        "device": o["device"], "tf32": bool(o["tf32"]),
        "executor": o["executor"], "dask_scheduler": o["dask_scheduler"], "workers": o["workers"],
    }
    check_config(config, data)
    return config


def check_config(c: dict, data: RunData) -> None:
    """ValueError, one line, for a setting that cannot run."""
    if c["genes"] is None or c["genes"] <= 0:
        raise ValueError(f"--genes must be a positive integer, got {c['genes']}")
    if c["width"] is not None and (c["width"] < 1 or ARCHITECTURES[c["arch"]].width is None):
        raise ValueError(f"--width must be a positive integer, for an architecture with a width option "
                         f"(vgg8, resnet14); got {c['width']} for {c['arch']}")
    if c["popsize"] != 0 and c["popsize"] < 2:
        raise ValueError(f"--popsize must be >= 2 (or 0 for the CMA-ES default), got {c['popsize']}")
    require_at_least(c, ("generations",))
    require_at_least(c, ("eval_steps", "eval_epochs", "final_steps_per_epoch"), unset_allowed=True)
    require_at_least(c, ("batch_size", "time_steps", "final_epochs", "draws", "reeval_draws"))
    for name in ("eval_lr", "sigma0_log_sigma", "sigma0_genes"):
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
    for name, choices in (("cmaes", CMAES_MODES), ("select", SELECT_MODES), ("executor", EXECUTORS),
                          ("start", STARTS), ("fitness_scale", fitness.SCALES)):
        if c[name] not in choices:
            raise ValueError(f"--{name} must be one of {', '.join(choices)}, got {c[name]!r}")
    if c["workers"] is not None and c["workers"] < 1:
        raise ValueError(f"--workers must be >= 1, got {c['workers']}")
    if c["executor"] != "dask" and (c["dask_scheduler"] is not None or c["workers"] is not None):
        raise ValueError("--dask-scheduler and --workers need --executor dask")
    if c["dask_scheduler"] is not None and c["workers"] is not None:
        raise ValueError("give --dask-scheduler (an existing cluster) or --workers (a LocalCluster), not both")
    held = math.floor(c["val_fraction"] * len(data.train_labels) + 0.5)
    if held < 1 or len(data.train_labels) - held < 1:
        raise ValueError(f"{data.path}: --val-fraction {c['val_fraction']} of its {len(data.train_labels)} training "
                         f"images leaves no validation or no training image; the evolution needs both")


def default_out(config: dict) -> Path:
    return Path("runs") / f"evolve-{config['arch']}-g{config['genes']}-{config['variant']}-seed{config['seed']}"


def make_run_executor(config: dict, timeout: float = 10.0):
    """The executor the settings name (a Dask LocalCluster of 2 workers unless told otherwise)."""
    workers = config["workers"] if config["workers"] is not None or config["dask_scheduler"] else 2
    if config["executor"] != "dask":
        workers = None
    return make_executor(config["executor"], address=config["dask_scheduler"], workers=workers, timeout=timeout)


# ---------------------------------------------------------------------------- one run

def prepare_out(config: dict, out: Path, resume: bool) -> None:
    """Create ``out`` for a new run, or check that a resumed run continues the same one."""
    config_path = out / CONFIG_NAME
    if resume:
        if not config_path.exists():
            raise FileNotFoundError(f"--resume: no run in {out} (no {CONFIG_NAME})")
        check_same_settings(read_json(config_path), config, out, RESUMABLE_CHANGES, LATER_SETTINGS)
        return
    if config_path.exists():
        raise ValueError(f"{out} already holds a run: use --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json(config_path, config)


def run_evolution(config: dict, data: RunData, out, executor, resume: bool = False, progress: str = "off",
                  say=print) -> dict:
    """Evolve (or resume), train the best genotype fully, return the summary."""
    with claimed(out):
        return _evolve_and_train(config, data, Path(out), executor, resume, progress, say)


def _evolve_and_train(config, data, out, executor, resume, progress, say) -> dict:
    prepare_out(config, out, resume)
    summary_path = out / SUMMARY_NAME
    if summary_path.exists():
        summary = read_json(summary_path)
        say(f"{out}: this run is complete; final test accuracy {summary['test_accuracy']:.4f}")
        return summary
    evolution = Evolution(config, out, executor, data.path, progress)
    evolution.begin()
    if not evolution.evaluates:
        say(f"variant {config['variant']}: no search, {fitness.VARIANTS[config['variant']].description}")
    evolution.run()
    evolve_seconds = sum(r["wall_seconds"] for r in read_log(out / LOG_NAME))
    genome, facts = evolution.select()
    started = time.perf_counter()
    report = train_final(config, data, out, genome, progress, say)
    summary = {
        "format": RUN_FORMAT, "config": config, "best": facts,
        "sigmas": genome.sigmas.tolist(), "layer_names": list(genome.layer_names),
        "generations_done": evolution.generation, "stopped": evolution.stopped,
        "nonfinite_total": evolution.nonfinite_total,
        "test_accuracy": report["test_accuracy"], "test_loss": report["test_loss"],
        "final_training_diverged": report.get("diverged"),
        "evolve_seconds": evolve_seconds, "final_seconds": time.perf_counter() - started,
        "report": str(out / FINAL_DIR / REPORT_NAME),
    }
    write_json(summary_path, summary)
    say(f"best genotype: {_describe_best(facts)}; saved to {out / BEST_GENOME_NAME}")
    say(f"evolution {evolve_seconds:.1f} s, final training {summary['final_seconds']:.1f} s; summary {summary_path}")
    return summary


def _describe_best(facts) -> str:
    text = facts.get("source") or f"generation {facts['generation']}, individual {facts['index']}"
    if facts.get("reevaluated_loss") is not None:
        return f"{text}, re-evaluated validation loss {facts['reevaluated_loss']:.4f} ({facts['selected_by']})"
    if facts.get("loss") is not None:
        return f"{text}, validation loss {facts['loss']:.4f}, accuracy {facts['accuracy']:.4f}"
    return text


def final_training_options(config: dict, out: Path) -> dict:
    """The training run of the best genotype: the evolution's data, device, seed, T and batch."""
    return {"arch": config["arch"], "genes": config["genes"], "width": config.get("width"),
            "genome": str(out / BEST_GENOME_NAME),
            "epochs": config["final_epochs"], "device": config["device"], "seed": config["seed"],
            "time_steps": config["time_steps"], "batch_size": config["batch_size"], "data": config["data"],
            "steps_per_epoch": config["final_steps_per_epoch"], "tf32": config.get("tf32", False)}


def train_final(config: dict, data: RunData, out: Path, genome, progress: str, say) -> dict:
    """Train the best genotype into ``out/final`` (resuming a stopped attempt); its report."""
    final = out / FINAL_DIR
    report_path = final / REPORT_NAME
    if report_path.exists():
        try:
            return read_json(report_path)
        except ValueError:
            pass  # cut short by a kill while it was written: the resumed training writes it again
    resume = (final / TRAIN_CHECKPOINT_NAME).exists()
    say(f"training the best genotype fully into {final}" + (" (resuming)" if resume else ""))
    report, path = run_training(final_training_options(config, out), data, out=final, resume=resume,
                                progress=progress, say=say, genome=genome, on_divergence="stop")
    say(format_report(report, path))
    return report
