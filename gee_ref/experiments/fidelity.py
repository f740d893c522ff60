"""fidelity: does the short evaluation rank genotypes as their full training does? (eq. 13-16)

The claim tested (section 3.2): the fitness of eq. 16 and its regularisers are there "to get as
close to the actual performance of each solution as possible within a limited time". Here:

1. ``individuals`` genotypes are drawn from the evolution's generation-0 search distribution
   around the start (``gee_ref.cmaes.CMAES`` at the start genotype, the per-block stds of
   ``gee_ref.evolution.search.initial_stds``; one ``ask`` of that many);
2. each gets the evolution's short evaluation
   (``gee_ref.evolution.evaluation.evaluate_individual``: a short training on the training split
   minus the validation split, then L_cls and R_T on the validation split, R_S of its G), all on
   the common random numbers of one generation, and the eq. 16 fitness of the whole set
   (``gee_ref.evolution.fitness.generation_fitness``, generation 0);
3. each is then trained fully and independently (a ``python -m gee_ref.train --genome
   --on-divergence stop`` sub-run, its own encoding draw) and tested: a full training that
   diverges is tested with the weights of its last finished epoch (or its start) and counted;
4. the table gives Spearman's rho of the final test accuracy with each term, signed so that a
   positive rho means the term ranks as the evolution uses it (lower L and F, higher R_T and R_S
   are preferred), with a percentile bootstrap 95% interval over the genotypes
   (``statistics``); the short training's validation accuracy is given beside them. The rho
   are over the genotypes whose short evaluation stayed finite; one that diverged there gets
   no fitness (the evolution ranks it last), and the table says how many of those also
   diverged, or trained, in full.

The short evaluations run in this process, one after another (each saved in ``OUT/short/``, so
a resumed experiment does not repeat them); the full trainings are sub-runs, ``jobs`` at once.
The defaults (resnet14 width 16, g = 16, T = 2, the paper start, 48 genotypes, 50
short-training steps, 2 epochs of full training) are a starting point for a CPU run, not a
measured budget: time a few genotypes (``--individuals 4``) before choosing the scale. Measured
(README, "Reproducing the paper"): vgg8 with 30 steps and 3 epochs on 10,000 16x16 images took
1-7 s a short evaluation and 29-31 s a full training that did not diverge (two at a time on two
idle cores); 48 genotypes, 12 minutes.
"""
from __future__ import annotations

import math

import numpy

from gee_ref import backend
from gee_ref.cmaes import CMAES
from gee_ref.evolution.evaluation import EvaluationSettings, IndividualTask, evaluate_individual
from gee_ref.evolution.fitness import SCALES, generation_fitness
from gee_ref.evolution.genome import STARTS, save_genome, starting_genome
from gee_ref.evolution.search import AUTO_DIAGONAL_ABOVE, initial_stds
from gee_ref.experiments.folder import run_folder
from gee_ref.experiments.options import COMMON_OPTIONS, Option, choice
from gee_ref.experiments.provenance import epochs_text, model_line
from gee_ref.experiments.statistics import bootstrap_interval, spearman
from gee_ref.experiments.subruns import SubRun, run_subruns
from gee_ref.experiments.tables import markdown_table
from gee_ref.models import build_from_config
from gee_ref.runs.checks import require_at_least
from gee_ref.runs.evolution_run import SIGMA0_GENES_SCALE, SIGMA0_LOG_SIGMA
from gee_ref.storage.json_file import read_json, write_json

NAME = "fidelity"
SUMMARY = "rank correlation of the short evaluation's L, R_T, R_S and eq. 16 fitness with full-training accuracy"
CLAIM = ("section 3.2: the fitness (eq. 13-16) gets 'as close to the actual performance of each solution as "
         "possible within a limited time'")
