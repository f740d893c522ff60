"""Benchmarks (a), (e) and the stack figure: the genetic ResNet-19 training step, its peak
memory, and one genetic conv -> BN -> LIF stack, each beside ``bench.torch_reference``.

(a) One training step = forward, cross-entropy, backward, SGD (momentum 0.9) of the genetic
ResNet-19 (g = 100, 32x32 inputs; every 3x3 conv genetic, paper eq. 1-5), gee_ref built by
``build_model("resnet19", genes=100)`` and the PyTorch model loaded with the same parameters
(their first forward and backward passes are compared and reported). GPU: batch 64, T = 4, strict
float32 (TF32 off in torch's matmul and cuDNN, set and read back by ``bench.torch_precision``;
CuPy does not use TF32 unless told), TF32, and strict float32 with gee_ref's fused kernels on.
CPU: batch 4, T = 4 (quick: batch 2, T = 2), torch on as many threads as NumPy's BLAS.

The floor: gee_ref's multiply-adds for the paths it chose (``genetic_path.forward_macs`` and
``backward_macs`` per genetic layer at its real number of columns; C_out*fan_in*M forward and
twice that backward for the dense 1x1 shortcuts and FCs), at the float32 GEMM rate measured
in the same run and array module (a square matmul). Elementwise work (BN, LIF, im2col) is
not in the floor.

(e) Peak memory of a training step, parameters, gradients and the optimiser's buffers
included on both sides. GPU: after a first step, the peak of live arrays during one more
step, CuPy's pool blocks in use (a ``cupy.cuda.MemoryHook``) against
``torch.cuda.max_memory_allocated``; the bytes each allocator held beside them. CPU: each side in a fresh process, the
growth of the resident set from before the model is built (libraries loaded and warmed up)
to the high-water mark (VmHWM, reset by ``/proc/self/clear_refs``) of its second step, with glibc told to return large
freed blocks at once; NumPy's traced transient peak (tracemalloc) beside it.
"""
from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy

from bench import torch_precision
from bench.run import make_row, median, ratio_target
from gee_ref import autograd, backend
from gee_ref.autograd import functional as F
from gee_ref.measure.parameters import count_parameters
from gee_ref.ops import genetic_path
from gee_ref.optim import SGD

GENES = 100
LR, MOMENTUM = 0.01, 0.9
MiB = 2.0 ** 20


# ------------------------------------------------------------------------- the two models

def training_size(ctx):
    """(batch N, time steps T) of the ResNet-19 step for this device and size mode."""
    if ctx.smoke:
        return (2, 1)  # two values per channel: the least the batch norm of the FC head trains on
    if ctx.device == "gpu":
        return (32, 4) if ctx.quick else (64, 4)
    return (2, 2) if ctx.quick else (4, 4)


