"""ablation: the paired regularisation ablation of paper Table 4 (section 4.3).

The claim tested: evolving the initial genetic wiring beats a random one at equal budget, on
ResNet-19 "due to the gradient vanishing problem" (CIFAR-10: random 54.96 +- 5.89%, STE
96.16 +- 0.13%), and each regulariser of eq. 16 (R_T, R_S) improves on the loss alone.

Each seed is one ``python -m gee_ref.evolve --ablation --seed S --seeds 1`` sub-run (``subruns``,
``jobs`` seeds at once), which runs every variant of ``gee_ref.evolution.fitness.VARIANTS``
(random, random-search, baseline, rt, rs, ste, calibrated) from the paper start by default
(``gee_ref.runs.ablation``). The table is ``gee_ref.runs.ablation.ablation_table`` over all
the seeds: each variant's mean +- sd and its paired differences to ``random`` and
``baseline`` (mean, sd, wins/losses), and how often the regularisers changed a generation's
best individual.

The defaults (resnet14, the 13-convolution residual net where the paper start's small
gradients matter, width 16, g = 16, T = 2, 3 generations of 8, 50 short-training steps, 2
final epochs, seeds 0-2) are a starting point for a CPU run, not a measured budget: time one
seed with ``--seeds 1`` before choosing the scale. Measured (README, "Reproducing the paper"):
resnet14 with 6 individuals a generation, 30 steps and 4 final epochs on 10,000 16x16 images
took 68-70 minutes a seed, three seeds at once on 2 cores.
"""
from __future__ import annotations

from gee_ref.evolution.fitness import SCALES, VARIANTS
from gee_ref.evolution.genome import STARTS
from gee_ref.evolution.selection import SELECT_MODES
from gee_ref.experiments.folder import run_folder
from gee_ref.experiments.options import MODEL_OPTIONS, Option, choice
from gee_ref.experiments.provenance import epochs_text, model_line
from gee_ref.experiments.subruns import Program, SubRun, run_subruns
from gee_ref.runs.ablation import TABLE_JSON, ablation_table, markdown_table
from gee_ref.runs.checks import require_at_least
from gee_ref.runs.evolution_run import CONFIG_NAME, OPTION_DEFAULTS, SUMMARY_NAME
from gee_ref.storage.json_file import read_json

NAME = "ablation"
SUMMARY = "paper Table 4: random, random-search, baseline, rt, rs, ste, calibrated, paired over seeds"
CLAIM = ("Table 4 / section 4.3: the evolved initial wiring beats the random model (ResNet-19, CIFAR-10: random "
         "54.96 +- 5.89%, STE 96.16 +- 0.13%, 'due to the gradient vanishing problem'), and R_T and R_S each "
         "improve on the loss alone")


OPTIONS = MODEL_OPTIONS + (
    Option("genes", int, None, "g of the genetic net"),
    Option("start", choice("start", STARTS), None, "the search's start: paper or calibrated"),
    Option("generations", int, None, "CMA-ES generations"),
    Option("popsize", int, None, "individuals per generation"),
    Option("eval_steps", int, None, "short-training updates per individual"),
    Option("eval_lr", float, None, "lr of the short training"),
    Option("val_fraction", float, None, "share of the training split held out to score individuals"),
    Option("draws", int, None, "draws of the encodings per individual (common to a generation)"),
    Option("fitness_scale", choice("fitness_scale", SCALES), None, "eq. 16 on standardised or raw terms"),
    Option("alpha", float, None, "weight of R_T in eq. 16"),
    Option("beta", float, None, "weight of R_S in eq. 16"),
    Option("select", choice("select", SELECT_MODES), None, "the final choice: reeval, mean or loss"),
    Option("final_epochs", int, None, "epochs of the final training of each variant's genotype"),
    Option("final_steps_per_epoch", int, None, "cap the batches per epoch of the final training (quick runs)"),
)
DEFAULTS = {"arch": "resnet14", "genes": 16, "time_steps": 2, "batch_size": 64, "seeds": [0, 1, 2],
            "start": "paper", "generations": 3, "popsize": 8, "eval_steps": 50, "eval_lr": 0.1, "val_fraction": 0.2,
            "draws": 1, "fitness_scale": "standardised", "alpha": 1.0, "beta": 1.0, "select": "reeval",
            "final_epochs": 2}
