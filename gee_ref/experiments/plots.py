"""PNG plots of the reproduction tables, with matplotlib, the optional ``plots`` extra.

matplotlib is imported inside ``save_png`` only: without it an experiment still writes its
JSON and Markdown, and ``save_png`` returns the one line that says how to get the PNGs. The
figure is drawn on a ``matplotlib.figure.Figure`` (no pyplot, no display needed), rendered to
PNG bytes in memory and written atomically.
"""
from __future__ import annotations

import io

from gee_ref.storage import atomic

MISSING_MATPLOTLIB = "the PNG plots need matplotlib: pip install gee_ref[plots] (JSON and Markdown written)"


def save_png(path, draw, size=(6.4, 4.6), dpi: int = 120):
    """Draw with ``draw(figure)`` and save ``path``; returns None, or the line above when
    matplotlib is not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return MISSING_MATPLOTLIB
    figure = Figure(figsize=size, dpi=dpi, layout="constrained")
    draw(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    atomic.write_bytes(path, buffer.getvalue(), what="plot")
    return None
