"""``python -m gee_ref.reproduce`` on tiny settings (a few steps, a few images): the results it
writes, what they record, resume after an interruption, a failing sub-run, and one-line errors."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gee_ref import reproduce, train
from gee_ref.cli.options import options_of
from gee_ref.experiments import subruns
from gee_ref.experiments.folder import log_path
from gee_ref.experiments.plots import MISSING_MATPLOTLIB
from gee_ref.runs.training_run import OPTION_DEFAULTS
from digits_files import write_digits_file

REPO = Path(__file__).resolve().parents[1]
TINY = ["--genes", "2,4", "--match-genes", "4", "--frozen-genes", "2", "--seeds", "2", "--epochs", "2",
        "--steps-per-epoch", "2", "--batch-size", "16", "--width", "4", "--time-steps", "2", "--no-progress"]
CONFIGURATIONS = ["g2", "g4", "dense", "dense-w3", "g2-frozen"]  # vgg8 width 3 is closest to g = 4 on 8x8x1


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    """64 train and 32 test images of the 8x8 digits."""
    return write_digits_file(tmp_path_factory.mktemp("data"), 64, 32, "UCI digits, first 64 / 32")


def reproduce_main(data, out, *extra):
    return reproduce.main(["gene-scale", "--data", str(data), "--out", str(out), *TINY, *extra])


def accuracies(out):
    table = json.loads((out / "gene-scale.json").read_text())
    return {run["key"]: run["test_accuracy"] for run in table["runs"]}


@pytest.fixture(scope="module")
def finished(tiny_digits, tmp_path_factory):
    """One uninterrupted tiny experiment, two sub-runs at a time."""
    out = tmp_path_factory.mktemp("whole") / "gene-scale"
    assert reproduce_main(tiny_digits, out, "--jobs", "2") == 0
    return out


def test_the_results_record_data_settings_runs_and_command(finished, tiny_digits):
    table = json.loads((finished / "gene-scale.json").read_text())
    assert table["experiment"] == "gene-scale"
    data = table["data"]
    assert data["splits"] == {"train": 64, "test": 32} and data["image_shape"] == [8, 8, 1]
    assert data["source"] == "UCI digits, first 64 / 32" and len(data["sha256"]) == 64
    assert data["path"] == str(Path(tiny_digits).resolve())
    s = table["settings"]
    assert (s["arch"], s["width"], s["time_steps"], s["epochs"], s["seeds"]) == ("vgg8", 4, 2, 2, [0, 1])
    assert [row["configuration"] for row in table["rows"]] == CONFIGURATIONS
    assert sorted(run["key"] for run in table["runs"]) == sorted(f"{c}-seed{s}" for c in CONFIGURATIONS for s in (0, 1))
    for run in table["runs"]:
        assert 0.0 <= run["test_accuracy"] <= 1.0 and run["test_samples"] == 32
        assert run["wall_seconds"] > 0 and run["train_seconds"] > 0 and run["epochs"] == 2
        assert run["command"].startswith("python -m gee_ref.train --arch vgg8 --epochs 2")
    for row in table["rows"]:
        assert row["seeds"] == [0, 1] and len(row["test_accuracies"]) == 2
    assert table["commands"][0].startswith("python -m gee_ref.reproduce gene-scale --data")
    assert table["scale"].startswith("UCI digits, first 64 / 32; images 8x8x1; train 64 / test 32; vgg8 width 4; "
                                     "T = 2; batch 16; seeds 0, 1; 2 epochs of at most 2 steps")
    markdown = (finished / "gene-scale.md").read_text()
    assert table["scale"] in markdown and "| dense twin |" in markdown
    assert (finished / "gene-scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_narrowed_twin_has_the_genetic_nets_size_and_the_frozen_run_froze_g(finished):
    table = json.loads((finished / "gene-scale.json").read_text())
    rows = {row["configuration"]: row for row in table["rows"]}
    g4, narrowed = rows["g4"]["parameters"], rows["dense-w3"]["parameters"]
    assert rows["dense-w3"]["width"] == 3 and rows["dense-w3"]["matched_with"] == "g4"
    assert narrowed != g4 and 0.5 < narrowed / g4 < 2
    assert rows["g2-frozen"]["parameters"] == rows["g2"]["parameters"]
    report = json.loads((finished / "runs" / "g2-frozen-seed0" / "report.json").read_text())
    assert report["config"]["freeze_genes"] is True and report["config"]["genes"] == 2


def test_an_interrupted_experiment_resumes_to_the_same_results(finished, tiny_digits, tmp_path, monkeypatch):
    """Stopped (Ctrl-C) when its third sub-run finishes, then --resume: the same accuracies as the
    uninterrupted run (each training resumes exactly), and the sub-runs already done not rerun."""
    out = tmp_path / "gene-scale"
    real, calls = subruns.subrun_result, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(subruns, "subrun_result", interrupted)
    with pytest.raises(KeyboardInterrupt):
        reproduce_main(tiny_digits, out, "--jobs", "2")
    monkeypatch.setattr(subruns, "subrun_result", real)
    assert not (out / "gene-scale.json").exists()
    done_before = [key for key in accuracies(finished) if (out / "runs" / key / "report.json").exists()]
    assert 2 <= len(done_before) < 10
    with pytest.raises(ValueError, match="already holds an experiment"):
        reproduce_main(tiny_digits, out)
    assert reproduce_main(tiny_digits, out, "--resume") == 0
    assert accuracies(out) == accuracies(finished)
    for key in done_before:
        assert log_path(out, key).read_text().count("# ") == 1  # started once only
    table = json.loads((out / "gene-scale.json").read_text())
    assert len(table["commands"]) == 2 and table["commands"][1].endswith("--resume")
    first, second = table["sessions"]  # the interrupted session has a start and no end
    assert "finished" not in first and "wall_seconds" not in first
    assert second["command"].endswith("--resume") and second["wall_seconds"] > 0
    assert first["started"] <= second["started"] <= second["finished"]


def test_resume_refuses_other_settings_and_a_missing_experiment(finished, tiny_digits, tmp_path):
    three_epochs = [*TINY]
    three_epochs[TINY.index("--epochs") + 1] = "3"
    with pytest.raises(ValueError, match="cannot resume .*epochs=2, this run has epochs=3"):
        reproduce.main(["gene-scale", "--data", str(tiny_digits), "--out", str(finished), *three_epochs, "--resume"])
    with pytest.raises(FileNotFoundError, match="no experiment"):
        reproduce_main(tiny_digits, tmp_path / "nothing", "--resume")


def test_a_failing_sub_run_stops_the_experiment_with_its_error_line(tiny_digits, tmp_path, monkeypatch):
    failing = [sys.executable, "-c", "import sys; print('error: the child failed', file=sys.stderr); sys.exit(2)"]
    monkeypatch.setattr(subruns, "child_command", lambda subrun, out, resume=False: failing)
    with pytest.raises(subruns.SubRunFailed, match=r"run \S+-seed0 failed \(exit 2\): error: the child failed"):
        reproduce_main(tiny_digits, tmp_path / "gene-scale", "--jobs", "2")


def test_without_matplotlib_json_and_markdown_are_written(tiny_digits, tmp_path, monkeypatch, capsys):
    """Two sub-runs, two jobs, --progress: two starts, then a line per finished run; no PNG
    without matplotlib, and one line saying so."""
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import matplotlib.figure fails
    out = tmp_path / "gene-scale"
    reproduce.main(["gene-scale", "--data", str(tiny_digits), "--out", str(out), "--genes", "2", "--match-genes",
                    "none", "--frozen-genes", "none", "--seeds", "1", "--epochs", "1", "--steps-per-epoch", "1",
                    "--batch-size", "16", "--width", "4", "--jobs", "2", "--progress"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("0 of 2 runs already done; 2 to run, 2 at a time")
    assert lines[1].startswith("started g2-seed0") and lines[2].startswith("started dense-seed0")
    finished_lines = [line for line in lines if line.startswith("[")]
    assert sorted(line.split(":")[0] for line in finished_lines) == ["[1/2] dense-seed0", "[2/2] g2-seed0"] or \
        sorted(line.split(":")[0] for line in finished_lines) == ["[1/2] g2-seed0", "[2/2] dense-seed0"]
    assert (out / "gene-scale.json").exists() and (out / "gene-scale.md").exists()
    assert not (out / "gene-scale.png").exists()
    assert lines.count(MISSING_MATPLOTLIB) == 1


def test_child_threads_split_the_cores(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert subruns.child_threads(2) == 2 and subruns.child_threads(8) == 1
    assert subruns.child_environment(2)["OMP_NUM_THREADS"] == "2"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert subruns.child_environment(2)["OMP_NUM_THREADS"] == "3"  # the caller's setting wins


def test_train_arguments_parse_back_to_the_same_options():
    options = {"arch": "vgg8", "genes": 8, "width": 5, "dense": False, "freeze_genes": True, "augment": False,
               "epochs": 3, "lr": 0.05, "seed": 2, "eval_batches": 0, "report_batches": "all", "start": "paper",
               "steps_per_epoch": None, "data": "/data/x.h5"}
    args = train.build_parser().parse_args(subruns.command_arguments(options))
    parsed = options_of(args, OPTION_DEFAULTS)
    assert {k: parsed[k] for k in options} == options
    with pytest.raises(ValueError, match="not options of the command"):
        subruns.command_arguments({"generations": 3})


def run_command(*arguments):
    environment = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "gee_ref.reproduce", *arguments], capture_output=True, text=True,
                          cwd=REPO, env=environment, timeout=120)


@pytest.mark.parametrize("arguments, message", [
    (["gene-scale", "--out", "OUT"], "gene-scale needs --data"),
    (["gene-scale", "--out", "OUT", "--data", "missing.h5"], "missing.h5"),
    (["gene-scale", "--out", "OUT", "--data", "DATA", "--genes", "2,x"], "expected integers separated by commas"),
    (["gene-scale", "--out", "OUT", "--data", "DATA", "--genes", "2", "--match-genes", "4"], "not among --genes"),
    (["gene-scale", "--out", "OUT", "--data", "DATA", "--arch", "digits"], "digits has no width option"),
    (["gene-scale", "--out", "OUT", "--data", "DATA", "--jobs", "0"], "--jobs must be >= 1"),
    (["no-such-experiment", "--out", "OUT"], "invalid choice"),
])
def test_bad_input_is_one_error_line_and_exit_2(arguments, message, tiny_digits, tmp_path):
    arguments = [str(tiny_digits) if a == "DATA" else str(tmp_path / "out") if a == "OUT" else a for a in arguments]
    result = run_command(*arguments)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr
    assert not (tmp_path / "out" / "experiment.json").exists()
