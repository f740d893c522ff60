"""Benchmark (b): one LIF layer, forward and backward (DESIGN.md section 3, BPTT with the
sigmoid surrogate, alpha = 4), gee_ref's ``functional.lif`` on the tape beside the PyTorch
loop of ``bench.torch_reference.lif_loop`` (a Python loop over T, autograd through it).

Both receive the same input x [T, N, C, H, W] ~ N(1, 1) (about half of the neurons fire)
and the same upstream gradient; one timed run is forward + backward to dL/dx. The first
run's spikes and gradients of the two are compared and reported (``extra``).

On the GPU a second row times the same step with the fused kernels on (``gee_ref.kernels``:
one ``lif.cu`` kernel forward, one backward) beside the same PyTorch loop, so one run
measures plain and fused; its ``extra`` also gives the speed-up over the plain row.
"""
from __future__ import annotations

from bench.run import make_row, median, ratio_target
from gee_ref import autograd, backend, kernels
from gee_ref.autograd import functional


def lif_shape(ctx):
    """[T, N, C, H, W] for this device and size mode."""
    if ctx.smoke:
        return (2, 2, 4, 8, 8)
    if ctx.device == "gpu":
        return (4, 32, 128, 32, 32) if ctx.quick else (4, 256, 128, 32, 32)
    return (4, 8, 64, 32, 32) if ctx.quick else (4, 32, 128, 32, 32)


def run_lif(ctx) -> list:
    shape = lif_shape(ctx)
    xp = ctx.xp
    rng = backend.rng(0, ctx.device)
    x = rng.standard_normal(shape, dtype=xp.float32) + 1.0
    grad = rng.standard_normal(shape, dtype=xp.float32)
    x_tensor = autograd.Tensor(x, requires_grad=True)

    def gee_step():
        x_tensor.grad = None
        functional.lif(x_tensor).backward(grad)

    fns = {"gee_ref": gee_step}
    extra = {"elements": int(x.size)}
    torch_inputs = None
    if ctx.torch is not None:
        torch = ctx.torch
        from bench.torch_reference import lif_loop
        xt = torch.as_tensor(backend.to_host(x), device=ctx.torch_device).requires_grad_(True)
        gt = torch.as_tensor(backend.to_host(grad), device=ctx.torch_device)

        def torch_step():
            xt.grad = None
            lif_loop(xt).backward(gt)

        fns["torch"] = torch_step
        torch_inputs = (xt, gt)
        extra.update(_compare(torch, x_tensor, xt, grad, gt))
    runs = ctx.time_ms(fns)
    config = dict(zip(("T", "N", "C", "H", "W"), shape))
    reference = median(runs["torch"]) if "torch" in runs else None
    rows = [make_row(ctx.device, "lif", "lif/forward+backward", config, gee_runs=runs["gee_ref"],
                     reference_name="torch loop" if reference else None, reference=reference,
                     target=ratio_target("<= 0.5 x the PyTorch loop", 0.5, ("gpu",)),
                     note="" if reference else "torch unavailable", extra=extra)]
    if ctx.device == "gpu":
        rows.append(_fused_row(ctx, fns, x_tensor, grad, torch_inputs, config, plain=median(runs["gee_ref"])))
    return rows


def _fused_row(ctx, fns, x_tensor, grad, torch_inputs, config, plain) -> dict:
    """The same step with gee_ref's fused LIF kernels on, beside the same PyTorch loop."""
    with kernels.using(True):
        runs = ctx.time_ms(fns)
        extra = {"plain_gee_ref_ms": plain}
        if torch_inputs is not None:
            xt, gt = torch_inputs
            extra.update(_compare(ctx.torch, x_tensor, xt, grad, gt))
    fused = median(runs["gee_ref"])
    extra["speedup_over_plain"] = plain / fused if fused else None
    reference = median(runs["torch"]) if "torch" in runs else None
    return make_row(ctx.device, "lif", "lif/forward+backward fused", {**config, "kernels": "fused"},
                    gee_runs=runs["gee_ref"], reference_name="torch loop" if reference else None,
                    reference=reference, target=ratio_target("<= 0.5 x the PyTorch loop", 0.5, ("gpu",)),
                    note="gee_ref.kernels on (lif.cu)" + ("" if reference else "; torch unavailable"),
                    extra=extra)


def _compare(torch, x_tensor, xt, grad, gt) -> dict:
    """Spikes and dL/dx of gee_ref and the torch loop on the same input (host comparison)."""
    from bench.torch_reference import lif_loop

    x_tensor.grad = None
    spikes = functional.lif(x_tensor)
    spikes.backward(grad)
    xt.grad = None
    spikes_t = lif_loop(xt)
    spikes_t.backward(gt)
    s_gee, s_t = backend.to_host(spikes.data), spikes_t.detach().cpu().numpy()
    g_gee, g_t = backend.to_host(x_tensor.grad), xt.grad.cpu().numpy()
    return {"firing_rate": float(s_gee.mean()),
            "spikes_differing": int((s_gee != s_t).sum()),
            "max_abs_grad_difference": float(abs(g_gee - g_t).max())}
