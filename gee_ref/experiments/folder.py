"""An experiment's output folder: its settings, its sub-runs, its results (no equation of the paper).

    OUT/experiment.json      the experiment, its settings, its data, the command of each session,
                             and each session's start, end and wall time (none for one cut short)
    OUT/runs/<key>/          one ordinary training run (``python -m gee_ref.train``) per sub-run
    OUT/logs/<key>.log       what that run printed (its epoch lines, its report, its error)
    OUT/wall_seconds.json    each sub-run's wall time, summed over the sessions that ran it
    OUT/<name>.json, .md, .png   the results

The experiment holds OUT's run lock for as long as it runs (``gee_ref.runs.folder.claimed``);
each sub-run holds its own folder's. A new experiment refuses a folder that already holds one;
``resume`` continues it only with the same settings (``check_same_settings``): finished
sub-runs are read back, unfinished ones continue from their last checkpoint.
"""
from __future__ import annotations

import datetime
from pathlib import Path

from gee_ref.runs.folder import check_same_settings
from gee_ref.storage.json_file import read_json, write_json

SETTINGS_NAME = "experiment.json"
RUNS_FOLDER = "runs"
LOGS_FOLDER = "logs"
WALL_TIMES_NAME = "wall_seconds.json"
FORMAT = "gee_ref-reproduce-v1"


def open_experiment(out: Path, name: str, settings: dict, data: dict, command: str, resume: bool) -> dict:
    """Write (or, resuming, check and extend) ``OUT/experiment.json``; returns the record it holds:
    the settings, the data, and the command line of every session that ran the experiment."""
    path = out / SETTINGS_NAME
    session = {"command": command, "started": _now()}
    record = {"format": FORMAT, "experiment": name, "settings": settings, "data": data, "commands": [command],
              "sessions": [session]}
    if path.exists():
        if not resume:
            raise ValueError(f"{out} already holds an experiment: continue it with --resume, or choose another --out")
        saved = read_json(path)
        if saved.get("experiment") != name:
            raise ValueError(f"cannot resume {path}: it holds the experiment {saved.get('experiment')!r}, not {name!r}")
        check_same_settings(saved.get("settings", {}), settings, path)
        if saved.get("data", {}).get("sha256") != data["sha256"]:
            raise ValueError(f"cannot resume {path}: its data file had SHA-256 {saved.get('data', {}).get('sha256')}, "
                             f"{data['path']} has {data['sha256']}")
        saved["commands"] = [*saved.get("commands", []), command]
        saved["sessions"] = [*saved.get("sessions", []), session]
        write_json(path, saved)
        return saved
    if resume:
        raise FileNotFoundError(f"--resume: there is no experiment in {out} (no {SETTINGS_NAME})")
    write_json(path, record)
    return record


def finish_session(out: Path, wall_seconds: float) -> dict:
    """Record the end and wall time of this (the last) session in ``OUT/experiment.json``;
    returns the record."""
    path = out / SETTINGS_NAME
    record = read_json(path)
    record["sessions"][-1].update(finished=_now(), wall_seconds=float(wall_seconds))
    write_json(path, record)
    return record


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def run_folder(out: Path, key: str) -> Path:
    return out / RUNS_FOLDER / key


def log_path(out: Path, key: str) -> Path:
    return out / LOGS_FOLDER / f"{key}.log"


def read_wall_times(out: Path) -> dict:
    path = out / WALL_TIMES_NAME
    return {k: float(v) for k, v in read_json(path).items()} if path.exists() else {}


def add_wall_time(out: Path, key: str, seconds: float) -> float:
    """Add ``seconds`` to the sub-run's recorded wall time; returns the new total."""
    times = read_wall_times(out)
    times[key] = times.get(key, 0.0) + float(seconds)
    write_json(out / WALL_TIMES_NAME, times)
    return times[key]


def result_paths(out: Path, name: str) -> dict:
    return {kind: out / f"{name}.{kind}" for kind in ("json", "md", "png")}
