"""data_tools converters: tiny files in each real format, round trips, one-line refusals."""
import io
import os
import pickle
import struct
import sys
import tarfile

import numpy as np
import pytest

from data_tools import cifar, digits, folder_tree
from gee_ref.data import datasets
from gee_ref.cli.errors import run_main
from gee_ref.data.datasets import load_dataset

try:
    from PIL import Image
except ImportError:  # Pillow is an optional extra: only the folder-tree tests need it
    Image = None
needs_pillow = pytest.mark.skipif(Image is None, reason="needs Pillow")


# ---------------------------------------------------------------------------- CIFAR pickles

class _Python2Pickler(pickle._Pickler):
    """Writes bytes and str the way Python 2's cPickle wrote its str (SHORT_BINSTRING / BINSTRING),
    as in the real CIFAR files, instead of Python 3's ``_codecs.encode`` calls."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_python2_str(self, value):
        data = value.encode("latin-1") if isinstance(value, str) else value
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(value)

    dispatch[bytes] = _save_python2_str
    dispatch[str] = _save_python2_str


def _python2_pickle(obj, numpy_module="numpy.core.multiarray"):
    """A protocol-2 pickle like the real files; numpy 1.x named ``numpy.core.multiarray``."""
    buffer = io.BytesIO()
    _Python2Pickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue()
    return data.replace(b"cnumpy._core.multiarray\n", f"c{numpy_module}\n".encode())


def _batch(n, seed, label_keys=("labels",), n_classes=10):
    rng = np.random.default_rng(seed)
    record = {b"batch_label": b"training batch", b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
              b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)]}
    labels = rng.integers(0, n_classes, size=n).tolist()
    for key in label_keys:
        record[key.encode()] = labels
    return record


def _tarball(path, members, folder):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


CIFAR10_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _cifar10_members(**overrides):
    members = {f"data_batch_{i}": _python2_pickle(_batch(3, i)) for i in range(1, 6)}
    members["test_batch"] = _python2_pickle(_batch(4, 9))
    members["batches.meta"] = _python2_pickle({b"label_names": CIFAR10_NAMES, b"num_vis": 3072})
    members["readme.html"] = b"<html></html>"
    members.update(overrides)
    return members


def _run(module, argv, capsys):
    """Run a converter's command line as ``python -m`` does; returns (status, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_:
        run_main(module.main, [str(a) for a in argv])
    code = exit_.value.code
    out, err = capsys.readouterr()
    return code, out, err


