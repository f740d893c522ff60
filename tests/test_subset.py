"""data_tools.subset: N images per class drawn by seed (never the first N), an exact block-mean
resize, and the provenance recorded in the file."""
import hashlib
import json
import os

import h5py
import numpy as np
import pytest

from data_tools import subset
from gee_ref.cli.errors import run_main
from gee_ref.data import datasets
from gee_ref.data.datasets import load_dataset, write_dataset

CLASSES = ["a", "b", "c"]


def class_sorted_file(path, per_class=(20, 8), side=8, channels=3, seed=0):
    """A dataset sorted by class, as the converted CIFAR-10 is; pixel (0, 0, 0) of image i is i % 256."""
    rng = np.random.default_rng(seed)
    splits = {}
    for split, count in zip(("train", "test"), per_class):
        labels = np.repeat(np.arange(len(CLASSES)), count)
        images = rng.integers(0, 256, (labels.size, side, side, channels), dtype=np.uint8)
        images[:, 0, 0, 0] = np.arange(labels.size) % 256
        splits[split] = (images, labels)
    return write_dataset(path, splits, CLASSES, "sorted test data")


def run(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        run_main(subset.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def refused(argv, capsys):
    code, _, err = run(argv, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_n_per_class_drawn_by_seed_never_the_first_n(tmp_path, capsys):
    src = class_sorted_file(tmp_path / "src.h5")
    code, out, err = run([src, tmp_path / "s.h5", "--train-per-class", 5, "--test-per-class", 3, "--seed", 4], capsys)
    assert code == 0, err
    assert "train 15, test 9" in out
    with h5py.File(tmp_path / "s.h5", "r") as f:
        chosen = {split: f[f"{split}/source_index"][()] for split in ("train", "test")}
    for split, per_class, total in (("train", 5, 20), ("test", 3, 8)):
        images, labels, classes = load_dataset(tmp_path / "s.h5", split)
        source_images, source_labels, _ = load_dataset(src, split)
        assert classes == tuple(CLASSES)
        assert np.bincount(labels).tolist() == [per_class] * 3
        indices = chosen[split]
        assert np.all(np.diff(indices) > 0)  # kept in source order
        np.testing.assert_array_equal(images, source_images[indices])
        np.testing.assert_array_equal(labels, source_labels[indices])
        first_n = np.concatenate([np.arange(per_class) + c * total for c in range(3)])
        assert not np.array_equal(indices, first_n)
    # the same seed draws the same images; another seed others
    run([src, tmp_path / "again.h5", "--train-per-class", 5, "--test-per-class", 3, "--seed", 4], capsys)
    run([src, tmp_path / "other.h5", "--train-per-class", 5, "--test-per-class", 3, "--seed", 5], capsys)
    with h5py.File(tmp_path / "again.h5", "r") as again, h5py.File(tmp_path / "other.h5", "r") as other:
        np.testing.assert_array_equal(again["train/source_index"][()], chosen["train"])
        assert not np.array_equal(other["train/source_index"][()], chosen["train"])


def test_the_draw_is_the_documented_one():
    labels = np.repeat(np.arange(3), 10)
    keys = np.random.default_rng([7, 0]).random(30)
    expected = np.sort(np.concatenate([np.flatnonzero(labels == c)[np.argsort(keys[labels == c])[:4]]
                                       for c in range(3)]))
    np.testing.assert_array_equal(subset.stratified_indices(labels, 4, 3, 7, 0, "x"), expected)
    np.testing.assert_array_equal(subset.stratified_indices(labels, None, 3, 7, 0, "x"), np.arange(30))


def test_provenance_is_recorded(tmp_path, capsys):
    src = class_sorted_file(tmp_path / "src.h5", side=8)
    code, _, err = run([src, tmp_path / "s.h5", "--train-per-class", 4, "--seed", 2, "--size", 4], capsys)
    assert code == 0, err
    with h5py.File(tmp_path / "s.h5", "r") as f:
        record = json.loads(f.attrs["subset"])
    assert record["source_file"] == "src.h5"
    assert record["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert record["source_attributes"]["source"] == "sorted test data"
    assert json.loads(record["source_attributes"]["classes"]) == CLASSES
    assert record["seed"] == 2 and record["size"] == 4
    assert record["train_per_class"] == 4 and record["test_per_class"] is None
    assert record["counts"] == {"train": [4, 4, 4], "test": [8, 8, 8]}
    assert record["resize"] == "exact mean of each 2x2 block, rounded half up"
    source = datasets.dataset_info(tmp_path / "s.h5").source
    assert source.startswith("sorted test data; stratified subset of src.h5: 4 train, all test images per class, "
                             "seed 2; resized to 4x4")


def test_block_mean_is_exact_and_rounds_half_up():
    images = np.zeros((1, 4, 4, 1), np.uint8)
    images[0, :2, :2, 0] = [[1, 2], [2, 2]]  # mean 1.75 -> 2
    images[0, :2, 2:, 0] = [[1, 2], [1, 2]]  # mean 1.5 -> 2 (half up)
    images[0, 2:, :2, 0] = [[255, 255], [255, 254]]  # mean 254.75 -> 255
    images[0, 2:, 2:, 0] = [[0, 0], [0, 1]]  # mean 0.25 -> 0
    np.testing.assert_array_equal(subset.block_average(images, 2)[0, ..., 0], [[2, 2], [255, 0]])
    rng = np.random.default_rng(1)
    many = rng.integers(0, 256, (9, 12, 12, 3), dtype=np.uint8)
    means = many.reshape(9, 4, 3, 4, 3, 3).astype(np.float64).mean(axis=(2, 4))
    np.testing.assert_array_equal(subset.block_average(many, 4, batch=2), np.floor(means + 0.5).astype(np.uint8))


def test_a_factor_that_is_not_an_integer_uses_pillow_box(tmp_path, capsys):
    pytest.importorskip("PIL")
    src = class_sorted_file(tmp_path / "src.h5", side=12, channels=1)
    code, _, err = run([src, tmp_path / "s.h5", "--size", 8], capsys)
    assert code == 0, err
    images, _, _ = load_dataset(tmp_path / "s.h5", "train")
    assert images.shape == (60, 8, 8, 1)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert "BOX" in json.loads(f.attrs["subset"])["resize"]
    flat = np.full((1, 12, 12, 1), 77, np.uint8)  # area averaging keeps a constant image constant
    assert np.all(subset.pillow_box(flat, 8) == 77)


def test_bad_requests_are_one_line(tmp_path, capsys):
    src = class_sorted_file(tmp_path / "src.h5")
    out = tmp_path / "out.h5"
    assert "class 0 has 20 images, fewer than the 21" in refused([src, out, "--train-per-class", 21], capsys)
    assert "must be a positive integer" in refused([src, out, "--test-per-class", 0], capsys)
    assert "larger than the images" in refused([src, out, "--size", 9], capsys)
    assert "--seed must be a non-negative" in refused([src, out, "--seed", -1], capsys)
    assert "not found" in refused([tmp_path / "absent.h5", out], capsys)
    assert not out.exists()
    wide = tmp_path / "wide.h5"
    pixels = np.zeros((3, 4, 8, 1), np.uint8)
    write_dataset(wide, {"train": (pixels, np.arange(3)), "test": (pixels, np.arange(3))}, CLASSES, "wide")
    assert "square" in refused([wide, out, "--size", 2], capsys)


def test_out_is_never_the_source_and_replaces_only_with_force(tmp_path, capsys):
    src = class_sorted_file(tmp_path / "src.h5")
    before = src.read_bytes()
    link = tmp_path / "link.h5"
    link.symlink_to(src)
    for force in ([], ["--force"]):
        assert "is the input" in refused([src, link, *force], capsys)
    assert src.read_bytes() == before
    out = tmp_path / "out.h5"
    out.write_bytes(b"keep me")
    assert "pass --force" in refused([src, out], capsys)
    assert out.read_bytes() == b"keep me"
    assert run([src, out, "--force"], capsys)[0] == 0
    assert os.path.getsize(out) > 0 and datasets.dataset_info(out).shapes["train"] == (60, 8, 8, 3)
