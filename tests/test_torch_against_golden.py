"""Worked example: an independent PyTorch implementation (tests/torch_gee.py) checked against
gee_ref's golden file with gee_ref.verify, as any other implementation would be.

It runs every op, network, low-rank and fitness case of the golden file (CMA-ES trajectories are not
a PyTorch matter), writes a candidate file and verifies it at rtol 1e-10 (float64) and, run
in float32, at rtol 1e-5. It also shows a convention mismatch caught by the tool.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch_gee  # noqa: E402  (needs torch)

from gee_ref.verification import compare as verify
from gee_ref import verification as golden  # noqa: E402

CHECKED_KINDS = ("op", "network", "lowrank", "fitness")


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "golden.h5"
    golden.generate(path, seed=0)
    return path


def _tensor(array, dtype, grad=False):
    array = np.asarray(array)
    if array.dtype.kind in "iu":
        return torch.tensor(array)
    return torch.tensor(array, dtype=dtype, requires_grad=grad)


def _np(t):
    return t.detach().numpy()


def run_op(case, dtype):
    fn = getattr(torch_gee, case.function.rpartition(".")[2])
    tensors = {k: _tensor(case.inputs[k], dtype, grad=True) for k in case.argument("tensor_args")}
    arrays = {k: _tensor(case.inputs[k], dtype) for k in case.argument("array_args")}
    y = fn(**tensors, **arrays, **case.params)
    y.backward(_tensor(case.upstream["y"], dtype))
    out = {case.path("outputs", "y"): _np(y)}
    out.update({case.path("outputs", k): _np(arrays[k]) for k in case.argument("state")})
    out.update({case.path("grads", k): _np(t.grad) for k, t in tensors.items()})
    return out


def _parameters(case, dtype):
    params = {k.split("/", 1)[1]: _tensor(v, dtype, grad=True) for k, v in case.inputs.items()
              if k.startswith("parameters/")}
    buffers = {k.split("/", 1)[1]: _tensor(v, dtype) for k, v in case.inputs.items() if k.startswith("buffers/")}
    return params, buffers


def run_network(case, dtype):
    params, buffers = _parameters(case, dtype)
    out = {}
    if case.function == "gee_ref.nn.BasicBlock":
        x = _tensor(case.inputs["x"], dtype, grad=True)
        y, spikes = torch_gee.genetic_basic_block(x, params, buffers, case.params["stride"], case.params["time_steps"])
        y.backward(_tensor(case.upstream["y"], dtype))
        out[case.path("outputs", "y")] = _np(y)
        out[case.path("grads", "x")] = _np(x.grad)
    else:
        logits, spikes = torch_gee.layered_network(_tensor(case.inputs["images"], dtype), case.argument("layers"),
                                                   params, buffers)
        loss = torch_gee.cross_entropy(logits, _tensor(case.inputs["labels"], dtype))
        loss.backward()
        out[case.path("outputs", "logits")] = _np(logits)
        out[case.path("outputs", "loss")] = _np(loss)
    out.update({case.path("outputs", f"spikes/{k}"): _np(s) for k, s in spikes.items()})
    out.update({case.path("outputs", f"buffers/{k}"): _np(b) for k, b in buffers.items()})
    out.update({case.path("grads", k): _np(p.grad) for k, p in params.items()})
    return out


def run_fitness(case, dtype):
    name = case.function.rpartition(".")[2]
    if name == "temporal_difference":
        layers = sorted((k for k in case.inputs if k.startswith("spikes/")), key=lambda k: int(k.split("/")[1]))
        value = torch_gee.temporal_difference([_tensor(case.inputs[k], dtype) for k in layers])
        return {case.path("outputs", "r_t"): _np(value)}
    if name == "spatial_entropy":
        return {case.path("outputs", "r_s"): _np(torch_gee.spatial_entropy(_tensor(case.inputs["G"], dtype)))}
    inputs = {k: _tensor(case.inputs[k], dtype) for k in ("loss", "r_t", "r_s")}
    value = torch_gee.dynamic_fitness(inputs["loss"], inputs["r_t"], inputs["r_s"],
                                      _tensor(case.inputs["generation"], dtype), **case.params)
    return {case.path("outputs", "fitness"): _np(value)}


def run_lowrank(case, dtype):
    """Eq. 6-8: gee_ref's X_out G X_in^T must be the best rank-g approximation, here from torch's SVD."""
    w = _tensor(case.inputs["w"], dtype)
    w_g = torch_gee.best_rank_g(w, case.params["g"])
    residual = torch.linalg.norm(w.reshape(w.shape[0], -1) - w_g)
    return {case.path("outputs", "w_g"): _np(w_g), case.path("outputs", "residual_norm"): _np(residual)}


RUNNERS = {"op": run_op, "network": run_network, "lowrank": run_lowrank, "fitness": run_fitness}


def candidate(golden_path, dtype):
    tensors, kinds = {}, set()
    for case in golden.read_cases(golden_path):
        if case.kind in RUNNERS:
            tensors.update(RUNNERS[case.kind](case, dtype))
            kinds.add(case.kind)
    assert kinds == set(CHECKED_KINDS)
    return tensors


@pytest.mark.parametrize("dtype, rtol_name", [(torch.float64, "float64"), (torch.float32, "float32")])
def test_torch_candidate_passes(golden_file, tmp_path, dtype, rtol_name):
    path = tmp_path / f"torch_{rtol_name}.h5"
    golden.write_candidate(path, candidate(golden_file, dtype), implementation=f"tests/torch_gee.py {rtol_name}")
    for kind in CHECKED_KINDS:
        report = verify.verify(golden_file, path, only=f"{kind}/*")
        assert report.passed, report.table(failures_only=True)
        assert {r.dtype_class for r in report.rows if r.dtype_class.startswith("float")} == {rtol_name}
        if rtol_name == "float64":
            assert max(r.max_rel for r in report.rows) <= 1e-10


def test_a_biased_running_variance_is_caught(golden_file, tmp_path):
    """Storing the *biased* batch variance in running_var (a common slip) fails on exactly those rows."""
    tensors = {}
    for case in golden.read_cases(golden_file, only="op/batch_norm/*"):
        out = run_op(case, torch.float64)
        if case.params["training"]:
            x = case.inputs["x"]
            axes = (0,) if x.ndim == 2 else (0, 2, 3)
            n = x.size // x.shape[1]
            m = case.params["momentum"]
            biased = (1 - m) * case.inputs["running_var"] + m * x.var(axis=axes)
            assert n > 1
            out[case.path("outputs", "running_var")] = biased
        tensors.update(out)
    path = tmp_path / "biased.h5"
    golden.write_candidate(path, tensors)
    report = verify.verify(golden_file, path, only="op/batch_norm/*")
    failed = {r.path for r in report.failures}
    expected = {f"{c.name}/outputs/running_var" for c in golden.read_cases(golden_file, only="op/batch_norm/*")
                if c.params["training"]}
    assert failed == expected and expected
