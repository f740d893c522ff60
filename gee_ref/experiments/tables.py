"""The written results of an experiment: JSON, a Markdown table, a PNG (no equation of the paper)."""
from __future__ import annotations

from gee_ref.experiments.folder import result_paths
from gee_ref.experiments.plots import save_png
from gee_ref.storage.json_file import write_json
from gee_ref.storage import atomic


def markdown_table(headers, rows) -> str:
    """A Markdown table: a header line, the rule, one line per row (cells as given)."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def percent(value, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}"


def mean_pm_sd(mean, sd, digits: int = 2) -> str:
    """'55.31 +- 0.42' (percent); 'n/a' for the sd of a single seed."""
    return f"{percent(mean, digits)} +- {'n/a' if sd is None else percent(sd, digits)}"


def signed_percent(value, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:+.{digits}f}"


def write_results(out, name: str, table: dict, markdown: str, draw=None) -> tuple:
    """Write ``OUT/<name>.json`` and ``.md`` (atomically) and, with ``draw``, ``.png``.

    Returns ``(paths written, note)``: the note is None or the one line saying the PNG needs
    matplotlib."""
    paths = result_paths(out, name)
    write_json(paths["json"], table)
    atomic.write_text(paths["md"], markdown, what="table")
    written, note = [paths["json"], paths["md"]], None
    if draw is not None:
        note = save_png(paths["png"], lambda figure: draw(figure, table))
        if note is None:
            written.append(paths["png"])
    return written, note
