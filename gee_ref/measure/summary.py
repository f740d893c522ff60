"""The measurements of a trained network that the final report gives.

* test accuracy and loss;
* parameters of the dense network and of its genetic twin (paper Table 1; DESIGN.md eq. 1-2:
  a genetic layer holds g*(C_out + C_in*kh*kw) numbers instead of C_out*C_in*kh*kw, plus
  g*g once for the global G);
* spikes per sample and the firing rate of every LIF layer (paper Table 3);
* energy by paper eq. 17 (``gee_ref.measure.energy``), from each weight layer's dense-equivalent
  MACs and its input firing rate;
* accuracy under Gaussian noise whose norm is 50% of each input's norm (paper section 4.2);
* inference images per second over the test split;
* peak memory: the CuPy memory pool on the GPU, the process's maximum resident set size on
  the CPU (labelled as such: the two are different quantities).
"""
from __future__ import annotations

import resource
import sys

from gee_ref import backend
from gee_ref.training.loop import evaluate


def count_parameters(model) -> int:
    """Number of trainable numbers in ``model`` (a shared tensor such as G counted once)."""
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += int(p.data.size)
    return total


def twin_parameter_counts(build) -> dict:
    """``{"dense": n, "genetic": n}``: parameters of ``build(genetic=False)`` and ``build(genetic=True)``."""
    return {"dense": count_parameters(build(genetic=False)),
            "genetic": count_parameters(build(genetic=True))}


class PeakMemory:
    """Peak memory of this process on the device it computes on.

    GPU: the largest ``total_bytes()`` of CuPy's default memory pool seen by ``sample()``
    (the bytes the pool holds from the driver; the pool keeps freed blocks, so this is the
    pool's high-water mark). CPU: ``resource.getrusage`` max RSS of the whole process
    (Python, NumPy and the data included), which the kernel tracks itself.
    """

    def __init__(self, device: str):
        self.device = device
        self.peak_pool_bytes = 0

    def sample(self) -> None:
        if self.device == "gpu":
            pool = backend.xp_for("gpu").get_default_memory_pool()
            self.peak_pool_bytes = max(self.peak_pool_bytes, int(pool.total_bytes()))

    def report(self) -> dict:
        self.sample()
        if self.device == "gpu":
            return {"bytes": self.peak_pool_bytes, "mebibytes": self.peak_pool_bytes / 2**20,
                    "what": "peak of the CuPy default memory pool (bytes held on the GPU)"}
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        max_rss_bytes = max_rss if sys.platform == "darwin" else max_rss * 1024  # Linux: kilobytes
        return {"bytes": int(max_rss_bytes), "mebibytes": max_rss_bytes / 2**20,
                "what": "process max RSS (resource.getrusage, CPU run: host memory of the whole process)"}


def energy_report(macs, input_rates, time_steps) -> dict:
    """Paper eq. 17 over the weight layers, in joules and millijoules, with its inputs."""
    from gee_ref.measure.energy import energy_joules

    joules, parts = energy_joules(list(zip(macs, input_rates)), time_steps)
    return {"joules": float(joules), "millijoules": float(joules) * 1e3, "time_steps": time_steps,
            "mac_joules": parts.mac_joules, "ac_joules": parts.ac_joules,
            "mac_operations": parts.mac_operations, "ac_operations": parts.ac_operations,
            "layers": [{"macs_per_sample_per_step": m, "input_rate": r, "joules": j}
                       for m, r, j in zip(macs, input_rates, parts.per_layer_joules)]}


def measure_model(model, test_loader, time_steps, noise_ratio=0.5, noise_seed=0) -> dict:
    """Every measurement of the module docstring except the parameter counts and memory.

    Three passes over ``test_loader``: a plain one (accuracy, loss, timing), one that records
    spikes (Table 3, eq. 13 and eq. 17 inputs) and one with relative Gaussian noise drawn
    from a generator seeded with ``noise_seed``.
    """
    plain = evaluate(model, test_loader)
    recorded = evaluate(model, test_loader, record=True)
    noisy = evaluate(model, test_loader, noise_ratio=noise_ratio, rng=backend.rng(noise_seed))
    names = recorded["layer_names"]
    return {
        "test_accuracy": plain["accuracy"],
        "test_loss": plain["loss"],
        "test_samples": plain["samples"],
        "spikes_per_sample": recorded["spikes_per_sample"],
        "spikes_per_sample_by_layer": dict(zip(names, recorded["spikes_per_sample_by_layer"])),
        "firing_rates": dict(zip(names, recorded["firing_rates"])),
        "temporal_difference": recorded["temporal_difference"],
        "energy": energy_report(recorded["macs"], recorded["input_rates"], time_steps),
        "noise": {"ratio": noise_ratio, "seed": noise_seed, "accuracy": noisy["accuracy"], "loss": noisy["loss"]},
        "inference_images_per_second": plain["samples"] / plain["seconds"],
    }
