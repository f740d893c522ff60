"""What makes the evolution able to show the paper's effect (issue 14, DESIGN.md section 5):
common random numbers and K draws per individual, per-block initial step sizes, the final
choice by re-evaluation, the paired ablation's arithmetic."""
import json
import math

import numpy as np
import pytest

from gee_ref.cmaes import CMAES
from gee_ref.data.datasets import default_digits_path, load_dataset
from gee_ref.evolution.evaluation import EvaluationSettings, IndividualTask, evaluate_individual, evaluate_population
from gee_ref.evolution.genome import starting_genome
from gee_ref.evolution.search import initial_stds
from gee_ref.evolution.selection import CANDIDATES, choose, update_candidates
from gee_ref.measure.statistics import mean_and_sd, paired_differences
from gee_ref.models import build_from_config
from gee_ref.runs.ablation import ablation_table, markdown_table
from gee_ref.runs.data import read_run_data
from gee_ref.runs.evolution_run import OPTION_DEFAULTS, SIGMA0_GENES_SCALE, SIGMA0_LOG_SIGMA, resolve_config


def settings(draws=1, genes=4, start="paper"):
    path = default_digits_path()
    images, _, classes = load_dataset(path, "train")
    template = build_from_config({"arch": "digits", "genetic": True, "genes": genes, "num_classes": len(classes),
                                  "image_shape": list(images.shape[1:]), "time_steps": 2, "seed": 0, "device": "cpu"})
    return EvaluationSettings(genome_template=starting_genome(template, start), data_path=str(path), seed=3,
                              val_fraction=0.1, eval_steps=2, eval_epochs=None, batch_size=32, lr=0.1, draws=draws)


def test_equal_genotypes_get_equal_records_and_generations_differ():
    """Common random numbers: the same standard draws Z (X_l = sigma_l Z_l) and the same batches for
    every individual of a generation, so equal genotypes are scored equally; another generation
    draws anew."""
    s = settings()
    other = s.genome_template.vector.copy()
    other[0] += 0.7  # a larger sigma_1
    tasks = [IndividualTask(s, s.genome_template.vector, 0, 0), IndividualTask(s, other, 0, 1),
             IndividualTask(s, s.genome_template.vector, 0, 2)]
    records = [evaluate_individual(t) for t in tasks]
    for key in ("loss", "accuracy", "r_t", "train_loss"):
        assert records[0][key] == records[2][key], key
    assert records[0]["loss"] != records[1]["loss"]
    batched = evaluate_population(tasks)
    assert batched[0]["loss"] == batched[2]["loss"] and batched[0]["loss"] == pytest.approx(records[0]["loss"], rel=1e-4)
    later = evaluate_individual(IndividualTask(s, s.genome_template.vector, 1, 0))
    assert later["loss"] != records[0]["loss"]


def test_k_draws_are_averaged_and_kept():
    s1, s3 = settings(draws=1), settings(draws=3)
    task = IndividualTask(s3, s3.genome_template.vector, 0, 0)
    record = evaluate_individual(task)
    assert len(record["draws"]) == 3 and not record["nonfinite"]
    assert record["loss"] == pytest.approx(np.mean([d["loss"] for d in record["draws"]]), rel=1e-12)
    first = evaluate_individual(IndividualTask(s1, s1.genome_template.vector, 0, 5))
    assert record["draws"][0]["loss"] == first["loss"]  # draw 0 is the one-draw evaluation
    assert len({d["loss"] for d in record["draws"]}) == 3


def test_a_genotype_without_a_phenotype_fails_alone():
    s = settings(draws=2)
    broken = s.genome_template.vector.copy()
    broken[:s.genome_template.num_layers] = 1e4  # exp overflows
    good, bad = evaluate_population([IndividualTask(s, s.genome_template.vector, 0, 0), IndividualTask(s, broken, 0, 1)])
    assert not good["nonfinite"] and len(good["draws"]) == 2
    assert bad["nonfinite"] and math.isnan(bad["loss"]) and bad["draws"] == []


def test_each_block_gets_its_initial_standard_deviation():
    data = read_run_data(None)
    config = resolve_config({}, data)
    assert config["start"] == "paper" and config["fitness_scale"] == "standardised" and config["select"] == "reeval"
    assert config["sigma0_log_sigma"] == SIGMA0_LOG_SIGMA
    assert config["sigma0_genes"] == pytest.approx(SIGMA0_GENES_SCALE / 4)  # g = 16 for the digits net
    start = settings(genes=16).genome_template
    stds = initial_stds(start, config)
    assert stds == [SIGMA0_LOG_SIGMA] * start.num_layers + [SIGMA0_GENES_SCALE / 4] * 256
    samples = np.asarray(CMAES(start.vector, 1.0, popsize=400, seed=1, stds=stds).ask()) - start.vector
    assert samples[:, :start.num_layers].std() == pytest.approx(SIGMA0_LOG_SIGMA, rel=0.1)
    assert samples[:, start.num_layers:].std() == pytest.approx(SIGMA0_GENES_SCALE / 4, rel=0.1)
    both = resolve_config({"sigma0": 0.3}, data)
    assert both["sigma0_log_sigma"] == both["sigma0_genes"] == 0.3
    assert set(OPTION_DEFAULTS) >= {"start", "draws", "fitness_scale", "sigma0_log_sigma", "sigma0_genes", "reeval_draws"}


