"""A full disk while gee_ref writes a file: one `error:` line naming the file, the place and
the bytes needed, exit status 2, no temporary file left, the previous file intact.

A full disk is simulated portably with a file size limit (RLIMIT_FSIZE, `ulimit -f`) in a
child process, with SIGXFSZ ignored so that a write past the limit fails with EFBIG instead
of killing the process. Where this test may mount a small tmpfs (root on Linux), the real
ENOSPC is tested too; elsewhere that test is skipped.
"""
import os
import resource
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gee_ref
from gee_ref.data import datasets
from gee_ref.storage import atomic
from gee_ref.storage.checkpoint import load_checkpoint, save_checkpoint

REPO = Path(gee_ref.__file__).resolve().parents[1]
LIMIT = 8192  # bytes a child process may write to one file

# The child writes a file bigger than LIMIT with one of gee_ref's writers, under run_main.
WRITERS = {
    "checkpoint": """
        from gee_ref.storage.checkpoint import save_checkpoint
        save_checkpoint(path, {"model": {f"w{i}": np.full(500, i, np.float32) for i in range(60)}}, {"step": 2})
    """,
    "dataset file": """
        from gee_ref.data.datasets import write_dataset
        images = np.full((200, 8, 8, 1), 7, np.uint8)
        write_dataset(path, {"train": (images, np.zeros(200, np.int64)), "test": (images[:5], np.zeros(5, np.int64))},
                      ["only"], "second")
    """,
    "file": """
        from gee_ref.storage import atomic
        atomic.write_text(path, "x" * 20000)
    """,
    "CMA-ES state": """
        from gee_ref.cmaes.strategy import CMAES
        CMAES(np.zeros(60), 0.5, seed=1).save(path)
    """,
    "golden file": """
        from gee_ref import verification
        verification.generate(path, 0, "op/lif/*")
    """,
}

CHILD = """
import resource, signal, sys
import numpy as np
from gee_ref.cli.errors import run_main
path = sys.argv[1]

def main(argv):
{body}
run_main(main)
"""


def limited_file_size(limit):
    """preexec_fn for a child: files may not grow past ``limit`` bytes; SIGXFSZ is ignored
    (the disposition survives exec), so the write fails with EFBIG."""
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def run_limited(arguments, limit=LIMIT, cwd=None, extra_env=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1", **(extra_env or {})}
    return subprocess.run([sys.executable, *arguments], capture_output=True, text=True, env=env, cwd=cwd,
                          preexec_fn=limited_file_size(limit), timeout=600)


def assert_one_disk_full_line(result, what, path):
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert lines[0].startswith(f"error: cannot write {what} {path}: file too large for the file size limit")
    assert f"the limit is {LIMIT:,} bytes" in lines[0] and "it needs " in lines[0]
    needed = int(lines[0].split("it needs ")[1].split(" bytes")[0].replace(",", ""))
    assert needed > LIMIT


@pytest.mark.parametrize("what", sorted(WRITERS))
def test_every_writer_reports_a_file_size_limit_and_keeps_the_previous_file(tmp_path, what):
    path = tmp_path / "target"
    previous = b"the previous file, which must survive"
    path.write_bytes(previous)
    body = textwrap.indent(textwrap.dedent(WRITERS[what]), "    ")
    result = run_limited(["-c", CHILD.format(body=body), str(path)])
    assert_one_disk_full_line(result, what, path)
    assert path.read_bytes() == previous
    assert sorted(os.listdir(tmp_path)) == ["target"]  # no temporary file left


def test_the_writers_succeed_without_the_limit(tmp_path):
    """The same child programs write their files when nothing limits them (so the test above
    fails for the reason it names)."""
    for index, what in enumerate(sorted(WRITERS)):
        path = tmp_path / f"file{index}"
        body = textwrap.indent(textwrap.dedent(WRITERS[what]), "    ")
        result = run_limited(["-c", CHILD.format(body=body), str(path)], limit=resource.RLIM_INFINITY)
        assert result.returncode == 0, (what, result.stderr[-2000:])
        assert path.stat().st_size > LIMIT


def test_train_under_a_file_size_limit_is_one_line_not_a_crash(tmp_path):
    """The reproduction of issue 12: train's checkpoint meets a full disk (was SIGSEGV, exit 139)."""
    rng = np.random.default_rng(0)
    data = tmp_path / "tiny.h5"
    images = rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(64) % 10
    datasets.write_dataset(data, {"train": (images, labels), "test": (images[:20], labels[:20])},
                           [str(d) for d in range(10)], "test")
    out = tmp_path / "run"
    result = run_limited(["-m", "gee_ref.train", "--data", str(data), "--out", str(out), "--epochs", "2",
                          "--batch-size", "16", "--steps-per-epoch", "2", "--genes", "8", "--time-steps", "2",
                          "--no-progress"], extra_env={"GEE_REF_CACHE": str(tmp_path / "cache")})
    assert_one_disk_full_line(result, "checkpoint", out / "checkpoint.h5")
    assert not [name for name in os.listdir(out) if name.endswith(".tmp")]


def test_disk_full_error_is_one_line_for_each_cause(tmp_path):
    import errno

    for code, fragment in ((errno.ENOSPC, "no space left on device"), (errno.EDQUOT, "disk quota exceeded")):
        error = atomic.disk_full_error(OSError(code, os.strerror(code)), tmp_path / "f.h5", 123456, "checkpoint")
        text = str(error)
        assert isinstance(error, OSError) and "\n" not in text
        assert text.startswith(f"cannot write checkpoint {tmp_path / 'f.h5'}: {fragment}") and "123,456 bytes" in text
    assert f"free in {tmp_path}" in str(atomic.disk_full_error(OSError(errno.ENOSPC, "x"), tmp_path / "f", 1))


# ---------------------------------------------------------------------------- a real full disk

@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/disk, or a skip where this process may not mount one."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
                                 capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    if not mounted:
        pytest.skip("cannot mount a tmpfs here (needs root on Linux)")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)


def test_checkpoint_on_a_full_tmpfs(small_tmpfs):
    target = small_tmpfs / "checkpoint.h5"
    save_checkpoint(target, {"model": {"w": np.zeros(1000)}}, {"step": 1})
    free = os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize
    (small_tmpfs / "filler").write_bytes(b"\0" * (free - 64 * 1024))  # leave 64 KiB
    with pytest.raises(atomic.DiskFullError) as info:
        save_checkpoint(target, {"model": {f"w{i}": np.ones(2000) for i in range(60)}}, {"step": 2})
    text = str(info.value)
    assert text.startswith(f"cannot write checkpoint {target}: no space left on device: it needs ")
    assert f"free in {small_tmpfs}" in text and "\n" not in text
    tensors, meta = load_checkpoint(target)
    assert meta == {"step": 1} and np.all(tensors["model"]["w"] == 0)
    assert sorted(os.listdir(small_tmpfs)) == ["checkpoint.h5", "filler"]
