"""Atomic file replacement, used by every file gee_ref writes that a run depends on.

A file is written under a fresh temporary name beside its target, flushed to disk (fsync),
renamed over the target with ``os.replace`` (atomic on POSIX and Windows), and the folder
is fsynced so that the rename itself survives a power cut. A process killed at any moment
leaves either the previous file or the new one at the target, never half of one (at worst a
stray ``.<name>.<pid>.<hex>.tmp`` beside it).
"""
from __future__ import annotations

import contextlib
import os
import secrets


@contextlib.contextmanager
def replacing(path):
    """Yield a temporary path to write; on success it replaces ``path``, on any error
    (KeyboardInterrupt included) it is removed and ``path`` is left as it was."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        _fsync(temporary, os.O_RDWR)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    _fsync(folder, os.O_RDONLY, required=False)  # not every platform can fsync a folder


def write_text(path, text: str) -> None:
    """Replace ``path`` atomically with ``text``."""
    with replacing(path) as temporary:
        with open(temporary, "w") as stream:
            stream.write(text)


def _fsync(path: str, flags: int, required: bool = True) -> None:
    """Flush a file's (or a folder's) data and metadata to disk."""
    try:
        handle = os.open(path, flags)
    except OSError:
        if required:
            raise
        return
    try:
        os.fsync(handle)
    except OSError:
        if required:
            raise
    finally:
        os.close(handle)