class ScriptedExecutor:
    """Answers each re-evaluation with a given loss, in the order of the tasks."""

    def __init__(self, losses):
        self.losses, self.seen = list(losses), []

    def map(self, fn, tasks, on_result=None):
        self.seen = list(tasks)
        return [{"loss": loss, "accuracy": 0.5, "nonfinite": not math.isfinite(loss)} for loss in self.losses]


def test_candidates_and_the_three_selection_rules():
    X = np.arange(20.0).reshape(5, 4)
    results = [{"index": i, "loss": loss, "fitness": -loss, "accuracy": 0.9, "r_t": 0.1, "r_s": 0.5,
                "nonfinite": False} for i, loss in enumerate([0.5, 0.2, 0.9, 0.2, math.nan])]
    results[4]["nonfinite"] = True
    candidates = update_candidates([], results, X, generation=0)
    assert [c["index"] for c in candidates] == [1, 3, 0][:CANDIDATES]  # lowest loss, ties: the earlier first
    later = update_candidates(candidates, [dict(results[2], loss=0.1)], X, generation=1)
    assert (later[0]["generation"], later[0]["index"]) == (1, 2)
    s = settings()
    mean = np.full(4, 7.0)
    vector, facts = choose("loss", candidates, mean, s, None, 3)
    assert facts["selected_by"] == "loss" and np.array_equal(vector, X[1])
    vector, facts = choose("mean", candidates, mean, s, None, 3)
    assert np.array_equal(vector, mean) and facts["selected_by"] == "mean"
    scripted = ScriptedExecutor([0.40, 0.35, 0.30, math.nan])  # the mean, then the three candidates
    vector, facts = choose("reeval", candidates, mean, s, scripted, 3)
    assert np.array_equal(vector, X[3]) and facts["reevaluated_loss"] == 0.30 and facts["reevaluation_draws"] == 3
    assert [t.settings.draws for t in scripted.seen] == [3] * 4 and {t.generation for t in scripted.seen} == {"selection"}
    assert [c["source"] for c in facts["candidates"]][0] == "final CMA-ES mean"


def test_paired_differences_by_hand():
    assert paired_differences([0.9, 0.8, 0.95], [0.85, 0.8, 0.90]) == pytest.approx(
        {"mean": 0.1 / 3, "sd": np.std([0.05, 0.0, 0.05], ddof=1), "wins": 2, "losses": 0, "ties": 1, "count": 3})
    assert mean_and_sd([0.5]) == (0.5, None)
    with pytest.raises(ValueError, match="one value per seed"):
        paired_differences([1.0], [1.0, 2.0])


def test_the_ablation_table_of_a_hand_made_set_of_runs():
    accuracy = {("random", 0): np.float64(0.90), ("random", 1): 0.80, ("baseline", 0): 0.92, ("baseline", 1): 0.83,
                ("ste", 0): 0.91, ("ste", 1): 0.84}
    runs = {key: {"test_accuracy": value, "evolve_seconds": 10.0, "final_seconds": 2.0, "nonfinite_total": 0}
            for key, value in accuracy.items()}
    config = {**OPTION_DEFAULTS, "arch": "digits", "genes": 16, "generations": 5, "popsize": 8, "eval_steps": 20,
              "final_epochs": 10}
    table = ablation_table(config, runs, ["random", "baseline", "ste"], [0, 1])
    assert json.loads(json.dumps(table)) == table  # JSON-ready, as OUT/ablation.json is written
    rows = {row["variant"]: row for row in table["rows"]}
    assert rows["ste"]["minus_random"]["mean"] == pytest.approx(0.025)
    assert rows["ste"]["minus_random"]["wins"] == 2
    assert rows["ste"]["minus_baseline"] == pytest.approx({"mean": 0.0, "sd": np.std([-0.01, 0.01], ddof=1),
                                                           "wins": 1, "losses": 1, "ties": 0, "count": 2})
    assert "minus_random" not in rows["random"] and rows["random"]["std"] == pytest.approx(np.std([0.9, 0.8], ddof=1))
    text = markdown_table(table)
    assert "| ste | 87.50 +- 4.95 | +2.50 +- 2.12 (2/0) | +0.00 +- 1.41 (1/1) |" in text
