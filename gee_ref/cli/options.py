"""The options ``train`` and ``evolve`` share, written once (no equation of the paper).

Both commands read a dataset, build an architecture, run on a device, write into an output
folder and can resume it; these options mean the same in both. Each command adds its own.
"""
from __future__ import annotations

import argparse

from gee_ref import backend
from gee_ref.models import ARCHITECTURES
from gee_ref.training.progress import default_mode


def architecture_list() -> str:
    """'digits (small conv net for 8x8 UCI digits), resnet19 (...), ...' for --help."""
    return "; ".join(f"{name}: {spec.summary}" for name, spec in ARCHITECTURES.items())


def add_run_options(parser, out_help: str, arch_default_help: str) -> None:
    """--arch, --genes, --width, --data, --time-steps, --batch-size, --seed, --device, --tf32, --out,
    --resume, --progress."""
    add = parser.add_argument
    add("--arch", default=None, metavar="ARCH",
        help=f"architecture ({arch_default_help}); one of: {architecture_list()}")
    add("--genes", type=int, default=None, help="number of genes g (default: the architecture's)")
    add("--width", type=int, default=None, help="base width w of vgg8 and resnet14 (default 16)")
    add("--data", default=None, help="dataset HDF5 file (default: the embedded digits)")
    add("--time-steps", dest="time_steps", type=int, default=None, help="T (default 4)")
    add("--batch-size", dest="batch_size", type=int, default=None, help="default by dataset")
    add("--seed", type=int, default=0)
    add("--device", default="cpu", choices=backend.DEVICES)
    add("--tf32", action="store_true",
        help="GPU only: float32 matrix products on TF32 tensor cores (faster, 10-bit mantissa; off by default)")
    add("--out", default=None, help=out_help)
    add("--resume", action="store_true", help="continue the run saved in --out (same options)")
    add("--progress", default=None, action=argparse.BooleanOptionalAction,
        help="tqdm bars; default: bars when stderr is a terminal, else a plain line per epoch or "
             "generation and every two minutes within one; --no-progress: neither")


def progress_mode(args) -> str:
    """"bar", "lines" or "off" from --progress / --no-progress (``gee_ref.training.progress``)."""
    return default_mode(args.progress)


def options_of(args, names) -> dict:
    """The parsed options named ``names``, as a dict for a run's ``resolve_config``."""
    return {name: getattr(args, name) for name in names}
