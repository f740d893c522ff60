"""Golden vectors (gee_ref.verification) and the verify tool (gee_ref.verify).

The round trip: the golden file verified against itself passes; a candidate perturbed in one
tensor fails on exactly that tensor; float32 candidates are judged by the float32 tolerance;
missing, mis-shaped and non-finite tensors are failing rows; missing or corrupt files are one
line and exit status 2. Also: the file is deterministic for a seed, covers every op of
gee_ref.autograd.functional, carries its conventions, re-running gee_ref on the stored inputs gives the
stored outputs bit for bit, and the CMA-ES trajectories can be replayed from the file by an
independent implementation of Hansen's tutorial.
"""
import inspect
import json
import math
import subprocess
import sys

import h5py
import numpy as np
import pytest

from gee_ref import autograd, backend
from gee_ref.verification import compare as verify
from gee_ref.autograd import functional
from gee_ref import verification as golden
from gee_ref.verification.fileformat import checked_datasets, error_scales
from gee_ref.verification.run import resolve


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "golden.h5"
    golden.generate(path, seed=0)
    return path


@pytest.fixture(scope="module")
def golden_tensors(golden_file):
    with h5py.File(golden_file, "r") as h5:
        return {path: dataset[()] for path, dataset in checked_datasets(h5)}


def run_cli(module, *args):
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True, text=True)


# ---------------------------------------------------------------- the golden file

def test_same_seed_same_datasets_other_seed_other_values(golden_file, tmp_path):
    again, other = tmp_path / "again.h5", tmp_path / "other.h5"
    golden.generate(again, seed=0)
    golden.generate(other, seed=1, only="op/conv2d/*")

    def contents(path):
        found = {}
        with h5py.File(path, "r") as h5:
            h5.visititems(lambda n, o: found.__setitem__(n, (o[()], dict(o.attrs)))
                          if isinstance(o, h5py.Dataset) else None)
        return found

    first, second = contents(golden_file), contents(again)
    assert first.keys() == second.keys() and len(first) > 500
    for name, (value, attrs) in first.items():
        assert value.dtype == second[name][0].dtype and np.array_equal(value, second[name][0]), name
        assert json.dumps(attrs, default=str) == json.dumps(second[name][1], default=str)
    changed = contents(other)
    name = "op/conv2d/k3_s1_p0/inputs/x"
    assert not np.array_equal(changed[name][0], first[name][0])


def test_file_is_small_and_float64(golden_file):
    assert golden_file.stat().st_size < 3_000_000
    with h5py.File(golden_file, "r") as h5:
        assert h5.attrs["format"] == golden.FORMAT
        for path, dataset in checked_datasets(h5):
            assert dataset.dtype == np.float64, path


def test_every_functional_op_has_cases_with_several_settings(golden_file):
    ops = {name for name, f in inspect.getmembers(functional, inspect.isfunction)
           if f.__module__ == functional.__name__ and not name.startswith("_")}
    covered = {}
    for case in golden.read_cases(golden_file, only="op/*"):
        covered.setdefault(case.function.rpartition(".")[2], []).append(case)
    assert ops <= set(covered), sorted(ops - set(covered))
    lif = covered["lif"]
    assert {c.params["surrogate"] for c in lif} == {"sigmoid", "atan", "rectangular"}
    assert {c.params["soft"] for c in lif} == {True, False}
    assert {c.params["detach_reset"] for c in lif} == {True, False}
    assert {c.params["training"] for c in covered["batch_norm"]} == {True, False}
    for op in ("genetic_conv2d", "genetic_linear"):
        assert {c.params["path"] for c in covered[op]} == {"materialised", "factored"}
    assert len({(json.dumps(c.params["stride"]), json.dumps(c.params["padding"])) for c in covered["conv2d"]}) >= 3


def test_kinds_and_conventions_are_attributes(golden_file):
    cases = list(golden.read_cases(golden_file))
    assert {c.kind for c in cases} == {"op", "network", "lowrank", "cmaes", "fitness"}
    for case in cases:
        assert case.description and "\n" not in case.description
        if case.kind == "op":
            assert case.conventions["dtype"] == "float64" and "layout" in case.conventions
        if case.function.endswith(".lif") or case.kind == "network":
            for key in ("lif_tau", "lif_v_th", "lif_v_reset", "lif_reset", "lif_surrogate", "lif_alpha",
                        "lif_detach_reset"):
                assert key in case.conventions, (case.name, key)
        if case.function.endswith("batch_norm") or case.kind == "network":
            assert {"bn_eps", "bn_momentum", "bn_variance"} <= set(case.conventions), case.name
        if "conv2d" in case.function or case.kind == "network":
            assert {"im2col_row_order", "conv_weight_layout"} <= set(case.conventions), case.name
        if "genetic" in case.function or case.kind == "network":
            assert "genetic_weight" in case.conventions, case.name


