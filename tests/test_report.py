"""gee_ref.report: PNG plots of an evolve run (fitness, sigma_l trajectories, best G)."""
import sys

import pytest

from gee_ref import evolve, report
from gee_ref.cli.errors import run_main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    with pytest.raises(SystemExit) as stopped:
        run_main(evolve.main, ["--genes", "3", "--popsize", "4", "--generations", "2", "--eval-steps", "1",
                               "--batch-size", "64", "--val-fraction", "0.05", "--final-epochs", "1", "--final-steps-per-epoch", "1",
                               "--no-progress", "--out", str(out)])
    assert stopped.value.code == 0
    return out


def run_report(argv):
    with pytest.raises(SystemExit) as stopped:
        run_main(report.main, argv)
    return stopped.value.code


def test_plots_are_written(run_dir, capsys):
    pytest.importorskip("matplotlib")
    assert run_report([str(run_dir)]) == 0
    for name in ("fitness.png", "sigmas.png", "best_G.png"):
        data = (run_dir / "plots" / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 2000, name
    out = capsys.readouterr().out
    assert "2 generations logged" in out and "final test accuracy" in out


def test_missing_matplotlib_is_one_line(run_dir, capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    assert run_report([str(run_dir), "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "pip install gee_ref[plots]" in err
    assert len(err.strip().splitlines()) == 1


def test_not_a_run_folder(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert run_report([str(tmp_path)]) == 2
    assert "not a gee_ref.evolve run folder" in capsys.readouterr().err
    assert run_report([str(tmp_path / "missing")]) == 2
