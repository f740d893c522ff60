"""Benchmark (f): the experiment-sized training steps, each beside PyTorch CPU eager.

The networks this project trains on its CPUs (issue 16): the digits layout on 32x32 colour
images (g = 32, every layer genetic) and the small residual net ``resnet14`` (width 16,
g = 16, the 3x3 convolutions genetic). One step = forward, cross-entropy, backward, SGD
(momentum 0.9), as in the ResNet-19 row (``bench.cases_training``); the PyTorch model of
``bench.torch_reference`` gets gee_ref's parameters, and the first forward and backward passes
of the two are compared (largest logit difference, relative difference of G's gradient).

Besides the wall time, each side's CPU time over its timed steps is split into user and
system time (``resource.getrusage``, every thread of the process): system time is the kernel
handing out and zeroing fresh pages, the cost of a step's large temporaries (see
``gee_ref.backend``'s allocator setting). The images per second of each side are in the row's
``extra``.
"""
from __future__ import annotations

import resource
import statistics

from bench.cases_training import Pair
from bench.run import make_row, median, ratio_target

#: (arch, image side, T, batch) per size mode: the rows of issue 15.
SMALL_CASES = {
    "full": (("digits", 32, 2, 32), ("digits", 32, 2, 128), ("resnet14", 32, 4, 32), ("resnet14", 16, 2, 64)),
    "quick": (("digits", 32, 2, 32), ("resnet14", 16, 2, 32)),
    "smoke": (("digits", 8, 1, 2), ("resnet14", 8, 1, 2)),
}
GENES = {"digits": 32, "resnet14": 16}


def with_cpu_times(fn, times: list):
    """``fn`` that also appends (user s, system s) of each of its calls to ``times``."""
    def timed():
        before = resource.getrusage(resource.RUSAGE_SELF)
        fn()
        after = resource.getrusage(resource.RUSAGE_SELF)
        times.append((after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime))
    return timed


def cpu_split(times: list, wall_ms: list) -> dict:
    """Median user and system ms of the timed calls (the last ``len(wall_ms)``), and the system share."""
    timed = times[-len(wall_ms):]
    user = statistics.median(t[0] for t in timed) * 1e3
    system = statistics.median(t[1] for t in timed) * 1e3
    return {"user_ms": user, "sys_ms": system, "sys_share": system / (user + system) if user + system else None}


def run_small_training(ctx) -> list:
    return [_one_row(ctx, *case) for case in SMALL_CASES[ctx.size]]


def _one_row(ctx, arch, side, time_steps, batch):
    genes = GENES[arch]
    pair = Pair(ctx, batch, time_steps, arch=arch, genes=genes, image_size=side)
    config = {"arch": arch, "g": genes, "N": batch, "T": time_steps, "image": f"{side}x{side}x3"}
    extra = {}
    times = {"gee_ref": [], "torch": []}
    fns = {"gee_ref": with_cpu_times(pair.gee_step, times["gee_ref"])}
    if pair.torch_model is not None:
        extra.update(pair.compare_first_pass(ctx.torch))
        fns["torch"] = with_cpu_times(pair.torch_step, times["torch"])
    runs = ctx.time_ms(fns)
    for side_name, walls in runs.items():
        extra[side_name] = {**cpu_split(times[side_name], walls), "images_per_s": batch / (median(walls) / 1e3)}
    reference = median(runs["torch"]) if "torch" in runs else None
    gee = extra["gee_ref"]
    note = (f"{gee['images_per_s']:.0f} images/s; gee_ref user {gee['user_ms']:.0f} ms, sys {gee['sys_ms']:.0f} ms "
            f"({100 * (gee['sys_share'] or 0):.0f}%)")
    if reference is not None:
        ref = extra["torch"]
        note += f"; torch sys {100 * (ref['sys_share'] or 0):.0f}%"
    return make_row(ctx.device, "small", f"small/{arch} step", config, gee_runs=runs["gee_ref"],
                    reference_name="torch eager CPU" if reference else None, reference=reference,
                    target=ratio_target("<= 1.0 x PyTorch CPU (aim 0.7)", 1.0, ("cpu",)),
                    note=note if reference else note + "; torch unavailable", extra=extra)