def test_networks_hold_every_parameter_and_its_gradient(golden_file):
    networks = list(golden.read_cases(golden_file, only="network/*"))
    assert {c.function for c in networks} == {"gee_ref.models.build_model", "gee_ref.nn.BasicBlock"}
    for case in networks:
        params = {k.split("/", 1)[1] for k in case.inputs if k.startswith("parameters/")}
        assert "genes.G" in params and set(case.grads) - {"x"} == params
        assert any(k.startswith("spikes/") for k in case.outputs)
        assert case.conventions["lif_threshold_margin"] >= 1e-4
    digits = next(c for c in networks if c.name.startswith("network/digits"))
    assert {"logits", "loss"} <= set(digits.outputs)
    assert any(c.name.endswith("projection_s2") for c in networks)
    chained = next(c for c in networks if c.name.endswith("_chained"))
    layers = chained.argument("layers")
    assert any(layer.get("x_in", "").endswith(".x_out") for layer in layers)   # eq. 3 in the file


def test_hard_lif_inputs_keep_away_from_the_threshold(golden_file):
    for case in golden.read_cases(golden_file, only="op/lif/*"):
        if not case.params["soft"] or case.params["surrogate"] == "rectangular":
            assert case.conventions["lif_threshold_margin"] >= 1e-3, case.name


def test_rerunning_gee_ref_on_the_stored_inputs_gives_the_stored_numbers(golden_file):
    """What an implementer does with read_cases, done with gee_ref itself: bit-identical results."""
    for case in golden.read_cases(golden_file, only="op/*"):
        tensors = {k: autograd.Tensor(case.inputs[k].copy(), requires_grad=True) for k in case.argument("tensor_args")}
        arrays = {k: case.inputs[k].copy() for k in case.argument("array_args")}
        y = resolve(case.function)(**tensors, **arrays, **case.params)
        y.backward(case.upstream["y"])
        assert np.array_equal(y.data, case.outputs["y"]), case.name
        for k in case.argument("state"):
            assert np.array_equal(arrays[k], case.outputs[k]), case.name
        for k, t in tensors.items():
            assert np.array_equal(t.grad, case.grads[k]), (case.name, k)


def test_error_scales_use_the_group_for_round_off_zeros():
    scales = error_scales({"w": np.array([0.5, -2.0]), "b": np.array([1e-17, -3e-17]), "z": np.zeros(2)})
    assert scales["w"] == (2.0, False)
    assert scales["b"] == (2.0, True) and scales["z"] == (2.0, True)
    assert error_scales({"z": np.zeros(3)})["z"] == (1.0, True)


# ---------------------------------------------------------------- verify

def write(path, tensors):
    golden.write_candidate(path, tensors, implementation="test")
    return path


def test_golden_against_itself_passes(golden_file, golden_tensors, tmp_path):
    report = verify.verify(golden_file, write(tmp_path / "self.h5", golden_tensors))
    assert report.passed and len(report.rows) == len(golden_tensors)
    assert all(r.max_abs == 0.0 and r.dtype_class == "float64" for r in report.rows)
    assert report.summary().startswith("PASS")


@pytest.mark.parametrize("target", ["op/lif/hard_sigmoid/grads/x_seq", "op/batch_norm/train_nchw/outputs/running_var",
                                    "network/resnet_block/projection_s2/grads/genes.G",
                                    "cmaes/full_active/ellipsoid5/outputs/sigma",
                                    "fitness/spatial_entropy/g4/outputs/r_s"])
