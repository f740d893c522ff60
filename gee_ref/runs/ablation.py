"""The regularisation ablation of paper section 4.3, Table 4: the variants, paired over seeds.

    python -m gee_ref.evolve --ablation --seeds 5 [any evolve option]

The variants (``fitness.VARIANTS``), each from the run's start (the paper start by default)
but "calibrated":

    random         no search: one draw of the generation-0 search distribution, trained
    random-search  as many generation-0 draws as the evolution evaluates, the best by L_cls
                   (the same selection), trained: the control for the search itself
    baseline       F = L_cls
    rt             F = L_cls - lambda(gen) * alpha * R_T
    rs             F = L_cls - lambda(gen) * beta * R_S
    ste            F = L_cls - lambda(gen) * (alpha * R_T + beta * R_S)
    calibrated     no search: gee_ref's calibrated start (Kaiming-matching sigma_l, G = I), trained

Every variant gets the same budget: the same generations, population, short training per
individual and selection (random and calibrated evaluate nothing), and the same final
training; and the same seeds, so that a seed's rows share their data order and final batches
and can be compared pair by pair (``gee_ref.measure.statistics.paired_differences``). Each
(variant, seed) is an ordinary evolve run in ``OUT/<variant>-seed<seed>/``, so an interrupted
ablation continues with ``--resume``. The table gives each row's mean and sample standard
deviation (ddof = 1; reconstruction, the paper does not say which) of the final test accuracy,
its paired difference to ``random`` and to ``baseline`` (mean, sd, wins/losses over the seeds),
and, for the regularised variants, how often their fitness ranked a different individual first
than L_cls alone would have (per generation) and whether their final genotype differs from the
baseline's; saved as ``OUT/ablation.json`` and ``OUT/ablation.md``.
"""
from __future__ import annotations

from pathlib import Path

import numpy

from gee_ref.evolution.fitness import VARIANTS
from gee_ref.evolution.search import LOG_NAME, SELECTION_NAME, read_log
from gee_ref.measure.statistics import mean_and_sd, paired_differences
from gee_ref.runs.evolution_run import CONFIG_NAME, run_evolution
from gee_ref.runs.folder import claimed
from gee_ref.storage import atomic
from gee_ref.storage.json_file import read_json, write_json

TABLE_JSON, TABLE_MARKDOWN = "ablation.json", "ablation.md"


def run_ablation(config: dict, data, out, executor, seeds, variants=None, resume: bool = False,
                 progress: str = "off", say=print) -> dict:
    """Run every (variant, seed) and write the table; returns it (see ``ablation_table``)."""
    with claimed(out):
        return _run_all(config, data, Path(out), executor, seeds, variants, resume, progress, say)


def _run_all(config, data, out, executor, seeds, variants, resume, progress, say) -> dict:
    variants = list(VARIANTS if variants is None else variants)
    runs, folders = {}, {}
    for variant in variants:
        for seed in seeds:
            run_dir = out / f"{variant}-seed{seed}"
            run_config = {**config, "variant": variant, "seed": int(seed)}
            exists = (run_dir / CONFIG_NAME).exists()
            if exists and not resume:
                raise ValueError(f"{run_dir} already holds a run: use --resume to continue the ablation")
            say(f"=== ablation: variant {variant}, seed {seed} -> {run_dir}")
            summary = run_evolution(run_config, data, run_dir, executor, resume=exists, progress=progress, say=say)
            runs[(variant, int(seed))], folders[(variant, int(seed))] = summary, run_dir
    table = ablation_table(config, runs, variants, seeds, folders)
    write_json(out / TABLE_JSON, table)
    atomic.write_text(out / TABLE_MARKDOWN, markdown_table(table))
    say(markdown_table(table))
    say(f"saved {out / TABLE_JSON} and {out / TABLE_MARKDOWN}")
    return table


REFERENCES = ("random", "baseline")
BUDGET_KEYS = ("arch", "genes", "width", "data", "start", "generations", "popsize", "eval_steps", "eval_epochs",
               "eval_lr", "batch_size", "val_fraction", "alpha", "beta", "fitness_scale", "draws", "sigma0_log_sigma",
               "sigma0_genes", "cmaes", "select", "reeval_draws", "final_epochs", "final_steps_per_epoch", "time_steps",
               "device", "tf32")


