"""Atomic file replacement, used by every file gee_ref writes (no equation of the paper).

``write_bytes`` writes the new content under a fresh temporary name beside its target,
flushes it to disk (fsync), renames it over the target with ``os.replace`` (atomic on POSIX
and Windows) and fsyncs the folder, so that the rename itself survives a power cut. A
process killed at any moment leaves either the previous file or the new one at the
target, never half of one (at worst a stray temporary file, ``temporary_name`` below,
which ``gee_ref.storage.run_lock.remove_stale_temporaries`` clears once its writer is dead).

A full disk (ENOSPC), a file size limit (EFBIG, ``ulimit -f``) or a quota (EDQUOT) ends
the write with a ``DiskFullError``: one line naming the file, the folder and the bytes
needed; the temporary file is removed and the previous file is left as it was.

HDF5 files are built in memory and handed to ``write_bytes`` (``gee_ref.storage.hdf5_image``):
HDF5 failing to write to disk while it closes a file can crash the process.
"""
from __future__ import annotations

import errno
import os
import re
import resource
import secrets

CHUNK_BYTES = 1 << 23  # one os.write call writes at most 8 MiB
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC))
TEMPORARY_PATTERN = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.(?P<token>[0-9a-f]{8})\.tmp$")


class DiskFullError(OSError):
    """A write that ran out of space (disk, file size limit or quota); its text is one line."""

    def __str__(self):
        return self.strerror


def temporary_name(path: str) -> str:
    """``<folder>/.<name>.<pid>.<8 hex digits>.tmp``: the writer's pid is part of the name."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def write_bytes(path, data, what: str = "file", replace: bool = True) -> None:
    """Write ``data`` (bytes or any buffer) to ``path`` atomically.

    ``what`` names the file in error messages ("checkpoint", "dataset file", ...). With
    ``replace=False`` an existing ``path`` is never replaced (FileExistsError), even one
    created while this call runs.
    """
    path = os.path.abspath(os.fspath(path))
    view = memoryview(data).cast("B")
    temporary = temporary_name(path)
    written = 0
    try:
        handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            while written < len(view):
                written += os.write(handle, view[written:written + CHUNK_BYTES])
            _flush_to_disk(handle)
        finally:
            os.close(handle)
        if replace:
            os.replace(temporary, path)
        else:
            _create_only(temporary, path, what)
    except BaseException as error:
        _remove_quietly(temporary)
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            raise disk_full_error(error, path, len(view), what) from None
        raise
    _fsync_folder(os.path.dirname(path))


def write_text(path, text: str, what: str = "file", replace: bool = True) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``write_bytes``)."""
    write_bytes(path, text.encode("utf-8"), what, replace)


def disk_full_error(error: OSError, path, needed: int, what: str = "file") -> DiskFullError:
    """A one-line DiskFullError for an ENOSPC / EFBIG / EDQUOT ``error`` met writing
    ``needed`` bytes to ``path``: what, where, and how much space was needed."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    needs = f"it needs {needed:,} bytes"
    if error.errno == errno.EFBIG:
        limit = _file_size_limit()
        cause = (f"file too large for the file size limit (ulimit -f): {needs}, the limit is {limit:,} bytes"
                 if limit is not None else f"file too large for the file system of {folder}: {needs}")
    elif error.errno == getattr(errno, "EDQUOT", None):
        cause = f"disk quota exceeded: {needs}"
    else:
        cause = f"no space left on device: {needs}, {_free_bytes(folder)} free in {folder}"
    return DiskFullError(error.errno, f"cannot write {what} {path}: {cause}", path)


def _create_only(temporary: str, path: str, what: str) -> None:
    """Move ``temporary`` to ``path`` unless ``path`` exists (a hard link fails on an
    existing name, atomically); where links are not supported, check, then rename."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, f"{what} {path} already exists; not replaced", path) from None
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS):
            raise
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, f"{what} {path} already exists; not replaced", path) from None
        os.replace(temporary, path)
        return
    os.remove(temporary)


def _flush_to_disk(handle: int) -> None:
    """fsync an open file: its data and metadata reach the disk before the rename."""
    os.fsync(handle)


def _fsync_folder(folder: str) -> None:
    """fsync a folder so that a rename in it is durable; not every platform can."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _free_bytes(folder: str) -> str:
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):  # no statvfs on Windows
        return "unknown bytes"
    return f"{stats.f_bavail * stats.f_frsize:,} bytes"


def _file_size_limit():
    """The soft RLIMIT_FSIZE in bytes, or None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft
