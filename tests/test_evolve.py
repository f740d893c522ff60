"""gee_ref.evolve: the main loop, its log and checkpoints, resuming after SIGKILL, bad options."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy
import pytest

from gee_ref import evolve
from gee_ref.cli.options import options_of
from gee_ref.evolution import evaluation
from gee_ref.runs.data import read_run_data
from gee_ref.runs.evolution_run import LATER_SETTINGS, OPTION_DEFAULTS, RESUMABLE_CHANGES, resolve_config
from gee_ref.runs.folder import check_same_settings
from gee_ref.storage.checkpoint import load_checkpoint
from gee_ref.cli.errors import run_main
from gee_ref.evolution.search import AUTO_DIAGONAL_ABOVE, Evolution, read_log, without_wall_times
from gee_ref.evolution.executors import SerialExecutor
from gee_ref.evolution.genome import load_genome, starting_genome
from gee_ref.models import build_from_config

REPO = Path(__file__).resolve().parents[1]
# A tiny run: 4 genes, 2 updates per individual scored on 5% of the training split, one
# final epoch of one update, batches of 64.
TINY = ["--genes", "4", "--popsize", "4", "--eval-steps", "2", "--batch-size", "64", "--val-fraction", "0.05",
        "--final-epochs", "1", "--final-steps-per-epoch", "1", "--no-progress"]


def run_cli(argv):
    """Run evolve's main as the command line does; returns the exit status."""
    with pytest.raises(SystemExit) as stopped:
        run_main(evolve.main, argv)
    return stopped.value.code


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A finished two-generation run (shared by the tests that only read it)."""
    out = tmp_path_factory.mktemp("evolve") / "run"
    assert run_cli(TINY + ["--generations", "2", "--out", str(out)]) == 0
    return out


def configured(argv):
    """(settings, data) of an evolve command line, as ``evolve.main`` resolves them."""
    data = read_run_data(None)
    return resolve_config(options_of(evolve.build_parser().parse_args(argv), OPTION_DEFAULTS), data), data


def evolution_only(argv, out):
    """Run the generations of a configured evolution, without the final training."""
    config, data = configured(argv)
    out.mkdir()
    run = Evolution(config, out, SerialExecutor(), data.path)
    run.begin()
    run.run()
    return run


def test_tiny_run_writes_log_checkpoint_genome_and_report(tiny_run):
    out = tiny_run
    records = read_log(out / "log.jsonl")
    assert [r["generation"] for r in records] == [0, 1]
    first = records[0]
    for key in ("fitness", "loss", "r_t", "r_s", "sigmas_mean", "cma_sigma", "condition_number",
                "nonfinite", "wall_seconds", "individuals", "best_so_far"):
        assert key in first, key
    assert first["fitness"]["min"] <= first["fitness"]["median"] <= first["fitness"]["max"]
    assert len(first["individuals"]) == 4 and first["evaluations"] == 4
    genome = load_genome(out / "best_genome.h5")
    assert len(first["sigmas_mean"]) == genome.num_layers
    best = records[-1]["best_so_far"]
    # the best is the lowest validation loss of all individuals logged
    losses = [(i["loss"], r["generation"], i["index"]) for r in records for i in r["individuals"]]
    assert (best["loss"], best["generation"], best["index"]) == min(losses)
    summary = json.loads((out / "summary.json").read_text())
    report = json.loads((out / "final" / "report.json").read_text())
    assert summary["test_accuracy"] == report["test_accuracy"]
    assert 0.0 <= report["test_accuracy"] <= 1.0
    assert report["config"]["genome"] == str((out / "best_genome.h5").resolve())
    assert [p.name for p in out.glob("cmaes-*.h5")] == ["cmaes-00002.h5"]
    checkpoint_meta = load_checkpoint(out / "checkpoint.h5")[1]
    assert checkpoint_meta["generation"] == 2 and checkpoint_meta["log_bytes"] == (out / "log.jsonl").stat().st_size


def test_the_variants_that_do_not_search(tmp_path):
    """"random" trains one draw of the generation-0 distribution (another for another seed);
    "calibrated" the calibrated start itself; neither evaluates an individual."""
    drawn = []
    for seed in (0, 1):
        out = tmp_path / f"random{seed}"
        assert run_cli(TINY + ["--variant", "random", "--seed", str(seed), "--out", str(out)]) == 0
        assert read_log(out / "log.jsonl") == [] and (out / "final" / "report.json").exists()
        drawn.append(load_genome(out / "best_genome.h5"))
    assert not numpy.array_equal(drawn[0].vector, drawn[1].vector)
    assert numpy.abs(drawn[0].G - numpy.eye(4)).max() > 0  # a draw around the paper start G = I
    assert numpy.abs(drawn[0].log_sigmas).max() < 4 * 0.5  # log sigma = 0 + 0.5 * N(0, 1)
    out = tmp_path / "calibrated"
    assert run_cli(TINY + ["--variant", "calibrated", "--out", str(out)]) == 0
    genome = load_genome(out / "best_genome.h5")
    numpy.testing.assert_array_equal(genome.G, numpy.eye(4))
    config, data = configured(TINY)
    template = build_from_config({**config, "genetic": True, "seed": 0, "device": "cpu"})
    numpy.testing.assert_allclose(genome.sigmas, starting_genome(template, "calibrated").sigmas, rtol=1e-12)


def test_a_diverging_individual_ranks_last_and_is_counted(tmp_path, monkeypatch):
    """Individual 1 of every generation trains with an absurd learning rate: its loss turns
    NaN or inf, it gets the worst rank, the log counts it and the run goes on."""
    real = evaluation.make_optimizer
    calls = []

    def absurd_for_the_second(model, name="sgd", lr=0.1, *args, **kwargs):
        calls.append(lr)
        return real(model, name, 1e30 if len(calls) % 4 == 2 else lr, *args, **kwargs)

    monkeypatch.setattr(evaluation, "make_optimizer", absurd_for_the_second)
    out = tmp_path / "nan"
    run = evolution_only(TINY + ["--generations", "2", "--eval-steps", "3"], out)
    assert run.generation == 2
    records = read_log(out / "log.jsonl")
    assert [r["nonfinite"] for r in records] == [1, 1]
    assert records[-1]["nonfinite_total"] == 2
    for r in records:
        diverged = r["individuals"][1]
        assert diverged["nonfinite"] and diverged["fitness"] is None
        assert r["best_so_far"]["index"] != 1 or r["best_so_far"]["generation"] != r["generation"]


def _start(argv, cwd, name):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with open(cwd / f"{name}.out", "wb") as output:
        return subprocess.Popen([sys.executable, "-m", "gee_ref.evolve", *argv], cwd=cwd, env=env,
                                stdout=output, stderr=subprocess.STDOUT)


def _kill_when(process, condition, timeout=120.0):
    """SIGKILL ``process`` as soon as ``condition()`` holds (polled); False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if condition():
            process.send_signal(signal.SIGKILL)
            return process.wait() == -signal.SIGKILL
        time.sleep(0.005)
    process.kill()
    raise AssertionError("the run neither reached the kill point nor ended")


