"""The options of an experiment, declared as data (no equation of the paper).

An experiment module lists its own ``OPTIONS`` (``Option``: name, parser, default, help);
``MODEL_OPTIONS`` (data, architecture, T, batch, seeds, device) are shared by every
experiment, ``COMMON_OPTIONS`` adds the training options of experiments made of training runs. ``python -m
gee_ref.reproduce`` turns them into command-line flags (``--name-with-dashes``), and
``resolve_settings`` fills the defaults of the ones not given. The settings are what an
experiment's results depend on: they are saved in ``OUT/experiment.json`` and a resumed
experiment must have the same.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

from gee_ref.runs.training_run import batch_count


class Option(NamedTuple):
    name: str  # the settings key; on the command line --name-with-dashes
    parse: Callable  # text -> value
    default: object
    help: str


def int_list(text: str) -> list:
    """'2,4,8' -> [2, 4, 8]; '3' stays [3] (the experiment says what a list means)."""
    try:
        values = [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"expected integers separated by commas, got {text!r}") from None
    if not values:
        raise ValueError(f"expected at least one integer, got {text!r}")
    return values


def seed_list(text: str) -> list:
    """'0,1,2' -> [0, 1, 2]; a single number N means the seeds 0 .. N-1."""
    values = int_list(text)
    if len(values) == 1 and "," not in str(text):
        if values[0] < 1:
            raise ValueError(f"--seeds N needs N >= 1, got {values[0]}")
        return list(range(values[0]))
    if len(set(values)) != len(values) or min(values) < 0:
        raise ValueError(f"seeds must be distinct integers >= 0, got {text!r}")
    return values


def yes_no(text: str) -> bool:
    if str(text).lower() in ("yes", "true", "1", "on"):
        return True
    if str(text).lower() in ("no", "false", "0", "off"):
        return False
    raise ValueError(f"expected yes or no, got {text!r}")


def choice(name: str, choices) -> Callable:
    """A parser that accepts one of ``choices`` (its ``__name__`` is the option's, for argparse's messages)."""
    def parse(text):
        if text not in choices:
            raise ValueError(f"expected one of {', '.join(choices)}, got {text!r}")
        return text
    parse.__name__ = name
    return parse


MODEL_OPTIONS = (
    Option("data", str, None, "dataset HDF5 file (required: e.g. CIFAR-10 from data_tools.folder_tree)"),
    Option("arch", str, None, "architecture (default: the experiment's)"),
    Option("width", int, None, "base width of vgg8 / resnet14 (default: the architecture's, 16)"),
    Option("time_steps", int, None, "T (default: the experiment's)"),
    Option("batch_size", int, None, "batch size (default: the experiment's)"),
    Option("seeds", seed_list, None, "seeds, '0,1,2', or N for 0..N-1 (default: the experiment's); "
                                     "every configuration runs on the same seeds"),
    Option("device", str, "cpu", "cpu or gpu"),
)
TRAINING_OPTIONS = (
    Option("epochs", int, None, "training epochs of every run (default: the experiment's)"),
    Option("lr", float, None, "base learning rate (default: the experiment's)"),
    Option("augment", yes_no, None, "yes/no: random crop and flip (default: the experiment's)"),
    Option("steps_per_epoch", int, None, "cap the batches per epoch (quick runs)"),
    Option("eval_batches", batch_count, None, "batches of each run's per-epoch evaluation, 0 for none"),
    Option("report_batches", batch_count, None, "batches of each run's final report ('all': the whole test split)"),
)
#: The options of an experiment made of training runs.
COMMON_OPTIONS = MODEL_OPTIONS + TRAINING_OPTIONS


def resolve_settings(given: dict, options, defaults: dict) -> dict:
    """Every option's value: ``given`` where not None, else ``defaults`` (the experiment's), else
    the option's own default. ValueError for a name that no option declares."""
    names = [o.name for o in options]
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise ValueError(f"unknown experiment options {unknown}")
    settings = {}
    for option in options:
        value = given.get(option.name)
        if value is None:
            value = defaults.get(option.name, option.default)
        settings[option.name] = value
    return settings
