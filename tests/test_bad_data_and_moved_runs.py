"""Issue 12's smaller cases: train and evolve check a dataset the same way (gee_ref.runs.data) and
say what is wrong with it in one line naming the file, before they create their output folder;
a run folder moved or copied elsewhere resumes; a resumed train cannot run fewer epochs than done."""
import shutil

import h5py
import numpy as np
import pytest

from gee_ref import evolve, train
from gee_ref.cli.errors import run_main
from gee_ref.data import datasets

TINY_EVOLVE = ["--genes", "4", "--popsize", "4", "--eval-steps", "2", "--batch-size", "16", "--val-fraction", "0.2",
               "--generations", "1", "--final-epochs", "1", "--final-steps-per-epoch", "1", "--no-progress"]
TINY_TRAIN = ["--epochs", "1", "--steps-per-epoch", "1", "--genes", "4", "--time-steps", "2", "--batch-size", "8",
              "--no-progress"]


def exit_code(main, argv):
    with pytest.raises(SystemExit) as stopped:
        run_main(main, argv)
    return stopped.value.code


def digits(n_train=40, n_test=20):
    splits, classes = datasets.digits_splits()
    (x, y), (xt, yt) = splits["train"], splits["test"]
    return (x[:n_train], y[:n_train]), (xt[:n_test], yt[:n_test]), classes


def three_d_images(path):
    (x, y), (xt, yt), classes = digits()
    with h5py.File(path, "w") as f:
        f.attrs["format"] = datasets.FORMAT
        f.attrs["classes"] = '["' + '", "'.join(classes) + '"]'
        for name, (images, labels) in (("train", (x[..., 0], y)), ("test", (xt[..., 0], yt))):
            f.create_dataset(f"{name}/images", data=images)
            f.create_dataset(f"{name}/labels", data=labels)
    return path


def non_square(path):
    (x, y), (xt, yt), classes = digits()
    return datasets.write_dataset(path, {"train": (x[:, :, :6], y), "test": (xt[:, :, :6], yt)}, classes, "cut")


def constant_pixels(path):
    (x, y), (xt, yt), classes = digits()
    return datasets.write_dataset(path, {"train": (np.full_like(x, 7), y), "test": (xt, yt)}, classes, "flat")


def one_image(path):
    (x, y), (xt, yt), classes = digits(n_train=1)
    return datasets.write_dataset(path, {"train": (x, y), "test": (xt, yt)}, classes, "one")


@pytest.mark.parametrize("make, message", [(three_d_images, "images must be 4-D"),
                                           (non_square, "square images"),
                                           (constant_pixels, "constant"),
                                           (one_image, "no validation or no training image")])
def test_train_and_evolve_refuse_the_same_bad_data_in_one_line(tmp_path, capsys, make, message):
    data = make(tmp_path / "data.h5")
    commands = [(evolve.main, TINY_EVOLVE)] + ([] if make is one_image else [(train.main, TINY_TRAIN)])
    for main, tiny in commands:
        out = tmp_path / f"out-{main.__module__}"
        assert exit_code(main, ["--data", str(data), "--out", str(out), *tiny]) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and message in line and str(data) in line, line
        assert not out.exists()  # nothing created: a rerun with the data fixed needs no --resume


def test_a_copied_evolve_folder_resumes_where_it_was(tmp_path, capsys):
    first = tmp_path / "first"
    assert exit_code(evolve.main, TINY_EVOLVE + ["--out", str(first)]) == 0
    moved = tmp_path / "elsewhere" / "run"
    shutil.copytree(first, moved)
    shutil.rmtree(first)
    (moved / "summary.json").unlink()  # as if stopped during the final training
    (moved / "final" / "report.json").unlink()
    assert exit_code(evolve.main, TINY_EVOLVE + ["--out", str(moved), "--resume"]) == 0
    assert (moved / "summary.json").exists() and (moved / "final" / "report.json").exists()
    capsys.readouterr()


def test_a_resumed_train_cannot_run_fewer_epochs_than_it_has(tmp_path, capsys):
    (x, y), (xt, yt), classes = digits()
    data = datasets.write_dataset(tmp_path / "d.h5", {"train": (x, y), "test": (xt, yt)}, classes, "d")
    out = tmp_path / "run"
    assert exit_code(train.main, ["--data", str(data), "--out", str(out), *TINY_TRAIN, "--epochs", "2"]) == 0
    assert exit_code(train.main, ["--data", str(data), "--out", str(out), *TINY_TRAIN, "--epochs", "1",
                                  "--resume"]) == 2
    assert "already run 2 epochs" in capsys.readouterr().err
