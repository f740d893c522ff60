"""The training loop, the evaluation pass and its spike counts (gee_ref.training.loop), the
report's measurements (gee_ref.runs.report) and the CLI error helper (gee_ref.cli.errors)."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gee_ref import autograd, backend
from gee_ref.cli import errors as cli_errors
from gee_ref.data import datasets
from gee_ref.measure.memory import PeakMemory
from gee_ref.measure.parameters import twin_parameter_counts
from gee_ref.measure.spikes import SpikeCounts
from gee_ref.runs import report as measure
from gee_ref.training import loop as training
from gee_ref.training.optimizer import decayed_and_other, make_optimizer
from gee_ref.data.loader import Loader
from gee_ref.models import build_model


@pytest.fixture(scope="module")
def digits():
    """256 train and 128 test images of the embedded digits."""
    splits, _ = datasets.digits_splits()
    (x, y), (xt, yt) = splits["train"], splits["test"]
    return x[:256], y[:256], xt[:128], yt[:128]


@pytest.fixture(scope="module")
def trained(digits):
    """A small genetic digits net (T = 2) trained for 2 epochs of 12 steps: the model, the
    test loader, and the training data's loss and accuracy before and after."""
    x, y, xt, yt = digits
    model = small_model(time_steps=2)
    loader = Loader(x[:192], y[:192], 16, seed=0)
    measured = Loader(x[:192], y[:192], 96, shuffle=False, mean=loader.mean, std=loader.std)
    before = training.evaluate(model, measured)
    result = training.train_steps(model, loader, make_optimizer(model, "sgd", lr=0.1), epochs=2)
    after = training.evaluate(model, measured)
    test_loader = Loader(xt, yt, 64, shuffle=False, mean=loader.mean, std=loader.std)
    return {"model": model, "test_loader": test_loader, "loader": loader, "result": result,
            "before": before, "after": after}


def small_model(genetic=True, time_steps=4):
    return build_model("digits", genetic=genetic, genes=16, num_classes=10, in_channels=1, image_size=8,
                       time_steps=time_steps, seed=1)


class ListLoader:
    """A loader over fixed batches, with the Loader's epoch protocol."""

    def __init__(self, batches):
        self.batch_list, self.epoch, self.device = list(batches), 0, "cpu"

    def __len__(self):
        return len(self.batch_list)

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        return iter(self.batch_list)


class RecordingOptimizer:
    """Remembers the lr of every step; changes nothing."""

    def __init__(self):
        self.lr, self.seen = 0.0, []

    def zero_grad(self):
        pass

    def step(self):
        self.seen.append(self.lr)


def random_batches(count, size=4, seed=0):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((size, 1, 8, 8)).astype(np.float32), rng.integers(0, 10, size))
            for _ in range(count)]


# ---------------------------------------------------------------------------- training

def test_short_digits_training_lowers_the_loss(trained):
    result, before, after = trained["result"], trained["before"], trained["after"]
    assert result["steps"] == 2 * len(trained["loader"]) == 24 and not result["nonfinite"]
    assert trained["loader"].epoch == 2
    assert after["loss"] < 0.8 * before["loss"]
    assert after["accuracy"] > before["accuracy"] + 0.2


def test_steps_run_across_epochs_and_follow_the_schedule():
    from gee_ref.optim import CosineSchedule

    model, loader, optimizer = small_model(), ListLoader(random_batches(3)), RecordingOptimizer()
    schedule = CosineSchedule(1.0, total_steps=20)
    result = training.train_steps(model, loader, optimizer, steps=5, schedule=schedule, start_step=7)
    assert result["steps"] == 5 and result["samples"] == 20
    assert loader.epoch == 1  # one complete pass, the second cut after 2 of 3 batches
    assert optimizer.seen == [schedule.lr_at(7 + i) for i in range(5)]
    result = training.train_steps(model, loader, optimizer, steps=100, epochs=2)
    assert result["steps"] == 6 and loader.epoch == 3


@pytest.mark.parametrize("where", ["input", "classifier"])
def test_a_nonfinite_loss_or_gradient_stops_training_before_the_update(where):
    model = small_model()
    batches = random_batches(3)
    if where == "input":  # the spikes hide a NaN input from the loss, not from the gradients
        batches[1][0][0, 0, 0, 0] = np.nan
    optimizer = make_optimizer(model, "sgd", lr=0.0)  # lr 0: weights move only by NaN
    if where == "classifier":  # the logits, hence the loss, are NaN from the first batch
        model.weight_layers()[-1].b.data[0] = np.inf
    before = {n: p.data.copy() for n, p in model.named_parameters()}
    with np.errstate(invalid="ignore", over="ignore"):
        result = training.train_steps(model, ListLoader(batches), optimizer, epochs=1)
    assert result["nonfinite"] and math.isnan(result["loss"])
    assert result["steps"] == (1 if where == "input" else 0)
    assert all(np.array_equal(before[n], p.data, equal_nan=True) for n, p in model.named_parameters())


