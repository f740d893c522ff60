"""Command line: ``python -m gee_ref.golden --out golden.h5 [--seed S] [--only PATTERN] [--force]``,
or ``--list`` to print the case names and descriptions (of ``--golden FILE``, or of a seed)."""
from __future__ import annotations

import sys

from gee_ref import verification as golden
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.storage.output_check import check_output


def parse(argv):
    parser = ArgumentParser(prog="python -m gee_ref.golden",
                            description="Write gee_ref's float64 golden vectors (ops, networks, CMA-ES, "
                                        "fitness) to an HDF5 file, or list its cases.")
    parser.add_argument("--out", help="the HDF5 file to write (an existing one only with --force)")
    parser.add_argument("--force", action="store_true", help="replace the --out file if it exists")
    parser.add_argument("--seed", type=int, default=golden.DEFAULT_SEED, help="random seed (default 0)")
    parser.add_argument("--only", help="only cases whose name matches this glob or substring")
    parser.add_argument("--list", action="store_true", help="print the case names and descriptions")
    parser.add_argument("--golden", help="with --list: list the cases of this file instead of generating")
    args = parser.parse_args(argv)
    if not args.list and not args.out:
        parser.error("give --out FILE to write the golden file, or --list")
    if args.golden and not args.list:
        parser.error("--golden goes with --list")
    return args


def main(argv=None):
    args = parse(argv)
    if args.list:
        cases = (golden.read_cases(args.golden, args.only) if args.golden
                 else golden.build_cases(args.seed, args.only))
        for case in cases:
            print(f"{case.name}\t{case.description}")
            print(f"    inputs: {', '.join(case.inputs) or '-'}")
            print(f"    outputs: {', '.join(case.outputs)}; grads: {', '.join(case.grads) or '-'}")
        return 0
    check_output(args.out, force=args.force)
    cases = golden.generate(args.out, args.seed, args.only, replace=args.force)
    checked = sum(len(c.checked_paths()) for c in cases)
    print(f"wrote {len(cases)} cases ({checked} checked tensors) to {args.out} (seed {args.seed})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    run_main(main)
