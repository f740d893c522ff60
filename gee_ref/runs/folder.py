"""A run's output folder: one process at a time, its settings, and the rule for continuing it.

A run (``train`` or ``evolve``) holds its folder's lock for as long as it runs
(``gee_ref.storage.run_lock``): a second run into the same folder stops at once with one line
naming the holder. Holding it, the run removes the half-written temporary files that a killed
run left (never those of a live writer), writes its settings, and ``--resume`` continues a
folder only with the same settings, but for the few a resumed run may change (the device,
say); a setting added to gee_ref after a folder was written counts as its old default. A new
run refuses a folder that already holds one.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

from gee_ref.storage import run_lock


@contextlib.contextmanager
def claimed(out):
    """Hold ``out``'s run lock (creating the folder) for the ``with`` block, after clearing the
    temporary files of dead writers; RunFolderBusy (one line, exit 2) when another run holds it."""
    with run_lock.holding(out):
        run_lock.remove_stale_temporaries(out)
        yield Path(out)


def check_same_settings(saved: dict, config: dict, path, may_change=(), later_settings=None) -> None:
    """ValueError unless a resumed run has the saved settings, but for those in ``may_change``;
    a setting missing from an older save (``later_settings``) had its default there."""
    saved = {**(later_settings or {}), **saved}
    for key in sorted(set(saved) | set(config)):
        if key not in may_change and saved.get(key) != config.get(key):
            raise ValueError(f"cannot resume {path}: it was written with {key}={saved.get(key)!r}, "
                             f"this run has {key}={config.get(key)!r}")
