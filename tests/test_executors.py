"""gee_ref.evolution.executors: serial and Dask give the same results, in argument order."""
import os
from pathlib import Path

import numpy
import pytest

from gee_ref.evolution.executors import ExecutorUnavailableError, SerialExecutor, make_executor

REPO = Path(__file__).resolve().parents[1]


def _square(x):
    return x * x


def test_serial_map_keeps_order_and_reports_each_result():
    seen = []
    results = SerialExecutor().map(_square, [3, 1, 2], on_result=lambda i, r: seen.append((i, r)))
    assert results == [9, 1, 4]
    assert seen == [(0, 9), (1, 1), (2, 4)]


def test_make_executor_refuses_unknown_kinds():
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("threads")
    with pytest.raises(ValueError, match="--executor dask"):
        make_executor("serial", address="tcp://127.0.0.1:8786")


def test_unreachable_scheduler_is_one_clear_error():
    pytest.importorskip("distributed")
    from gee_ref.evolution.executors import DaskExecutor

    with pytest.raises(ExecutorUnavailableError, match="cannot reach the Dask scheduler"):
        DaskExecutor(address="tcp://127.0.0.1:9", timeout=1)


def test_dask_evolution_equals_serial(tmp_path, monkeypatch):
    """The same tiny evolution on a LocalCluster of two worker processes and in this process:
    identical logs (but for the wall times) and the same best genotype, bit for bit."""
    pytest.importorskip("distributed")
    from gee_ref.cli.options import options_of
    from gee_ref.evolution.executors import DaskExecutor
    from gee_ref.evolution.search import Evolution, read_log, without_wall_times
    from gee_ref.evolve import build_parser
    from gee_ref.runs.data import read_run_data
    from gee_ref.runs.evolution_run import OPTION_DEFAULTS, resolve_config

    # worker processes must import gee_ref even when it is not installed
    monkeypatch.setenv("PYTHONPATH", str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    data = read_run_data(None)
    args = build_parser().parse_args(["--genes", "3", "--popsize", "5", "--generations", "2",
                                      "--eval-steps", "1", "--batch-size", "64", "--val-fraction", "0.05"])
    config = resolve_config(options_of(args, OPTION_DEFAULTS), data)

    def evolve_with(executor, out):
        out.mkdir()
        run = Evolution(config, out, executor, data.path)
        run.begin()
        run.run()
        return [without_wall_times(r) for r in read_log(out / "log.jsonl")], run.best["vector"]

    serial_log, serial_best = evolve_with(SerialExecutor(), tmp_path / "serial")
    with DaskExecutor(workers=2, processes=True) as executor:
        arrived = []
        assert executor.map(_square, [4, 5], on_result=lambda i, r: arrived.append(i)) == [16, 25]
        assert sorted(arrived) == [0, 1]
        dask_log, dask_best = evolve_with(executor, tmp_path / "dask")
    assert dask_log == serial_log
    assert numpy.asarray(dask_best).tobytes() == numpy.asarray(serial_best).tobytes()
