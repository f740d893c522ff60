"""Converters from image datasets people already have to gee_ref's HDF5 layout.

Each converter is a module with a command line (see data_tools/README.md)::

    python -m data_tools.cifar        SRC.tar.gz OUT.h5      # CIFAR-10 / CIFAR-100 python tarball
    python -m data_tools.folder_tree  SRC OUT.h5 [--size 32] # <split>/<class>/*.jpg|png, dir or .tar.gz
    python -m data_tools.digits       OUT.h5                 # the embedded scikit-learn digits
    python -m data_tools.subset       SRC.h5 OUT.h5 --train-per-class N --test-per-class M --seed S [--size 16]

None of them downloads anything. Bad input ends a command with one line on stderr and exit
status 2 (``gee_ref.cli.errors.run_main``); OUT is never the source, and an existing OUT is
replaced only with ``--force``. The layout written is the one of ``gee_ref.data.datasets``
(DESIGN.md section 7).
"""
from __future__ import annotations


class ConversionError(ValueError):
    """Input a converter cannot use; the message is one line."""


def one_line(error):
    """An exception's text with its whitespace (newlines included) collapsed to single spaces."""
    return " ".join(str(error).split()) or type(error).__name__


def summary(path, splits, classes):
    """One line describing what was written, for the command lines' stdout."""
    shape = "x".join(str(s) for s in splits["train"][0].shape[1:])
    counts = ", ".join(f"{name} {len(labels)}" for name, (_, labels) in splits.items())
    return f"wrote {path}: {counts} images of {shape}, {len(classes)} classes"