#: The terms correlated with the final accuracy, and the sign that makes "preferred by the evolution" positive.
TERMS = (("loss", -1.0, "L_cls (validation loss), lower preferred"),
         ("r_t", 1.0, "R_T (eq. 13), higher preferred"),
         ("r_s", 1.0, "R_S (eq. 14-15), higher preferred"),
         ("fitness", -1.0, "F (eq. 16), lower preferred"),
         ("accuracy", 1.0, "short training's validation accuracy (not a term of eq. 16)"))


OPTIONS = COMMON_OPTIONS + (
    Option("genes", int, None, "g of the genetic net"),
    Option("individuals", int, None, "genotypes drawn around the start"),
    Option("start", choice("start", STARTS), None, "the start the genotypes are drawn around: paper or calibrated"),
    Option("eval_steps", int, None, "short-training updates per genotype"),
    Option("eval_lr", float, None, "lr of the short training"),
    Option("val_fraction", float, None, "share of the training split held out for the short evaluation"),
    Option("draws", int, None, "draws of the encodings per short evaluation"),
    Option("sigma0_log_sigma", float, None, f"std of each log sigma_l around the start (default {SIGMA0_LOG_SIGMA})"),
    Option("sigma0_genes", float, None, f"std of each entry of G (default {SIGMA0_GENES_SCALE}/sqrt(g))"),
    Option("fitness_scale", choice("fitness_scale", SCALES), None, "eq. 16 on standardised or raw terms"),
    Option("alpha", float, None, "weight of R_T in eq. 16"),
    Option("beta", float, None, "weight of R_S in eq. 16"),
    Option("resamples", int, None, "bootstrap resamples of the rank correlations"),
)
DEFAULTS = {"arch": "resnet14", "genes": 16, "time_steps": 2, "batch_size": 64, "seeds": [0],
            "epochs": 2, "lr": 0.1, "augment": False, "eval_batches": 0, "report_batches": "all",
            "individuals": 48, "start": "paper", "eval_steps": 50, "eval_lr": 0.1, "val_fraction": 0.2, "draws": 1,
            "sigma0_log_sigma": SIGMA0_LOG_SIGMA, "fitness_scale": "standardised", "alpha": 1.0, "beta": 1.0,
            "resamples": 2000}
TRAINING_KEYS = ("arch", "width", "time_steps", "batch_size", "device", "epochs", "lr", "augment", "steps_per_epoch",
                 "eval_batches", "report_batches", "data")


def check(settings: dict, data: dict) -> None:
    if len(settings["seeds"]) != 1:
        raise ValueError(f"fidelity runs on one seed (its genotypes and draws), got --seeds {settings['seeds']}")
    if settings["individuals"] < 3:
        raise ValueError(f"--individuals must be >= 3 for a rank correlation, got {settings['individuals']}")
    require_at_least(settings, ("genes", "eval_steps", "draws", "epochs", "batch_size", "time_steps", "resamples"))
    if not 0.0 < settings["val_fraction"] < 1.0:
        raise ValueError(f"--val-fraction must lie strictly between 0 and 1, got {settings['val_fraction']}")


def scale(settings: dict) -> str:
    s = settings
    return (f"{model_line(s)}; g = {s['genes']}; {s['individuals']} genotypes around the {s['start']} start; "
            f"short evaluation {s['eval_steps']} steps, {s['draws']} draw(s); full training "
            f"{epochs_text(s['epochs'], s['steps_per_epoch'])}, SGD lr {s['lr']} cosine")


def sigma0_genes(settings: dict) -> float:
    return settings["sigma0_genes"] or SIGMA0_GENES_SCALE / math.sqrt(settings["genes"])


