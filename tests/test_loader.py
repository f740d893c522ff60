"""gee_ref.data.loader: batches, normalisation, determinism from (seed, epoch), crop-and-flip."""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from gee_ref import backend
from gee_ref.data.loader import Loader, channel_stats, random_crop_flip


def _data(n=23, h=6, w=5, c=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, h, w, c), dtype=np.uint8), np.arange(n, dtype=np.int64)


def _epoch(loader, epoch):
    loader.set_epoch(epoch)
    return [(x.copy(), y.copy()) for x, y in loader]


@given(st.integers(1, 30), st.sampled_from([1, 3]), st.integers(0, 2**31))
def test_channel_stats_matches_float_computation(n, c, seed):
    images, _ = _data(n, 4, 3, c, seed)
    mean, std = channel_stats(images)
    pixels = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, pixels.mean(axis=(0, 1, 2)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(std, pixels.std(axis=(0, 1, 2)), rtol=1e-10, atol=1e-12)


def test_batches_shapes_and_one_pass_over_the_data():
    images, labels = _data()
    loader = Loader(images, labels, batch_size=5)
    batches = list(loader)
    assert len(loader) == len(batches) == 5
    assert [len(y) for _, y in batches] == [5, 5, 5, 5, 3]
    x, y = batches[0]
    assert x.shape == (5, 3, 6, 5) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.flags["C_CONTIGUOUS"]
    seen = np.concatenate([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(23)) and seen.tolist() != list(range(23))
    assert len(Loader(images, labels, 5, drop_last=True)) == 4
    assert sum(len(y) for _, y in Loader(images, labels, 5, drop_last=True)) == 20


def test_normalisation_formula_and_layout():
    images, labels = _data()
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.3, 0.4]
    loader = Loader(images, labels, 4, shuffle=False, mean=mean, std=std, dtype=np.float64)
    x, y = next(iter(loader))
    expected = (images[:4].astype(np.float64) / 255 - np.array(mean)) / np.array(std)
    np.testing.assert_allclose(x, expected.transpose(0, 3, 1, 2), rtol=1e-12)
    np.testing.assert_array_equal(y, labels[:4])


def test_default_statistics_standardise_the_data():
    images, labels = _data(200, 4, 4, 3, seed=3)
    loader = Loader(images, labels, 64)
    np.testing.assert_allclose(loader.mean, channel_stats(images)[0])
    x = np.concatenate([x for x, _ in loader]).astype(np.float64)
    np.testing.assert_allclose(x.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=(0, 2, 3)), 1, atol=1e-5)


def test_unshuffled_order_and_grayscale():
    images, labels = _data(9, 4, 4, 1)
    batches = list(Loader(images, labels, 4, shuffle=False))
    assert batches[0][0].shape == (4, 1, 4, 4)
    assert np.concatenate([y for _, y in batches]).tolist() == list(range(9))


@pytest.mark.parametrize("augment", [False, True])
def test_deterministic_for_a_seed_and_replayable_per_epoch(augment):
    images, labels = _data()
    first = Loader(images, labels, 6, augment=augment, seed=7)
    run = [_epoch(first, e) for e in range(3)]
    resumed = Loader(images, labels, 6, augment=augment, seed=7)
    for e in (2, 0, 1):  # any order: an epoch depends on (seed, epoch) only
        for (x, y), (x0, y0) in zip(_epoch(resumed, e), run[e]):
            np.testing.assert_array_equal(x, x0)
            np.testing.assert_array_equal(y, y0)
    order = lambda batches: np.concatenate([y for _, y in batches]).tolist()
    assert order(run[0]) != order(run[1])
    other_seed = Loader(images, labels, 6, augment=augment, seed=8)
    assert order(_epoch(other_seed, 0)) != order(run[0])


def _reference_crop_flip(image, offset, flip, padding):
    """One image at a time with np.pad, the obvious way."""
    h, w, _ = image.shape
    padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
    crop = padded[offset[0]:offset[0] + h, offset[1]:offset[1] + w]
    return crop[:, ::-1] if flip else crop