def test_sigkill_then_resume_gives_the_same_run(tmp_path):
    argv = TINY + ["--generations", "3"]
    reference = tmp_path / "reference"
    assert run_cli(argv + ["--out", str(reference)]) == 0

    out = tmp_path / "killed"
    log = out / "log.jsonl"

    def lines():
        return len(log.read_text().splitlines()) if log.exists() else 0

    # Each point is polled, so the kill lands somewhere shortly after it: before the first
    # generation ends, between a log line and its checkpoint or after it, during the final training.
    kill_points = [lambda: (out / "config.json").exists(),
                   lambda: lines() >= 1,
                   lambda: lines() >= 2,
                   lambda: (out / "final").exists()]
    killed = []
    for k, condition in enumerate(kill_points):
        resume = ["--resume"] if (out / "config.json").exists() else []
        process = _start(argv + ["--out", str(out)] + resume, tmp_path, f"attempt{k}")
        if _kill_when(process, condition):
            killed.append(k)
        else:
            assert process.returncode == 0, (tmp_path / f"attempt{k}.out").read_text()
    assert len(killed) >= 3, killed
    assert run_cli(argv + ["--out", str(out), "--resume"]) == 0

    expected = [without_wall_times(r) for r in read_log(reference / "log.jsonl")]
    assert [without_wall_times(r) for r in read_log(log)] == expected
    a, b = load_genome(reference / "best_genome.h5"), load_genome(out / "best_genome.h5")
    assert a.vector.tobytes() == b.vector.tobytes()
    ref_report = json.loads((reference / "final" / "report.json").read_text())
    report = json.loads((out / "final" / "report.json").read_text())
    assert report["test_accuracy"] == ref_report["test_accuracy"]
    assert report["test_loss"] == ref_report["test_loss"]


