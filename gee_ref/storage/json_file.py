"""A run's small JSON files (settings, summaries, the final choice): written atomically, and read
back with a one-line error that names the file when it is corrupt."""
from __future__ import annotations

import json
import math
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
    """``value`` as indented standard JSON, atomically: a NaN or an infinity is written as null
    (Python's NaN token is not JSON, and other readers refuse it)."""
    atomic.write_text(path, json.dumps(_standard(value), indent=2, allow_nan=False) + "\n", what=what)


def json_line(value) -> str:
    """``value`` as one line of standard JSON (non-finite floats as null), for a JSON-lines log."""
    return json.dumps(_standard(value), allow_nan=False) + "\n"


def _standard(value):
    """``value`` with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _standard(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_standard(v) for v in value]
    return value
