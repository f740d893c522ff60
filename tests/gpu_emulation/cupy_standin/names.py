"""CuPy 14.2's names and Python signatures, from the committed snapshot ``cupy_names.json``.

The stand-in exposes a name only if real CuPy has it (``make_snapshot.py`` regenerates the
file from an installed CuPy), and checks a call's arguments against CuPy's own parameter
list where CuPy's function is Python code (``inspect.signature`` works on it): a NumPy-only
keyword such as ``numpy.sum(..., where=...)`` is then the TypeError CuPy would raise.
"""
from __future__ import annotations

import functools
import inspect
import json
from pathlib import Path

SNAPSHOT_FILE = Path(__file__).with_name("cupy_names.json")
SNAPSHOT = json.loads(SNAPSHOT_FILE.read_text())
CUPY_VERSION = SNAPSHOT["cupy_version"]

_KINDS = {"p": inspect.Parameter.POSITIONAL_ONLY, "pk": inspect.Parameter.POSITIONAL_OR_KEYWORD,
          "*": inspect.Parameter.VAR_POSITIONAL, "k": inspect.Parameter.KEYWORD_ONLY,
          "**": inspect.Parameter.VAR_KEYWORD}
class _Default:
    """Stands for CuPy's default value of a parameter: only whether there is one matters here."""

    def __repr__(self):
        return "..."


_DEFAULT = _Default()


def names(section: str):
    """The names of a section ("cupy", "cupy.linalg", "cupy.ndarray", ...)."""
    return SNAPSHOT[section]


def has(section: str, name: str) -> bool:
    return name in SNAPSHOT[section]


def kind(section: str, name: str) -> str | None:
    """"function", "ufunc", "type", "module" or "constant" for a module-level name."""
    entry = SNAPSHOT[section].get(name)
    return entry.get("kind") if isinstance(entry, dict) else None


@functools.lru_cache(maxsize=None)
def signature(section: str, name: str) -> inspect.Signature | None:
    """CuPy's signature of a Python-level function or method, or None where CuPy has none."""
    entry = SNAPSHOT[section].get(name)
    parameters = entry.get("parameters") if isinstance(entry, dict) and "kind" in entry else entry
    if not isinstance(parameters, list):
        return None
    return inspect.Signature([inspect.Parameter(n, _KINDS[k], default=_DEFAULT if d else inspect.Parameter.empty)
                              for n, k, d in parameters])


def check_arguments(section: str, name: str, args: tuple, kwargs: dict, method: bool = False) -> None:
    """TypeError when CuPy's ``name`` would not accept these arguments (no signature: no check)."""
    sig = signature(section, name)
    if sig is None:
        return
    try:
        sig.bind(*((None,) if method else ()), *args, **kwargs)
    except TypeError as error:
        raise TypeError(f"{section}.{name}(): {error} (CuPy {CUPY_VERSION}: {name}{sig})") from None