def test_resume_refuses_other_settings_and_new_run_refuses_old_folder(tiny_run, tmp_path, capsys):
    out = tiny_run
    before = (out / "log.jsonl").read_bytes()
    assert run_cli(TINY + ["--generations", "2", "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert run_cli(TINY + ["--generations", "2", "--seed", "5", "--out", str(out), "--resume"]) == 2
    assert "seed" in capsys.readouterr().err
    assert run_cli(TINY + ["--generations", "2", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert (out / "log.jsonl").read_bytes() == before
    # resuming a finished run changes nothing and says so
    assert run_cli(TINY + ["--generations", "2", "--out", str(out), "--resume"]) == 0
    assert "complete" in capsys.readouterr().out
    assert (out / "log.jsonl").read_bytes() == before


@pytest.mark.parametrize("options, message", [
    (["--popsize", "1"], "--popsize"),
    (["--genes", "0"], "--genes"),
    (["--genes", "-3"], "--genes"),
    (["--variant", "nonsense"], "--variant"),
    (["--generations", "0"], "--generations"),
    (["--eval-steps", "2", "--eval-epochs", "1"], "not both"),
    (["--arch", "lenet"], "architecture"),
    (["--workers", "2"], "--executor dask"),
    (["--tf32"], "--tf32 needs --device gpu"),
])
def test_bad_options_are_one_line_and_exit_2(tmp_path, capsys, options, message):
    assert run_cli(["--out", str(tmp_path / "x"), "--no-progress"] + options) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_a_data_file_that_is_not_ours(tmp_path, capsys):
    import h5py

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = numpy.zeros(3)
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    for path in (foreign, text, tmp_path / "missing.h5"):
        assert run_cli(["--data", str(path), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and len(err.strip().splitlines()) == 1


def test_gpu_asked_for_where_there_is_none(tmp_path, capsys):
    from gee_ref import backend

    if backend.gpu_available():
        pytest.skip("a GPU is present")
    assert run_cli(["--device", "gpu", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "gpu" in err and len(err.strip().splitlines()) == 1


def test_unreachable_dask_scheduler(tmp_path, capsys):
    pytest.importorskip("distributed")
    assert run_cli(TINY + ["--executor", "dask", "--dask-scheduler", "tcp://127.0.0.1:9", "--dask-timeout", "1",
                           "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the Dask scheduler" in err and len(err.strip().splitlines()) == 1


def test_cmaes_auto_switches_to_diagonal_above_the_threshold():
    for genes, expected in ((4, False), (45, True)):
        config, data = configured(["--genes", str(genes)])
        run = Evolution(config, "unused", None, data.path)
        assert run.diagonal is expected
        assert (run.n > AUTO_DIAGONAL_ABOVE) is expected


def test_a_run_saved_before_a_setting_existed_resumes_with_its_default():
    def check_resumable(saved, config, path):
        check_same_settings(saved, config, path, RESUMABLE_CHANGES, LATER_SETTINGS)

    saved = {"arch": "digits", "device": "cpu"}  # written before --tf32 existed
    check_resumable(saved, {**saved, "tf32": False}, "old-run")
    with pytest.raises(ValueError, match="tf32"):
        check_resumable(saved, {**saved, "tf32": True}, "old-run")
    with pytest.raises(ValueError, match="arch"):
        check_resumable(saved, {**saved, "arch": "resnet19", "tf32": False}, "old-run")
