"""A run folder belongs to one run at a time (gee_ref.runs.folder): a second train or evolve into a
folder in use exits 2 with one line naming the holder and changes nothing there; two evolve runs
started at once into one folder leave the folder of exactly one of them."""
import json
import os
import subprocess
import sys
from pathlib import Path

import gee_ref
from gee_ref.storage import run_lock

REPO = Path(gee_ref.__file__).resolve().parents[1]
TINY_EVOLVE = ["--genes", "4", "--popsize", "4", "--eval-steps", "2", "--batch-size", "64", "--val-fraction", "0.05",
               "--generations", "1", "--final-epochs", "1", "--final-steps-per-epoch", "1", "--no-progress"]
TINY_TRAIN = ["--epochs", "1", "--steps-per-epoch", "2", "--genes", "4", "--time-steps", "2", "--no-progress"]


def command(module, *args):
    return [sys.executable, "-m", module, *map(str, args)]


def run(argv):
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
                          timeout=300)


def test_a_folder_in_use_is_refused_by_train_and_evolve(tmp_path):
    out = tmp_path / "busy"
    with run_lock.holding(out, command="the first run"):
        for argv in (command("gee_ref.train", "--out", out, *TINY_TRAIN),
                     command("gee_ref.evolve", "--out", out, *TINY_EVOLVE)):
            done = run(argv)
            assert done.returncode == 2, done.stderr
            (line,) = done.stderr.strip().splitlines()
            assert line.startswith("error: run folder") and f"pid {os.getpid()}" in line and "the first run" in line
    assert sorted(p.name for p in out.iterdir()) == [run_lock.LOCK_NAME]  # nothing written by the refused runs


def test_two_evolve_runs_started_at_once_leave_one_run(tmp_path):
    out = tmp_path / "raced"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [subprocess.Popen(command("gee_ref.evolve", "--out", out, "--seed", seed, *TINY_EVOLVE), env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(child.wait(timeout=300), child.stderr.read()) for child in children]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    winner = 1 + [code for code, _ in results].index(0)
    loser_error = results[[code for code, _ in results].index(2)][1]
    # refused by the lock while the winner runs (or, on a machine slow to start the second, by the
    # finished run's folder): either way one line, and the winner's files alone
    assert ("in use by another run" in loser_error or "already holds a run" in loser_error), loser_error
    assert len(loser_error.strip().splitlines()) == 1
    assert json.loads((out / "config.json").read_text())["seed"] == winner
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["seed"] == winner
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [record["generation"] for record in log] == [0]  # one run's log, not two interleaved