def genotypes(settings: dict, data: dict):
    """``(start genome, [N, n] genotypes)``: one CMA-ES ask at generation 0 around the start."""
    s = settings
    height, width, channels = data["image_shape"]
    model = build_from_config({"arch": s["arch"], "genetic": True, "genes": s["genes"], "width": s["width"],
                               "num_classes": len(data["classes"]), "image_shape": [height, width, channels],
                               "time_steps": s["time_steps"], "seed": 0, "device": "cpu"})
    start = starting_genome(model, s["start"])
    stds = initial_stds(start, {"sigma0_log_sigma": s["sigma0_log_sigma"], "sigma0_genes": sigma0_genes(s)})
    es = CMAES(start.vector, 1.0, popsize=s["individuals"], seed=backend.derive_seed(s["seeds"][0], "cmaes"),
               diagonal=start.vector.size > AUTO_DIAGONAL_ABOVE, backend="cpu", stds=stds)
    return start, numpy.asarray(backend.to_host(es.ask()), dtype=numpy.float64)


def short_evaluations(context, start, X) -> list:
    """Each genotype's evaluation record, computed once and kept in ``OUT/short/``."""
    s = context.settings
    evaluation = EvaluationSettings(genome_template=start, data_path=s["data"], seed=s["seeds"][0],
                                    val_fraction=s["val_fraction"], eval_steps=s["eval_steps"], eval_epochs=None,
                                    batch_size=s["batch_size"], lr=s["eval_lr"], device=s["device"], draws=s["draws"])
    folder = context.out / "short"
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i, vector in enumerate(X):
        path = folder / f"ind{i:03d}.json"
        if not path.exists():
            record = evaluate_individual(IndividualTask(evaluation, vector, 0, i))
            write_json(path, record)
            context.say(f"short evaluation {i + 1}/{len(X)}: loss {record['loss']:.4f}, R_T {record['r_t']:.4f}, "
                        f"R_S {record['r_s']:.4f}, {record['seconds']:.1f} s")
        records.append(read_json(path))
    return records


def run(context) -> dict:
    s, out = context.settings, context.out
    start, X = genotypes(s, context.data)
    records = short_evaluations(context, start, X)
    scores = generation_fitness([r["loss"] for r in records], [r["r_t"] for r in records],
                                [r["r_s"] for r in records], 0, s["alpha"], s["beta"], s["fitness_scale"])
    (out / "genomes").mkdir(parents=True, exist_ok=True)
    common = {key: s[key] for key in TRAINING_KEYS}
    subruns = []
    for i, vector in enumerate(X):
        genome_path = out / "genomes" / f"ind{i:03d}.h5"
        if not genome_path.exists():
            save_genome(genome_path, start.with_vector(vector), extra={"individual": i, "seed": s["seeds"][0]})
        subruns.append(SubRun(f"ind{i:03d}", f"ind{i:03d}", s["seeds"][0],
                              {**common, "genes": s["genes"], "genome": str(genome_path), "seed": s["seeds"][0],
                               "on_divergence": "stop"}))
    results = run_subruns(subruns, out, jobs=context.jobs, say=context.say, show_starts=context.progress != "off")
    individuals = [{"index": i, "loss": r["loss"], "r_t": r["r_t"], "r_s": r["r_s"], "fitness": f,
                    "accuracy": r["accuracy"], "nonfinite": r["nonfinite"], "short_seconds": r["seconds"],
                    **{k: results[sub.key][k] for k in ("test_accuracy", "train_seconds", "wall_seconds", "command")},
                    "full_training_diverged": bool(results[sub.key].get("diverged")),
                    "folder": str(run_folder(out, sub.key))}
                   for i, (r, f, sub) in enumerate(zip(records, scores, subruns))]
    return {"rows": correlations(individuals, s["resamples"], s["seeds"][0]), "individuals": individuals,
            "sigma0": {"log_sigma": s["sigma0_log_sigma"], "genes": sigma0_genes(s)}}


def correlations(individuals: list, resamples: int, seed: int) -> list:
    """Per term: Spearman's rho of the signed term with the test accuracy, its bootstrap 95% interval."""
    usable = [i for i in individuals if not i["nonfinite"] and math.isfinite(i["fitness"])]
    accuracy = [i["test_accuracy"] for i in usable]
    rows = []
    for term, sign, label in TERMS:
        values = [sign * i[term] for i in usable]
        rho = spearman(values, accuracy) if len(usable) >= 2 else math.nan
        interval = bootstrap_interval(values, accuracy, resamples=resamples, seed=seed) if len(usable) >= 3 else None
        rows.append({"term": term, "label": label, "sign": sign, "spearman": None if math.isnan(rho) else rho,
                     "interval_95": None if interval is None else list(interval), "genotypes": len(usable)})
    return rows


