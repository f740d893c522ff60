"""The ablation and fidelity experiments of ``python -m gee_ref.reproduce`` on tiny settings: what
their tables hold, and that a resumed experiment reads back what is done."""
import json
import math

import pytest

from gee_ref import reproduce
from gee_ref.evolution.fitness import VARIANTS
from gee_ref.evolution.genome import load_genome
from gee_ref.experiments.fidelity import divergence_line
from gee_ref.experiments.statistics import spearman
from digits_files import write_digits_file

NET = ["--arch", "vgg8", "--width", "4", "--genes", "4", "--batch-size", "16", "--time-steps", "2"]


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    return write_digits_file(tmp_path_factory.mktemp("data"), 64, 32)


def test_ablation_table_pairs_every_variant_over_the_seeds(tiny_digits, tmp_path, capsys):
    out = tmp_path / "ablation"
    options = ["ablation", "--data", str(tiny_digits), "--out", str(out), *NET, "--seeds", "2", "--generations", "1",
               "--popsize", "3", "--eval-steps", "2", "--final-epochs", "1", "--final-steps-per-epoch", "2",
               "--no-progress"]
    assert reproduce.main([*options, "--jobs", "2"]) == 0
    table = json.loads((out / "ablation.json").read_text())
    assert [row["variant"] for row in table["rows"]] == list(VARIANTS)
    for row in table["rows"]:
        assert row["seeds"] == [0, 1] and len(row["test_accuracies"]) == 2
        mean = sum(row["test_accuracies"]) / 2
        assert row["mean"] == pytest.approx(mean)
        if row["variant"] != "random":
            differences = [a - r for a, r in zip(row["test_accuracies"], table["rows"][0]["test_accuracies"])]
            assert row["minus_random"]["mean"] == pytest.approx(sum(differences) / 2)
    assert table["budget"]["start"] == "paper" and table["budget"]["generations"] == 1
    assert len(table["runs"]) == 2 * len(VARIANTS)
    assert "| random |" in (out / "ablation.md").read_text() and (out / "ablation.png").exists()
    capsys.readouterr()
    assert reproduce.main([*options, "--resume"]) == 0
    assert "2 of 2 runs already done" in capsys.readouterr().out
    assert json.loads((out / "ablation.json").read_text())["rows"] == table["rows"]


def test_fidelity_correlates_each_term_with_the_full_trainings(tiny_digits, tmp_path, capsys):
    out = tmp_path / "fidelity"
    options = ["fidelity", "--data", str(tiny_digits), "--out", str(out), *NET, "--individuals", "5",
               "--eval-steps", "2", "--epochs", "1", "--steps-per-epoch", "2", "--resamples", "200", "--no-progress"]
    assert reproduce.main([*options, "--jobs", "2"]) == 0
    evaluated = [line for line in capsys.readouterr().out.splitlines() if line.startswith("short evaluation ")]
    assert [line.split(":")[0] for line in evaluated] == [f"short evaluation {i}/5" for i in range(1, 6)]
    table = json.loads((out / "fidelity.json").read_text())
    people = table["individuals"]
    assert [p["index"] for p in people] == list(range(5))
    assert len({p["r_s"] for p in people}) == 5  # five different genotypes
    usable = [p for p in people if not p["nonfinite"]]
    for row in table["rows"]:
        rho = spearman([row["sign"] * p[row["term"]] for p in usable], [p["test_accuracy"] for p in usable])
        assert (row["spearman"] is None and math.isnan(rho)) or row["spearman"] == pytest.approx(rho)
        if row["interval_95"] is not None and row["spearman"] is not None:
            assert row["interval_95"][0] <= row["interval_95"][1]
    report = json.loads((out / "runs" / "ind003" / "report.json").read_text())
    genome = load_genome(out / "genomes" / "ind003.h5")
    assert report["config"]["genome"] == str((out / "genomes" / "ind003.h5").resolve())
    assert (genome.arch, genome.genes) == ("vgg8", 4)
    assert "short training's validation accuracy" in (out / "fidelity.md").read_text()
    assert reproduce.main([*options, "--resume"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert not [line for line in lines if line.startswith("short evaluation ")]  # kept in OUT/short, not repeated
    assert json.loads((out / "fidelity.json").read_text())["rows"] == table["rows"]


def test_fidelity_records_full_trainings_that_diverge(tiny_digits, tmp_path, capsys):
    """A full training that diverges (lr 1e6) is a result, tested with its start's weights, and
    counted; the experiment goes on to its table (it stopped at the first such run before)."""
    out = tmp_path / "fidelity"
    options = ["fidelity", "--data", str(tiny_digits), "--out", str(out), "--arch", "digits", "--genes", "8",
               "--batch-size", "16", "--time-steps", "2", "--individuals", "3", "--eval-steps", "2", "--epochs", "2",
               "--steps-per-epoch", "3", "--lr", "1e6", "--resamples", "50", "--no-progress"]
    assert reproduce.main(options) == 0
    assert capsys.readouterr().out.count("(training diverged in epoch 1: tested with the weights of the start)") == 3
    people = json.loads((out / "fidelity.json").read_text())["individuals"]
    assert all(p["full_training_diverged"] for p in people)
    assert all(0.0 <= p["test_accuracy"] <= 1.0 for p in people)
    assert "--on-divergence stop" in people[0]["command"]
    text = (out / "fidelity.md").read_text()
    finite = sum(not p["nonfinite"] for p in people)
    if finite == len(people):
        assert f"none of the {finite} genotypes diverged in the short evaluation; {finite} diverged in full" in text
    else:
        assert f"Of the {finite} others, {finite} diverged in full training" in text
    capsys.readouterr()


def test_fidelity_needs_one_seed(tiny_digits, tmp_path):
    with pytest.raises(ValueError, match="fidelity runs on one seed"):
        reproduce.main(["fidelity", "--data", str(tiny_digits), "--out", str(tmp_path / "f"), "--seeds", "2"])


def test_the_divergence_line_counts_short_and_full_divergences():
    def genotype(short_nonfinite, full_diverged, accuracy):
        return {"nonfinite": short_nonfinite, "full_training_diverged": full_diverged, "test_accuracy": accuracy}
    calm = [genotype(False, False, 0.3), genotype(False, False, 0.25)]
    assert divergence_line(calm) == ("Divergence: none of the 2 genotypes diverged in the short evaluation; "
                                     "0 diverged in full training.")
    mixed = [genotype(True, True, 0.1), genotype(False, True, 0.09), genotype(False, False, 0.3)]
    line = divergence_line(mixed)
    assert line.startswith("Divergence: 1 of 3 genotypes diverged in the short evaluation")
    assert "1 of them diverged in full training as well (test accuracy 10.00% to 10.00%), 0 trained" in line
    assert "Of the 2 others, 1 diverged in full training (test accuracy 9.00% to 9.00%)" in line
