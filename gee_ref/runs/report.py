"""The report of a training run: what the paper measures of a trained network.

* test accuracy and loss;
* parameters of the dense network and of its genetic twin (paper eq. 2, Tables 1-2,
  ``gee_ref.measure.parameters``);
* spikes per sample and the firing rate of every LIF layer (paper Table 3), and R_T (eq. 13),
  from ``gee_ref.measure.spikes``;
* energy by paper eq. 17 (``gee_ref.measure.energy``), from each weight layer's dense-equivalent
  MACs and its input firing rate, and the once-per-pass cost of forming the genetic weights;
* accuracy under Gaussian noise whose norm is 50% of each input's norm (paper section 4.2);
* inference images per second over the test split (with spike recording on);
* peak memory (``gee_ref.measure.memory``).

Two passes over the test loader: one recorded (accuracy, loss, spikes, rates, timing) and one
with noise. With ``report_batches`` they stop after that many batches; the report then says
how many of the test images it saw (``test_subset``).
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.measure.energy import energy_report
from gee_ref.measure.parameters import count_parameters, twin_parameter_counts
from gee_ref.models import build_from_config
from gee_ref.training.loop import evaluate


def measure_model(model, test_loader, time_steps, noise_ratio=0.5, noise_seed=0, max_batches=None) -> dict:
    """Every measurement of the module docstring except the parameter counts and memory."""
    recorded = evaluate(model, test_loader, record=True, max_batches=max_batches)
    noisy = evaluate(model, test_loader, noise_ratio=noise_ratio, rng=backend.rng(noise_seed), max_batches=max_batches)
    names = recorded["layer_names"]
    total = len(test_loader.labels)
    return {
        "test_accuracy": recorded["accuracy"],
        "test_loss": recorded["loss"],
        "test_samples": recorded["samples"],
        "test_subset": None if recorded["samples"] == total else
        f"measured on the first {recorded['samples']} of the {total} test images",
        "spikes_per_sample": recorded["spikes_per_sample"],
        "spikes_per_sample_by_layer": dict(zip(names, recorded["spikes_per_sample_by_layer"])),
        "firing_rates": dict(zip(names, recorded["firing_rates"])),
        "temporal_difference": recorded["temporal_difference"],
        "energy": energy_report(recorded["macs"], recorded["input_rates"], time_steps, model.genetic_layers()),
        "noise": {"ratio": noise_ratio, "seed": noise_seed, "accuracy": noisy["accuracy"], "loss": noisy["loss"]},
        "inference_images_per_second": recorded["samples"] / recorded["seconds"],
    }


def final_report(config, model, test_loader, history, extra, memory) -> dict:
    """Everything ``measure_model`` measures on the test split, with the run's settings."""
    measured = measure_model(model, test_loader, config["time_steps"], noise_ratio=config["noise_ratio"],
                             noise_seed=backend.derive_seed(config["seed"], "noise"),
                             max_batches=config.get("report_batches"))
    counts = twin_parameter_counts(lambda genetic: build_from_config({**config, "device": "cpu"}, genetic=genetic))
    counts["this_model"] = count_parameters(model)
    counts["compression"] = counts["dense"] / counts["genetic"]
    rates = [record["train_images_per_second"] for record in history]
    return {"config": config, "epochs_done": len(history), **measured, "parameters": counts,
            "train_seconds": sum(record["seconds"] for record in history),
            "train_images_per_second": sum(rates) / len(rates) if rates else None,
            "peak_memory": memory.report(), **extra}


def diverged_text(diverged: dict) -> str:
    """'training diverged in epoch 2: tested with the weights after epoch 1', of a report's
    ``diverged`` record (``gee_ref.runs.training_run.train_epochs``)."""
    return f"training diverged in epoch {diverged['epoch']}: tested with the weights {diverged['weights']}"


def format_report(report, path) -> str:
    """The report as the lines ``python -m gee_ref.train`` prints."""
    p, memory = report["parameters"], report["peak_memory"]
    seen = f"{report['test_samples']} images" + (" (a subset)" if report.get("test_subset") else "")
    lines = [
        f"test accuracy      {report['test_accuracy']:.4f}  (loss {report['test_loss']:.4f}, {seen})",
        f"parameters         {p['this_model']:,}  (dense twin {p['dense']:,}, genetic {p['genetic']:,}: "
        f"{p['compression']:.2f}x fewer)",
        f"spikes per sample  {report['spikes_per_sample']:.1f}",
        "firing rates       " + ", ".join(f"{name} {rate:.4f}" for name, rate in report["firing_rates"].items()),
        f"energy (eq. 17)    {report['energy']['millijoules']:.6g} mJ per image"
        + (f" (+ {report['energy']['encoding_joules_per_pass'] * 1e3:.3g} mJ per pass to form the genetic weights)"
           if report["energy"].get("encoding_macs_per_pass") else ""),
        f"under noise        accuracy {report['noise']['accuracy']:.4f} (noise norm {report['noise']['ratio']:.0%} "
        f"of each input's)",
        f"throughput         {report['inference_images_per_second']:.1f} images/s inference",
        f"peak memory        {memory['mebibytes']:.1f} MiB: {memory['what']}",
        f"report             {path}",
    ]
    if report.get("diverged"):
        lines.insert(1, f"                   {diverged_text(report['diverged'])}")
    if report.get("test_subset"):
        lines.insert(1, f"                   {report['test_subset']}")
    if "from_dense" in report:
        lines.insert(1, f"before fine-tuning {report['from_dense']['test_accuracy_before_fine_tuning']:.4f}  "
                        f"(compressed from {report['from_dense']['checkpoint']})")
    return "\n".join(lines)
