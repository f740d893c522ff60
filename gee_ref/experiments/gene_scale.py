"""gene-scale: accuracy against parameters as g grows (paper Fig. 3, Table 2).

The claim tested (abstract, Table 2): genetic encoding "compresses parameters by approximately
50% to 80%" while keeping (the paper: improving) accuracy. The paper compares its genetic
nets with other methods' published results; here every configuration is trained by the same
recipe, on the same seeds, so the comparison is with the network's own dense twin:

* ``g<g>``: the genetic net at each g of ``genes`` (eq. 1-2, the calibrated start);
* ``dense``: its dense twin (same layout, Conv2d/Linear, Kaiming init);
* ``dense-w<w>``: dense nets narrowed to the width whose parameter count is closest (in ratio)
  to the genetic net's at each g of ``match_genes``: does the genetic form beat a plain
  smaller network of the same size?
* ``g<g>-frozen``: G frozen at I for each g of ``frozen_genes`` (``train --freeze-genes``),
  a plain rank-g factorisation W = X_out X_in^T: what do the trained genes add?

Every configuration runs on every seed (``seeds``), and a seed fixes the data order and the
initial draws wherever two configurations share them, so the table gives, besides each
row's mean +- sd (ddof = 1), the paired difference to the dense twin and, for the narrowed and
frozen rows, to the genetic net they are matched with (``statistics.paired_by_seed``).

The defaults (vgg8 at its width 16, T = 2, 2 epochs of batch 64, SGD lr 0.1 cosine, no augmentation,
seeds 0-2, g in 2..32, narrowed twins for g = 4 and 16, frozen controls at g = 4 and 16) are
the scale chosen for this project's 2-core machine (README, "Reproducing the paper").
"""
from __future__ import annotations

import math
from pathlib import Path

from gee_ref.experiments.options import COMMON_OPTIONS, Option, int_list
from gee_ref.experiments.provenance import epochs_text, model_line
from gee_ref.experiments.statistics import paired_by_seed
from gee_ref.experiments.subruns import SubRun, run_subruns
from gee_ref.experiments.tables import markdown_table, mean_pm_sd, percent, signed_percent
from gee_ref.measure.parameters import count_parameters
from gee_ref.measure.statistics import mean_and_sd
from gee_ref.models import ARCHITECTURES, build_model
from gee_ref.runs.checks import require_at_least

NAME = "gene-scale"
SUMMARY = "accuracy against parameters: genetic nets at several g, the dense twin, narrowed dense nets, G frozen at I"
CLAIM = ("Table 2 / abstract: genetic encoding 'compresses parameters by approximately 50% to 80%' while keeping "
         "accuracy; Fig. 3: accuracy grows with the number of genes g")


def optional_int_list(text: str) -> list:
    """int_list, or [] for 'none'."""
    return [] if str(text).strip().lower() == "none" else int_list(text)


OPTIONS = COMMON_OPTIONS + (
    Option("genes", int_list, None, "the g of the genetic nets, e.g. '2,4,8,16,32'"),
    Option("match_genes", optional_int_list, None,
           "g values (among --genes) that get a dense net narrowed to their parameter count, or 'none'"),
    Option("frozen_genes", optional_int_list, None, "g values (among --genes) trained with G frozen at I, or 'none'"),
)
DEFAULTS = {"arch": "vgg8", "epochs": 2, "batch_size": 64, "time_steps": 2, "lr": 0.1,
            "augment": False, "seeds": [0, 1, 2], "eval_batches": 20, "report_batches": "all",
            "genes": [2, 4, 8, 16, 32], "match_genes": [4, 16], "frozen_genes": [4, 16]}
TRAINING_KEYS = ("arch", "epochs", "batch_size", "time_steps", "lr", "augment", "steps_per_epoch",
                 "eval_batches", "report_batches", "device", "data")


def check(settings: dict, data: dict) -> None:
    spec = ARCHITECTURES.get(settings["arch"])
    if spec is None:
        raise ValueError(f"unknown architecture {settings['arch']!r}: expected one of {', '.join(ARCHITECTURES)}")
    if spec.width is None and settings["width"] is not None:
        raise ValueError(f"--width: {settings['arch']} has no width option (vgg8 and resnet14 have one)")
    if spec.width is None and settings["match_genes"]:
        raise ValueError(f"{settings['arch']} has no width option, so no narrowed dense twin: use --match-genes none "
                         f"(or vgg8, resnet14)")
    if min(settings["genes"]) < 1 or len(set(settings["genes"])) != len(settings["genes"]):
        raise ValueError(f"--genes must be distinct positive integers, got {settings['genes']}")
    for name in ("match_genes", "frozen_genes"):
        outside = sorted(set(settings[name]) - set(settings["genes"]))
        if outside:
            raise ValueError(f"--{name.replace('_', '-')}: {outside} not among --genes {settings['genes']}")
    require_at_least(settings, ("epochs", "batch_size", "time_steps"))


