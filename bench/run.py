"""``python -m bench``: gee_ref's benchmarks, each beside its reference, in one process.

    python -m bench --device cpu|gpu [--quick | --smoke] [--only NAME[,NAME...]] [--threads K]
                    [--warmup W] [--repeats R] [--out DIR] [--label WORD]

Every benchmark (``BENCHMARKS``) times gee_ref and its reference (PyTorch eager, pycma, or
gee_ref's own one-by-one path) in the same process, so that every ratio compares two numbers
taken on the same machine at the same time. Timing: ``warmup`` untimed runs, then ``repeats``
timed runs, each fenced by a device synchronisation (``backend.synchronize`` for CuPy,
``torch.cuda.synchronize`` for PyTorch); the figure is the median.

Sizes: full by default, ``--quick`` for minutes on a 2-core CPU, ``--smoke`` tiny (for the
test suite; its numbers mean nothing). ``--threads K`` runs NumPy's BLAS and PyTorch on K
threads (default: NumPy's own count, which PyTorch is then set to). ``--warmup`` and
``--repeats`` replace the size mode's counts (bench/gpu_first.sh: a short GPU visit). Results go to
``DIR/<device>-<date>[-<size>][-<K>threads][-<label>].json``
(the whole record: device, versions, settings, every measurement with its runs), the same
name with ``.md`` (the table, each target with its measured ratio and met/missed) and a copy
``DIR/latest-<device>.md``.
"""
from __future__ import annotations

import datetime
import gc
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy

from gee_ref import backend
from gee_ref.cli.errors import ArgumentParser, run_main

SCHEMA = "gee_ref-bench/1"
SIZES = ("smoke", "quick", "full")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROW_KEYS = ("benchmark", "name", "config", "unit", "gee_ref", "gee_ref_runs", "reference_name",
            "reference", "ratio", "target", "status", "note", "extra")


# ------------------------------------------------------------------------- the run's context

class Context:
    """What every benchmark needs: device, array module, size mode, PyTorch, timing settings."""

    def __init__(self, device: str, size: str = "full", threads: int | None = None, warmup=None, repeats=None):
        if size not in SIZES:
            raise ValueError(f"unknown size {size!r}: expected one of {', '.join(SIZES)}")
        if threads is not None:
            limit_blas_threads(threads)
        self.device, self.size = device, size
        self.quick = size != "full"   # quick and smoke
        self.smoke = size == "smoke"
        self.xp = backend.xp_for(device)  # DeviceUnavailableError for a GPU that is not there
        self.torch_device = "cuda" if device == "gpu" else "cpu"
        self.threads = blas_threads()
        self._torch = None
        self.warmup = 1 if self.quick else (3 if device == "gpu" else 2)
        self.repeats = {"smoke": 2, "quick": 3}.get(size, 10 if device == "gpu" else 5)
        for name, value, least in (("warmup", warmup, 0), ("repeats", repeats, 1)):
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int) or value < least:
                    raise ValueError(f"--{name} must be an integer >= {least}, got {value!r}")
                setattr(self, name, value)

    @property
    def torch(self):
        """torch (imported on first use: a second or two), or None when absent or blind to CUDA."""
        if self._torch is None:
            self._torch = _import_torch(self.device) or False
            if self._torch and self.device == "cpu":
                self._torch.set_num_threads(self.threads)  # the same cores NumPy's BLAS uses
        return self._torch or None

    def synchronize(self) -> None:
        """Wait for queued GPU work of CuPy and of PyTorch (no-op on the CPU)."""
        backend.synchronize(self.xp)
        if self._torch and self.torch_device == "cuda":
            self._torch.cuda.synchronize()

    def time_one(self, fn) -> float:
        """Wall time in ms of one call of fn, fenced by device synchronisations."""
        self.synchronize()
        start = time.perf_counter()
        fn()
        self.synchronize()
        return (time.perf_counter() - start) * 1e3

    def time_ms(self, fns: dict, warmup=None, repeats=None) -> dict:
        """{name: wall times in ms} of ``repeats`` calls of each fn after ``warmup`` untimed calls.

        The functions take turns (a, b, b, a, a, b, ...), so that a load that comes and goes on
        the machine falls on all of them alike and their ratio stays fair.
        """
        for fn in fns.values():
            for _ in range(self.warmup if warmup is None else warmup):
                fn()
        runs = {name: [] for name in fns}
        order = list(fns)
        for _ in range(self.repeats if repeats is None else repeats):
            for name in order:
                runs[name].append(self.time_one(fns[name]))
            order.reverse()
        return runs


