"""Running one experiment of the reproduction into its folder (no equation of the paper).

    table, written, note = run_experiment("gene-scale", {"data": "cifar10.h5"}, out="repro/gene-scale", jobs=2)

An experiment is a module of this package with:

* ``NAME``, ``SUMMARY`` (one line) and ``CLAIM`` (the paper's words it tests);
* ``OPTIONS`` (``gee_ref.experiments.options.Option``) and ``DEFAULTS`` (its scale);
* ``check(settings, data)``: a ValueError, one line, for settings it cannot run;
* ``scale(settings)``: the model and budget part of the scale line every table starts with;
* ``run(context)``: does the work (``Context`` below) and returns the table's body (rows, runs);
* ``markdown(table)`` and ``draw(figure, table)``: the table as Markdown, and its plot.

``run_experiment`` resolves the settings, describes the data (``provenance.describe_data``),
holds OUT's lock, opens or resumes the folder (``folder.open_experiment``), calls ``run``, and
writes ``OUT/<name>.json``, ``.md`` and ``.png`` (``tables.write_results``). Every JSON holds the
experiment, the claim, the scale line, the settings, the data record, the command line of every
session that ran it (with its start, end and wall time; a session cut short has no end) and the
machine's CPU count and jobs, besides the experiment's own rows.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy

from gee_ref.experiments import ablation, fidelity, gene_scale
from gee_ref.experiments.folder import FORMAT, finish_session, open_experiment
from gee_ref.experiments.options import resolve_settings
from gee_ref.experiments.provenance import data_line, describe_data
from gee_ref.experiments.subruns import child_threads
from gee_ref.experiments.tables import write_results
from gee_ref.models import ARCHITECTURES
from gee_ref.runs.folder import claimed

EXPERIMENTS = {module.NAME: module for module in (gene_scale, ablation, fidelity)}


class Context(NamedTuple):
    """What an experiment's ``run`` gets."""

    out: Path
    settings: dict
    data: dict  # ``provenance.describe_data``
    jobs: int
    progress: str  # "bar", "lines" or "off": shown by the experiment's own long loops
    say: Callable


def experiment_named(name: str):
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: expected one of {', '.join(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def resolve(name: str, given: dict) -> tuple:
    """``(settings, data record)`` for the options ``given`` (None: the experiment's default)."""
    experiment = experiment_named(name)
    settings = resolve_settings(given, experiment.OPTIONS, experiment.DEFAULTS)
    spec = ARCHITECTURES.get(settings["arch"])
    if spec is not None and settings.get("width") is None:
        settings["width"] = spec.width  # the architecture's own (None for a layout without a width)
    if settings.get("data") is None:
        raise ValueError(f"{name} needs --data: a gee_ref dataset file, e.g. CIFAR-10 converted by "
                         f"python -m data_tools.folder_tree (see README, 'Reproducing the paper')")
    settings["data"] = str(Path(settings["data"]).resolve())
    data = describe_data(settings["data"])
    experiment.check(settings, data)
    return settings, data


def run_experiment(name: str, given: dict, out, jobs: int = 1, resume: bool = False, progress: str = "off",
                   say=print, command: str = "") -> tuple:
    """Run (or resume) experiment ``name`` into ``out``; returns ``(table, paths written, note)``:
    the note is None or the line saying the PNG needs matplotlib."""
    experiment = experiment_named(name)
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    settings, data = resolve(name, given)
    out = Path(out)
    started = time.perf_counter()
    with claimed(out):
        open_experiment(out, name, settings, data, command, resume)
        body = experiment.run(Context(out, settings, data, jobs, progress, say))
        record = finish_session(out, time.perf_counter() - started)
        table = {"format": FORMAT, "experiment": name, "claim": experiment.CLAIM,
                 "scale": f"{data_line(data)}; {experiment.scale(settings)}", **body, "settings": settings, "data": data,
                 "commands": record["commands"], "sessions": record["sessions"],
                 "environment": {"cpu_count": os.cpu_count(), "jobs": jobs, "threads_per_run": child_threads(jobs),
                                 "python": platform.python_version(), "numpy": numpy.__version__,
                                 "machine": platform.machine()}}
        written, note = write_results(out, name, table, experiment.markdown(table), experiment.draw)
    return table, written, note
