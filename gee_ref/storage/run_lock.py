"""One run per folder: an exclusive lock held for a whole run (no equation of the paper).

A run folder (``train --out``, ``evolve --out``) belongs to one process at a time. The
holder keeps ``fcntl.flock(LOCK_EX)`` on the file ``<folder>/.gee_ref.lock`` for the whole
run and writes into it who it is (pid, host, command, start time), so a second run into
the same folder fails at once with one line naming the holder::

    with run_lock.holding(out) as lock:    # RunFolderBusy (an OSError) if another run holds it
        run_lock.remove_stale_temporaries(out)
        ...                                # the whole run

The kernel releases a flock when the last descriptor of the open file closes: when the
block ends, and also when the holder dies, even by SIGKILL. A lock file left by a killed
run is therefore no lock; its stale holder text is simply overwritten. The lock file
itself is never deleted (deleting it would let two runs lock two different files); the
text in a lock file nobody holds is only the history of its last run.
Processes forked by the holder (not exec'd) inherit the descriptor, so the lock lasts
until they have exited too. POSIX only (``fcntl``); on NFS, Linux maps flock to a lock
the server sees.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import socket
import sys
import time

from gee_ref.storage.atomic import TEMPORARY_PATTERN

LOCK_NAME = ".gee_ref.lock"
_HOLDER_WAIT_S = 0.5  # how long a refused run waits for the holder to finish writing who it is


class RunFolderBusy(OSError):
    """Another live process holds the folder's run lock; the text is one line naming it."""

    def __str__(self):
        return self.strerror


def lock_path(folder) -> str:
    """The lock file of a run folder."""
    return os.path.join(os.fspath(folder), LOCK_NAME)


@contextlib.contextmanager
def holding(folder, command=None):
    """Hold ``folder``'s run lock for the ``with`` block; yields the holder dict written.

    The folder is created if needed. ``command`` (default: this process's command line)
    is recorded for the message another run gets. Raises RunFolderBusy, without waiting,
    when another process (or another ``holding`` in this one) has the lock.
    """
    folder = os.path.abspath(os.fspath(folder))
    os.makedirs(folder, exist_ok=True)
    handle = os.open(lock_path(folder), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise RunFolderBusy(errno.EBUSY, _busy_message(folder, handle), folder) from None
        this_run = _holder_of_this_process(command)
        os.ftruncate(handle, 0)
        os.pwrite(handle, (json.dumps(this_run) + "\n").encode("utf-8"), 0)
        try:
            yield this_run
        finally:
            os.ftruncate(handle, 0)  # who held it is no news to the next contender
    finally:
        os.close(handle)  # closing the last descriptor releases the flock


def remove_stale_temporaries(folder) -> list:
    """Remove the half-written temporary files (``atomic.temporary_name``) in ``folder``
    whose writer is no longer alive on this host; returns the paths removed.

    A temporary file's name carries its writer's pid. A file of a live process (this one
    included) is kept: it may be a write in flight. Call it while holding the folder's
    run lock, so that no other run can be starting its writes there.
    """
    removed = []
    folder = os.fspath(folder)
    for name in sorted(os.listdir(folder)):
        match = TEMPORARY_PATTERN.match(name)
        if match is None or _process_alive(int(match["pid"])):
            continue
        path = os.path.join(folder, name)
        try:
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(path)
    return removed


def _holder_of_this_process(command) -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "command": command if command is not None else " ".join([sys.executable] + sys.argv),
            "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}


def _busy_message(folder: str, handle: int) -> str:
    found = {}
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while not found and time.monotonic() < deadline:  # the holder writes its text just after locking
        found = _read_holder(handle)
        if found.get("host") == socket.gethostname() and not _process_alive(int(found.get("pid", 0))):
            found = {}  # the text a killed holder left: the new holder has not written yet
        if not found:
            time.sleep(0.02)
    if not found:
        return f"run folder {folder} is in use by another run (it has not yet written who it is)"
    return (f"run folder {folder} is in use by another run: pid {found.get('pid')} on {found.get('host')}, "
            f"started {found.get('started')}, command: {found.get('command')} "
            f"(wait for it to end, or choose another folder)")


def _read_holder(handle: int) -> dict:
    """The holder dict in an open lock file, or {} when it is empty or half written."""
    data = os.pread(handle, 1 << 16, 0)
    try:
        found = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def _process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (signal 0 checks, sends nothing)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    return True
