"""gee_ref.data.datasets: the HDF5 layout, its one-line errors, the digits default, the splits."""
import json
import os

import h5py
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref.data import datasets
from gee_ref.data.datasets import DatasetError, load_dataset, split_validation, write_dataset

CLASSES = ("cat", "dog", "emu")


def _arrays(n, seed, h=5, w=4, c=3):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8), rng.integers(0, 3, size=n)


def _write_raw(path, train_images, train_labels, attrs=None, groups=("train", "test")):
    """A file written with h5py directly, bypassing write_dataset's validation."""
    attrs = {"format": datasets.FORMAT, "classes": json.dumps(CLASSES), "source": "x"} if attrs is None else attrs
    with h5py.File(path, "w") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name in groups:
            f.create_dataset(f"{name}/images", data=train_images)
            f.create_dataset(f"{name}/labels", data=train_labels)
    return path


def _error(path, split="train"):
    with pytest.raises(DatasetError) as caught:
        load_dataset(path, split)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_round_trip(tmp_path):
    train, test = _arrays(7, 0), _arrays(4, 1, c=3)
    path = write_dataset(tmp_path / "d.h5", {"train": train, "test": test}, CLASSES, "unit test")
    for name, (images, labels) in (("train", train), ("test", test)):
        got_images, got_labels, classes = load_dataset(path, name)
        np.testing.assert_array_equal(got_images, images)
        np.testing.assert_array_equal(got_labels, labels)
        assert got_images.dtype == np.uint8 and got_labels.dtype == np.int64
        assert classes == CLASSES
    info = datasets.dataset_info(path)
    assert info.source == "unit test" and info.classes == CLASSES
    assert info.shapes == {"train": (7, 5, 4, 3), "test": (4, 5, 4, 3)}
    assert sorted(os.listdir(tmp_path)) == ["d.h5"]  # no temporary left behind


def test_grayscale_and_unsigned_labels_round_trip(tmp_path):
    images, labels = _arrays(6, 2, c=1)
    path = write_dataset(tmp_path / "g.h5", {"train": (images, labels.astype(np.uint8)),
                                             "test": (images, labels)}, CLASSES, "")
    got_images, got_labels, _ = load_dataset(path, "train")
    assert got_images.shape == (6, 5, 4, 1) and got_labels.dtype == np.int64
    np.testing.assert_array_equal(got_labels, labels)


def test_write_replaces_existing_file_and_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "d.h5"
    write_dataset(path, {"train": _arrays(3, 0), "test": _arrays(3, 1)}, CLASSES, "first")
    write_dataset(path, {"train": _arrays(5, 2), "test": _arrays(3, 3)}, CLASSES, "second")
    assert datasets.dataset_info(path).source == "second"
    with pytest.raises(DatasetError):
        write_dataset(tmp_path / "bad.h5", {"train": _arrays(3, 0), "test": (_arrays(3, 1)[0], [0, 1, 3])},
                      CLASSES, "")
    assert sorted(os.listdir(tmp_path)) == ["d.h5"]


def test_classes_as_array_of_strings(tmp_path):
    images, labels = _arrays(4, 0)
    path = _write_raw(tmp_path / "a.h5", images, labels,
                      attrs={"format": datasets.FORMAT, "classes": np.array(CLASSES, dtype=h5py.string_dtype())})
    assert load_dataset(path, "test")[2] == CLASSES


@pytest.mark.parametrize("splits, classes, needle", [
    ({"train": _arrays(3, 0)}, CLASSES, "splits must be exactly"),
    ({"train": _arrays(3, 0), "test": _arrays(3, 0)}, ("a", "a", "b"), "repeat"),
    ({"train": _arrays(3, 0), "test": _arrays(3, 0)}, (), "empty"),
    ({"train": _arrays(3, 0), "test": _arrays(3, 0)}, "abc", "not one string"),
    ({"train": (_arrays(3, 0)[0].astype(np.float32), [0, 1, 2]), "test": _arrays(3, 0)}, CLASSES, "uint8"),
])
def test_write_refuses_bad_input(tmp_path, splits, classes, needle):
    with pytest.raises(DatasetError, match=needle):
        write_dataset(tmp_path / "x.h5", splits, classes, "")
    assert not os.listdir(tmp_path)


def test_missing_file_and_directory(tmp_path):
    assert "not found" in _error(tmp_path / "nope.h5")
    assert "directory" in _error(tmp_path)