def scale(settings: dict) -> str:
    return (f"{model_line(settings)}; {epochs_text(settings['epochs'], settings['steps_per_epoch'])}, "
            f"SGD lr {settings['lr']} cosine, augmentation {'on' if settings['augment'] else 'off'}")


def _model_shape(data: dict) -> dict:
    height, _, channels = data["image_shape"]
    return {"num_classes": len(data["classes"]), "in_channels": channels, "image_size": height}


def parameters_of(settings: dict, data: dict, genetic: bool, genes=None, width=None) -> int:
    """The parameter count (paper eq. 2 for a genetic net) of a configuration on this data."""
    options = {"width": settings["width"] if width is None else width} if settings["width"] is not None else {}
    model = build_model(settings["arch"], genetic=genetic, genes=genes, time_steps=settings["time_steps"],
                        **_model_shape(data), **options)
    return count_parameters(model)


def matching_width(settings: dict, data: dict, genes: int) -> tuple:
    """``(width, dense parameters, genetic parameters)``: the dense width up to the base width whose
    parameter count is closest in ratio to the genetic net's at ``genes``."""
    target = parameters_of(settings, data, genetic=True, genes=genes)
    counts = {w: parameters_of(settings, data, genetic=False, width=w) for w in range(1, settings["width"] + 1)}
    width = min(counts, key=lambda w: abs(math.log(counts[w] / target)))
    return width, counts[width], target