@given(st.integers(0, 2**31), st.integers(0, 5), st.sampled_from([1, 3]))
def test_random_crop_flip_matches_per_image_reference(seed, padding, channels):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(7, 5, 6, channels), dtype=np.uint8)
    offsets = rng.integers(0, 2 * padding + 1, size=(7, 2))
    flips = rng.random(7) < 0.5
    out = random_crop_flip(images, offsets, flips, padding)
    assert out.shape == images.shape and out.dtype == np.uint8
    for i in range(7):
        np.testing.assert_array_equal(out[i], _reference_crop_flip(images[i], offsets[i], flips[i], padding))


def test_random_crop_flip_special_cases():
    images, _ = _data(2, 6, 6, 3)
    centre = np.full((2, 2), 4)
    np.testing.assert_array_equal(random_crop_flip(images, centre, np.array([False, False]), 4), images)
    np.testing.assert_array_equal(random_crop_flip(images, centre, np.array([True, True]), 4), images[:, :, ::-1])
    corner = random_crop_flip(images, np.zeros((2, 2), int), np.array([False, False]), 4)
    assert not corner[:, :4].any() and not corner[:, :, :4].any()
    np.testing.assert_array_equal(corner[:, 4:, 4:], images[:, :2, :2])


def test_augmented_batches_are_crops_of_their_own_images():
    images, labels = _data(40, 5, 5, 3, seed=2)
    loader = Loader(images, labels, 16, augment=True, mean=[0, 0, 0], std=[1 / 255] * 3, dtype=np.float64,
                    crop_padding=2, seed=4)
    offsets, flips = loader.augmentation(0)
    order = loader.order(0)
    for b, (x, y) in enumerate(loader):
        pixels = np.rint(x.transpose(0, 2, 3, 1)).astype(np.uint8)  # undo the (identity-like) scaling
        for j, index in enumerate(y):
            position = b * 16 + j
            assert index == order[position]
            expected = _reference_crop_flip(images[index], offsets[position], flips[position], 2)
            np.testing.assert_array_equal(pixels[j], expected)
    # over many samples every offset and both flip states occur
    big = Loader(*_data(2000, 2, 2, 1), 100, augment=True)
    offsets, flips = big.augmentation(0)
    assert set(offsets.ravel().tolist()) == set(range(9)) and 0 < flips.sum() < 2000


@pytest.mark.parametrize("kwargs, needle", [
    (dict(batch_size=0), "batch_size"),
    (dict(batch_size=2.5), "batch_size"),
    (dict(batch_size=4, mean=[0.5, 0.5]), "one value per channel"),
    (dict(batch_size=4, std=[1.0, 0.0, 1.0]), "positive"),
    (dict(batch_size=4, crop_padding=-1), "crop_padding"),
    (dict(batch_size=4, device="tpu"), "unknown device"),
])
def test_bad_arguments(kwargs, needle):
    images, labels = _data()
    with pytest.raises(ValueError, match=needle):
        Loader(images, labels, **kwargs)


def test_bad_arrays():
    images, labels = _data()
    with pytest.raises(ValueError, match="uint8"):
        Loader(images.astype(np.float32), labels, 4)
    with pytest.raises(ValueError, match="one entry per image"):
        Loader(images, labels[:-1], 4)
    with pytest.raises(ValueError, match="epoch"):
        Loader(images, labels, 4).set_epoch(-1)


@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gpu_batches_equal_cpu_batches():
    images, labels = _data()
    cpu = _epoch(Loader(images, labels, 8, augment=True, seed=1), 3)
    gpu = _epoch(Loader(images, labels, 8, augment=True, seed=1, device="gpu"), 3)
    for (x, y), (xg, yg) in zip(cpu, gpu):
        assert backend.device_of(xg) == "gpu" and backend.device_of(yg) == "gpu"
        np.testing.assert_allclose(backend.to_host(xg), x, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(backend.to_host(yg), y)
