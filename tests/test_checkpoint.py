"""Checkpoints: round trips, generator states, one-line errors, and atomic writes that survive
a writer killed with SIGKILL at random moments."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import gee_ref
from gee_ref import backend
from gee_ref.storage import atomic
from gee_ref.storage import checkpoint
from gee_ref.autograd import Tensor
from gee_ref.storage.checkpoint import CheckpointError, load_checkpoint, restore_rng, rng_state, save_checkpoint
from gee_ref.optim import AdamW

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


def example_tensors():
    rng = np.random.default_rng(0)
    return {
        "model": {"conv1.x_out": rng.normal(size=(8, 3)).astype(np.float32), "G": rng.normal(size=(3, 3)),
                  "bn.num_batches": np.asarray(17, dtype=np.int64), "mask": np.array([True, False, True])},
        "optimizer": {"steps": np.arange(4, dtype=np.int64), "empty": np.zeros((0, 5), np.float32),
                      "phase": np.array([1 + 2j], np.complex128)},
        "nothing": {},
    }


def test_round_trip_keeps_every_array_dtype_and_shape(tmp_path):
    tensors = example_tensors()
    meta = {"epoch": 3, "step": 1200, "config": {"g": 100, "betas": (0.9, 0.999), "name": "résnet"},
            "loss": 0.25, "rng": rng_state(np.random.default_rng(5)), "flag": None}
    save_checkpoint(tmp_path / "run.h5", tensors, meta)
    loaded, loaded_meta = load_checkpoint(tmp_path / "run.h5")
    assert loaded.keys() == tensors.keys()
    for group in tensors:
        assert loaded[group].keys() == tensors[group].keys()
        for name, array in tensors[group].items():
            got = loaded[group][name]
            assert isinstance(got, np.ndarray) and got.dtype == array.dtype and got.shape == array.shape
            np.testing.assert_array_equal(got, array)
    assert loaded_meta == json.loads(json.dumps(meta))  # tuples come back as lists
    assert loaded_meta["config"]["betas"] == [0.9, 0.999]


def test_overwrite_replaces_and_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "ckpt.h5"
    for step in range(3):
        save_checkpoint(target, {"model": {"w": np.full(4, step)}}, {"step": step})
    tensors, meta = load_checkpoint(target)
    assert meta["step"] == 2 and np.all(tensors["model"]["w"] == 2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.h5"]


def test_optimizer_state_through_a_checkpoint_continues_identically(tmp_path):
    def train(opt, params, steps):
        for k in range(steps):
            for i, p in enumerate(params):
                p.grad = (np.sin(p.data * (k + i + 1)) + 0.1 * p.data).astype(np.float32)
            opt.step()

    start = [np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3), np.ones(4, np.float32)]
    params = [Tensor(x.copy(), requires_grad=True) for x in start]
    opt = AdamW(params, lr=0.01)
    train(opt, params, 5)
    model_state = {f"p{i}": p.data for i, p in enumerate(params)}
    save_checkpoint(tmp_path / "c.h5", {"model": model_state, "optimizer": opt.state_dict()}, {"step": 5})
    train(opt, params, 6)

    tensors, meta = load_checkpoint(tmp_path / "c.h5")
    resumed = [Tensor(tensors["model"][f"p{i}"], requires_grad=True) for i in range(2)]
    resumed_opt = AdamW(resumed, lr=0.5)
    resumed_opt.load_state_dict(tensors["optimizer"])
    train(resumed_opt, resumed, 6)
    for p, r in zip(params, resumed):
        np.testing.assert_array_equal(p.data, r.data)


@pytest.mark.parametrize("bit_generator", ["PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"])
def test_rng_state_is_json_and_restores_the_stream(bit_generator):
    rng = np.random.Generator(getattr(np.random, bit_generator)(123))
    rng.normal(size=7)
    rng.integers(0, 10, size=3, dtype=np.int32)  # leaves a buffered 32-bit half on some generators
    state = json.loads(json.dumps(rng_state(rng)))
    restored = restore_rng(state)
    np.testing.assert_array_equal(restored.random(50), rng.random(50))
    np.testing.assert_array_equal(restored.integers(0, 1 << 40, size=5), rng.integers(0, 1 << 40, size=5))


def test_rng_helpers_reject_what_they_cannot_handle():
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        rng_state(np.random.RandomState(0))
    for bad in ({"bit_generator": "os.system"}, {}, "PCG64", {"bit_generator": "PCG64", "state": {"state": "x"}}):
        with pytest.raises(ValueError):
            restore_rng(bad)


def test_bad_inputs_to_save_are_value_errors_and_write_nothing(tmp_path):
    target = tmp_path / "c.h5"
    cases = [
        ({"model": {"w": np.ones(2)}}, {"when": np.float64(1.0).tobytes()}),  # bytes: not JSON
        ({"model": {"w": np.ones(2)}}, {"array": np.ones(2)}),
        ({"model": {"a/b": np.ones(2)}}, {}),
        ({"": {"w": np.ones(2)}}, {}),
        ({"model": {"w": np.array(["text"])}}, {}),
        ({"model": {"w": np.array([object()])}}, {}),
        ({"model": [np.ones(2)]}, {}),
        ([np.ones(2)], {}),
        ({"model": {}}, [1, 2]),
    ]
    for tensors, meta in cases:
        with pytest.raises(ValueError):
            save_checkpoint(target, tensors, meta)
    with pytest.raises(ValueError, match="does not exist"):
        save_checkpoint(tmp_path / "missing" / "c.h5", {}, {})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("failure", ["replace", "interrupt"])
def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failure):
    target = tmp_path / "c.h5"
    save_checkpoint(target, {"model": {"w": np.zeros(3)}}, {"step": 1})

    def broken(*args, **kwargs):
        raise KeyboardInterrupt if failure == "interrupt" else OSError("disk full")

    monkeypatch.setattr(checkpoint.os, "replace", broken) if failure == "replace" else \
        monkeypatch.setattr(atomic, "_flush_to_disk", broken)
    with pytest.raises(KeyboardInterrupt if failure == "interrupt" else OSError):
        save_checkpoint(target, {"model": {"w": np.ones(3)}}, {"step": 2})
    monkeypatch.undo()
    tensors, meta = load_checkpoint(target)
    assert meta == {"step": 1} and np.all(tensors["model"]["w"] == 0)
    assert os.listdir(tmp_path) == ["c.h5"]


def assert_one_line_checkpoint_error(path, fragment):
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value)


def test_missing_corrupt_and_foreign_files_give_one_line_errors(tmp_path):
    assert_one_line_checkpoint_error(tmp_path / "absent.h5", "no checkpoint")
    assert_one_line_checkpoint_error(tmp_path, "no checkpoint")  # a folder

    (tmp_path / "noise.h5").write_bytes(np.random.default_rng(0).bytes(4096))
    assert_one_line_checkpoint_error(tmp_path / "noise.h5", "not a readable HDF5")

    save_checkpoint(tmp_path / "good.h5", {"model": {"w": np.arange(100000.0)}}, {"step": 1})
    data = (tmp_path / "good.h5").read_bytes()
    (tmp_path / "truncated.h5").write_bytes(data[: len(data) // 2])
    assert_one_line_checkpoint_error(tmp_path / "truncated.h5", "corrupt|not a readable")

    with h5py.File(tmp_path / "foreign.h5", "w") as h5:
        h5.create_dataset("images", data=np.zeros((2, 2), np.uint8))
    assert_one_line_checkpoint_error(tmp_path / "foreign.h5", "not a gee_ref checkpoint")

    with h5py.File(tmp_path / "badmeta.h5", "w") as h5:
        h5.attrs["format"] = checkpoint.FORMAT
        h5.attrs["meta"] = "{not json"
    assert_one_line_checkpoint_error(tmp_path / "badmeta.h5", "corrupt")

    with h5py.File(tmp_path / "badlayout.h5", "w") as h5:
        h5.attrs["format"] = checkpoint.FORMAT
        h5.attrs["meta"] = "{}"
        h5.create_dataset("loose", data=np.zeros(2))
    assert_one_line_checkpoint_error(tmp_path / "badlayout.h5", "not a group")


WRITER = """
import sys
import numpy as np
from gee_ref.storage.checkpoint import save_checkpoint
path, step = sys.argv[1], int(sys.argv[2])
while True:
    big = np.full((128, 1024), step, dtype=np.float64)  # 1 MiB, so a kill often lands mid-write
    save_checkpoint(path, {"model": {"w": big, "b": np.arange(step % 5 + 1)},
                           "optimizer": {"steps": np.asarray(step)}}, {"step": step})
    print(step, flush=True)
    step += 1