def markdown(table: dict) -> str:
    lines = [[row["label"], "-" if row["spearman"] is None else f"{row['spearman']:+.3f}",
              "-" if row["interval_95"] is None else f"[{row['interval_95'][0]:+.3f}, {row['interval_95'][1]:+.3f}]",
              row["genotypes"]] for row in table["rows"]]
    accuracies = [i["test_accuracy"] for i in table["individuals"]]
    return (f"# fidelity (eq. 13-16 against full training)\n\nScale: {table['scale']}.\n\n"
            + markdown_table(["Term of the short evaluation", "Spearman rho with test accuracy", "Bootstrap 95%",
                              "Genotypes"], lines)
            + f"\nrho > 0: the term ranks the genotypes as their full training does, in the direction eq. 16 "
              f"uses it. Final test accuracy over the genotypes: {100 * min(accuracies):.2f}% to "
              f"{100 * max(accuracies):.2f}% (mean {100 * sum(accuracies) / len(accuracies):.2f}%).\n\n"
            + divergence_line(table["individuals"]) + "\n\n"
            + f"Command: `{table['commands'][0]}`\n")


def divergence_line(individuals: list) -> str:
    """How the short evaluation's divergences (no fitness) match the full trainings'."""
    def accuracy_range(group):
        values = [100 * i["test_accuracy"] for i in group]
        return f" (test accuracy {min(values):.2f}% to {max(values):.2f}%)" if values else ""
    short = [i for i in individuals if i["nonfinite"]]
    kept = [i for i in individuals if not i["nonfinite"]]
    short_full = [i for i in short if i.get("full_training_diverged")]
    kept_full = [i for i in kept if i.get("full_training_diverged")]
    if not short:
        return (f"Divergence: none of the {len(individuals)} genotypes diverged in the short evaluation; "
                f"{len(kept_full)} diverged in full training{accuracy_range(kept_full)}"
                + ("; a diverged full training is tested with the weights of its last finished epoch (or its "
                   "start)." if kept_full else "."))
    return (f"Divergence: {len(short)} of {len(individuals)} genotypes diverged in the short evaluation (no "
            f"fitness; left out of the rho); {len(short_full)} of them diverged in full training as well"
            f"{accuracy_range(short_full)}, {len(short) - len(short_full)} trained"
            f"{accuracy_range([i for i in short if not i.get('full_training_diverged')])}. Of the {len(kept)} "
            f"others, {len(kept_full)} diverged in full training{accuracy_range(kept_full)}; a diverged full "
            f"training is tested with the weights of its last finished epoch (or its start).")


def draw(figure, table: dict) -> None:
    """The test accuracy against each term, one panel a term, rho in each title."""
    rows = table["rows"]
    panels = figure.subplots(1, len(rows), sharey=True)
    figure.set_size_inches(3.0 * len(rows), 3.2)
    for axes, row in zip(panels, rows):
        people = [i for i in table["individuals"] if not i["nonfinite"]]
        axes.scatter([i[row["term"]] for i in people], [100 * i["test_accuracy"] for i in people], s=12, color="C0")
        rho = "-" if row["spearman"] is None else f"{row['spearman']:+.2f}"
        axes.set_title(f"{row['term']}: rho {rho}", fontsize=9)
        axes.set_xlabel(row["term"], fontsize=8)
        losses = [i["loss"] for i in people]
        if row["term"] == "loss" and losses and max(losses) > 100 * min(losses):
            axes.set_xscale("log")  # a short training that blew up has a loss orders of magnitude above the rest
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("full-training test accuracy (%)")