def test_not_hdf5_and_truncated(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not an HDF5 file at all" * 10)
    assert "not a readable HDF5 file" in _error(junk)
    good = write_dataset(tmp_path / "good.h5", {"train": _arrays(50, 0), "test": _arrays(5, 1)}, CLASSES, "")
    cut = tmp_path / "cut.h5"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    _error(cut)


def test_not_our_format(tmp_path):
    images, labels = _arrays(4, 0)
    assert "no 'format' attribute" in _error(_write_raw(tmp_path / "a.h5", images, labels, attrs={}))
    other = _write_raw(tmp_path / "b.h5", images, labels, attrs={"format": "something-else"})
    assert "something-else" in _error(other)
    no_test = _write_raw(tmp_path / "c.h5", images, labels, groups=("train",))
    assert "no 'test' group" in _error(no_test, "test")
    assert "unknown split" in _error(no_test, "validation")
    no_classes = _write_raw(tmp_path / "d.h5", images, labels, attrs={"format": datasets.FORMAT})
    assert "classes" in _error(no_classes)


@pytest.mark.parametrize("images, labels, needle", [
    (np.zeros((4, 5, 5), np.uint8), np.zeros(4, np.int64), "4-D"),
    (np.zeros((4, 3, 8, 8), np.uint8), np.zeros(4, np.int64), "NCHW"),
    (np.zeros((4, 5, 5, 3), np.uint8), np.zeros((4, 1), np.int64), "1-D"),
    (np.zeros((4, 5, 5, 3), np.uint8), np.zeros(3, np.int64), "4 images"),
    (np.zeros((4, 5, 5, 3), np.float32), np.zeros(4, np.int64), "dtype float32"),
    (np.full((4, 5, 5, 3), np.nan, np.float64), np.zeros(4, np.int64), "NaN"),
    (np.zeros((4, 5, 5, 3), np.uint8), np.zeros(4, np.float64), "integers"),
    (np.zeros((4, 5, 5, 3), np.uint8), np.array([0, 1, 2, 3]), "[0, 3)"),
    (np.zeros((4, 5, 5, 3), np.uint8), np.array([0, -1, 2, 2]), "min -1"),
    (np.zeros((0, 5, 5, 3), np.uint8), np.zeros(0, np.int64), "no images"),
])
def test_malformed_arrays(tmp_path, images, labels, needle):
    message = _error(_write_raw(tmp_path / "m.h5", images, labels))
    assert needle in message


def test_nan_message_only_when_nan_present(tmp_path):
    images = np.zeros((4, 5, 5, 3), np.float64)
    images[2, 1, 1, 0] = np.nan
    assert "NaN" in _error(_write_raw(tmp_path / "n.h5", images, np.zeros(4, np.int64)))
    assert "NaN" not in _error(_write_raw(tmp_path / "f.h5", np.zeros_like(images), np.zeros(4, np.int64)))


def _per_class_counts(labels, idx):
    return {int(c): int(np.sum(labels[idx] == c)) for c in np.unique(labels)}


@given(st.lists(st.integers(0, 4), min_size=1, max_size=200), st.floats(0.05, 0.95), st.integers(0, 2**32))
def test_split_validation_is_a_stratified_partition(labels, fraction, seed):
    labels = np.array(labels)
    train_idx, val_idx = split_validation(labels, fraction, seed)
    np.testing.assert_array_equal(np.sort(np.concatenate([train_idx, val_idx])), np.arange(labels.size))
    assert np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
    for c, n_c in _per_class_counts(labels, np.arange(labels.size)).items():
        expected = min(int(np.floor(fraction * n_c + 0.5)), n_c - 1)
        assert _per_class_counts(labels, val_idx)[c] == expected
    again = split_validation(labels, fraction, seed)
    np.testing.assert_array_equal(again[1], val_idx)


def test_split_validation_depends_on_seed_and_refuses_bad_fraction():
    labels = np.repeat(np.arange(4), 50)
    a = split_validation(labels, 0.2, 0)[1]
    b = split_validation(labels, 0.2, 1)[1]
    assert a.size == b.size == 40 and not np.array_equal(a, b)
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            split_validation(labels, bad, 0)
    with pytest.raises(ValueError):
        split_validation(labels.astype(float), 0.2, 0)


def test_load_train_validation(tmp_path):
    images, labels = _arrays(40, 5)
    path = write_dataset(tmp_path / "d.h5", {"train": (images, labels), "test": _arrays(3, 1)}, CLASSES, "")
    (x_train, y_train), (x_val, y_val), classes = datasets.load_train_validation(path, 0.25, 3)
    train_idx, val_idx = split_validation(labels, 0.25, 3)
    np.testing.assert_array_equal(x_val, images[val_idx])
    np.testing.assert_array_equal(y_train, labels[train_idx])
    assert len(x_train) + len(x_val) == 40 and classes == CLASSES


def test_default_digits(tmp_path, monkeypatch):
    from sklearn.datasets import load_digits

    monkeypatch.setenv("GEE_REF_CACHE", str(tmp_path / "cache"))
    path = datasets.default_digits_path()
    assert path == tmp_path / "cache" / datasets.DIGITS_FILE_NAME
    x_train, y_train, classes = load_dataset(path, "train")
    x_test, y_test, _ = load_dataset(path, "test")
    assert classes == tuple("0123456789")
    assert x_train.shape == (1438, 8, 8, 1) and x_test.shape == (359, 8, 8, 1)
    assert np.bincount(y_test).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    # the split is pinned: a change of the recipe must show up here
    bunch = load_digits()
    train_idx, test_idx = split_validation(bunch.target, 0.2, 0)
    assert int(test_idx.sum()) == 333354 and test_idx[:5].tolist() == [2, 3, 11, 13, 15]
    scaled = np.floor(bunch.images * 255 / 16 + 0.5).astype(np.uint8)[..., None]
    np.testing.assert_array_equal(x_test, scaled[test_idx])
    np.testing.assert_array_equal(x_train, scaled[train_idx])
    np.testing.assert_array_equal(y_test, bunch.target[test_idx])
    assert x_train.max() == 255 and 128 in x_train  # p=8 -> 127.5 rounds up


def test_default_digits_cached_and_rebuilt_when_broken(tmp_path, monkeypatch):
    monkeypatch.setenv("GEE_REF_CACHE", str(tmp_path))
    path = datasets.default_digits_path()
    stamp = path.stat().st_mtime_ns
    assert datasets.default_digits_path() == path and path.stat().st_mtime_ns == stamp
    path.write_bytes(path.read_bytes()[:1000])
    assert load_dataset(datasets.default_digits_path(), "test")[0].shape == (359, 8, 8, 1)