def ablation_table(config: dict, runs: dict, variants, seeds, folders=None) -> dict:
    """{"rows": [...], "budget": {...}} from the run summaries ``runs[(variant, seed)]``; ``folders``
    (same keys) are the run folders, read for the ranking agreement and the final genotypes."""
    seeds = [int(s) for s in seeds]
    accuracies = {v: [runs[(v, s)]["test_accuracy"] for s in seeds] for v in variants}
    rows = []
    for variant in variants:
        summaries = [runs[(variant, s)] for s in seeds]
        mean, sd = mean_and_sd(accuracies[variant])
        row = {"variant": variant, "description": VARIANTS[variant].description, "seeds": seeds,
               "test_accuracies": accuracies[variant], "mean": mean, "std": sd,
               "evolve_seconds_mean": float(numpy.mean([x["evolve_seconds"] for x in summaries])),
               "final_seconds_mean": float(numpy.mean([x["final_seconds"] for x in summaries])),
               "nonfinite_total": int(sum(x["nonfinite_total"] for x in summaries)),
               "final_trainings_diverged": int(sum(bool(x.get("final_training_diverged")) for x in summaries))}
        for reference in REFERENCES:
            if reference in accuracies and reference != variant:
                row[f"minus_{reference}"] = paired_differences(accuracies[variant], accuracies[reference])
        if folders is not None and VARIANTS[variant].search == "cmaes" and (VARIANTS[variant].uses_r_t
                                                                            or VARIANTS[variant].uses_r_s):
            row["regularisers_reranked"] = ranking_disagreement([folders[(variant, s)] for s in seeds])
            if "baseline" in accuracies:
                row["same_final_genotype_as_baseline"] = [
                    same_choice(folders[(variant, s)], folders[("baseline", s)]) for s in seeds]
        rows.append(row)
    budget = {k: config.get(k) for k in BUDGET_KEYS}
    return {"format": "gee_ref-ablation-v2", "budget": budget, "rows": rows}


def ranking_disagreement(run_folders) -> dict:
    """Over the runs' generations: how often the fitness's best individual is not the one with the
    lowest validation loss (the regularisers changed the ranking's top)."""
    generations = differing = 0
    for folder in run_folders:
        for record in read_log(Path(folder) / LOG_NAME):
            scored = [i for i in record["individuals"] if i["fitness"] is not None and i["loss"] is not None]
            if not scored:
                continue
            generations += 1
            by_fitness = min(scored, key=lambda i: i["fitness"])["index"]
            by_loss = min(scored, key=lambda i: i["loss"])["index"]
            differing += by_fitness != by_loss
    return {"generations": generations, "best_differs_from_lowest_loss": differing}


def same_choice(folder, other) -> bool | None:
    """Whether two runs selected the same genotype (None when either has not chosen yet)."""
    paths = [Path(f) / SELECTION_NAME for f in (folder, other)]
    if not all(p.exists() for p in paths):
        return None
    first, second = (numpy.asarray(read_json(p)["vector"]) for p in paths)
    return bool(first.shape == second.shape and numpy.array_equal(first, second))


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _difference(cell) -> str:
    if not cell or cell["mean"] is None:
        return "-"
    sd = "" if cell["sd"] is None else f" +- {100 * cell['sd']:.2f}"
    return f"{100 * cell['mean']:+.2f}{sd} ({cell['wins']}/{cell['losses']})"


def markdown_table(table: dict) -> str:
    """Table 4's layout: variant, test accuracy mean +- sd (%), the paired differences, the time spent."""
    b = table["budget"]
    data = b["data"] or "embedded digits"
    budget = (f"{b['generations']} generations x popsize {b['popsize'] or 'default'}, "
              f"{b['eval_steps'] or str(b['eval_epochs']) + ' epochs'} training steps per individual "
              f"({b['draws']} draw{'s' if b['draws'] != 1 else ''}), select {b['select']}, "
              f"final training {b['final_epochs']} epochs")
    lines = [f"Ablation (paper Table 4 layout): {b['arch']}, g = {b['genes']}, {data}; start {b['start']}; {budget}; "
             f"alpha = {b['alpha']}, beta = {b['beta']} on {b['fitness_scale']} terms; device {b['device']}.",
             "Paired differences in accuracy points, mean +- sd over the seeds (wins/losses).",
             "",
             "| Variant | Test accuracy (%) mean +- sd | vs random | vs baseline | Seeds | Evolution s (mean) "
             "| Final training s (mean) |",
             "|---|---|---|---|---|---|---|"]
    for row in table["rows"]:
        lines.append(f"| {row['variant']} | {_percent(row['mean'])} +- {_percent(row['std'])} "
                     f"| {_difference(row.get('minus_random'))} | {_difference(row.get('minus_baseline'))} "
                     f"| {len(row['seeds'])} | {row['evolve_seconds_mean']:.1f} | {row['final_seconds_mean']:.1f} |")
    notes = [(row["variant"], row["regularisers_reranked"], row.get("same_final_genotype_as_baseline"))
             for row in table["rows"] if "regularisers_reranked" in row]
    diverged = [(row["variant"], row["final_trainings_diverged"]) for row in table["rows"]
                if row.get("final_trainings_diverged")]
    if notes or diverged:
        lines.append("")
        for variant, count in diverged:
            lines.append(f"- {variant}: the final training diverged (loss NaN or infinite) in {count} of "
                         f"{len(table['rows'][0]['seeds'])} seeds; those runs are tested with the weights of their "
                         f"last finished epoch (or of the start).")
        for variant, reranked, same in notes:
            text = (f"- {variant}: its fitness picked a different best individual from the one L_cls alone picks in "
                    f"{reranked['best_differs_from_lowest_loss']} of {reranked['generations']} generations")
            if same is not None:
                text += f"; its final genotype equals the baseline's in {sum(bool(x) for x in same)} of {len(same)} seeds"
            lines.append(text + ".")
    return "\n".join(lines) + "\n"


def load_table(out) -> dict:
    return read_json(Path(out) / TABLE_JSON)