"""


def test_checkpoint_survives_sigkill_at_random_moments(tmp_path):
    target = tmp_path / "ckpt.h5"
    env = {**os.environ, "PYTHONPATH": str(Path(gee_ref.__file__).resolve().parents[1])}
    delays = np.random.default_rng(2024).uniform(0.0, 0.05, size=8)
    last_reported, next_step = None, 0
    for delay in delays:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(next_step)],
                                  stdout=subprocess.PIPE, env=env, text=True)
        for _ in range(3):  # let it complete a few checkpoints, then kill it at a random moment
            line = writer.stdout.readline()
            assert line, "the writer process died on its own"
            last_reported = int(line)
        time.sleep(float(delay))
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
        for line in writer.stdout:  # checkpoints it completed while we slept
            last_reported = int(line)
        writer.stdout.close()

        tensors, meta = load_checkpoint(target)  # never a broken file
        step = meta["step"]
        # the last reported checkpoint, or the next one if the kill came between rename and print
        assert step in (last_reported, last_reported + 1)
        assert np.all(tensors["model"]["w"] == step) and tensors["model"]["w"].shape == (128, 1024)
        np.testing.assert_array_equal(tensors["model"]["b"], np.arange(step % 5 + 1))
        assert int(tensors["optimizer"]["steps"]) == step
        next_step = step + 1


@requires_gpu
def test_cupy_arrays_are_saved_as_host_arrays(tmp_path):
    xp = backend.xp_for("gpu")
    w = xp.arange(6, dtype=xp.float32).reshape(2, 3)
    save_checkpoint(tmp_path / "c.h5", {"model": {"w": w}}, {})
    tensors, _ = load_checkpoint(tmp_path / "c.h5")
    np.testing.assert_array_equal(tensors["model"]["w"], backend.to_host(w))
