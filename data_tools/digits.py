"""The embedded default dataset -> a gee_ref HDF5 file (DESIGN.md section 7).

    python -m data_tools.digits OUT.h5 [--force]

Writes the UCI hand-written digits that scikit-learn ships, exactly as
``gee_ref.data.datasets.default_digits_path()`` caches them: 8x8x1 uint8, fixed stratified split
(seed 0, test fraction 0.2: 1438 train, 359 test images). No download.
"""
from __future__ import annotations

from data_tools import ConversionError, summary
from gee_ref.cli.errors import ArgumentParser, run_main
from gee_ref.data.datasets import DIGITS_SOURCE, digits_splits, write_dataset
from gee_ref.storage.output_check import check_output


def main(argv=None):
    parser = ArgumentParser(prog="python -m data_tools.digits",
                           description="Write the embedded scikit-learn digits in gee_ref's HDF5 layout.")
    parser.add_argument("out", help="the .h5 file to write")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)

    check_output(args.out, force=args.force)
    try:
        splits, classes = digits_splits()
    except ImportError as error:  # scikit-learn missing: bad environment, one line
        raise ConversionError(str(error)) from None
    write_dataset(args.out, splits, classes, DIGITS_SOURCE, replace=args.force)
    print(summary(args.out, splits, classes))


if __name__ == "__main__":
    run_main(main)