class Pair:
    """gee_ref's genetic network and the PyTorch one, same parameters, same batch, with a
    ``step`` function each (forward, loss, backward, SGD). ResNet-19 at g = 100 by default;
    ``arch`` any network ``bench.torch_reference.torch_twin`` knows, on ``image_size`` colour images."""

    def __init__(self, ctx, batch, time_steps, with_torch=True, arch="resnet19", genes=GENES, image_size=32):
        from gee_ref.models import build_model

        xp = ctx.xp
        rng = backend.rng(1, ctx.device)
        self.arch, self.genes, self.image_size = arch, genes, image_size
        self.images = rng.standard_normal((batch, 3, image_size, image_size), dtype=xp.float32)
        self.labels = xp.arange(batch, dtype=xp.int64) % 10
        self.model = build_model(arch, genetic=True, genes=genes, time_steps=time_steps, in_channels=3,
                                 image_size=image_size, device=ctx.device, seed=0)
        self.optimizer = SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)
        self.torch_model = None
        if ctx.torch is not None and with_torch:
            self._make_torch(ctx, time_steps)

    def _make_torch(self, ctx, time_steps):
        torch = ctx.torch
        from bench.torch_reference import copy_parameters_in_order, torch_twin

        model = torch_twin(self.arch, self.genes, time_steps, self.image_size)
        copy_parameters_in_order(model, [backend.to_host(p.data) for p in self.model.parameters()])
        self.torch_model = model.to(ctx.torch_device)
        self.torch_optimizer = torch.optim.SGD(self.torch_model.parameters(), lr=LR, momentum=MOMENTUM)
        self.torch_images = torch.as_tensor(backend.to_host(self.images), device=ctx.torch_device)
        self.torch_labels = torch.as_tensor(backend.to_host(self.labels), device=ctx.torch_device)

    def gee_step(self):
        loss = F.cross_entropy(self.model(self.images), self.labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()

    def torch_step(self):
        import torch.nn.functional as TF
        loss = TF.cross_entropy(self.torch_model(self.torch_images), self.torch_labels)
        self.torch_optimizer.zero_grad()
        loss.backward()
        self.torch_optimizer.step()

    def compare_first_pass(self, torch) -> dict:
        """The two models' first forward and backward (same parameters, float32), compared:
        the largest logit difference and the relative difference of G's gradient."""
        logits = self.model(self.images)
        F.cross_entropy(logits, self.labels).backward()
        gee_logits, gee_grad = backend.to_host(logits.data), backend.to_host(self.model.genes.G.grad)
        self.model.zero_grad()
        ref_logits = self.torch_model(self.torch_images)
        torch.nn.functional.cross_entropy(ref_logits, self.torch_labels).backward()
        ref_grad = self.torch_model.G.grad.cpu().numpy()
        self.torch_model.zero_grad()
        return {"max_abs_logit_difference": float(numpy.abs(gee_logits - ref_logits.detach().cpu().numpy()).max()),
                "max_abs_logit": float(numpy.abs(gee_logits).max()),
                "G_grad_relative_difference": float(numpy.linalg.norm(gee_grad - ref_grad)
                                                    / max(numpy.linalg.norm(ref_grad), 1e-30))}


# ------------------------------------------------------------------------- FLOPs and GEMM rate

def step_macs(model, images, batch, time_steps) -> dict:
    """Multiply-adds of one training step by the paths gee_ref chooses (module docstring)."""
    model.record(True)
    with autograd.no_grad():
        model(images)
    model.record(False)
    forward = backward = 0
    paths = {"materialised": 0, "factored": 0, "dense": 0}
    for layer in model.weight_layers():
        rows = batch if layer.role == "stem" else batch * time_steps  # the stem runs once per image
        columns = rows * layer.output_positions(layer.last_input_hw)
        if hasattr(layer, "gene_bank"):
            path = genetic_path.choose_path(layer.path, layer.out_features, layer.fan_in, layer.genes, columns)
            forward += genetic_path.forward_macs(path, layer.out_features, layer.fan_in, layer.genes, columns)
            backward += genetic_path.backward_macs(path, layer.out_features, layer.fan_in, layer.genes, columns)
            paths[path] += 1
        else:
            dense = genetic_path.dense_macs(layer.out_features, layer.fan_in, columns)
            forward, backward = forward + dense, backward + 2 * dense
            paths["dense"] += 1
    for lif in model.lif_layers():
        lif.last_spikes = None
    return {"forward_macs": int(forward), "backward_macs": int(backward), "layers_by_path": paths}


def gemm_rates(ctx) -> dict:
    """Float32 matmul rates (FLOP/s) of a square product: the array module's, and torch's."""
    size = 256 if ctx.smoke else 8192 if ctx.device == "gpu" else (1024 if ctx.quick else 2048)
    rng = backend.rng(2, ctx.device)
    a = rng.standard_normal((size, size), dtype=ctx.xp.float32)
    b = rng.standard_normal((size, size), dtype=ctx.xp.float32)
    fns = {"xp": lambda: a @ b}
    if ctx.torch is not None:
        ta = ctx.torch.as_tensor(backend.to_host(a), device=ctx.torch_device)
        tb = ctx.torch.as_tensor(backend.to_host(b), device=ctx.torch_device)
        fns["torch"] = lambda: ta @ tb
    runs = ctx.time_ms(fns)
    return {"size": size, **{name: 2.0 * size ** 3 / (median(r) / 1e3) for name, r in runs.items()}}


# ------------------------------------------------------------------------- (a) training step

def run_training_step(ctx) -> list:
    batch, time_steps = training_size(ctx)
    pair = Pair(ctx, batch, time_steps)
    torch = ctx.torch
    config = {"arch": "resnet19", "g": GENES, "N": batch, "T": time_steps, "image": "32x32"}
    extra = {"parameters_gee_ref": count_parameters(pair.model)}
    if torch is not None:
        if ctx.device == "gpu":  # strict float32 on both sides, the comparison below included
            torch.backends.cudnn.benchmark = True  # fixed shapes: what a PyTorch user switches on
            extra["torch_precision"] = torch_precision.set_tf32(torch, False)
            extra["gee_ref_tf32"] = backend.tf32_enabled()
        extra["parameters_torch"] = sum(p.numel() for p in pair.torch_model.parameters())
        extra.update(pair.compare_first_pass(torch))
    fns = {"gee_ref": pair.gee_step}
    if torch is not None:
        fns["torch"] = pair.torch_step
    runs = ctx.time_ms(fns)
    reference = median(runs["torch"]) if "torch" in runs else None
    ref_name = f"torch eager {'CUDA' if ctx.device == 'gpu' else 'CPU'}" if reference else None
    note = "" if reference else "torch unavailable"
    rows = []
    if ctx.device == "gpu":
        target = ratio_target("<= 0.7 x PyTorch (strict float32, H100)", 0.7, ("gpu",))
    else:
        target = ratio_target("<= 1.2 x PyTorch CPU", 1.2, ("cpu",))
    rows.append(make_row(ctx.device, "training", "training/resnet19 float32", {**config, "precision": "float32"},
                         gee_runs=runs["gee_ref"], reference_name=ref_name, reference=reference, target=target,
                         note=note, extra=extra))
    if ctx.device == "gpu":
        rows.append(_tf32_row(ctx, pair, config))
        rows.append(_fused_row(ctx, pair, config, fns, plain=median(runs["gee_ref"])))
    macs = step_macs(pair.model, pair.images, batch, time_steps)
    rates = gemm_rates(ctx)
    rows.append(make_row(ctx.device, "training", "gemm/float32 rate", {"size": rates["size"]}, unit="TFLOP/s",
                         gee=rates["xp"] / 1e12, reference_name="torch matmul" if "torch" in rates else None,
                         reference=rates["torch"] / 1e12 if "torch" in rates else None,
                         note="ratio = xp rate / torch rate (higher is better)"))
    flops = 2 * (macs["forward_macs"] + macs["backward_macs"])
    floor_ms = flops / rates["xp"] * 1e3
    gee_ms = median(runs["gee_ref"])
    rows.append(make_row(ctx.device, "training", "training/floor at GEMM rate", config, gee=gee_ms,
                         reference_name="GEMM floor", reference=floor_ms,
                         target=ratio_target("<= 1.5 x the GEMM floor", 1.5, ("cpu",)),
                         note=f"{flops / 1e9:.1f} GFLOP of the chosen paths (fwd {2 * macs['forward_macs'] / 1e9:.1f}, "
                              f"bwd {2 * macs['backward_macs'] / 1e9:.1f}); ratio = step / floor",
                         extra=macs))
    return rows


def _tf32_row(ctx, pair, config):
    """Both sides with TF32 matrix products (gee_ref: ``backend.set_tf32``; torch:
    ``bench.torch_precision``, its matmuls and cuDNN convolutions), the settings read back."""
    torch = ctx.torch
    if torch is None:
        return make_row(ctx.device, "training", "training/resnet19 TF32", {**config, "precision": "tf32"},
                        status="not measured", note="torch unavailable")
    extra = {"torch_precision": torch_precision.set_tf32(torch, True)}
    backend.set_tf32(True)
    try:
        extra["gee_ref_tf32"] = backend.tf32_enabled()
        runs = ctx.time_ms({"gee_ref": pair.gee_step, "torch": pair.torch_step})
    finally:
        torch_precision.set_tf32(torch, False)
        backend.set_tf32(False)
    target = ratio_target("<= 1.0 x PyTorch (TF32, H100)", 1.0, ("gpu",))
    return make_row(ctx.device, "training", "training/resnet19 TF32", {**config, "precision": "tf32"},
                    gee_runs=runs["gee_ref"], reference_name="torch eager CUDA TF32",
                    reference=median(runs["torch"]), target=target, extra=extra)


def _fused_row(ctx, pair, config, fns, plain):
    """The strict float32 step with gee_ref's fused kernels on (LIF, im2col/col2im, batch norm),
    beside the same strict PyTorch step."""
    from gee_ref import kernels

    with kernels.using(True):
        runs = ctx.time_ms(fns)
    reference = median(runs["torch"]) if "torch" in runs else None
    fused = median(runs["gee_ref"])
    return make_row(ctx.device, "training", "training/resnet19 float32 fused",
                    {**config, "precision": "float32", "fused_kernels": True}, gee_runs=runs["gee_ref"],
                    reference_name="torch eager CUDA" if reference else None, reference=reference,
                    target=ratio_target("<= 0.7 x PyTorch (strict float32, H100)", 0.7, ("gpu",)),
                    note="gee_ref.kernels on" + ("" if reference else "; torch unavailable"),
                    extra={"plain_gee_ref_ms": plain, "speedup_over_plain": plain / fused if fused else None})


# ------------------------------------------------------------------------- (e) peak memory

def run_peak_memory(ctx) -> list:
    batch, time_steps = training_size(ctx)
    config = {"arch": "resnet19", "g": GENES, "N": batch, "T": time_steps}
    target = ratio_target("<= 1.2 x PyTorch peak (H100)", 1.2, ("gpu",))
    if ctx.device == "gpu":
        pair = Pair(ctx, batch, time_steps)
        pair.gee_step()  # first steps: the momentum buffers now exist on both sides
        if pair.torch_model is not None:
            pair.torch_step()
        ctx.synchronize()
        gee, reference, unit_note, extra = _gpu_peaks(ctx, pair)
    else:
        gee, reference, unit_note, extra = _cpu_peaks(ctx)
    return [make_row(ctx.device, "memory", "memory/training step peak", config, unit="MiB", gee=gee,
                     reference_name="torch" if reference is not None else None, reference=reference,
                     target=target, note=unit_note, extra=extra)]


def _live_bytes_peak(cupy, step):
    """The most bytes that CuPy's pool handed out at once (live arrays) during ``step()``:
    a memory hook adds each block taken from the pool and subtracts each one given back."""
    pool = cupy.get_default_memory_pool()

    class LiveBytes(cupy.cuda.MemoryHook):
        name = "gee_ref-bench-live-bytes"

        def __init__(self):
            self.live, self.sizes = pool.used_bytes(), {}
            self.peak = self.live

        def malloc_postprocess(self, **kw):
            if kw["mem_ptr"]:
                self.sizes[kw["pmem_id"]] = kw["mem_size"]
                self.live += kw["mem_size"]
                self.peak = max(self.peak, self.live)

        def free_postprocess(self, **kw):
            self.live -= self.sizes.pop(kw["pmem_id"], 0)

    with LiveBytes() as hook:
        step()
        cupy.cuda.Device().synchronize()
    return hook.peak


def _gpu_peaks(ctx, pair):
    """Like for like: the peak of live arrays (CuPy: pool blocks in use, by a memory hook;
    torch: max_memory_allocated), and beside it what each allocator held (reserved)."""
    pool = ctx.xp.get_default_memory_pool()
    gc.collect()
    pool.free_all_blocks()
    gee_live = _live_bytes_peak(ctx.xp, pair.gee_step) / MiB
    extra = {"gee_ref_pool_held_mib": pool.total_bytes() / MiB}
    reference = None
    if pair.torch_model is not None:
        torch = ctx.torch
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        pair.torch_step()
        torch.cuda.synchronize()
        reference = torch.cuda.max_memory_allocated() / MiB
        extra["torch_max_memory_reserved_mib"] = torch.cuda.max_memory_reserved() / MiB
    return gee_live, reference, ("GPU: peak of live arrays, CuPy pool blocks in use (memory hook) vs "
                                 "torch.cuda.max_memory_allocated; parameters and optimiser state included "
                                 "on both sides; held/reserved bytes in the JSON"), extra


def _rss_bytes(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise OSError(f"/proc/self/status has no {field}")


def memory_probe(side: str, batch: int, time_steps: int) -> None:
    """Run in a fresh process (``_cpu_peaks``): print the peak RSS growth, in bytes, from
    before the model exists to the high-water mark of its second training step."""
    import json
    import sys

    from bench.run import Context

    ctx = Context("cpu", "quick")
    _load_libraries(ctx)  # both sides: libraries and their buffers are not the model's memory
    baseline = _rss_bytes("VmRSS")
    if side == "gee_ref":
        pair = Pair(ctx, batch, time_steps, with_torch=False)
        step = pair.gee_step
    else:
        step = torch_only_step(ctx, batch, time_steps)
    step()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
    step()
    result = {"peak_growth_bytes": _rss_bytes("VmHWM") - baseline}
    if side == "gee_ref":
        tracemalloc.start()
        step()
        result["tracemalloc_transient_peak_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    json.dump(result, sys.stdout)


def _load_libraries(ctx):
    """Import gee_ref's models and torch, and run a small matmul and conv in each."""
    import gee_ref.models  # noqa: F401
    a = numpy.ones((256, 256), dtype=numpy.float32)
    a @ a
    torch = ctx.torch
    if torch is not None:
        import bench.torch_reference  # noqa: F401
        t = torch.ones(2, 3, 8, 8)
        torch.nn.functional.conv2d(t, torch.ones(4, 3, 3, 3), padding=1).sum()
        torch.ones(256, 256) @ torch.ones(256, 256)


def torch_only_step(ctx, batch, time_steps):
    """The PyTorch model's training step, built on its own (its own initialisation)."""
    torch = ctx.torch
    import torch.nn.functional as TF
    from bench.torch_reference import GeneticResNet19

    model = GeneticResNet19(genes=GENES, time_steps=time_steps)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    images = torch.randn(batch, 3, 32, 32)
    labels = torch.arange(batch) % 10

    def step():
        loss = TF.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return step


# glibc keeps freed blocks below its (self-raising) mmap threshold and so hides a step's
# transient memory from the RSS; fixed thresholds make it hand large blocks back at once.
PROBE_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}


def _probe(side, batch, time_steps) -> dict:
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    code = f"from bench.cases_training import memory_probe; memory_probe({side!r}, {batch}, {time_steps})"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **PROBE_ENV}, timeout=900)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise OSError(f"memory probe ({side}) failed: {last}")
    return json.loads(done.stdout)