def test_a_perturbed_tensor_fails_alone(golden_file, golden_tensors, tmp_path, target):
    tensors = dict(golden_tensors)
    value = np.array(tensors[target], dtype=np.float64)
    flat = value.reshape(-1)
    flat[np.argmax(np.abs(flat))] *= 1 + 1e-8   # 1e-8 relative: far above 1e-10
    tensors[target] = value
    report = verify.verify(golden_file, write(tmp_path / "perturbed.h5", tensors))
    assert [r.path for r in report.failures] == [target]
    row = report.row(target)
    assert row.status == "fail" and 0.9e-8 < row.max_rel < 1.1e-8 and row.ulps > 1e7
    assert target in row.message and "1e-10" in row.message


def test_float32_candidates_use_the_float32_tolerance(golden_file, golden_tensors, tmp_path):
    cast = {k: np.asarray(v, dtype=np.float32) for k, v in golden_tensors.items()}
    path = write(tmp_path / "f32.h5", cast)
    report = verify.verify(golden_file, path)
    assert report.passed and {r.dtype_class for r in report.rows} == {"float32"}
    assert max(r.max_rel for r in report.rows) > 1e-10   # would fail the float64 class
    strict = verify.verify(golden_file, path, rtol_float32=1e-12)
    assert not strict.passed


def test_missing_misshaped_and_nonfinite_tensors_are_failing_rows(golden_file, golden_tensors, tmp_path):
    tensors = dict(golden_tensors)
    missing, shaped, nan = ("op/conv2d/k3_s1_p0/grads/w", "op/linear/bias/outputs/y", "op/mse/mean/grads/a")
    del tensors[missing]
    tensors[shaped] = tensors[shaped][:, :2]
    tensors[nan] = np.where(np.arange(tensors[nan].size).reshape(tensors[nan].shape) == 0, np.nan, tensors[nan])
    report = verify.verify(golden_file, write(tmp_path / "broken.h5", tensors))
    assert {r.path: r.status for r in report.failures} == {missing: "missing", shaped: "shape", nan: "nonfinite"}
    for r in report.failures:
        assert r.path in r.message and "\n" not in r.message
    assert "missing in the candidate" in report.row(missing).message
    assert "(3, 2)" in report.row(shaped).message and "(3, 4)" in report.row(shaped).message
    assert "MISSING" in report.table(failures_only=True) and report.summary().startswith("FAIL: 3 of")


def test_only_selects_tensors_by_glob_or_substring(golden_file, golden_tensors, tmp_path):
    path = write(tmp_path / "lif.h5", {k: v for k, v in golden_tensors.items() if k.startswith("op/lif/")})
    assert verify.verify(golden_file, path, only="op/lif/*").passed
    assert verify.verify(golden_file, path, only="lif/soft").passed
    assert not verify.verify(golden_file, path).passed      # everything else is missing
    with pytest.raises(ValueError, match="no checked golden tensor matches"):
        verify.verify(golden_file, path, only="no/such/case")
    assert verify.matches("op/lif/hard_sigmoid/grads/x_seq", "op/*/grads/*")
    assert not verify.matches("op/lif/hard_sigmoid", "op/conv*")


# ---------------------------------------------------------------- command lines

def test_verify_cli_exit_codes_and_table(golden_file, golden_tensors, tmp_path):
    good = write(tmp_path / "good.h5", golden_tensors)
    ok = run_cli("gee_ref.verify", "--golden", golden_file, "--candidate", good, "--only", "op/conv2d/*")
    assert ok.returncode == 0, ok.stderr
    assert "op/conv2d/k3_s1_p0/grads/w" in ok.stdout and "max_rel" in ok.stdout and "PASS" in ok.stdout

    bad_tensors = dict(golden_tensors)
    bad_tensors["op/conv2d/k3_s1_p0/grads/w"] = bad_tensors["op/conv2d/k3_s1_p0/grads/w"] + 1e-6
    bad = write(tmp_path / "bad.h5", bad_tensors)
    failed = run_cli("gee_ref.verify", "--golden", golden_file, "--candidate", bad, "--failures-only")
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout and "op/conv2d/k3_s1_p0/grads/w" in failed.stdout

    loose = run_cli("gee_ref.verify", "--golden", golden_file, "--candidate", bad, "--rtol-float64", "1e-3")
    assert loose.returncode == 0


