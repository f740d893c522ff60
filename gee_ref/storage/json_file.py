"""A run's small JSON files (settings, summaries, the final choice): written atomically, and read
back with a one-line error that names the file when it is corrupt."""
from __future__ import annotations

import json
from pathlib import Path

from gee_ref.storage import atomic


def read_json(path) -> dict:
    """A JSON object from one of a run's files; a ValueError naming the file when it is corrupt."""
    try:
        value = json.loads(Path(path).read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is corrupt ({error.msg} at line {error.lineno}): "
                         f"not a file this run can continue from") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is corrupt: it does not hold a JSON object")
    return value


def write_json(path, value, what: str = "file") -> None:
    """``value`` as indented JSON, atomically."""
    atomic.write_text(path, json.dumps(value, indent=2) + "\n", what=what)
