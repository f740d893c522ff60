"""How a long loop shows how far it is: a tqdm bar on a terminal, plain lines elsewhere.

Under nohup, in a CI log or piped to a file there is no terminal to redraw a bar on, so the
loop prints a plain line on stderr instead: when a unit of work ends (an epoch, a generation)
and, within a long unit, every ``every_seconds`` (default ``LINE_EVERY_SECONDS``, two minutes): where it is, its loss,
its rate and the time left at that rate. Three modes:

    "bar"    a tqdm bar (the default when stderr is a terminal)
    "lines"  plain lines (the default when it is not)
    "off"    nothing (``--no-progress``; library calls that report elsewhere)
"""
from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm

MODES = ("bar", "lines", "off")
LINE_EVERY_SECONDS = 120.0  # in "lines" mode, a line within a long unit of work this often


def default_mode(requested=None) -> str:
    """``--progress`` (True: bar), ``--no-progress`` (False: off), or None: bar on a terminal, else lines."""
    if requested is None:
        return "bar" if sys.stderr.isatty() else "lines"
    if isinstance(requested, str):
        if requested not in MODES:
            raise ValueError(f"progress mode must be one of {', '.join(MODES)}, got {requested!r}")
        return requested
    return "bar" if requested else "off"


def duration(seconds: float) -> str:
    """A short human reading of a duration: '42 s', '3 min 5 s', '2 h 07 min'."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


class Progress:
    """Progress of ``total`` units (batches, individuals) of one loop, in the given mode."""

    def __init__(self, total, description: str, unit: str = "batch", mode: str = "off",
                 every_seconds: float | None = None, stream=None):
        self.total, self.description, self.unit = total, description, unit
        self.mode = default_mode(mode) if mode is not None else "off"
        self.every_seconds = float(LINE_EVERY_SECONDS if every_seconds is None else every_seconds)
        self.images = 0
        self.stream = sys.stderr if stream is None else stream
        self.done, self.started = 0, time.perf_counter()
        self._last_line = self.started
        self._bar = None
        if self.mode == "bar":
            self._bar = tqdm(total=total, desc=description, leave=False, unit=unit, dynamic_ncols=True)

    def update(self, n: int = 1, images: int = 0, **values) -> None:
        """``n`` more units done (of ``images`` images, for a rate in images/s); ``values``
        (e.g. loss=0.52) are shown beside the count."""
        self.done += n
        self.images += images
        if self._bar is not None:
            self._bar.update(n)
            if values:
                self._bar.set_postfix({k: _short(v) for k, v in values.items()})
        elif self.mode == "lines" and time.perf_counter() - self._last_line >= self.every_seconds:
            self.line(**values)

    def line(self, **values) -> None:
        """Print one plain line now: where the loop is, the values, the rate and the time left."""
        now = time.perf_counter()
        self._last_line = now
        elapsed = now - self.started
        parts = [f"{self.description}: {self.unit} {self.done}" + (f"/{self.total}" if self.total else "")]
        parts += [f"{k} {_short(v)}" for k, v in values.items()]
        if self.done and elapsed > 0:
            rate = (self.images or self.done) / elapsed
            parts.append(f"{rate:.1f} {'images' if self.images else self.unit + 's'}/s")
            if self.total:
                parts.append(f"{duration(elapsed / self.done * (self.total - self.done))} left")
        print(", ".join(parts), file=self.stream, flush=True)

    def write(self, text: str, file=None) -> None:
        """A line that stays (the end of an epoch, a generation), in every mode but "off";
        on ``file`` (default: the progress stream), above the bar when there is one."""
        file = self.stream if file is None else file
        if self._bar is not None:
            self._bar.write(text, file=file)
        elif self.mode == "lines":
            print(text, file=file, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _short(value) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
