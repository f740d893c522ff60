"""The run-folder lock: one holder at a time, even among processes racing for it; the holder
named in a one-line refusal; no lock left by a killed holder; stale temporaries of dead
writers removed, those of live ones kept."""
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import gee_ref
from gee_ref.cli.errors import run_main
from gee_ref.storage import atomic, run_lock

REPO = Path(gee_ref.__file__).resolve().parents[1]

# A child that takes the lock when the file GO appears, says whether it got it, and holds it
# until stdin closes (or, for a loser, exits at once).
CONTENDER = """
import os, sys, time
from gee_ref.storage import run_lock
folder, go = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.001)
try:
    with run_lock.holding(folder, command=f"contender {os.getpid()}"):
        print("won", flush=True)
        sys.stdin.read()
except run_lock.RunFolderBusy as error:
    print("busy", error, flush=True)
"""


def start_contender(folder, go):
    child = subprocess.Popen([sys.executable, "-c", CONTENDER, str(folder), str(go)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert child.stdout.readline().strip() == "ready"
    return child


def test_the_holder_is_written_and_a_second_holding_is_refused_naming_it(tmp_path):
    with run_lock.holding(tmp_path / "run", command="python -m gee_ref.train --out run") as holder:
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(run_lock.RunFolderBusy) as info:
            with run_lock.holding(tmp_path / "run"):
                pytest.fail("a second holder got the lock")
        text = str(info.value)
        assert text.startswith(f"run folder {tmp_path / 'run'} is in use by another run: pid {os.getpid()} "
                               f"on {socket.gethostname()}, started {holder['started']}")
        assert "command: python -m gee_ref.train --out run" in text and "\n" not in text
    with run_lock.holding(tmp_path / "run"):  # released at the end of the block
        pass
    with pytest.raises(RuntimeError):
        with run_lock.holding(tmp_path / "run"):
            raise RuntimeError("the run failed")
    with run_lock.holding(tmp_path / "run"):  # released after an error too
        pass


def test_a_busy_folder_is_one_error_line_and_exit_2(tmp_path, capsys):
    def main(argv):
        with run_lock.holding(tmp_path):
            pass

    with run_lock.holding(tmp_path, command="the first run"):
        with pytest.raises(SystemExit) as exit_:
            run_main(main, [])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: run folder {tmp_path} is in use by another run: pid ")
    assert "command: the first run" in err


def test_processes_racing_for_one_folder_get_one_holder(tmp_path):
    for round_ in range(3):
        go = tmp_path / f"go{round_}"
        contenders = [start_contender(tmp_path / "run", go) for _ in range(4)]
        go.touch()  # all four try at once
        answers = {}
        try:
            for child in contenders:
                answers[child.pid] = child.stdout.readline().strip()
                if answers[child.pid].startswith("busy"):
                    child.wait(timeout=60)
        finally:
            for child in contenders:
                child.stdin.close()
                child.wait(timeout=60)
                child.stdout.close()
        winners = [pid for pid, answer in answers.items() if answer == "won"]
        assert len(winners) == 1, answers
        for pid, answer in answers.items():
            if pid not in winners:
                assert answer.startswith("busy run folder") and f"pid {winners[0]} " in answer
                assert f"command: contender {winners[0]}" in answer


def test_a_killed_holder_leaves_no_lock(tmp_path):
    go = tmp_path / "go"
    go.touch()
    holder = start_contender(tmp_path / "run", go)
    assert holder.stdout.readline().strip() == "won"
    with pytest.raises(run_lock.RunFolderBusy, match=f"pid {holder.pid} "):
        with run_lock.holding(tmp_path / "run"):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=60)
    holder.stdin.close()
    holder.stdout.close()
    assert str(holder.pid) in (tmp_path / "run" / run_lock.LOCK_NAME).read_text()  # its text stays behind
    with run_lock.holding(tmp_path / "run", command="after the kill") as this_run:
        assert this_run["pid"] == os.getpid()
        assert "after the kill" in (tmp_path / "run" / run_lock.LOCK_NAME).read_text()


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_temporaries_of_dead_writers_only_are_removed(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = tmp_path / f".checkpoint.h5.{_dead_pid()}.0123abcd.tmp"
        mine = Path(atomic.temporary_name(str(tmp_path / "checkpoint.h5")))
        live = tmp_path / f".cmaes-00001.h5.{sleeper.pid}.89abcdef.tmp"
        others = [tmp_path / "checkpoint.h5", tmp_path / ".notes.tmp", tmp_path / run_lock.LOCK_NAME]
        for path in [dead, mine, live, *others]:
            path.write_bytes(b"x")
        assert atomic.TEMPORARY_PATTERN.match(mine.name)["pid"] == str(os.getpid())
        removed = run_lock.remove_stale_temporaries(tmp_path)
        assert removed == [str(dead)]
        assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [mine, live, *others])
    finally:
        sleeper.kill()
        sleeper.wait()
    # the sleeper is dead now: its temporary is stale
    assert run_lock.remove_stale_temporaries(tmp_path) == [str(live)]