def test_weight_decay_only_on_weight_matrices():
    model = small_model()
    decayed, other = decayed_and_other(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert {names[id(p)].rsplit(".", 1)[-1] for p in decayed} == {"G", "x_out", "x_in"}
    assert all(p.data.ndim == 1 for p in other) and other
    optimizer = make_optimizer(model, "sgd", lr=0.1, weight_decay=5e-4)
    assert [o.weight_decay for o in optimizer.optimizers] == [5e-4, 0.0]
    with pytest.raises(ValueError):
        make_optimizer(model, "adam")


def test_parameter_groups_state_round_trip(digits):
    x, y, _, _ = digits
    model = small_model(genetic=False)
    loader = Loader(x[:64], y[:64], 16, seed=0)
    optimizer = make_optimizer(model, "sgd", lr=0.05)
    training.train_steps(model, loader, optimizer, steps=2)
    state = optimizer.state_dict()
    twin = make_optimizer(model, "sgd", lr=0.7)
    twin.load_state_dict(state)
    assert twin.lr == optimizer.lr
    again = twin.state_dict()
    assert state.keys() == again.keys() and all(np.array_equal(state[k], again[k]) for k in state)
    with pytest.raises(ValueError):
        twin.load_state_dict({"9.lr": np.float64(1.0)})


# ---------------------------------------------------------------------------- spike counts

def reference_statistics(whole):
    """Table 3 and eq. 13 straight from the concatenated spike trains [T, N, ...] of each layer."""
    whole = [s.astype(np.float64) for s in whole]
    samples = whole[0].shape[1]
    r_t = np.mean([np.abs(np.diff(s, axis=0)).mean() if s.shape[0] > 1 else 0.0 for s in whole])
    return r_t, [s.mean() for s in whole], sum(s.sum() for s in whole) / samples


@given(st.integers(2, 5), st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 2**31))
def test_spike_statistics_accumulated_over_batches_equal_the_whole(time_steps, batch_sizes, seed):
    rng = np.random.default_rng(seed)
    shapes = [(3,), (2, 2, 2)]
    batches = [[(rng.random((time_steps, n) + shape) < rng.random()).astype(np.float32) for shape in shapes]
               for n in batch_sizes]
    whole = [np.concatenate([b[i] for b in batches], axis=1) for i in range(len(shapes))]
    stats = SpikeCounts()
    for b in batches:
        stats.add(b)
    assert stats.samples == sum(batch_sizes)
    r_t, rates, per_sample = reference_statistics(whole)
    assert np.isclose(stats.temporal_difference(), r_t, rtol=1e-12, atol=1e-15)
    assert np.allclose(stats.firing_rates(), rates, rtol=1e-12)
    assert np.isclose(stats.spikes_per_sample(), per_sample, rtol=1e-12)
    assert 0.0 <= stats.temporal_difference() <= 1.0


def test_temporal_difference_of_known_trains():
    alternating = np.array([1, 0, 1, 0], dtype=np.float32).reshape(4, 1, 1)  # flips every step: 1
    constant = np.ones((4, 1, 1), dtype=np.float32)                         # never flips: 0
    stats = SpikeCounts()
    stats.add([alternating, constant])
    assert stats.temporal_difference_by_layer() == [1.0, 0.0]
    assert stats.temporal_difference() == 0.5
    single = SpikeCounts()
    single.add([np.ones((1, 2, 3), dtype=np.float32)])
    assert single.temporal_difference() == 0.0  # T = 1: no transition
    with pytest.raises(ValueError):
        stats.add([alternating])


