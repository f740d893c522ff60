"""Another implementation's numbers against gee_ref's golden file, tensor by tensor (DESIGN.md 1.3).

``verify(golden_path, candidate_path, ...) -> Report`` (the command is ``python -m gee_ref.verify``). The candidate is an HDF5 file that
holds, at the golden file's dataset paths, the checked tensors of the cases it covers: every
``<case>/outputs/<t>`` and ``<case>/grads/<t>`` (inputs need not be copied; other datasets
are ignored). Each checked golden tensor g and its candidate c give one row:

    max_abs = max_i |c_i - g_i|
    max_rel = max_abs / scale       scale = max_i |g_i| (stored with g as its ``scale``; for a
                                    tensor that is zero up to round-off, the largest of its group)
    ulps    = max_abs / spacing(scale), the error in float64 units in the last place at the
              tensor's scale (1 ulp = 2.2e-16 * scale)

and passes when max_rel <= rtol of its class, the class being the *candidate's* dtype:
float64 -> rtol_float64 (1e-10), any narrower float -> rtol_float32 (1e-5), integer or bool
-> exact. A missing tensor, a shape that differs, or non-finite values where the golden
is finite is a failing row with a one-line message. Exit status 0 when every row passes,
1 otherwise, 2 for a missing or unreadable file or bad arguments (one line on stderr).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import h5py
import numpy

from gee_ref.verification.fileformat import FORMAT, checked_datasets, matches, open_checked

RTOL_FLOAT64 = 1e-10
RTOL_FLOAT32 = 1e-5


@dataclass
class Row:
    """The comparison of one checked tensor."""

    path: str
    passed: bool
    status: str                 # "pass", "fail", "missing", "shape", "nonfinite", "dtype"
    dtype_class: str = "-"      # the candidate's dtype ("float64", "float32", "int64", ...)
    shape: tuple = ()
    max_abs: float = float("nan")
    max_rel: float = float("nan")
    ulps: float = float("nan")
    rtol: float = float("nan")
    message: str = ""


@dataclass
class Report:
    golden: str
    candidate: str
    rows: list = field(default_factory=list)
    ignored: int = 0            # candidate datasets that are not checked golden tensors

    @property
    def passed(self) -> bool:
        return bool(self.rows) and all(r.passed for r in self.rows)

    @property
    def failures(self) -> list:
        return [r for r in self.rows if not r.passed]

    def row(self, path: str) -> Row:
        for r in self.rows:
            if r.path == path:
                return r
        raise KeyError(path)

    def summary(self) -> str:
        total, failed = len(self.rows), len(self.failures)
        if failed == 0:
            return f"PASS: all {total} tensors within tolerance ({self.candidate} against {self.golden})"
        kinds = {}
        for r in self.failures:
            kinds[r.status] = kinds.get(r.status, 0) + 1
        detail = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
        return f"FAIL: {failed} of {total} tensors failed ({detail}) ({self.candidate} against {self.golden})"

    def table(self, failures_only: bool = False) -> str:
        rows = self.failures if failures_only else self.rows
        head = ("status", "tensor", "class", "shape", "max_abs", "max_rel", "ulps", "rtol")
        body = [(r.status.upper(), r.path, r.dtype_class, "x".join(map(str, r.shape)) or "scalar",
                 _number(r.max_abs), _number(r.max_rel), _number(r.ulps, ulps=True), _number(r.rtol))
                for r in rows]
        widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
        lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
        for r, b in zip(rows, body):
            lines.append("  ".join(v.ljust(w) for v, w in zip(b, widths)).rstrip())
            if r.message:
                lines.append(f"    {r.message}")
        return "\n".join(lines)


def _number(value, ulps=False) -> str:
    if value != value:  # NaN: not measured
        return "-"
    if ulps:
        return f"{value:.3g}"
    return f"{value:.2e}"


def _class_and_rtol(dtype, rtol_float64, rtol_float32):
    if dtype.kind == "f":
        return str(dtype), (rtol_float64 if dtype.itemsize >= 8 else rtol_float32)
    if dtype.kind in "iub":
        return str(dtype), 0.0
    return str(dtype), None


def compare(path, golden, candidate, scale, rtol_float64=RTOL_FLOAT64, rtol_float32=RTOL_FLOAT32) -> Row:
    """One row: the candidate array against the golden array (scale as stored with the golden)."""
    candidate = numpy.asarray(candidate)
    golden = numpy.asarray(golden)
    dtype_class, rtol = _class_and_rtol(candidate.dtype, rtol_float64, rtol_float32)
    shape = tuple(golden.shape)
    if rtol is None:
        return Row(path, False, "dtype", dtype_class, shape,
                   message=f"{path}: candidate dtype {candidate.dtype} is not a real number type")
    if candidate.shape != golden.shape:
        return Row(path, False, "shape", dtype_class, tuple(candidate.shape),
                   message=f"{path}: candidate has shape {tuple(candidate.shape)}, golden has {shape}")
    c = candidate.astype(numpy.float64)
    g = golden.astype(numpy.float64)
    finite_g = numpy.isfinite(g)
    bad = ~numpy.isfinite(c) & finite_g
    if bad.any():
        return Row(path, False, "nonfinite", dtype_class, shape, rtol=rtol,
                   message=f"{path}: {int(bad.sum())} non-finite candidate values where the golden is finite")
    if (finite_g != numpy.isfinite(c)).any() or (numpy.isnan(g) != numpy.isnan(c)).any():
        return Row(path, False, "nonfinite", dtype_class, shape, rtol=rtol,
                   message=f"{path}: the candidate's non-finite values are not where the golden's are")
    diff = numpy.abs(c[finite_g] - g[finite_g])
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(scale) if scale is not None else float(numpy.abs(g[finite_g]).max(initial=0.0))
    scale = scale if scale > 0 else 1.0
    max_rel = max_abs / scale
    ulps = max_abs / float(numpy.spacing(numpy.float64(scale)))
    passed = max_rel <= rtol
    message = "" if passed else (f"{path}: max relative error {max_rel:.3g} exceeds {rtol:g} "
                                 f"({dtype_class}), worst at index {_worst_index(c, g)}")
    return Row(path, passed, "pass" if passed else "fail", dtype_class, shape, max_abs, max_rel, ulps, rtol, message)


def _worst_index(c, g):
    diff = numpy.where(numpy.isfinite(g), numpy.abs(c - g), 0.0)
    index = numpy.unravel_index(int(numpy.argmax(diff)), g.shape) if g.ndim else ()
    return tuple(int(i) for i in index)


def verify(golden_path, candidate_path, rtol_float64=RTOL_FLOAT64, rtol_float32=RTOL_FLOAT32,
           only=None) -> Report:
    """Compare every checked tensor of the golden file (matching ``only``) with the candidate's."""
    for name, value in (("rtol_float64", rtol_float64), ("rtol_float32", rtol_float32)):
        if not (isinstance(value, (int, float)) and value >= 0):
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    report = Report(str(golden_path), str(candidate_path))
    with open_checked(golden_path, FORMAT) as golden_file, open_checked(candidate_path, None) as candidate_file:
        checked = [(p, d) for p, d in checked_datasets(golden_file) if only is None or matches(p, only)]
        if not checked:
            raise ValueError(f"no checked golden tensor matches {only!r}" if only is not None
                             else f"{golden_path} holds no checked tensors")
        for path, dataset in checked:
            if path not in candidate_file or not isinstance(candidate_file[path], h5py.Dataset):
                report.rows.append(Row(path, False, "missing", shape=tuple(dataset.shape),
                                       message=f"{path}: missing in the candidate"))
                continue
            report.rows.append(compare(path, dataset[()], candidate_file[path][()], dataset.attrs.get("scale"),
                                       rtol_float64, rtol_float32))
        wanted = {p for p, _ in checked}
        names = []
        candidate_file.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        report.ignored = sum(1 for n in names if n not in wanted)
    return report