def _import_torch(device):
    """torch when installed (and, for the GPU, when it sees CUDA), else None."""
    try:
        import torch
    except ImportError:
        return None
    if device == "gpu" and not torch.cuda.is_available():
        return None
    return torch


def blas_threads() -> int:
    """Threads of NumPy's BLAS (threadpoolctl when available, else the CPU count)."""
    try:
        from threadpoolctl import threadpool_info
        counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
        if counts:
            return int(max(counts))
    except ImportError:
        pass
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _load_average():
    """The 1-minute load average (other processes compete for the cores), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def limit_blas_threads(threads: int) -> None:
    """Run NumPy's BLAS on ``threads`` threads from now on (threadpoolctl); PyTorch follows."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {threads!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ValueError("--threads needs threadpoolctl (pip install threadpoolctl)") from None
    global _THREAD_LIMIT
    _THREAD_LIMIT = threadpool_limits(limits=threads, user_api="blas")  # kept alive: the limit holds


_THREAD_LIMIT = None


def median(runs):
    return float(statistics.median(runs)) if runs else None


# ------------------------------------------------------------------------- result rows

def make_row(device, benchmark, name, config, unit="ms", gee_runs=None, gee=None, reference_name=None,
             reference=None, ratio=None, target=None, status=None, note="", extra=None) -> dict:
    """One measurement on ``device``: ``gee`` defaults to the median of ``gee_runs``, ``ratio``
    to gee / reference.

    ``target`` is None or ``ratio_target(...)``'s ``(text, check, devices, value)``: ``check``
    judges the ratio (or ``value`` when given) on the listed devices; elsewhere the status
    says whose target it is and gives no verdict. An explicit ``status`` is kept as is.
    """
    gee = median(gee_runs) if gee is None and gee_runs else gee
    if ratio is None and gee is not None and reference:
        ratio = gee / reference
    target_text = None
    if status is None:
        status = "measured"
        if gee is None:
            status = "not measured"
        elif target is not None:
            text, check, devices, value = target
            target_text = text
            subject = ratio if value is None else value
            if device not in devices:
                status = f"target is for {'/'.join(devices)}"
            elif subject is None:
                status = "no reference"
            else:
                status = "met" if check(subject) else "missed"
    elif target is not None:
        target_text = target[0]
    return {"benchmark": benchmark, "name": name, "config": dict(config), "unit": unit,
            "gee_ref": _number(gee), "gee_ref_runs": [_number(r) for r in (gee_runs or [])],
            "reference_name": reference_name, "reference": _number(reference), "ratio": _number(ratio),
            "target": target_text, "status": status, "note": note, "extra": extra or {}}


def ratio_target(text, limit, devices, at_least=False, value=None):
    """A target on the ratio (or on ``value``): ``<= limit`` or, with ``at_least``, ``>= limit``."""
    check = (lambda r: r >= limit) if at_least else (lambda r: r <= limit)
    return (text, check, tuple(devices), value)


def _number(x):
    if x is None:
        return None
    x = float(x)
    return x if numpy.isfinite(x) else None


# ------------------------------------------------------------------------- the machine

def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_description(ctx: Context) -> dict:
    info = {"kind": ctx.device, "cpu": cpu_name(), "blas_threads": ctx.threads}
    if ctx.device == "gpu":
        props = ctx.xp.cuda.runtime.getDeviceProperties(ctx.xp.cuda.Device().id)
        name = props["name"]
        info["name"] = name.decode() if isinstance(name, bytes) else str(name)
        info["memory_bytes"] = int(props.get("totalGlobalMem", 0))
    else:
        info["name"] = info["cpu"]
    return info