def test_evaluate_records_consistent_statistics(digits):
    _, _, xt, yt = digits
    model = small_model()
    loader = Loader(xt, yt, 48, shuffle=False)  # 128 = 48 + 48 + 32: uneven batches
    result = training.evaluate(model, loader, record=True, keep_spikes=True)
    spikes = result["spike_arrays"]
    assert [s.shape[:2] for s in spikes] == [(4, 128)] * 3
    r_t, rates, per_sample = reference_statistics(spikes)
    assert np.isclose(result["temporal_difference"], r_t, rtol=1e-9)
    assert np.allclose(result["firing_rates"], rates, rtol=1e-9)
    assert np.isclose(result["spikes_per_sample"], per_sample, rtol=1e-9)
    # in the digits net every weight layer but the first reads one LIF layer's spikes
    assert np.allclose(result["input_rates"][1:], result["firing_rates"], rtol=1e-6)
    # dense-equivalent MACs: stem 1->32 3x3 on 8x8, conv 32->64 3x3 stride 2 on 4x4, FC 1024->128, 128->10
    assert result["macs"] == [32 * 9 * 64, 64 * 288 * 16, 128 * 1024, 10 * 128]
    assert not model.weight_layers()[0].recording  # recording is switched off again
    plain = training.evaluate(model, loader)
    assert plain["accuracy"] == result["accuracy"] and "firing_rates" not in plain


def test_noise_of_ratio_zero_changes_nothing_and_noise_is_seeded(trained):
    model, loader = trained["model"], trained["test_loader"]
    clean = training.evaluate(model, loader)
    assert clean["accuracy"] > 0.3  # well above chance (0.1): the input matters
    assert training.evaluate(model, loader, noise_ratio=0.0)["loss"] == clean["loss"]
    first = training.evaluate(model, loader, noise_ratio=0.5, rng=backend.rng(3))
    second = training.evaluate(model, loader, noise_ratio=0.5, rng=backend.rng(3))
    assert first["loss"] == second["loss"] and first["loss"] > clean["loss"]


# ---------------------------------------------------------------------------- measure

def test_measure_model_and_parameter_counts(trained):
    model, loader = trained["model"], trained["test_loader"]
    measured = measure.measure_model(model, loader, time_steps=2)
    for key in ("test_accuracy", "test_loss", "spikes_per_sample", "firing_rates", "temporal_difference",
                "energy", "noise", "inference_images_per_second"):
        assert key in measured
    assert measured["energy"]["joules"] > 0 and measured["noise"]["ratio"] == 0.5
    assert measured["noise"]["accuracy"] < measured["test_accuracy"]
    assert measured["test_accuracy"] == training.evaluate(model, loader)["accuracy"]
    counts = twin_parameter_counts(lambda genetic: small_model(genetic=genetic))
    # eq. 2: g (C_out + fan_in) per genetic layer (all layers of the digits net), g^2 once for G,
    # against C_out * fan_in per dense layer; BN and biases are the same in both
    g, dense_model = 16, small_model(genetic=False)
    shapes = [(layer.out_features, layer.fan_in) for layer in dense_model.weight_layers()]
    others = sum(p.size for name, p in dense_model.named_parameters() if not name.endswith(".w"))
    assert counts == {"dense": sum(o * i for o, i in shapes) + others,
                      "genetic": sum(g * (o + i) for o, i in shapes) + g * g + others}
    memory = PeakMemory("cpu").report()
    assert memory["bytes"] > 0 and "RSS" in memory["what"]


# ---------------------------------------------------------------------------- cli_errors

def test_run_main_turns_bad_input_into_one_line_and_exit_2(capsys):
    def bad(argv):
        raise ValueError("the file is wrong\nsecond line")

    with pytest.raises(SystemExit) as stop:
        cli_errors.run_main(bad, [])
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: the file is wrong\n"
    with pytest.raises(SystemExit) as stop:
        cli_errors.run_main(lambda argv: None, [])
    assert stop.value.code == 0

    def too_big(argv):
        raise MemoryError("Out of memory allocating 8,589,934,592 bytes")

    with pytest.raises(SystemExit) as stop:
        cli_errors.run_main(too_big, [], memory_hint="try a smaller --batch-size")
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory (Out of memory allocating") and err.rstrip().endswith("--batch-size")
    assert len(err.splitlines()) == 1

    def bug(argv):
        raise KeyError("a bug keeps its traceback")

    with pytest.raises(KeyError):
        cli_errors.run_main(bug, [])


def test_argument_errors_are_one_line(capsys):
    parser = cli_errors.ArgumentParser(prog="tool")
    parser.add_argument("--n", type=int)
    with pytest.raises(SystemExit) as stop:
        parser.parse_args(["--n", "x"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")


def test_no_grad_is_left_on_after_evaluate(digits):
    _, _, xt, yt = digits
    training.evaluate(small_model(), Loader(xt[:8], yt[:8], 8, shuffle=False))
    assert autograd.is_grad_enabled()
