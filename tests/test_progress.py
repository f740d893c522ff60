"""Progress where there is no terminal (nohup, CI logs, a pipe): plain lines on stderr with the
step, the loss, images/s and the time left; and the line that names the default architecture."""
import io
import re

import pytest

from gee_ref import train
from gee_ref.training import progress
from gee_ref.training.progress import Progress, default_mode, duration
from digits_files import write_digits_file


@pytest.fixture(scope="module")
def tiny_digits(tmp_path_factory):
    return write_digits_file(tmp_path_factory.mktemp("data"), 64, 32)


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (0, 42.4, 185, 7620, -3)] == ["0 s", "42 s", "3 min 5 s", "2 h 07 min", "0 s"]


def test_modes_follow_the_flags_and_the_terminal(monkeypatch):
    assert default_mode(True) == "bar" and default_mode(False) == "off" and default_mode("lines") == "lines"
    monkeypatch.setattr("sys.stderr", io.StringIO())  # not a terminal
    assert default_mode(None) == "lines"
    with pytest.raises(ValueError, match="progress mode"):
        default_mode("loud")


def test_lines_mode_prints_step_values_rate_and_time_left():
    stream = io.StringIO()
    with Progress(4, "epoch 1/2", "step", "lines", every_seconds=0, stream=stream) as shown:
        for _ in range(2):
            shown.update(images=32, loss=0.5)
        shown.write("epoch 1/2 done")
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("epoch 1/2: step 1/4, loss 0.5000, ") and lines[1].startswith("epoch 1/2: step 2/4")
    assert re.search(r"[0-9.]+ images/s, \d+ s left$", lines[1]), lines[1]
    assert lines[2] == "epoch 1/2 done"


def test_lines_wait_for_their_interval_and_off_prints_nothing():
    stream = io.StringIO()
    with Progress(3, "x", "step", "lines", every_seconds=3600, stream=stream) as shown:
        shown.update(images=1, loss=1.0)
    assert stream.getvalue() == ""
    with Progress(3, "x", "step", "off", every_seconds=0, stream=stream) as shown:
        shown.update(images=1, loss=1.0)
        shown.write("kept only where progress is shown")
    assert stream.getvalue() == ""


def test_train_without_a_terminal_prints_plain_lines_on_stderr(tiny_digits, tmp_path, capsys, monkeypatch):
    """No --progress flag and stderr not a terminal: a line within the epoch (the interval set to 0
    here, two minutes by default) and one when each epoch ends; and which architecture it chose."""
    monkeypatch.setattr(progress, "LINE_EVERY_SECONDS", 0.0)
    argv = ["--data", str(tiny_digits), "--out", str(tmp_path / "run"), "--epochs", "2", "--batch-size", "16",
            "--steps-per-epoch", "2", "--genes", "4", "--time-steps", "2"]
    assert train.main(argv) == 0
    captured = capsys.readouterr()
    within = [line for line in captured.err.splitlines() if line.startswith("epoch 2/2: step ")]
    assert within and re.search(r"step \d/2, loss [0-9.]+, [0-9.]+ images/s, \d+ s left$", within[-1]), within
    ends = [line for line in captured.err.splitlines() if re.match(r"epoch \d/2: train loss", line)]
    assert len(ends) == 2 and ends[-1].endswith("0 s left") and "images/s" in ends[-1]
    assert "architecture: digits (the default, whatever the data; --arch chooses another)" in captured.out
    assert train.main([*argv[:3], str(tmp_path / "quiet"), *argv[4:], "--arch", "digits", "--no-progress"]) == 0
    quiet = capsys.readouterr()
    assert quiet.err == "" and "architecture:" not in quiet.out
