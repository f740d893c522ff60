"""The one-line check of a count option, shared by the training run, the evolution run and the
reproduction experiments (no equation of the paper)."""
from __future__ import annotations


def require_at_least(settings: dict, names, least: int = 1, unset_allowed: bool = False) -> None:
    """A ValueError naming the first option of ``names`` below ``least``: "--batch-size must be >=
    1, got 0". With ``unset_allowed``, an option set to None (not given) passes."""
    for name in names:
        value = settings[name]
        if value is None and unset_allowed:
            continue
        if value < least:
            raise ValueError(f"--{name.replace('_', '-')} must be >= {least}, got {value}")