def configurations(settings: dict, data: dict) -> list:
    """The rows: dicts with key, kind, label, genes, width, the row it is matched with, options."""
    width = settings["width"]
    rows = [{"key": f"g{g}", "kind": "genetic", "label": f"genetic g = {g}", "genes": g, "width": width,
             "matched_with": None, "options": {"genes": g, "start": "calibrated"}} for g in settings["genes"]]
    rows.append({"key": "dense", "kind": "dense", "label": "dense twin", "genes": None, "width": width,
                 "matched_with": None, "options": {"dense": True}})
    for g in settings["match_genes"]:
        w, _, _ = matching_width(settings, data, g)
        rows.append({"key": f"dense-w{w}", "kind": "narrowed dense", "label": f"dense, width {w} (~ g = {g})",
                     "genes": None, "width": w, "matched_with": f"g{g}", "options": {"dense": True}})
    for g in settings["frozen_genes"]:
        rows.append({"key": f"g{g}-frozen", "kind": "frozen G = I", "label": f"g = {g}, G frozen at I",
                     "genes": g, "width": width, "matched_with": f"g{g}",
                     "options": {"genes": g, "start": "calibrated", "freeze_genes": True}})
    keys = [row["key"] for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two configurations share a name: {keys} (two --match-genes at one width?)")
    return rows


def plan(settings: dict, rows: list) -> list:
    """Every (configuration, seed) as a training sub-run, all configurations of a seed together."""
    common = {key: settings[key] for key in TRAINING_KEYS}
    subruns = []
    for seed in settings["seeds"]:
        for row in rows:
            options = {**common, **row["options"], "seed": int(seed)}
            if row["width"] is not None:
                options["width"] = row["width"]
            subruns.append(SubRun(f"{row['key']}-seed{seed}", row["key"], int(seed), options))
    return subruns


def run(context) -> dict:
    settings, data = context.settings, context.data
    rows = configurations(settings, data)
    results = run_subruns(plan(settings, rows), context.out, jobs=context.jobs, say=context.say,
                          show_starts=context.progress != "off")
    return summarise(settings, rows, list(results.values()))


def summarise(settings: dict, rows: list, runs: list) -> dict:
    """The table's body: a row per configuration (accuracies by seed, mean, sd, parameters, paired
    differences) and the runs themselves."""
    by_row = {row["key"]: {r["seed"]: r for r in runs if r["configuration"] == row["key"]} for row in rows}
    accuracy = {key: {seed: r["test_accuracy"] for seed, r in found.items()} for key, found in by_row.items()}
    dense_parameters = _parameters(by_row["dense"])
    table_rows = []
    for row in rows:
        found = by_row[row["key"]]
        seeds = sorted(found)
        mean, sd = mean_and_sd([found[s]["test_accuracy"] for s in seeds])
        parameters = _parameters(found)
        paired = {"dense": paired_by_seed(accuracy[row["key"]], accuracy["dense"])} if row["key"] != "dense" else {}
        if row["matched_with"]:
            paired[row["matched_with"]] = paired_by_seed(accuracy[row["key"]], accuracy[row["matched_with"]])
        table_rows.append({
            "configuration": row["key"], "kind": row["kind"], "label": row["label"], "genes": row["genes"],
            "width": row["width"], "matched_with": row["matched_with"], "parameters": parameters,
            "share_of_dense": parameters / dense_parameters, "seeds": seeds,
            "test_accuracies": [found[s]["test_accuracy"] for s in seeds], "mean": mean, "sd": sd,
            "final_train_accuracy_mean": _mean([found[s]["final_train_accuracy"] for s in seeds]),
            "noise_accuracy_mean": _mean([found[s]["noise_accuracy"] for s in seeds]),
            "spikes_per_sample_mean": _mean([found[s]["spikes_per_sample"] for s in seeds]),
            "train_seconds_mean": _mean([found[s]["train_seconds"] for s in seeds]),
            "wall_seconds": [found[s]["wall_seconds"] for s in seeds],
            "paired_differences": paired})
    return {"rows": table_rows, "runs": sorted(runs, key=lambda r: (r["seed"], r["key"])),
            "compression_claim": _claim_rows(table_rows)}


def _parameters(found: dict) -> int:
    counts = {r["parameters"] for r in found.values()}
    if len(counts) != 1:
        raise ValueError(f"one configuration with several parameter counts: {sorted(counts)}")
    return counts.pop()


def _mean(values):
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _claim_rows(rows: list) -> list:
    """The genetic rows that compress by 50-80% (share of dense parameters 20-50%): the claim's range."""
    return [{"configuration": r["configuration"], "compression": 1 - r["share_of_dense"],
             "difference_to_dense": r["paired_differences"]["dense"]} for r in rows
            if r["kind"] == "genetic" and 0.2 <= r["share_of_dense"] <= 0.5]


def _paired_cell(paired) -> str:
    if paired is None:
        return "-"
    sd = "n/a" if paired["sd"] is None else percent(paired["sd"])
    return f"{signed_percent(paired['mean'])} +- {sd} ({paired['wins']}/{paired['losses']})"


def markdown(table: dict) -> str:
    headers = ["Configuration", "Parameters", "Share of dense", "Test accuracy (%) mean +- sd",
               "vs dense twin (pts, wins/losses)", "vs matched genetic (pts, wins/losses)", "Train s per run"]
    lines = []
    for row in table["rows"]:
        matched = row["paired_differences"].get(row["matched_with"]) if row["matched_with"] else None
        lines.append([row["label"], f"{row['parameters']:,}", f"{100 * row['share_of_dense']:.1f}%",
                      mean_pm_sd(row["mean"], row["sd"]), _paired_cell(row["paired_differences"].get("dense")),
                      ("-" if matched is None else f"{row['matched_with']}: {_paired_cell(matched)}"),
                      f"{row['train_seconds_mean']:.0f}"])
    claim = "; ".join(f"{c['configuration']} ({100 * c['compression']:.0f}% fewer parameters): "
                      f"{_paired_cell(c['difference_to_dense'])} pts vs dense"
                      for c in table["compression_claim"]) or "no genetic row compresses by 50-80%"
    return (f"# gene-scale (paper Fig. 3, Table 2)\n\nScale: {table['scale']}.\n\n"
            + markdown_table(headers, lines)
            + "\nPaired differences: this row's test accuracy minus the other's on the same seed, mean +- sd "
              "over seeds, in percentage points; wins/losses count the seeds.\n\n"
            + f"Compression of 50-80% (the claim's range): {claim}.\n\n"
            + f"Command: `{table['commands'][0]}`\n")


def draw(figure, table: dict) -> None:
    """Test accuracy against parameters (log scale): each seed a dot, the mean +- sd a bar."""
    axes = figure.add_subplot()
    styles = {"genetic": ("C0", "o"), "dense": ("C3", "s"), "narrowed dense": ("C1", "D"), "frozen G = I": ("C2", "^")}
    for kind, (colour, marker) in styles.items():
        rows = sorted((r for r in table["rows"] if r["kind"] == kind), key=lambda r: r["parameters"])
        if not rows:
            continue
        x = [r["parameters"] for r in rows]
        y = [100 * r["mean"] for r in rows]
        err = [0.0 if r["sd"] is None else 100 * r["sd"] for r in rows]
        axes.errorbar(x, y, yerr=err, color=colour, marker=marker, capsize=3,
                      linestyle="-" if kind == "genetic" else "none", label=kind)
        for r in rows:
            axes.scatter([r["parameters"]] * len(r["test_accuracies"]), [100 * a for a in r["test_accuracies"]],
                         color=colour, s=8, alpha=0.4)
            if kind == "genetic":
                axes.annotate(f"g={r['genes']}", (r["parameters"], 100 * r["mean"]), textcoords="offset points",
                              xytext=(4, -10), fontsize=8)
    axes.set_xscale("log")
    axes.set_xlabel("parameters (eq. 2)")
    axes.set_ylabel("test accuracy (%)")
    axes.set_title(f"gene-scale: accuracy against parameters\n{_short_scale(table)}", fontsize=8)
    axes.legend(fontsize=8)
    axes.grid(True, alpha=0.3)


def _short_scale(table: dict) -> str:
    """The scale in a few words, for the plot: the data set's name, image size, train split, model, budget."""
    s, d = table["settings"], table["data"]
    height, width, channels = d["image_shape"]
    name = (d["source"] or Path(d["path"]).name).split(";")[0].split(",")[0]
    model = s["arch"] + (f" w{s['width']}" if s["width"] is not None else "")
    return (f"{name}, {height}x{width}x{channels}, train {d['splits']['train']}; {model}, T={s['time_steps']}, "
            f"{s['epochs']} epochs, {len(s['seeds'])} seeds")
