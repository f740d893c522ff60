"""Sub-runs: ordinary runs of gee_ref's commands, ``jobs`` of them at once, each in its own process.

Every sub-run of an experiment is a command such as ``python -m gee_ref.train ... --out
OUT/runs/<key>`` (``TRAIN``; the ablation's are ``python -m gee_ref.evolve --ablation``) started
as a child process, so it is exactly what a reader would get by typing that command (the
results JSON records it), it keeps its checkpoints and report in its own folder, and a stopped
experiment continues each sub-run where it left off:

* its ``done_file`` exists (a training's ``report.json``): the sub-run is done, read back;
* else, its ``resume_file`` exists (a training's ``checkpoint.h5``; for a program without one,
  its folder): it is started again with ``--resume``;
* else: it is started afresh.

With ``jobs`` > 1 that many children run at once (two on this project's 2-core machine);
each child is told to use ``cpu_count // jobs`` BLAS/OpenMP threads (``OMP_NUM_THREADS``,
``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``), unless the caller's environment sets them.
The children run in the order given: an experiment lists all its configurations for the first
seed, then for the second, so a budget cut short still leaves complete paired seeds.

A child's output goes to ``OUT/logs/<key>.log`` (appended across sessions); the experiment
prints one line per finished sub-run. A child that fails stops the experiment: the others are
stopped (SIGTERM: each keeps its last complete checkpoint) and the error names the sub-run,
its error line and its log. Ctrl-C or SIGTERM to the experiment stops its children the same way.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

from gee_ref.experiments.folder import add_wall_time, log_path, read_wall_times, run_folder
from gee_ref.runs.report import diverged_text
from gee_ref.runs.training_run import CHECKPOINT_NAME, LOG_NAME, OPTION_DEFAULTS, REPORT_NAME
from gee_ref.storage.json_file import read_json
from gee_ref.training.progress import duration

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
POLL_SECONDS = 0.2
STOP_WAIT_SECONDS = 60.0  # how long a stopped child may take to leave its checkpoint


class Program(NamedTuple):
    """A command that sub-runs run, and how to tell where one of its runs stands."""

    module: str  # run as python -m <module>
    defaults: dict  # the options it takes (--name-with-dashes), with their defaults
    done_file: str  # in the run's folder once the run is complete
    resume_file: str | None  # in the run's folder once it has something to resume; None: the folder


TRAIN = Program("gee_ref.train", {**OPTION_DEFAULTS, "on_divergence": "error"}, REPORT_NAME, CHECKPOINT_NAME)


class SubRun(NamedTuple):
    key: str  # its folder under OUT/runs, e.g. "g16-seed0"
    configuration: str  # the table row it belongs to, e.g. "g16"
    seed: int
    options: dict  # the program's options (keys of ``program.defaults``)
    program: Program = TRAIN


class SubRunFailed(ChildProcessError):
    """A sub-run's process ended with an error; the text is one line."""


def command_arguments(options: dict, defaults: dict = TRAIN.defaults) -> list:
    """The command-line flags that give ``options`` (``defaults``: the command's options, by
    default ``python -m gee_ref.train``'s): ``--name-with-dashes value``; a True switch as
    ``--name``; a False one omitted, or ``--no-name`` where the default is "by dataset" (None);
    None omitted."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"not options of the command: {unknown}")
    arguments = []
    for name, value in options.items():
        flag = name.replace("_", "-")
        if value is None:
            continue
        if isinstance(value, bool):
            if value:
                arguments.append(f"--{flag}")
            elif defaults[name] is None:
                arguments.append(f"--no-{flag}")
            continue
        arguments += [f"--{flag}", str(value)]
    return arguments


def child_command(subrun: SubRun, out: Path, resume: bool = False) -> list:
    """The child's command line (this Python, the program, the options, OUT, --resume)."""
    return [sys.executable, "-m", subrun.program.module, *command_arguments(subrun.options, subrun.program.defaults),
            "--out", str(out), *(["--resume"] if resume else [])]


def shown_command(subrun: SubRun, out: Path) -> str:
    """The sub-run as a reader would type it."""
    return " ".join([f"python -m {subrun.program.module}",
                     *(shlex.quote(a) for a in command_arguments(subrun.options, subrun.program.defaults)),
                     "--out", shlex.quote(str(out))])


def child_threads(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // jobs)


def child_environment(jobs: int) -> dict:
    environment = dict(os.environ)
    for name in THREAD_VARIABLES:
        environment.setdefault(name, str(child_threads(jobs)))
    return environment


def last_error_line(log: Path) -> str:
    """The last 'error: ...' line of a child's log, or its last line."""
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "(its log could not be read)"
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or ["(it printed nothing)"])[-1]