@pytest.mark.parametrize("problem", ["missing", "corrupt", "not_golden", "bad_flag"])
def test_verify_cli_bad_input_is_one_line_exit_2(golden_file, golden_tensors, tmp_path, problem):
    candidate = write(tmp_path / "c.h5", golden_tensors)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"not an hdf5 file")
    args = {"missing": ["--golden", golden_file, "--candidate", tmp_path / "absent.h5"],
            "corrupt": ["--golden", golden_file, "--candidate", corrupt],
            "not_golden": ["--golden", candidate, "--candidate", candidate],
            "bad_flag": ["--golden", golden_file, "--candidate", candidate, "--rtol-float64", "x"]}[problem]
    result = run_cli("gee_ref.verify", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in result.stderr


def test_golden_cli_writes_and_lists(tmp_path):
    out = tmp_path / "g.h5"
    written = run_cli("gee_ref.golden", "--out", out, "--seed", 2, "--only", "op/lif/*")
    assert written.returncode == 0, written.stderr
    assert "cases" in written.stderr and out.exists()
    assert {c.name for c in golden.read_cases(out)} == {n for n in golden.case_builders() if n.startswith("op/lif/")}
    listed = run_cli("gee_ref.golden", "--list", "--golden", out)
    assert listed.returncode == 0 and "op/lif/hard_sigmoid\t" in listed.stdout and "grads: x_seq" in listed.stdout
    assert run_cli("gee_ref.golden").returncode == 2
    assert run_cli("gee_ref.golden", "--out", tmp_path / "negative.h5", "--seed", -1).returncode == 2
    again = run_cli("gee_ref.golden", "--out", out, "--only", "op/lif/*")
    assert again.returncode == 2 and "already exists; pass --force" in again.stderr and again.stderr.count("\n") == 1
    assert run_cli("gee_ref.golden", "--out", out, "--only", "op/lif/*", "--force").returncode == 0
    absent = run_cli("gee_ref.golden", "--list", "--golden", tmp_path / "absent.h5")
    assert absent.returncode == 2 and absent.stderr.count("\n") == 1


# ---------------------------------------------------------------- CMA-ES replay

def tutorial_constants(n, lam, diagonal, active):
    """Hansen (2016) Table 1 from the equations, written here independently of gee_ref."""
    mu = lam // 2
    w_raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))
    mu_eff = w_raw[:mu].sum() ** 2 / np.sum(w_raw[:mu] ** 2)
    c_s = (mu_eff + 2) / (n + mu_eff + 5)
    d_s = 1 + 2 * max(0.0, math.sqrt((mu_eff - 1) / (n + 1)) - 1) + c_s
    c_c = (4 + mu_eff / n) / (n + 4 + 2 * mu_eff / n)
    c_1 = 2 / ((n + 1.3) ** 2 + mu_eff)
    c_mu = min(1 - c_1, 2 * (mu_eff - 2 + 1 / mu_eff) / ((n + 2) ** 2 + mu_eff))
    if diagonal:
        c_1 *= (n + 2) / 3
        c_mu = min(1 - c_1, c_mu * (n + 2) / 3)
    w = np.zeros(lam)
    w[:mu] = w_raw[:mu] / w_raw[:mu].sum()
    if active:
        neg = w_raw[mu:]
        mu_eff_minus = neg.sum() ** 2 / np.sum(neg ** 2)
        scale = min(1 + c_1 / c_mu, 1 + 2 * mu_eff_minus / (mu_eff + 2), (1 - c_1 - c_mu) / (n * c_mu))
        w[mu:] = scale * neg / np.abs(neg).sum()
    chi = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))
    return mu, w, mu_eff, c_s, d_s, c_c, c_1, c_mu, chi


