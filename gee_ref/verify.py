"""``python -m gee_ref.verify``: check another implementation's numbers against gee_ref's golden file.

    python -m gee_ref.verify --golden golden.h5 --candidate theirs.h5
                             [--rtol-float64 1e-10] [--rtol-float32 1e-5] [--only PATTERN] [--failures-only]

The comparison (what is checked, the tolerances, the table) is ``gee_ref.verification.compare``.
Exit status 0 when every row passes, 1 otherwise, 2 for a missing or unreadable file or bad
arguments (one line on stderr).
"""
from __future__ import annotations

from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.verification.compare import RTOL_FLOAT32, RTOL_FLOAT64, verify

def parse(argv):
    parser = ArgumentParser(prog="python -m gee_ref.verify",
                            description="Compare a candidate HDF5 file with gee_ref's golden file, tensor by tensor.")
    parser.add_argument("--golden", required=True, help="the golden file (python -m gee_ref.golden --out ...)")
    parser.add_argument("--candidate", required=True, help="the file to check, at the golden file's dataset paths")
    parser.add_argument("--rtol-float64", type=float, default=RTOL_FLOAT64,
                        help=f"relative tolerance for float64 candidate tensors (default {RTOL_FLOAT64:g})")
    parser.add_argument("--rtol-float32", type=float, default=RTOL_FLOAT32,
                        help=f"relative tolerance for narrower float tensors (default {RTOL_FLOAT32:g})")
    parser.add_argument("--only", help="check only tensors whose path matches this glob or substring")
    parser.add_argument("--failures-only", action="store_true", help="print only the failing rows")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse(argv)
    report = verify(args.golden, args.candidate, args.rtol_float64, args.rtol_float32, args.only)
    print(report.table(failures_only=args.failures_only))
    print(report.summary())
    return 0 if report.passed else 1


if __name__ == "__main__":
    run_main(main)
