"""The regularisation ablation of paper section 4.3, Table 4: five fitness variants, several seeds.

    python -m gee_ref.evolve --ablation --seeds 3 [any evolve option]

Variants (``fitness.VARIANTS``, eq. 16 with some weights set to zero):

    random    no evolution: the starting genotype (G = I, Kaiming sigmas) is trained
    baseline  F = L_cls
    rt        F = L_cls - lambda(gen) * alpha * R_T
    rs        F = L_cls - lambda(gen) * beta * R_S
    ste       F = L_cls - lambda(gen) * (alpha * R_T + beta * R_S)

Every variant gets the same budget: the same generations, population and short training per
individual (the random variant evolves nothing), and the same final training. Each (variant,
seed) is an ordinary evolve run in ``OUT/<variant>-seed<seed>/``, so an interrupted ablation
continues with ``--resume``. The table gives the mean and the sample standard deviation
(ddof = 1; reconstruction, the paper does not say which) of the final test accuracy over the
seeds, and is saved as ``OUT/ablation.json`` and ``OUT/ablation.md``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy

from gee_ref.evolution.fitness import VARIANTS
from gee_ref.runs.evolution_run import CONFIG_NAME, run_evolution
from gee_ref.runs.folder import claimed, write_json
from gee_ref.storage import atomic

TABLE_JSON, TABLE_MARKDOWN = "ablation.json", "ablation.md"


def run_ablation(config: dict, data, out, executor, seeds, variants=None, resume: bool = False,
                 progress: str = "off", say=print) -> dict:
    """Run every (variant, seed) and write the table; returns it (see ``ablation_table``)."""
    with claimed(out):
        return _run_all(config, data, Path(out), executor, seeds, variants, resume, progress, say)


def _run_all(config, data, out, executor, seeds, variants, resume, progress, say) -> dict:
    variants = list(VARIANTS if variants is None else variants)
    runs = {}
    for variant in variants:
        for seed in seeds:
            run_dir = out / f"{variant}-seed{seed}"
            run_config = {**config, "variant": variant, "seed": int(seed)}
            exists = (run_dir / CONFIG_NAME).exists()
            if exists and not resume:
                raise ValueError(f"{run_dir} already holds a run: use --resume to continue the ablation")
            say(f"=== ablation: variant {variant}, seed {seed} -> {run_dir}")
            summary = run_evolution(run_config, data, run_dir, executor, resume=exists, progress=progress, say=say)
            runs[(variant, int(seed))] = summary
    table = ablation_table(config, runs, variants, seeds)
    write_json(out / TABLE_JSON, table)
    atomic.write_text(out / TABLE_MARKDOWN, markdown_table(table))
    say(markdown_table(table))
    say(f"saved {out / TABLE_JSON} and {out / TABLE_MARKDOWN}")
    return table


def _mean_std(values) -> tuple:
    values = numpy.asarray(values, dtype=numpy.float64)
    std = float(values.std(ddof=1)) if values.size > 1 else math.nan
    return float(values.mean()), std


def ablation_table(config: dict, runs: dict, variants, seeds) -> dict:
    """{"rows": [{variant, accuracies, mean, std, ...}], "budget": ...} from the run summaries."""
    rows = []
    for variant in variants:
        summaries = [runs[(variant, int(seed))] for seed in seeds]
        accuracies = [s["test_accuracy"] for s in summaries]
        mean, std = _mean_std(accuracies)
        rows.append({"variant": variant, "seeds": [int(s) for s in seeds], "test_accuracies": accuracies,
                     "mean": mean, "std": None if math.isnan(std) else std,
                     "evolve_seconds_mean": float(numpy.mean([s["evolve_seconds"] for s in summaries])),
                     "final_seconds_mean": float(numpy.mean([s["final_seconds"] for s in summaries])),
                     "best_validation_loss_mean": _mean_or_none([s["best"].get("loss") for s in summaries]),
                     "nonfinite_total": int(sum(s["nonfinite_total"] for s in summaries))})
    budget = {k: config[k] for k in ("arch", "genes", "data", "generations", "popsize", "eval_steps", "eval_epochs",
                                     "eval_lr", "batch_size", "val_fraction", "alpha", "beta", "sigma0", "cmaes",
                                     "select", "final_epochs", "final_steps_per_epoch", "time_steps", "device")}
    budget["tf32"] = bool(config.get("tf32"))
    return {"format": "gee_ref-ablation-v1", "budget": budget, "rows": rows}


def _mean_or_none(values):
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(numpy.mean(finite)) if finite else None


def markdown_table(table: dict) -> str:
    """Table 4's layout: variant, test accuracy mean +- std (%), plus the time spent."""
    b = table["budget"]
    data = b["data"] or "embedded digits"
    budget = (f"{b['generations']} generations x popsize {b['popsize'] or 'default'}, "
              f"{b['eval_steps'] or str(b['eval_epochs']) + ' epochs'} training steps per individual, "
              f"final training {b['final_epochs']} epochs")
    lines = [f"Ablation (paper Table 4 layout): {b['arch']}, g = {b['genes']}, {data}; {budget}; "
             f"alpha = {b['alpha']}, beta = {b['beta']}, device {b['device']}.",
             "",
             "| Variant | Test accuracy (%) mean +- std | Seeds | Best val. loss (mean) | Evolution s (mean) "
             "| Final training s (mean) |",
             "|---|---|---|---|---|---|"]
    for row in table["rows"]:
        std = "n/a" if row["std"] is None else f"{100 * row['std']:.2f}"
        loss = "-" if row["best_validation_loss_mean"] is None else f"{row['best_validation_loss_mean']:.4f}"
        lines.append(f"| {row['variant']} | {100 * row['mean']:.2f} +- {std} | {len(row['seeds'])} | {loss} "
                     f"| {row['evolve_seconds_mean']:.1f} | {row['final_seconds_mean']:.1f} |")
    return "\n".join(lines) + "\n"


def load_table(out) -> dict:
    return json.loads((Path(out) / TABLE_JSON).read_text())