def replay(case):
    """Tell the stored X and f to an independent tutorial CMA-ES; return its states per generation."""
    p = case.params
    n, X_all, f_all = p["n"], case.outputs["X"], case.outputs["f"]
    mu, w, mu_eff, c_s, d_s, c_c, c_1, c_mu, chi = tutorial_constants(n, p["popsize"], p["diagonal"], p["active"])
    m, sigma = case.inputs["x0"].copy(), p["sigma0"]
    C = np.ones(n) if p["diagonal"] else np.eye(n)
    p_s, p_c = np.zeros(n), np.zeros(n)
    states = {k: [] for k in ("mean", "sigma", "C", "p_sigma", "p_c", "X")}
    for g in range(p["generations"]):
        if p["diagonal"]:
            inv_sqrt, root = np.diag(1 / np.sqrt(C)), np.diag(np.sqrt(C))
        else:
            vals, B = np.linalg.eigh(C)
            B = B * np.sign(B[np.argmax(np.abs(B), axis=0), np.arange(n)])  # gee_ref's sign convention
            inv_sqrt, root = B @ np.diag(vals ** -0.5) @ B.T, B * np.sqrt(vals)
        states["X"].append(m + sigma * case.inputs["z"][g] @ root.T)   # x = m + sigma B D z
        y = (X_all[g][np.argsort(f_all[g], kind="stable")] - m) / sigma
        y_w = w[:mu] @ y[:mu]
        m = m + sigma * y_w
        p_s = (1 - c_s) * p_s + math.sqrt(c_s * (2 - c_s) * mu_eff) * inv_sqrt @ y_w
        sigma = sigma * math.exp(c_s / d_s * (np.linalg.norm(p_s) / chi - 1))
        h_s = np.linalg.norm(p_s) / math.sqrt(1 - (1 - c_s) ** (2 * (g + 1))) < (1.4 + 2 / (n + 1)) * chi
        p_c = (1 - c_c) * p_c + h_s * math.sqrt(c_c * (2 - c_c) * mu_eff) * y_w
        w_circ = np.where(w < 0, w * n / np.sum((y @ inv_sqrt.T) ** 2, axis=1), w)
        decay = 1 + c_1 * (1 - h_s) * c_c * (2 - c_c) - c_1 - c_mu * w.sum()
        if p["diagonal"]:
            C = decay * C + c_1 * p_c ** 2 + c_mu * w_circ @ y ** 2
        else:
            C = decay * C + c_1 * np.outer(p_c, p_c) + c_mu * (y.T * w_circ) @ y
        for k, v in (("mean", m), ("sigma", sigma), ("C", C), ("p_sigma", p_s), ("p_c", p_c)):
            states[k].append(np.array(v))
    return {k: np.array(v) for k, v in states.items()}, (w, mu_eff, c_s, d_s, c_c, c_1, c_mu, chi)


def test_cmaes_trajectories_replay_from_the_file(golden_file, tmp_path):
    tensors = {}
    cases = list(golden.read_cases(golden_file, only="cmaes/*"))
    assert {c.params["diagonal"] for c in cases} == {True, False}
    assert {c.params["active"] for c in cases} == {True, False}
    for case in cases:
        states, constants = replay(case)
        c_name = "diagonal_C" if case.params["diagonal"] else "C"
        tensors.update({case.path("outputs", k): v for k, v in states.items() if k != "C"})
        tensors[case.path("outputs", c_name)] = states["C"]
        tensors[case.path("outputs", "f")] = case.outputs["f"]   # the objective is not under test here
        names = ("weights", "mu_eff", "c_sigma", "d_sigma", "c_c", "c_1", "c_mu", "chi_n")
        tensors.update({case.path("outputs", f"strategy/{k}"): np.float64(v) for k, v in zip(names, constants)})
        tensors[case.path("outputs", "strategy/c_m")] = np.float64(1.0)
    report = verify.verify(golden_file, write(tmp_path / "replay.h5", tensors), only="cmaes/*")
    assert report.passed, report.table(failures_only=True)


# ---------------------------------------------------------------- gee_ref on the GPU

@pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")
def test_gee_ref_ops_on_cupy_verify_against_the_golden_file(golden_file, tmp_path):
    """The op cases rerun on CuPy in float64 pass the float64 tolerance (another summation order)."""
    tensors = {}
    for case in golden.read_cases(golden_file, only="op/*"):
        gpu = {k: backend.to_device(case.inputs[k], "gpu") for k in case.inputs}
        leaves = {k: autograd.Tensor(gpu[k], requires_grad=True) for k in case.argument("tensor_args")}
        arrays = {k: gpu[k] for k in case.argument("array_args")}
        y = resolve(case.function)(**leaves, **arrays, **case.params)
        y.backward(backend.to_device(case.upstream["y"], "gpu"))
        tensors[case.path("outputs", "y")] = backend.to_host(y.data)
        tensors.update({case.path("outputs", k): backend.to_host(arrays[k]) for k in case.argument("state")})
        tensors.update({case.path("grads", k): backend.to_host(t.grad) for k, t in leaves.items()})
    report = verify.verify(golden_file, write(tmp_path / "cupy.h5", tensors), only="op/*")
    assert report.passed, report.table(failures_only=True)