def run_subruns(subruns, out: Path, jobs: int = 1, say=print, show_starts: bool = True, read_result=None) -> dict:
    """Run (or read back) every sub-run; returns ``{key: result}``: ``read_result(out, subrun)``
    of each finished one (default ``subrun_result``, a training's), a dict whose "summary" is the
    text of its finished line."""
    read_result = read_result or (lambda folder, subrun: subrun_result(folder, subrun))
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    keys = [s.key for s in subruns]
    if len(set(keys)) != len(keys):
        raise ValueError("sub-run keys must be distinct")
    results, pending = {}, []
    for subrun in subruns:
        if (run_folder(out, subrun.key) / subrun.program.done_file).exists():
            results[subrun.key] = read_result(out, subrun)
        else:
            pending.append(subrun)
    total = len(subruns)
    say(f"{total - len(pending)} of {total} runs already done; {len(pending)} to run, {min(jobs, max(1, len(pending)))} "
        f"at a time ({child_threads(jobs)} thread(s) each); logs in {out / 'logs'}")
    (out / "logs").mkdir(parents=True, exist_ok=True)
    running, started_session, finished_session = {}, time.perf_counter(), 0
    try:
        while pending or running:
            while pending and len(running) < jobs:
                subrun = pending.pop(0)
                running[subrun.key] = _start(subrun, out, jobs)
                if show_starts:
                    say(f"started {subrun.key} (log {log_path(out, subrun.key)})")
            key, child = _wait_for_one(running)
            subrun, process, handle, started = child
            handle.close()
            wall = add_wall_time(out, key, time.perf_counter() - started)
            if process.returncode != 0:
                raise SubRunFailed(f"run {key} failed (exit {process.returncode}): "
                                   f"{last_error_line(log_path(out, key))} (log {log_path(out, key)})")
            results[key] = read_result(out, subrun)
            finished_session += 1
            left = (time.perf_counter() - started_session) / finished_session * (len(pending) + len(running))
            say(f"[{len(results)}/{total}] {key}: {results[key]['summary']}, {duration(wall)}"
                + (f"; about {duration(left)} left" if pending or running else ""))
    finally:
        _stop(running)
    return results


def _start(subrun: SubRun, out: Path, jobs: int):
    folder = run_folder(out, subrun.key)
    marker = subrun.program.resume_file
    resume = (folder / marker).exists() if marker else folder.exists()
    command = child_command(subrun, folder, resume)
    handle = open(log_path(out, subrun.key), "a")
    handle.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(command)}\n")
    handle.flush()
    process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               env=child_environment(jobs))
    return subrun, process, handle, time.perf_counter()


def _wait_for_one(running: dict):
    """Block until one child has ended; remove it from ``running`` and return ``(key, child)``."""
    while True:
        for key, child in running.items():
            if child[1].poll() is not None:
                return key, running.pop(key)
        time.sleep(POLL_SECONDS)


def _stop(running: dict) -> None:
    """SIGTERM every child still running (each leaves its last checkpoint), then wait for it."""
    for _, process, _, _ in running.values():
        if process.poll() is None:
            process.terminate()
    for _, process, handle, _ in running.values():
        try:
            process.wait(timeout=STOP_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        handle.close()
    running.clear()


def subrun_result(out: Path, subrun: SubRun) -> dict:
    """What an experiment keeps of a finished training sub-run's report."""
    folder = run_folder(out, subrun.key)
    report = read_json(folder / REPORT_NAME)
    diverged = report.get("diverged")
    summary = f"test accuracy {report['test_accuracy']:.4f}, {report['parameters']['this_model']:,} parameters"
    if diverged:
        summary += f" ({diverged_text(diverged)})"
    return {"summary": summary,
            "key": subrun.key, "configuration": subrun.configuration, "seed": int(subrun.seed),
            "test_accuracy": float(report["test_accuracy"]), "test_samples": int(report["test_samples"]),
            "parameters": int(report["parameters"]["this_model"]), "epochs": int(report["epochs_done"]),
            "train_seconds": float(report["train_seconds"]),
            "wall_seconds": read_wall_times(out).get(subrun.key),
            "spikes_per_sample": float(report["spikes_per_sample"]),
            "energy_millijoules": float(report["energy"]["millijoules"]),
            "noise_accuracy": float(report["noise"]["accuracy"]),
            "diverged": report.get("diverged"),
            "final_train_accuracy": last_epoch(folder).get("train_accuracy"),
            "command": shown_command(subrun, folder)}


def last_epoch(folder: Path) -> dict:
    """The last record of a run's ``log.jsonl`` (its final epoch), {} when it has none."""
    path = folder / LOG_NAME
    lines = path.read_text().splitlines() if path.exists() else []
    return json.loads(lines[-1]) if lines else {}