def _refused(module, argv, capsys):
    """The command fails with exit status 2 and exactly one line on stderr."""
    code, _, err = _run(module, argv, capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_python2_style_pickle_names_only_numpy_globals():
    import pickletools

    data = _python2_pickle(_batch(2, 0))
    globals_named = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
    assert globals_named == {"numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"}
    record = cifar.restricted_loads(data, "x")
    assert record[b"data"].dtype == np.uint8 and record[b"batch_label"] == b"training batch"


def test_cifar10_round_trip(tmp_path, capsys):
    src = _tarball(tmp_path / "cifar-10-python.tar.gz", _cifar10_members(), "cifar-10-batches-py")
    code, out, _ = _run(cifar, [src, tmp_path / "c10.h5"], capsys)
    assert code == 0 and "train 15, test 4" in out
    images, labels, classes = load_dataset(tmp_path / "c10.h5", "train")
    assert classes == tuple(n.decode() for n in CIFAR10_NAMES)
    batches = [_batch(3, i) for i in range(1, 6)]
    data = np.concatenate([b[b"data"] for b in batches])
    np.testing.assert_array_equal(labels, np.concatenate([b[b"labels"] for b in batches]))
    assert images.shape == (15, 32, 32, 3)
    # pixel (y, x) of channel c is entry c*1024 + y*32 + x of the image's row
    for n, y, x, c in [(0, 0, 0, 0), (3, 5, 7, 1), (14, 31, 30, 2), (7, 31, 0, 2)]:
        assert images[n, y, x, c] == data[n, c * 1024 + y * 32 + x]
    test_images, test_labels, _ = load_dataset(tmp_path / "c10.h5", "test")
    np.testing.assert_array_equal(test_images.transpose(0, 3, 1, 2).reshape(4, 3072), _batch(4, 9)[b"data"])
    assert "CIFAR-10" in datasets.dataset_info(tmp_path / "c10.h5").source


def test_cifar10_written_by_numpy2_and_custom_source(tmp_path, capsys):
    members = {k: (_python2_pickle(cifar.restricted_loads(v, k), "numpy._core.multiarray")
                   if k != "readme.html" else v) for k, v in _cifar10_members().items()}
    src = _tarball(tmp_path / "c.tar.gz", members, "cifar-10-batches-py")
    code, _, _ = _run(cifar, [src, tmp_path / "c.h5", "--source", "my CIFAR"], capsys)
    assert code == 0 and datasets.dataset_info(tmp_path / "c.h5").source == "my CIFAR"


@pytest.mark.parametrize("kind", ["fine", "coarse"])
def test_cifar100_round_trip(tmp_path, capsys, kind):
    keys = ("fine_labels", "coarse_labels")
    train, test = _batch(6, 1, keys, n_classes=20), _batch(5, 2, keys, n_classes=20)
    train[b"coarse_labels"] = [v // 4 for v in train[b"coarse_labels"]]
    test[b"coarse_labels"] = [v // 4 for v in test[b"coarse_labels"]]
    meta = {b"fine_label_names": [f"fine{i:02d}".encode() for i in range(20)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(5)]}
    members = {"train": _python2_pickle(train), "test": _python2_pickle(test), "meta": _python2_pickle(meta)}
    src = _tarball(tmp_path / "cifar-100-python.tar.gz", members, "cifar-100-python")
    code, _, _ = _run(cifar, [src, tmp_path / "c100.h5", "--labels", kind], capsys)
    assert code == 0
    images, labels, classes = load_dataset(tmp_path / "c100.h5", "test")
    np.testing.assert_array_equal(labels, test[f"{kind}_labels".encode()])
    assert len(classes) == (20 if kind == "fine" else 5) and classes[0] == f"{kind}{'00' if kind == 'fine' else '0'}"
    assert images.shape == (5, 32, 32, 3)


class _SystemCall:
    """Unpickling this would run a shell command."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class _Eval:
    def __reduce__(self):
        return eval, ("__import__('os').getcwd()",)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_malicious_pickle_is_refused_and_nothing_runs(tmp_path, capsys, protocol):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _SystemCall(f"touch {marker}"), "labels": [0]}, protocol=protocol)
    with pytest.raises(cifar.ConversionError, match="refused to unpickle global"):
        cifar.restricted_loads(payload, "data_batch_1")
    src = _tarball(tmp_path / "evil.tar.gz", _cifar10_members(data_batch_1=payload), "cifar-10-batches-py")
    err = _refused(cifar, [src, tmp_path / "out.h5"], capsys)
    assert "refused to unpickle global" in err and "system" in err
    assert not marker.exists() and not (tmp_path / "out.h5").exists()
    with pytest.raises(cifar.ConversionError, match=r"builtin__\.eval|builtins\.eval"):
        cifar.restricted_loads(pickle.dumps(_Eval(), protocol=protocol), "meta")


def test_cifar_bad_inputs(tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert "not found" in _refused(cifar, [tmp_path / "missing.tar.gz", out], capsys)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    assert "not a readable tar archive" in _refused(cifar, [junk, out], capsys)
    other = _tarball(tmp_path / "other.tar.gz", {"hello.txt": b"hi"}, "x")
    assert "neither a CIFAR-10 nor a CIFAR-100" in _refused(cifar, [other, out], capsys)
    members = _cifar10_members()
    del members["data_batch_3"]
    lacking = _tarball(tmp_path / "lacking.tar.gz", members, "d")
    assert "data_batch_3" in _refused(cifar, [lacking, out], capsys)
    narrow = _batch(3, 1)
    narrow[b"data"] = narrow[b"data"][:, :3000]
    bad_shape = _tarball(tmp_path / "s.tar.gz", _cifar10_members(data_batch_1=_python2_pickle(narrow)), "d")
    assert "[N, 3072]" in _refused(cifar, [bad_shape, out], capsys)
    high = _batch(3, 1)
    high[b"labels"] = [0, 10, 1]
    out_of_range = _tarball(tmp_path / "r.tar.gz", _cifar10_members(data_batch_1=_python2_pickle(high)), "d")
    assert "[0, 10)" in _refused(cifar, [out_of_range, out], capsys)
    truncated = _tarball(tmp_path / "t.tar.gz", _cifar10_members(test_batch=_python2_pickle(_batch(4, 9))[:-200]), "d")
    assert "test_batch" in _refused(cifar, [truncated, out], capsys)
    assert not out.exists()
    assert "unrecognized arguments" in _refused(cifar, [junk, out, "--bogus"], capsys)


# ---------------------------------------------------------------------------- folder trees

def _png_tree(root, classes=("cat", "ant", "bee"), per_class=5, size=(6, 4), mode="RGB", seed=0,
              splits=("train", "test")):
    """``root/<split>/<class>/<i>.png`` with random pixels; returns {split: [(class, file, pixels)]}."""
    rng = np.random.default_rng(seed)
    made = {}
    for split in splits:
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                shape = (size[1], size[0]) + ((3,) if mode == "RGB" else ())
                pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
                Image.fromarray(pixels, mode).save(folder / f"{i:03d}.png")
                made.setdefault(split, []).append((label, f"{i:03d}.png", pixels))
    return made


def _tar_of(directory, path, wrapper=None):
    with tarfile.open(path, "w:gz") as archive:
        for split in sorted(os.listdir(directory)):
            archive.add(directory / split, arcname=f"{wrapper}/{split}" if wrapper else split)
    return path


def _expected(made, split):
    ordered = sorted(made[split], key=lambda e: (e[0], e[1]))
    classes = sorted({e[0] for e in ordered})
    images = np.stack([p if p.ndim == 3 else p[..., None] for _, _, p in ordered])
    return images, np.array([classes.index(e[0]) for e in ordered]), tuple(classes)


@needs_pillow
@pytest.mark.parametrize("as_tar, wrapper", [(False, None), (True, None), (True, "wrapped")])
def test_folder_tree_round_trip(tmp_path, capsys, as_tar, wrapper):
    made = _png_tree(tmp_path / "tree")
    src = _tar_of(tmp_path / "tree", tmp_path / "tree.tar.gz", wrapper) if as_tar else tmp_path / "tree"
    code, out, _ = _run(folder_tree, [src, tmp_path / "t.h5", "--source", "tiny tree"], capsys)
    assert code == 0 and "train 15, test 15" in out
    for split in ("train", "test"):
        images, labels, classes = load_dataset(tmp_path / "t.h5", split)
        expected_images, expected_labels, expected_classes = _expected(made, split)
        assert classes == expected_classes == ("ant", "bee", "cat")
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)
    assert datasets.dataset_info(tmp_path / "t.h5").source == "tiny tree"


@needs_pillow
def test_folder_tree_grayscale_resize_and_val_split(tmp_path, capsys):
    made = _png_tree(tmp_path / "gray", mode="L", splits=("train", "val"), size=(8, 12))
    (tmp_path / "gray" / "notes.txt").write_text("ignored")
    code, _, err = _run(folder_tree, [tmp_path / "gray", tmp_path / "g.h5", "--test-split", "val", "--size", "4"],
                        capsys)
    assert code == 0, err
    images, labels, classes = load_dataset(tmp_path / "g.h5", "test")
    assert images.shape == (15, 4, 4, 1) and classes == ("ant", "bee", "cat")
    np.testing.assert_array_equal(labels, _expected(made, "val")[1])


@needs_pillow
def test_folder_tree_mixed_gray_and_colour_becomes_rgb(tmp_path, capsys):
    _png_tree(tmp_path / "mix")
    gray = np.arange(24, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(gray, "L").save(tmp_path / "mix" / "train" / "ant" / "zzz.png")
    assert _run(folder_tree, [tmp_path / "mix", tmp_path / "m.h5"], capsys)[0] == 0
    images, labels, _ = load_dataset(tmp_path / "m.h5", "train")
    assert images.shape == (16, 4, 6, 3)
    np.testing.assert_array_equal(images[5], np.repeat(gray[..., None], 3, axis=2))  # ant's 6th file


@needs_pillow
def test_folder_tree_resize_keeps_centre(tmp_path):
    root = tmp_path / "r"
    for split in ("train", "test"):
        (root / split / "a").mkdir(parents=True)
        wide = np.zeros((10, 30, 3), np.uint8)
        wide[:, 10:20] = 200  # the centre third is bright
        Image.fromarray(wide).save(root / split / "a" / "0.png")
    splits, classes = folder_tree.read_folder_tree(str(root), size=5)
    assert splits["train"][0].shape == (1, 5, 5, 3)
    assert splits["train"][0][0, :, 1:4].min() >= 190


@needs_pillow
def test_folder_tree_bad_inputs(tmp_path, capsys):
    out = tmp_path / "out.h5"
    assert "not found" in _refused(folder_tree, [tmp_path / "nope", out], capsys)
    _png_tree(tmp_path / "sizes", per_class=2)
    Image.fromarray(np.zeros((9, 9, 3), np.uint8)).save(tmp_path / "sizes" / "test" / "ant" / "big.png")
    assert "different sizes" in _refused(folder_tree, [tmp_path / "sizes", out], capsys)
    _png_tree(tmp_path / "classes", per_class=2)
    (tmp_path / "classes" / "test" / "dog").mkdir()
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "classes" / "test" / "dog" / "0.png")
    err = _refused(folder_tree, [tmp_path / "classes", out], capsys)
    assert "different classes" in err and "only in test: dog" in err
    _png_tree(tmp_path / "broken", per_class=2)
    (tmp_path / "broken" / "train" / "bee" / "bad.png").write_bytes(b"not a png")
    assert "train/bee/bad.png: cannot decode image" in _refused(folder_tree, [tmp_path / "broken", out], capsys)
    _png_tree(tmp_path / "notest", per_class=2, splits=("train",))
    assert "no images under test/" in _refused(folder_tree, [tmp_path / "notest", out], capsys)
    _png_tree(tmp_path / "flat", per_class=1)
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(tmp_path / "flat" / "train" / "loose.png")
    assert "<split>/<class>/<image>" in _refused(folder_tree, [tmp_path / "flat", out], capsys)
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"garbage")
    assert "not a readable tar archive" in _refused(folder_tree, [junk, out], capsys)
    assert "invalid int value" in _refused(folder_tree, [junk, out, "--size", "big"], capsys)
    assert not out.exists()


def test_folder_tree_without_pillow(tmp_path, monkeypatch, capsys):
    for split in ("train", "test"):
        (tmp_path / "tree" / split / "a").mkdir(parents=True)
        (tmp_path / "tree" / split / "a" / "0.png").write_bytes(b"never decoded")
    monkeypatch.setitem(sys.modules, "PIL", None)
    err = _refused(folder_tree, [tmp_path / "tree", tmp_path / "o.h5"], capsys)
    assert "needs Pillow" in err


# ---------------------------------------------------------------------------- digits

def test_digits_cli_writes_the_embedded_default(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GEE_REF_CACHE", str(tmp_path / "cache"))
    code, out, _ = _run(digits, [tmp_path / "d.h5"], capsys)
    assert code == 0 and "train 1438, test 359" in out
    for split in ("train", "test"):
        ours, cached = load_dataset(tmp_path / "d.h5", split), load_dataset(datasets.default_digits_path(), split)
        np.testing.assert_array_equal(ours[0], cached[0])
        np.testing.assert_array_equal(ours[1], cached[1])
    assert "unrecognized arguments" in _refused(digits, [tmp_path / "a.h5", tmp_path / "b.h5"], capsys)


@needs_pillow
def test_folder_tree_jpeg_with_reduced_scale_decoding(tmp_path):
    yy, xx = np.mgrid[0:96, 0:128]
    smooth = np.stack([xx * 2, yy * 2, (xx + yy)], axis=-1).astype(np.uint8)  # gentle gradients
    for split in ("train", "test"):
        (tmp_path / "j" / split / "a").mkdir(parents=True)
        Image.fromarray(smooth).save(tmp_path / "j" / split / "a" / "0.JPG", quality=95)
        Image.fromarray(smooth[..., 0]).convert("L").save(tmp_path / "j" / split / "a" / "1.jpeg", quality=95)
    splits, _ = folder_tree.read_folder_tree(str(tmp_path / "j"), size=8)
    images = splits["train"][0]
    assert images.shape == (2, 8, 8, 3)  # one grayscale image among colour ones: all RGB
    reference = np.asarray(Image.fromarray(smooth).resize((11, 8), Image.Resampling.BILINEAR).crop((1, 0, 9, 8)))
    assert np.abs(images[0].astype(int) - reference).max() <= 4  # draft (1/4-scale decode) changes little
    assert np.array_equal(images[1][..., 0], images[1][..., 2])  # the grayscale one, repeated to 3 channels


# ---------------------------------------------------------------------------- truncated archives

def _archive_bytes(members, compression):
    """A tar ("tar") or gzip-compressed tar ("tar.gz") of ``{name: bytes}``, in memory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w" if compression == "tar" else "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _tar_cut_points(data):
    """Cuts of an uncompressed tar: at and inside every member's header and data, at the end
    of the last member's data (where the end-of-archive blocks begin) and between the two
    end blocks; each leaves the archive incomplete."""
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
    cuts = set()
    for member in members:
        padded_end = member.offset_data + -(-member.size // 512) * 512
        cuts.update({member.offset, member.offset + 100, member.offset_data, member.offset_data + member.size // 2,
                     padded_end - 1})
    end_of_data = members[-1].offset_data + -(-members[-1].size // 512) * 512
    cuts.update({end_of_data, end_of_data + 1, end_of_data + 512, end_of_data + 1023})
    return end_of_data, sorted(c for c in cuts if 0 < c < len(data))


def _gzip_cut_points(data):
    """Cuts of a .tar.gz spread over the stream, and inside its 8-byte CRC and length trailer."""
    spread = np.linspace(10, len(data) - 9, 12).astype(int).tolist()
    return sorted(set(spread + [len(data) - 8, len(data) - 5, len(data) - 1]))


def _png_members(per_class=3):
    rng = np.random.default_rng(5)
    members = {}
    for split in ("train", "test"):
        for label in ("ant", "bee"):
            for i in range(per_class):
                stream = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(stream, "PNG")
                members[f"{split}/{label}/{i}.png"] = stream.getvalue()
    return members


def _assert_truncations_refused(module, data, cuts, tmp_path, capsys, name):
    out = tmp_path / "out.h5"
    for cut in cuts:
        src = tmp_path / name
        src.write_bytes(data[:cut])
        err = _refused(module, [src, out], capsys)
        assert "truncated" in err or "corrupt" in err, (cut, err)
        assert not out.exists()


@needs_pillow
@pytest.mark.parametrize("compression", ["tar", "tar.gz"])
def test_folder_tree_refuses_an_archive_cut_short(tmp_path, capsys, compression):
    data = _archive_bytes(_png_members(), compression)
    whole = tmp_path / f"whole.{compression}"
    whole.write_bytes(data)
    assert _run(folder_tree, [whole, tmp_path / "whole.h5"], capsys)[0] == 0
    if compression == "tar":
        end_of_data, cuts = _tar_cut_points(data)
        # past both end-of-archive blocks only padding is cut: the archive is complete
        kept = tmp_path / "padded.tar"
        kept.write_bytes(data[:end_of_data + 1024])
        code, out, _ = _run(folder_tree, [kept, tmp_path / "padded.h5"], capsys)
        assert code == 0 and "train 6, test 6" in out
    else:
        cuts = _gzip_cut_points(data)
    _assert_truncations_refused(folder_tree, data, cuts, tmp_path, capsys, f"cut.{compression}")


@pytest.mark.parametrize("compression", ["tar", "tar.gz"])
def test_cifar_refuses_an_archive_cut_short(tmp_path, capsys, compression):
    members = {f"cifar-10-batches-py/{name}": data for name, data in _cifar10_members().items()}
    data = _archive_bytes(members, compression)
    whole = tmp_path / f"whole.{compression}"
    whole.write_bytes(data)
    assert _run(cifar, [whole, tmp_path / "whole.h5"], capsys)[0] == 0
    cuts = _tar_cut_points(data)[1] if compression == "tar" else _gzip_cut_points(data)
    _assert_truncations_refused(cifar, data, cuts, tmp_path, capsys, f"cut.{compression}")


def test_a_gzip_crc_mismatch_is_refused(tmp_path, capsys):
    data = bytearray(_archive_bytes({f"d/{k}": v for k, v in _cifar10_members().items()}, "tar.gz"))
    data[-8] ^= 0x01  # the CRC-32 of the uncompressed data, first byte
    src = tmp_path / "bad-crc.tar.gz"
    src.write_bytes(bytes(data))
    err = _refused(cifar, [src, tmp_path / "out.h5"], capsys)
    assert "corrupt" in err and "CRC" in err


# ---------------------------------------------------------------------------- OUT: never the source, never by surprise

def _converter_cases(tmp_path):
    """(module, source path or None, extra arguments) for every converter, with a real source."""
    cases = [(cifar, _tarball(tmp_path / "c10.tar.gz", _cifar10_members(), "cifar-10-batches-py"), []),
             (digits, None, [])]
    if Image is not None:
        _png_tree(tmp_path / "tree", per_class=2)
        cases.append((folder_tree, _tar_of(tmp_path / "tree", tmp_path / "tree.tar.gz"), []))
    return cases


def test_out_naming_the_source_is_refused_even_with_force(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GEE_REF_CACHE", str(tmp_path / "cache"))
    for module, src, extra in _converter_cases(tmp_path):
        if src is None:
            continue
        before = src.read_bytes()
        link = tmp_path / f"link-to-{src.name}"
        link.symlink_to(src)
        hard = tmp_path / f"hard-{src.name}"
        os.link(src, hard)
        relative = os.path.relpath(src)
        for out in (src, link, hard, relative):
            for force in ([], ["--force"]):
                err = _refused(module, [src, out, *extra, *force], capsys)
                assert "is the input" in err and "the same file" in err
        assert src.read_bytes() == before and link.is_symlink()


def test_an_existing_out_needs_force(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GEE_REF_CACHE", str(tmp_path / "cache"))
    for module, src, extra in _converter_cases(tmp_path):
        out = tmp_path / f"{module.__name__}.h5"
        out.write_bytes(b"somebody else's file")
        sources = [src] if src is not None else []
        err = _refused(module, [*sources, out, *extra], capsys)
        assert "already exists; pass --force" in err and out.read_bytes() == b"somebody else's file"
        code, _, err = _run(module, [*sources, out, *extra, "--force"], capsys)
        assert code == 0, err
        assert datasets.dataset_info(out).classes


def test_write_without_replace_never_replaces(tmp_path):
    from gee_ref.storage import atomic

    target = tmp_path / "f.txt"
    atomic.write_text(target, "first", replace=False)
    with pytest.raises(FileExistsError, match="already exists; not replaced"):
        atomic.write_text(target, "second", what="report", replace=False)
    assert target.read_text() == "first" and os.listdir(tmp_path) == ["f.txt"]
    atomic.write_text(target, "third")
    assert target.read_text() == "third"


# ---------------------------------------------------------------------------- CIFAR re-pickled by Python 3

@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_re_pickled_by_python3_is_accepted(tmp_path, capsys, protocol):
    """A faithful re-pickling of the batches by Python 3: at protocols 0-2 each bytes object
    goes through the global ``_codecs.encode`` (protocol 5 arrays through numpy's _frombuffer)."""
    import pickletools

    original = _cifar10_members()
    members = {name: (pickle.dumps(cifar.restricted_loads(data, name), protocol=protocol)
                      if name != "readme.html" else data) for name, data in original.items()}
    named = {arg for op, arg, _ in pickletools.genops(members["data_batch_1"]) if op.name == "GLOBAL"}
    assert ("_codecs encode" in named) == (protocol <= 2)
    python2 = _tarball(tmp_path / "p2.tar.gz", original, "cifar-10-batches-py")
    python3 = _tarball(tmp_path / "p3.tar.gz", members, "cifar-10-batches-py")
    assert _run(cifar, [python2, tmp_path / "p2.h5"], capsys)[0] == 0
    code, _, err = _run(cifar, [python3, tmp_path / "p3.h5"], capsys)
    assert code == 0, err
    for split in ("train", "test"):
        for ours, theirs in zip(load_dataset(tmp_path / "p2.h5", split), load_dataset(tmp_path / "p3.h5", split)):
            np.testing.assert_array_equal(ours, theirs)


class _Reduce:
    """Unpickles as ``function(*arguments)``."""

    def __init__(self, function, arguments):
        self.function, self.arguments = function, arguments

    def __reduce__(self):
        return self.function, self.arguments


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_the_python3_stand_ins_accept_only_their_own_use(protocol):
    import _codecs

    for function, arguments, refusal in [
            (_codecs.encode, ("x", "rot13"), "refused _codecs.encode"),
            (_codecs.encode, (b"x", "latin1"), "refused _codecs.encode"),
            (bytes, (10 ** 12,), "refused bytes"),
            (_codecs.decode, ("x", "latin1"), "refused to unpickle global _codecs.decode"),
            (bytearray, (3,), "refused to unpickle global")]:
        with pytest.raises(cifar.ConversionError, match=refusal):
            cifar.restricted_loads(pickle.dumps(_Reduce(function, arguments), protocol=protocol), "meta")
