"""``python -m gee_ref.reproduce NAME --out DIR``: one of the paper's claims, tested at this machine's scale.

    python -m gee_ref.reproduce gene-scale --data /work/data/cifar10-16px.h5 --out repro/gene-scale --jobs 2
    python -m gee_ref.reproduce gene-scale ... --resume          # continue a stopped experiment
    python -m gee_ref.reproduce gene-scale --help                # its options and their defaults

Each experiment (``gee_ref.experiments``) runs ordinary training runs in ``OUT/runs/``, prints one
line per finished run, and writes ``OUT/NAME.json``, ``OUT/NAME.md`` and ``OUT/NAME.png`` (the PNG
needs matplotlib: ``pip install gee_ref[plots]``). This command parses, checks, calls
``gee_ref.experiments.driver.run_experiment`` and prints where the results are.
"""
from __future__ import annotations

import argparse

from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.cli.options import progress_mode
from gee_ref.experiments.driver import EXPERIMENTS, run_experiment
from gee_ref.experiments.provenance import command_line


def _argument_type(option):
    """argparse's type for an Option: its parser, with a ValueError's text as the usage error."""
    def parse(text):
        try:
            return option.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    parse.__name__ = option.name  # argparse names the type in its message
    return parse


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m gee_ref.reproduce",
                            description="Reproduce one of the paper's claims at this machine's scale: sub-runs, "
                                        "then a JSON + Markdown table and a PNG plot in --out.")
    experiments = parser.add_subparsers(dest="name", metavar="NAME", required=True,
                                        parser_class=ArgumentParser)
    for name, experiment in EXPERIMENTS.items():
        sub = experiments.add_parser(name, help=experiment.SUMMARY, description=f"{experiment.SUMMARY}. "
                                     f"Claim tested: {experiment.CLAIM}.")
        sub.add_argument("--out", required=True, help="the experiment's folder")
        sub.add_argument("--jobs", type=int, default=1, help="sub-runs at once, each its own process (default 1)")
        sub.add_argument("--resume", action="store_true", help="continue the experiment in --out (same options)")
        sub.add_argument("--progress", default=None, action=argparse.BooleanOptionalAction,
                         help="also a line when each sub-run starts (default: on; --no-progress: finished runs only)")
        for option in experiment.OPTIONS:
            default = experiment.DEFAULTS.get(option.name, option.default)
            sub.add_argument(f"--{option.name.replace('_', '-')}", dest=option.name, type=_argument_type(option),
                             default=None, help=f"{option.help} [{default}]")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    experiment = EXPERIMENTS[args.name]
    given = {option.name: getattr(args, option.name) for option in experiment.OPTIONS}
    mode = "off" if args.progress is False else progress_mode(args)
    table, written, note = run_experiment(args.name, given, args.out, jobs=args.jobs, resume=args.resume,
                                          progress=mode, say=print, command=command_line(argv))
    print(f"{args.name}: {table['scale']}")
    for path in written:
        print(f"wrote {path}")
    if note:
        print(note)
    return 0


if __name__ == "__main__":
    run_main(main, memory_hint="try a smaller --batch-size or --time-steps, or fewer --jobs")
