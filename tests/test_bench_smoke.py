"""Smoke test of ``python -m bench``: the smallest benchmark at --smoke size, and the schema
of the files it writes (no timing thresholds: the numbers depend on the machine)."""
import json

import numpy
import pytest

from bench import run


def test_smallest_benchmark_writes_json_and_markdown(tmp_path, capsys):
    status = run.main(["--device", "cpu", "--smoke", "--only", "cmaes", "--out", str(tmp_path)])
    assert status == 0
    written = sorted(p.name for p in tmp_path.iterdir())
    json_files = [name for name in written if name.endswith("-smoke.json")]
    assert len(json_files) == 1 and json_files[0].startswith("cpu-")
    assert json_files[0].replace(".json", ".md") in written and "latest-cpu.md" in written

    record = json.loads((tmp_path / json_files[0]).read_text())
    assert record["schema"] == run.SCHEMA
    assert record["device"]["kind"] == "cpu" and record["device"]["name"]
    assert record["versions"]["numpy"] == numpy.__version__
    assert record["settings"]["size"] == "smoke" and record["settings"]["only"] == ["cmaes"]
    rows = record["results"]
    assert [r["name"] for r in rows] == ["cmaes/numpy/n=10"]
    row = rows[0]
    assert tuple(row) == run.ROW_KEYS
    assert row["unit"] == "ms" and row["config"]["n"] == 10 and row["config"]["lambda"] == 10
    assert len(row["gee_ref_runs"]) == record["settings"]["repeats"]
    assert 0 < min(row["gee_ref_runs"]) <= row["gee_ref"] <= max(row["gee_ref_runs"])
    assert row["extra"]["generations_timed"] == len(row["gee_ref_runs"])
    if row["reference"] is not None:  # pycma installed
        assert row["ratio"] == pytest.approx(row["gee_ref"] / row["reference"])
        assert row["status"] in ("met", "missed")
    else:
        assert row["ratio"] is None and row["status"] == "no reference"

    table = (tmp_path / "latest-cpu.md").read_text()
    assert "| cmaes/numpy/n=10 |" in table and "NumPy <= pycma" in table

    with pytest.raises(ValueError, match="unknown benchmark"):
        run.parse_only("cmaes,warp-drive")


def test_warmup_and_repeats_replace_the_size_modes_counts(tmp_path):
    assert run.main(["--device", "cpu", "--smoke", "--only", "cmaes", "--warmup", "0", "--repeats", "3",
                     "--out", str(tmp_path)]) == 0
    record = json.loads(next(tmp_path.glob("cpu-*-smoke.json")).read_text())
    assert (record["settings"]["warmup"], record["settings"]["repeats"]) == (0, 3)
    assert len(record["results"][0]["gee_ref_runs"]) == 3
    for bad in ({"warmup": -1}, {"repeats": 0}, {"repeats": 2.5}):
        with pytest.raises(ValueError, match="must be an integer"):
            run.Context("cpu", "smoke", **bad)


def test_small_nets_rows_split_cpu_time_and_the_label_names_the_files(tmp_path):
    assert run.main(["--device", "cpu", "--smoke", "--only", "small", "--label", "after",
                     "--out", str(tmp_path)]) == 0
    (path,) = tmp_path.glob("cpu-*-smoke-after.json")
    record = json.loads(path.read_text())
    assert record["settings"]["label"] == "after" and record["settings"]["host_allocator"]
    rows = record["results"]
    assert [r["config"]["arch"] for r in rows] == ["digits", "resnet14"]
    for row in rows:
        gee = row["extra"]["gee_ref"]
        assert gee["user_ms"] >= 0 and gee["sys_ms"] >= 0 and gee["images_per_s"] > 0
        if row["reference"] is not None:  # torch installed: the twin ran the same step
            assert numpy.isfinite(row["extra"]["max_abs_logit_difference"])
            assert row["status"] in ("met", "missed")
    with pytest.raises(ValueError, match="--label"):
        run._label("before/after")
