"""Refusing an output file that would destroy an input, or replace a file by surprise
(no equation of the paper).

A command that writes ``OUT`` from ``SRC`` calls ``check_output(OUT, [SRC], force)``
before doing any work:

- ``OUT`` naming the same file as a source is refused always, ``force`` or not: the same
  file whatever the path (a symlink, a hard link, ``./x`` against ``x``), compared by
  device and inode (``os.path.samefile``);
- an existing ``OUT`` is refused unless ``force`` (the command's ``--force``).

The writer then passes ``replace=force`` to ``gee_ref.storage.atomic``, so that an ``OUT``
created by someone else while the command ran is not replaced either.
"""
from __future__ import annotations

import os


class UnsafeOutputError(ValueError):
    """The output path names an input, or an existing file without --force; one line."""


def check_output(out, sources=(), force: bool = False, flag: str = "--force") -> None:
    """Raise UnsafeOutputError if writing ``out`` would overwrite one of ``sources`` or,
    unless ``force``, any existing file. ``flag`` is the option named in the message."""
    out = os.fspath(out)
    if os.path.exists(out):
        for source in sources:
            source = os.fspath(source)
            if os.path.exists(source) and os.path.samefile(out, source):
                raise UnsafeOutputError(f"the output {out} is the input {source} itself (the same file); "
                                        f"writing it would destroy the input: choose another output path")
        if os.path.isdir(out):
            raise UnsafeOutputError(f"the output {out} is a directory; give a file path")
    if os.path.lexists(out) and not force:
        raise UnsafeOutputError(f"the output {out} already exists; pass {flag} to replace it")
