"""Command-line error handling shared by gee_ref's tools (no equation of the paper).

A command line meets bad input (a missing or corrupt file, an unknown architecture, a GPU
asked for on a machine without one) far more often than a bug. For those, the user gets
ONE line on stderr, ``error: <message>``, and exit status 2; a traceback would only hide
the message. Anything else is a bug and keeps its traceback.

    from gee_ref.cli.errors import ArgumentParser, run_main
    def main(argv=None): ...
    if __name__ == "__main__":
        run_main(main)

``ArgumentParser`` is argparse's parser whose usage errors are also one line and exit 2.
"""
from __future__ import annotations

import argparse
import sys

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a run stopped by Ctrl-C (128 + SIGINT)


def known_bad_input_errors() -> tuple:
    """The exception types that mean "bad input", not "bug".

    DatasetError and CheckpointError are looked up lazily so that this helper imports
    nothing heavy; h5py reports unreadable files as OSError (FileNotFoundError is one).
    """
    from gee_ref.backend import DeviceUnavailableError

    errors = [ValueError, OSError, DeviceUnavailableError]
    for module_name, class_name in (("gee_ref.data.datasets", "DatasetError"),
                                    ("gee_ref.storage.checkpoint", "CheckpointError"),
                                    ("gee_ref.evolution.genome", "GenomeError")):
        try:
            module = __import__(module_name, fromlist=[class_name])
        except ImportError:
            continue
        error_type = getattr(module, class_name, None)
        if isinstance(error_type, type) and issubclass(error_type, BaseException):
            errors.append(error_type)
    return tuple(errors)


def one_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text, or its type name when it has none."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def run_main(main, argv=None) -> None:
    """Call ``main(argv)`` and exit with its return value (0 for None).

    Known bad-input errors print ``error: <first line>`` to stderr and exit 2, and so does
    running out of host or GPU memory (with a hint); Ctrl-C
    prints ``error: interrupted`` and exits 130 (checkpoints are written atomically, so
    the last complete one stays usable).
    """
    try:
        status = main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except known_bad_input_errors() as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except MemoryError as error:  # NumPy's, or CuPy's OutOfMemoryError (a MemoryError)
        print(f"error: out of memory ({one_line(error)}): try a smaller --batch-size, or fewer time steps",
              file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(0 if status is None else int(status))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``) and exit status 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")
