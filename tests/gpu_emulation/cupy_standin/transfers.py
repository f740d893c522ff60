"""Counters of every host <-> device crossing the stand-in sees, as a real GPU would make them.

Kinds (each a separate counter):

- ``host_to_device``: ``cupy.asarray``/``cupy.array`` of host data (a NumPy array, a list,
  a Python scalar), a NumPy array used as an index or as the value of an advanced-index
  assignment (CuPy converts both with ``core.array``, _routines_indexing.pyx).
- ``device_to_host``: the explicit copies ``ndarray.get()``, ``cupy.asnumpy``, pickling.
- ``implicit_sync``: a device value read by the host behind the caller's back: ``float()``,
  ``int()``, ``complex()``, ``bool()``, ``.item()``, ``.tolist()``, ``repr``/``str``/``format``,
  ``tobytes``; and the operations whose output shape depends on the data, which CuPy must
  read back first ("This function may synchronize the device": boolean-mask indexing,
  ``nonzero``, ``argwhere``, ``flatnonzero``, ``unique``, ``compress``, one-argument ``where``).
- ``synchronize``: ``cupy.cuda.Device().synchronize()`` and ``Stream.synchronize()``.

A host wait is any of the last three: ``host_syncs()`` is their sum. Iterating over an array
is not one: CuPy's ``__iter__`` yields device views (core.pyx), it copies nothing.
"""
from __future__ import annotations

import contextlib
import threading

KINDS = ("host_to_device", "device_to_host", "implicit_sync", "synchronize")
_lock = threading.Lock()
_counts = dict.fromkeys(KINDS, 0)
_events: list | None = None  # (kind, what) while a counting() block records them


def record(kind: str, what: str) -> None:
    """Count one crossing of ``kind``; ``what`` names the operation (kept inside counting())."""
    if kind not in _counts:
        raise ValueError(f"unknown transfer kind {kind!r}: expected one of {', '.join(KINDS)}")
    with _lock:
        _counts[kind] += 1
        if _events is not None:
            _events.append((kind, what))


def counts() -> dict:
    """A copy of the counters since the process started (or since reset())."""
    with _lock:
        return dict(_counts)


def host_syncs(counted: dict | None = None) -> int:
    """How many times the host waited for the device: copies back, implicit reads, synchronize."""
    counted = counts() if counted is None else counted
    return counted["device_to_host"] + counted["implicit_sync"] + counted["synchronize"]


def reset() -> None:
    with _lock:
        for kind in KINDS:
            _counts[kind] = 0


class Counted:
    """What a counting() block saw: ``counts`` per kind, ``events`` [(kind, what)], ``host_syncs``."""

    def __init__(self):
        self.counts = dict.fromkeys(KINDS, 0)
        self.events: list = []

    @property
    def host_syncs(self) -> int:
        return host_syncs(self.counts)

    def __repr__(self):
        return f"Counted({self.counts}, host_syncs={self.host_syncs})"


@contextlib.contextmanager
def counting():
    """``with counting() as seen:`` -> ``seen.counts``, ``seen.events`` of that block only."""
    global _events
    seen = Counted()
    with _lock:
        before, outer = dict(_counts), _events
        _events = []
    try:
        yield seen
    finally:
        with _lock:
            seen.counts = {k: _counts[k] - before[k] for k in KINDS}
            seen.events = _events
            if outer is not None:
                outer.extend(_events)
            _events = outer