def _cpu_peaks(ctx):
    batch, time_steps = training_size(ctx)
    try:
        gee = _probe("gee_ref", batch, time_steps)
        reference = _probe("torch", batch, time_steps) if ctx.torch is not None else None
    except (OSError, ValueError) as error:
        return None, None, f"CPU peak RSS unavailable: {error}", {}
    traced = gee["tracemalloc_transient_peak_bytes"] / MiB
    return (gee["peak_growth_bytes"] / MiB, None if reference is None else reference["peak_growth_bytes"] / MiB,
            "CPU: peak RSS growth (VmHWM) from before the model is built through its 2nd step, each in a "
            f"fresh process; NumPy's traced transient peak of a step (tracemalloc) {traced:.0f} MiB",
            {"gee_ref_tracemalloc_transient_peak_mib": traced})


# ------------------------------------------------------------------------- genetic conv -> BN -> LIF

def stack_size(ctx):
    """(T, N, C, H=W) of the stack for this device and size mode."""
    if ctx.smoke:
        return (2, 1, 8, 8)
    if ctx.device == "gpu":
        return (4, 16, 128, 32) if ctx.quick else (4, 64, 128, 32)
    return (2, 2, 128, 32) if ctx.quick else (4, 8, 128, 32)


def run_stack(ctx) -> list:
    from gee_ref.nn import LIF, BatchNorm, GeneBank, GeneticConv2d

    t, n, c, hw = stack_size(ctx)
    xp = ctx.xp
    bank = GeneBank(GENES)
    conv = GeneticConv2d(c, c, 3, bank, padding=1, rng=backend.rng(0))
    bn, lif = BatchNorm(c), LIF(time_steps=t)
    modules = [bank, conv, bn]
    for m in modules:
        m.to(ctx.device)
    params = [bank.G, conv.x_out, conv.x_in, bn.gamma, bn.beta]
    rng = backend.rng(3, ctx.device)
    x = rng.standard_normal((t * n, c, hw, hw), dtype=xp.float32)
    grad = rng.standard_normal((t * n, c, hw, hw), dtype=xp.float32)
    x_tensor = autograd.Tensor(x, requires_grad=True)

    def gee_step():
        for p in params + [x_tensor]:
            p.grad = None
        lif(bn(conv(x_tensor))).backward(grad)

    fns = {"gee_ref": gee_step}
    extra = {"path_auto": genetic_path.choose_path("auto", c, c * 9, GENES, t * n * hw * hw)}
    if ctx.torch is not None:
        torch = ctx.torch
        if ctx.device == "gpu":  # strict float32, the spike comparison included
            extra["torch_precision"] = torch_precision.set_tf32(torch, False)
        from bench.torch_reference import GeneticStack, copy_parameters_in_order
        model = GeneticStack(GENES, t, c)
        copy_parameters_in_order(model, [backend.to_host(p.data) for p in params])
        model.to(ctx.torch_device)
        xt = torch.as_tensor(backend.to_host(x), device=ctx.torch_device).requires_grad_(True)
        gt = torch.as_tensor(backend.to_host(grad), device=ctx.torch_device)

        def torch_step():
            xt.grad = None
            model.zero_grad()
            model(xt).backward(gt)

        fns["torch"] = torch_step
        with autograd.no_grad():
            spikes = backend.to_host(lif(bn(conv(x))).data)
        with torch.no_grad():
            spikes_t = model(xt).cpu().numpy()
        extra.update(firing_rate=float(spikes.mean()), spikes_differing=int((spikes != spikes_t).sum()))
    config = {"T": t, "N": n, "C": c, "HW": hw, "g": GENES}
    runs = ctx.time_ms(fns)
    reference = median(runs["torch"]) if "torch" in runs else None
    ref_name = f"torch {'CUDA' if ctx.device == 'gpu' else 'CPU'}" if reference else None
    rows = [make_row(ctx.device, "stack", "stack/genetic conv-BN-LIF fwd+bwd", {**config, "path": "auto"},
                     gee_runs=runs["gee_ref"], reference_name=ref_name, reference=reference,
                     note=f"gee_ref's auto path here: {extra['path_auto']}; torch materialises W", extra=extra)]
    conv.path = "materialised"
    forced = ctx.time_ms({"gee_ref": gee_step, **({"torch": fns["torch"]} if "torch" in fns else {})})
    reference = median(forced["torch"]) if "torch" in forced else None
    rows.append(make_row(ctx.device, "stack", "stack/genetic conv-BN-LIF fwd+bwd", {**config, "path": "materialised"},
                         gee_runs=forced["gee_ref"], reference_name=ref_name, reference=reference,
                         note="gee_ref forced to materialise W, as torch does"))
    if ctx.device == "gpu":  # the fused kernels (gee_ref.kernels: LIF, im2col, col2im), auto path
        from gee_ref import kernels

        conv.path = "auto"
        with kernels.using(True):
            fused = ctx.time_ms({"gee_ref": gee_step, **({"torch": fns["torch"]} if "torch" in fns else {})})
        reference = median(fused["torch"]) if "torch" in fused else None
        rows.append(make_row(ctx.device, "stack", "stack/genetic conv-BN-LIF fwd+bwd fused",
                             {**config, "path": "auto", "fused_kernels": True}, gee_runs=fused["gee_ref"],
                             reference_name=ref_name, reference=reference,
                             note="gee_ref with its fused CUDA kernels (LIF over T, im2col, col2im)"))
    return rows
