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
import signal
import sys
import threading

from gee_ref.backend import DeviceUnavailableError
from gee_ref.data.datasets import DatasetError
from gee_ref.evolution.genome import GenomeError
from gee_ref.storage.checkpoint import CheckpointError

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # the shell's convention for a run stopped by Ctrl-C (128 + SIGINT)


#: The exception types that mean "bad input", not "bug" (h5py reports unreadable files as
#: OSError, and FileNotFoundError is one).
BAD_INPUT_ERRORS = (ValueError, OSError, DeviceUnavailableError, DatasetError, CheckpointError, GenomeError)


def one_line(error: BaseException) -> str:
    """The first non-empty line of an exception's text, or its type name when it has none."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run_main(main, argv=None, memory_hint="the sizes asked for do not fit in memory") -> None:
    """Call ``main(argv)`` and exit with its return value (0 for None).

    ``memory_hint``: what the command's user can change when memory runs out (each command
    names its own options).

    Known bad-input errors print ``error: <first line>`` to stderr and exit 2, and so does
    running out of host or GPU memory; Ctrl-C, and ``kill`` (SIGTERM), print ``error:
    interrupted`` and exit 130 (checkpoints are written atomically, so the last complete one
    stays usable).
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        status = main(argv)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except BAD_INPUT_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    except MemoryError as error:  # NumPy's, or CuPy's OutOfMemoryError (a MemoryError)
        print(f"error: out of memory ({one_line(error)}): {memory_hint}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    sys.exit(0 if status is None else int(status))


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``error: ...``) and exit status 2."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"error: {message} (see {self.prog} --help)\n")
