"""``python -m gee_ref.train``: exact resume, the report's fields, --from-dense, and one-line
errors (exit 2, no traceback) for bad input."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from gee_ref import backend, train
from gee_ref.models import build_from_config
from gee_ref.runs import training_run
from gee_ref.data import datasets
from gee_ref.storage.checkpoint import load_checkpoint
from digits_files import write_digits_file

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--batch-size", "16", "--steps-per-epoch", "3", "--genes", "8", "--time-steps", "2", "--no-progress"]
FULL_EPOCHS = ["--steps-per-epoch", "6"]  # 96 training images in batches of 16: whole epochs


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    """A small digits file: 96 train and 60 test images."""
    return write_digits_file(tmp_path_factory.mktemp("data"), 96, 60)


def run(data, out, *extra):
    return train.main(["--data", str(data), "--out", str(out), *QUICK, *extra])


def final_arrays(out):
    tensors, meta = load_checkpoint(out / training_run.CHECKPOINT_NAME)
    return tensors, meta


def assert_same_run(a, b):
    (ta, ma), (tb, mb) = final_arrays(a), final_arrays(b)
    for group in ("model", "optimizer"):
        assert ta[group].keys() == tb[group].keys()
        for name in ta[group]:
            assert np.array_equal(ta[group][name], tb[group][name]), f"{group}/{name} differs"
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "train_images_per_second")} for r in ma["history"]]
    assert strip == [{k: v for k, v in r.items() if k not in ("seconds", "train_images_per_second")}
                     for r in mb["history"]]


def test_resume_after_a_shorter_run_equals_the_uninterrupted_run(tiny_digits, tmp_path, capsys):
    """The issue's recipe: --epochs 1, then --epochs 2 --resume (a constant lr, which the
    number of epochs does not change), against --epochs 2 in one go: bitwise equal."""
    constant = ["--schedule", "constant", *FULL_EPOCHS]
    run(tiny_digits, tmp_path / "whole", "--epochs", "2", *constant)
    run(tiny_digits, tmp_path / "parts", "--epochs", "1", *constant)
    run(tiny_digits, tmp_path / "parts", "--epochs", "2", *constant, "--resume")
    capsys.readouterr()
    assert_same_run(tmp_path / "whole", tmp_path / "parts")
    log = (tmp_path / "parts" / training_run.LOG_NAME).read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in log] == [1, 2]


def test_an_interrupted_run_resumes_exactly(tiny_digits, tmp_path, monkeypatch, capsys):
    """Ctrl-C during epoch 2 of a cosine run: the checkpoint of epoch 1 stays intact and
    --resume ends on the same weights and optimiser state as the uninterrupted run."""
    run(tiny_digits, tmp_path / "whole", "--epochs", "2", *FULL_EPOCHS)
    real_train_steps, calls = training_run.train_steps, []

    def interrupted_in_epoch_two(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train_steps(*args, **kwargs)

    monkeypatch.setattr(training_run, "train_steps", interrupted_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run(tiny_digits, tmp_path / "stopped", "--epochs", "2", *FULL_EPOCHS)
    monkeypatch.setattr(training_run, "train_steps", real_train_steps)
    _, meta = final_arrays(tmp_path / "stopped")
    assert len(meta["history"]) == 1
    assert not list((tmp_path / "stopped").glob(".*.tmp"))
    run(tiny_digits, tmp_path / "stopped", "--epochs", "2", *FULL_EPOCHS, "--resume")
    capsys.readouterr()
    assert_same_run(tmp_path / "whole", tmp_path / "stopped")


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_the_whole_command_on_the_gpu(tiny_digits, tmp_path, capsys):
    """Training loop, evaluation, measurements and GPU peak memory on CuPy, with TF32 on; and the
    first epoch's loss near the CPU's (float32 and TF32 rounding only: the same network and batches)."""
    assert run(tiny_digits, tmp_path / "gpu", "--epochs", "1", "--device", "gpu", "--tf32") == 0
    assert run(tiny_digits, tmp_path / "cpu", "--epochs", "1") == 0
    capsys.readouterr()
    gpu = json.loads((tmp_path / "gpu" / training_run.REPORT_NAME).read_text())
    cpu = json.loads((tmp_path / "cpu" / training_run.REPORT_NAME).read_text())
    assert gpu["config"]["device"] == "gpu" and gpu["config"]["tf32"] is True
    assert "CuPy" in gpu["peak_memory"]["what"] and gpu["peak_memory"]["bytes"] > 0
    assert 0 <= gpu["test_accuracy"] <= 1 and gpu["energy"]["joules"] > 0
    assert gpu["parameters"] == cpu["parameters"]
    gpu_log, cpu_log = (json.loads((tmp_path / side / training_run.LOG_NAME).read_text().splitlines()[0])
                        for side in ("gpu", "cpu"))
    assert gpu_log["train_loss"] == pytest.approx(cpu_log["train_loss"], rel=0.05)


def test_quick_runs_are_quick_from_end_to_end(tiny_digits, tmp_path, capsys):
    """--steps-per-epoch 3 also caps the per-epoch evaluation and the report's passes at 3 batches
    (48 of the 60 test images), and the report says so; --eval-batches 0 skips the per-epoch one."""
    out = tmp_path / "quick"
    assert run(tiny_digits, out, "--epochs", "2") == 0
    printed = capsys.readouterr().out
    report = json.loads((out / training_run.REPORT_NAME).read_text())
    assert report["test_samples"] == 48 and report["test_subset"] == "measured on the first 48 of the 60 test images"
    assert "48 of the 60 test images" in printed
    log = [json.loads(line) for line in (out / training_run.LOG_NAME).read_text().splitlines()]
    assert [record["test_samples"] for record in log] == [48, 48]
    assert run(tiny_digits, tmp_path / "none", "--epochs", "1", "--eval-batches", "0") == 0
    (record,) = [json.loads(line) for line in (tmp_path / "none" / training_run.LOG_NAME).read_text().splitlines()]
    assert "test_loss" not in record and record["train_loss"] > 0


def test_the_report_has_every_field(tiny_digits, tmp_path, capsys):
    out = tmp_path / "run"
    assert run(tiny_digits, out, "--epochs", "1", "--val-fraction", "0.25", "--report-batches", "4") == 0
    printed = capsys.readouterr().out
    report = json.loads((out / training_run.REPORT_NAME).read_text())
    assert "test accuracy" in printed and str(out / training_run.REPORT_NAME) in printed
    for key in ("test_accuracy", "test_loss", "test_samples", "parameters", "spikes_per_sample",
                "spikes_per_sample_by_layer", "firing_rates", "temporal_difference", "energy", "noise",
                "inference_images_per_second", "train_images_per_second", "peak_memory", "config"):
        assert key in report, key
    assert report["test_samples"] == 60 and report["test_subset"] is None and 0 <= report["test_accuracy"] <= 1
    assert set(report["parameters"]) >= {"dense", "genetic", "this_model"}
    assert report["parameters"]["this_model"] == report["parameters"]["genetic"] < report["parameters"]["dense"]
    assert len(report["firing_rates"]) == 3 and all(0 <= r <= 1 for r in report["firing_rates"].values())
    assert report["energy"]["joules"] > 0 and report["energy"]["time_steps"] == 2
    assert report["noise"]["ratio"] == 0.5 and 0 <= report["noise"]["accuracy"] <= 1
    assert report["inference_images_per_second"] > 0
    assert report["peak_memory"]["bytes"] > 0 and "max RSS" in report["peak_memory"]["what"]
    (record,) = [json.loads(line) for line in (out / training_run.LOG_NAME).read_text().splitlines()]
    assert set(record) >= {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


def test_from_dense_fills_every_genetic_layer_with_its_dense_weight(tiny_digits, tmp_path, capsys):
    """With g at least every layer's rank, eq. 6-8 reproduce each dense W (up to rounding);
    BN statistics and biases are copied; the report gives the accuracy before fine-tuning."""
    dense, compressed = tmp_path / "dense", tmp_path / "compressed"
    run(tiny_digits, dense, "--epochs", "1", "--dense")
    train.main(["--data", str(tiny_digits), "--out", str(compressed), "--from-dense", str(dense / "checkpoint.h5"),
                "--epochs", "1", "--batch-size", "16", "--steps-per-epoch", "1", "--genes", "128",
                "--time-steps", "2", "--no-progress"])
    assert "before fine-tuning" in capsys.readouterr().out
    report = json.loads((compressed / training_run.REPORT_NAME).read_text())
    assert 0 <= report["from_dense"]["test_accuracy_before_fine_tuning"] <= 1
    config = report["config"]
    dense_tensors, _ = final_arrays(dense)
    genetic = build_from_config(config)
    training_run.compress_dense(config, genetic)
    dense_model = build_from_config(config, genetic=False)
    dense_model.load_state_dict(dense_tensors["model"])
    for dense_layer, layer in zip(dense_model.weight_layers(), genetic.weight_layers()):
        w = dense_layer.w.data.reshape(dense_layer.w.shape[0], -1)
        assert np.allclose(layer.weight(), w, rtol=1e-4, atol=1e-5 * np.abs(w).max())
    genetic_state = genetic.state_dict()
    for name, value in dense_tensors["model"].items():
        if not name.endswith(".w"):
            assert np.array_equal(genetic_state[name], value), name


def test_a_finished_folder_is_not_overwritten(tiny_digits, tmp_path, capsys):
    run(tiny_digits, tmp_path / "run", "--epochs", "1")
    with pytest.raises(ValueError, match="--resume"):
        run(tiny_digits, tmp_path / "run", "--epochs", "1")
    with pytest.raises(ValueError, match="batch_size"):
        train.main(["--data", str(tiny_digits), "--out", str(tmp_path / "run"), "--epochs", "1", "--resume",
                    "--batch-size", "8", "--steps-per-epoch", "3", "--genes", "8", "--time-steps", "2"])


# ---------------------------------------------------------------------------- bad input

def write_raw(path, images, labels, classes=10):
    """A dataset file written without validation, as a foreign tool might."""
    with h5py.File(path, "w") as f:
        f.attrs["format"] = datasets.FORMAT
        f.attrs["classes"] = json.dumps([str(c) for c in range(classes)])
        for split in ("train", "test"):
            f.create_dataset(f"{split}/images", data=images)
            f.create_dataset(f"{split}/labels", data=labels)
    return path


def bad_inputs(tmp, data):
    good_images = np.zeros((20, 8, 8, 1), dtype=np.uint8)
    good_labels = np.arange(20) % 10
    corrupt = tmp / "corrupt.h5"
    corrupt.write_bytes(b"\x89HDF\r\n\x1a\n" + os.urandom(300))
    nan_images = np.zeros((20, 8, 8, 1))
    nan_images[3, 2, 2, 0] = np.nan
    bad_checkpoint = tmp / "resume" / training_run.CHECKPOINT_NAME
    bad_checkpoint.parent.mkdir()
    bad_checkpoint.write_bytes(os.urandom(500))
    return {  # name: (arguments, a phrase the one line must contain)
        "missing file": (["--data", str(tmp / "absent.h5")], "not found"),
        "corrupt file": (["--data", str(corrupt)], "corrupt"),
        "wrong shape": (["--data", str(write_raw(tmp / "shape.h5", good_images[..., 0], good_labels))], "4-D"),
        "wrong dtype": (["--data", str(write_raw(tmp / "dtype.h5", good_images.astype(np.int32), good_labels))],
                        "dtype int32"),
        "labels out of range": (["--data", str(write_raw(tmp / "labels.h5", good_images, good_labels + 5))],
                                "labels must lie in [0, 10)"),
        "NaN pixels": (["--data", str(write_raw(tmp / "nan.h5", nan_images, good_labels))], "NaN"),
        "unknown architecture": (["--data", data, "--arch", "nosuchnet"], "unknown architecture"),
        "genes <= 0": (["--data", data, "--genes", "0"], "--genes"),
        "genes not a number": (["--data", data, "--genes", "many"], "--genes"),
        "corrupt checkpoint": (["--data", data, "--out", str(bad_checkpoint.parent), "--resume"], "checkpoint.h5"),
        "corrupt dense checkpoint": (["--data", data, "--from-dense", str(corrupt)], "corrupt.h5"),
        "corrupt genome": (["--data", data, "--genome", str(corrupt)], "genome"),
        "gpu without one": (["--data", data, "--device", "gpu"], "gpu"),
        "tf32 on the cpu": (["--data", data, "--tf32"], "--tf32"),
    }


def test_bad_input_gives_one_line_and_exit_2(tiny_digits, tmp_path):
    """Each case in a subprocess: exit status 2, one line on stderr, no traceback."""
    cases = bad_inputs(tmp_path, str(tiny_digits))
    if backend.gpu_available():
        del cases["gpu without one"]
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "GEE_REF_CACHE": str(tmp_path / "cache"), "PYTHONPATH": path}
    processes = {}
    for name, (argv, _) in cases.items():
        if "--out" not in argv:
            argv = ["--out", str(tmp_path / "out" / name.replace(" ", "_")), *argv]
        command = [sys.executable, "-m", "gee_ref.train", "--epochs", "1", "--no-progress", *argv]
        processes[name] = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, text=True)
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=120)
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert process.returncode == 2, f"{name}: exit {process.returncode}, stderr {stderr!r}"
        assert len(lines) == 1 and lines[0].startswith("error: "), f"{name}: {stderr!r}"
        assert "Traceback" not in stderr, name
        assert cases[name][1] in lines[0], f"{name}: {lines[0]}"


def test_a_genome_sets_g_and_the_encoding_scales(tiny_digits, tmp_path, capsys):
    from gee_ref.evolution import genome as genomes

    config = {"arch": "digits", "genetic": True, "genes": 8, "num_classes": 10, "image_shape": [8, 8, 1],
              "time_steps": 2, "seed": 0, "device": "cpu"}
    template = genomes.starting_genome(build_from_config(config))
    rng = np.random.default_rng(0)
    chosen = template.with_vector(np.concatenate([template.log_sigmas - 0.5, rng.standard_normal(64)]))
    path = tmp_path / "genome.h5"
    genomes.save_genome(path, chosen)
    run(tiny_digits, tmp_path / "run", "--epochs", "1", "--genome", str(path))
    capsys.readouterr()
    report = json.loads((tmp_path / "run" / training_run.REPORT_NAME).read_text())
    assert report["config"]["genome"] == str(path.resolve())
    model = build_from_config({**report["config"]})
    training_run.start(report["config"], tmp_path / "fresh", model, chosen, resume=False, test_loader=None,
                       say=print)
    assert np.allclose(model.genes.G.data, chosen.G.astype(np.float32))
    assert np.allclose([layer.sigma for layer in model.genetic_layers()], chosen.sigmas)
    with pytest.raises(ValueError, match="genome"):
        run(tiny_digits, tmp_path / "other", "--epochs", "1", "--genome", str(path), "--genes", "16")


def test_the_paper_start_and_frozen_genes(tiny_digits, tmp_path, capsys):
    """--start paper draws every encoding with sigma_l = 1 (G = I); --freeze-genes trains everything
    but G, which stays the identity."""
    out = tmp_path / "paper"
    run(tiny_digits, out, "--epochs", "1", "--start", "paper", "--freeze-genes")
    tensors, meta = final_arrays(out)
    assert meta["config"]["start"] == "paper" and meta["config"]["freeze_genes"]
    np.testing.assert_array_equal(tensors["model"]["genes.G"], np.eye(8, dtype=np.float32))
    fresh = build_from_config({**meta["config"], "device": "cpu"})
    from gee_ref.evolution.genome import apply_genome, starting_genome
    apply_genome(fresh, starting_genome(fresh, "paper"), backend.rng(backend.derive_seed(0, "genome")))
    first = fresh.genetic_layers()[0]
    assert np.abs(first.x_out.data).max() <= 2.0 and first.x_out.data.std() > 0.5  # sigma 1, cut at +-2
    trained = tensors["model"][[n for n in tensors["model"] if n.endswith("x_out")][0]]
    assert not np.array_equal(trained, first.x_out.data)  # the encodings did train
    calibrated = tmp_path / "calibrated"
    run(tiny_digits, calibrated, "--epochs", "1")
    tensors_c, _ = final_arrays(calibrated)
    assert not np.array_equal(tensors_c["model"]["genes.G"], np.eye(8, dtype=np.float32))  # G trains
    capsys.readouterr()


@pytest.mark.filterwarnings("ignore:(overflow|invalid value) encountered:RuntimeWarning")  # lr 1e6 on purpose
def test_a_diverging_run_can_stop_and_be_tested_as_it_was(tiny_digits, tmp_path, capsys):
    """run_training(on_divergence="stop") (the evolution's final training): a loss that turns NaN
    stops the training, the last finite weights are tested, the report says so, and a resumed run
    does not train again; the train command itself makes it an error."""
    from gee_ref.runs.data import read_run_data

    data = read_run_data(tiny_digits)
    options = {"epochs": 2, "batch_size": 16, "steps_per_epoch": 3, "genes": 8, "time_steps": 2, "lr": 1e6,
               "start": "paper", "schedule": "constant"}
    report, path = training_run.run_training(options, data, out=tmp_path / "run", on_divergence="stop")
    assert report["diverged"]["epoch"] == 1 and report["diverged"]["weights"] == "of the start"
    assert report["epochs_done"] == 0 and 0.0 <= report["test_accuracy"] <= 1.0
    again, _ = training_run.run_training(options, data, out=tmp_path / "run", resume=True, on_divergence="stop")
    assert again["diverged"] == report["diverged"] and again["test_accuracy"] == report["test_accuracy"]
    with pytest.raises(ValueError, match="became"):
        training_run.run_training(options, data, out=tmp_path / "error")
    capsys.readouterr()
    flags = ["--data", str(tiny_digits), "--epochs", "2", "--batch-size", "16", "--steps-per-epoch", "3", "--genes",
             "8", "--time-steps", "2", "--lr", "1e6", "--start", "paper", "--schedule", "constant", "--no-progress"]
    assert train.main([*flags, "--out", str(tmp_path / "cli"), "--on-divergence", "stop"]) == 0
    shown = capsys.readouterr().out
    assert "training diverged in epoch 1: tested with the weights of the start" in shown
    assert json.loads((tmp_path / "cli" / "report.json").read_text())["diverged"]["epoch"] == 1