def versions() -> dict:
    """Versions of the libraries the figures depend on (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(*distributions):
        for name in distributions:
            try:
                return version(name)
            except PackageNotFoundError:
                continue
        return None

    cupy = sys.modules.get("cupy")
    return {"python": platform.python_version(), "numpy": numpy.__version__,
            "cupy": getattr(cupy, "__version__", None) or installed("cupy", "cupy-cuda12x", "cupy-cuda11x"),
            "torch": installed("torch"), "cma": installed("cma"), "scipy": installed("scipy"),
            "gee_ref": installed("gee_ref")}


# ------------------------------------------------------------------------- the benchmarks

def _benchmarks():
    from bench import cases_cmaes, cases_lif, cases_population, cases_small_nets, cases_training
    return {
        "training": cases_training.run_training_step,
        "small": cases_small_nets.run_small_training,
        "memory": cases_training.run_peak_memory,
        "stack": cases_training.run_stack,
        "lif": cases_lif.run_lif,
        "cmaes": cases_cmaes.run_cmaes,
        "population": cases_population.run_population,
    }


BENCHMARKS = ("training", "small", "memory", "stack", "lif", "cmaes", "population")


def parse_only(text):
    if text is None:
        return list(BENCHMARKS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in BENCHMARKS]
    if not names or unknown:
        raise ValueError(f"--only: unknown benchmark {', '.join(unknown) or repr(text)}; "
                         f"expected names from {', '.join(BENCHMARKS)}")
    return names


def run_benchmarks(ctx: Context, names, log=print) -> list:
    """Rows of every named benchmark; a benchmark that fails leaves one "error" row."""
    table = _benchmarks()
    rows = []
    for name in names:
        log(f"[bench] {name} ...")
        started = time.perf_counter()
        try:
            new = table[name](ctx)
        except Exception as error:  # keep the other benchmarks' figures
            message = f"{type(error).__name__}: {error}".splitlines()[0]
            new = [make_row(ctx.device, name, f"{name}/error", {}, status="error", note=message)]
        for row in new:
            log(f"[bench]   {row['name']}: gee_ref={_fmt(row['gee_ref'])} {row['unit']}  "
                f"ref={_fmt(row['reference'])}  ratio={_fmt(row['ratio'])}  {row['status']}  {row['note']}")
        log(f"[bench] {name} done in {time.perf_counter() - started:.1f} s")
        rows.extend(new)
        _release_memory(ctx)
    return rows


def _release_memory(ctx) -> None:
    """Give back what one benchmark's arrays left in the allocators' caches before the next."""
    gc.collect()
    if ctx.device == "gpu":
        ctx.xp.get_default_memory_pool().free_all_blocks()
        ctx.xp.get_default_pinned_memory_pool().free_all_blocks()
        if ctx._torch:  # only if a benchmark imported it
            ctx._torch.cuda.empty_cache()


# ------------------------------------------------------------------------- the report

def _fmt(x, digits=3):
    if x is None:
        return "-"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _config_text(config):
    return ", ".join(f"{k}={v}" for k, v in config.items())


def markdown(record: dict) -> str:
    d, v = record["device"], record["versions"]
    lines = [f"# gee_ref benchmarks: {d['name']} ({d['kind']})", "",
             f"{record['created']}; {record['settings']['size']} sizes; "
             f"warm-up {record['settings']['warmup']}, median of {record['settings']['repeats']} runs; "
             f"BLAS threads {d['blas_threads']}; 1-minute load average {record['load_average']['before']} "
             f"before, {record['load_average']['after']} after (other processes on the machine).", "",
             "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items() if val), "",
             "Ratio = gee_ref / reference (time or memory: lower is better), except where the note says "
             "otherwise.", "",
             "| Benchmark | Configuration | gee_ref | Reference | Ratio | Target | Status | Note |",
             "|---|---|---|---|---|---|---|---|"]
    for r in record["results"]:
        ref = "-" if r["reference"] is None else f"{_fmt(r['reference'])} {r['unit']} ({r['reference_name']})"
        gee = "-" if r["gee_ref"] is None else f"{_fmt(r['gee_ref'])} {r['unit']}"
        ratio = "-" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        cells = [r["name"], _config_text(r["config"]), gee, ref, ratio, r["target"] or "-", r["status"],
                 r["note"].replace("|", "/")]
        lines.append("| " + " | ".join(cells) + " |")
    missing = record.get("missing", [])
    if missing:
        lines += ["", "## Not measured in this run", ""] + [f"- {m}" for m in missing]
    return "\n".join(lines) + "\n"


def missing_figures(ctx: Context, rows) -> list:
    notes = []
    if ctx.device == "cpu":
        notes.append("every GPU figure (CuPy beside PyTorch CUDA at batch 64, TF32, GPU peak memory, "
                     "CMA-ES on CuPy, the H100 targets): run `python -m bench --device gpu` on a GPU")
    if any(r["reference_name"] is None and "torch unavailable" in r["note"] for r in rows):
        notes.append("PyTorch columns: torch is not installed (pip install torch), or with --device gpu it sees no CUDA device")
    for r in rows:
        if r["status"] in ("not measured", "error") or r["status"].startswith("skipped"):
            notes.append(f"{r['name']}: {r['note'] or r['status']}")
    return notes


def write_results(record: dict, out_dir: Path) -> tuple:
    out_dir.mkdir(parents=True, exist_ok=True)
    size = record["settings"]["size"]
    stem = f"{record['device']['kind']}-{record['created'][:10]}" + ("" if size == "full" else f"-{size}")
    if record["settings"]["threads"] is not None:
        stem += f"-{record['settings']['threads']}threads"
    if record["settings"].get("label"):
        stem += f"-{record['settings']['label']}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    json_path.write_text(json.dumps(record, indent=1) + "\n")
    md_path.write_text(markdown(record))
    shutil.copyfile(md_path, out_dir / f"latest-{record['device']['kind']}.md")
    return json_path, md_path


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="python -m bench",
                            description="Benchmark gee_ref against PyTorch eager and pycma, side by side.")
    parser.add_argument("--device", choices=backend.DEVICES, default="cpu")
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--quick", action="store_true", help="small sizes: minutes on a 2-core CPU")
    sizes.add_argument("--smoke", action="store_true", help="tiny sizes for the test suite (numbers meaningless)")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for NumPy's BLAS and PyTorch (default: NumPy's BLAS default)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed runs of each side (default by size)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each side (default by size)")
    parser.add_argument("--out", default=str(RESULTS_DIR), help="folder for the result files")
    parser.add_argument("--label", default=None, type=_label,
                        help="a word added to the result files' names (e.g. before, after)")
    return parser


def _label(text):
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise ValueError(f"--label must be letters, digits, '-' or '_', got {text!r}")
    return text


def main(argv=None):
    args = build_parser().parse_args(argv)
    names = parse_only(args.only)
    ctx = Context(args.device, "smoke" if args.smoke else "quick" if args.quick else "full", args.threads,
                  args.warmup, args.repeats)
    started = time.perf_counter()
    load_before = _load_average()
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    rows = run_benchmarks(ctx, names, log)
    record = {
        "schema": SCHEMA,
        "created": datetime.datetime.now().isoformat(timespec="seconds"),
        "device": device_description(ctx),
        "versions": versions(),
        "settings": {"size": ctx.size, "quick": ctx.quick, "only": names, "warmup": ctx.warmup,
                     "repeats": ctx.repeats, "threads": args.threads,
                     "label": args.label, "host_allocator": backend.host_allocator},
        "load_average": {"before": load_before, "after": _load_average()},
        "results": rows,
        "missing": missing_figures(ctx, rows),
        "seconds": time.perf_counter() - started,
    }
    json_path, md_path = write_results(record, Path(args.out))
    print(markdown(record))
    print(f"wrote {json_path} and {md_path}")
    return 1 if any(r["status"] == "error" for r in rows) else 0


if __name__ == "__main__":
    run_main(main)