EVOLVE = Program("gee_ref.evolve", {**OPTION_DEFAULTS, "ablation": False, "seeds": 3}, TABLE_JSON, None)
EVOLVE_KEYS = tuple(name for name in (o.name for o in OPTIONS) if name not in ("seeds",))


def check(settings: dict, data: dict) -> None:
    require_at_least(settings, ("generations", "popsize", "eval_steps", "draws", "final_epochs", "batch_size",
                                "time_steps", "genes"))


def scale(settings: dict) -> str:
    s = settings
    return (f"{model_line(s)}; g = {s['genes']}; start {s['start']}; {s['generations']} generations x "
            f"{s['popsize']}, {s['eval_steps']} short-training steps, {s['draws']} draw(s), select {s['select']}; "
            f"final training {epochs_text(s['final_epochs'], s['final_steps_per_epoch'])}")


def plan(settings: dict) -> list:
    """One evolve --ablation sub-run per seed."""
    options = {name: settings[name] for name in EVOLVE_KEYS}
    return [SubRun(f"seed{seed}", "ablation", int(seed), {**options, "seed": int(seed), "seeds": 1, "ablation": True},
                   EVOLVE) for seed in settings["seeds"]]


def _seed_result(out, subrun) -> dict:
    table = read_json(run_folder(out, subrun.key) / TABLE_JSON)
    accuracies = ", ".join(f"{row['variant']} {row['test_accuracies'][0]:.4f}" for row in table["rows"])
    return {"summary": f"test accuracy {accuracies}", "variants": [row["variant"] for row in table["rows"]]}


def run(context) -> dict:
    settings = context.settings
    subruns = plan(settings)
    results = run_subruns(subruns, context.out, jobs=context.jobs, say=context.say,
                          show_starts=context.progress != "off", read_result=_seed_result)
    variants = results[subruns[0].key]["variants"]
    summaries, folders = {}, {}
    for subrun in subruns:
        for variant in variants:
            folder = run_folder(context.out, subrun.key) / f"{variant}-seed{subrun.seed}"
            summaries[(variant, subrun.seed)], folders[(variant, subrun.seed)] = read_json(folder / SUMMARY_NAME), folder
    config = read_json(folders[(variants[0], subruns[0].seed)] / CONFIG_NAME)
    table = ablation_table(config, summaries, variants, [s.seed for s in subruns], folders)
    runs = [{"variant": variant, "seed": seed, "test_accuracy": summary["test_accuracy"],
             "evolve_seconds": summary["evolve_seconds"], "final_seconds": summary["final_seconds"],
             "folder": str(folders[(variant, seed)])} for (variant, seed), summary in summaries.items()]
    return {"rows": table["rows"], "budget": table["budget"], "runs": runs,
            "variant_descriptions": {v: VARIANTS[v].description for v in variants}}


def markdown(table: dict) -> str:
    return (f"# ablation (paper Table 4)\n\nScale: {table['scale']}.\n\n"
            + markdown_table({"budget": table["budget"], "rows": table["rows"]})
            + f"\nCommand: `{table['commands'][0]}`\n")


def draw(figure, table: dict) -> None:
    """Each variant's test accuracy: a dot per seed, seeds joined across variants (paired)."""
    axes = figure.add_subplot()
    rows = table["rows"]
    names = [row["variant"] for row in rows]
    for k, seed in enumerate(rows[0]["seeds"]):
        axes.plot(range(len(rows)), [100 * row["test_accuracies"][k] for row in rows], color="grey", alpha=0.4,
                  linewidth=0.8, marker="o", markersize=3)
    axes.errorbar(range(len(rows)), [100 * row["mean"] for row in rows],
                  yerr=[0.0 if row["std"] is None else 100 * row["std"] for row in rows], color="C0", marker="s",
                  linestyle="none", capsize=4, label="mean +- sd")
    axes.set_xticks(range(len(rows)), names, rotation=20)
    axes.set_ylabel("test accuracy (%)")
    axes.set_title("ablation (Table 4): each seed's variants joined", fontsize=10)
    axes.legend(fontsize=8)
    axes.grid(True, axis="y", alpha=0.3)
