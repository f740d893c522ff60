"""SpikingJelly's LIFNode against gee_ref's golden LIF cases (DESIGN.md section 3).

DESIGN.md states that gee_ref's LIF (tau=2, v_th=1, v_reset=0, hard reset, decay_input,
sigmoid surrogate alpha=4, detach_reset off) is SpikingJelly's
``neuron.LIFNode(tau=2., decay_input=True, v_threshold=1., v_reset=0.,
surrogate_function=surrogate.Sigmoid(alpha=4.))``. Here that is a tested fact: the node runs
on the golden inputs (float64, multi-step) and its spikes and input gradients are verified
with gee_ref.verify at rtol 1e-10, for detach_reset off and on, and for the atan surrogate.
"""
import pytest

torch = pytest.importorskip("torch")
neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
surrogate = pytest.importorskip("spikingjelly.activation_based.surrogate")

from gee_ref.verification import compare as verify
from gee_ref import verification as golden  # noqa: E402

SURROGATES = {"sigmoid": lambda alpha: surrogate.Sigmoid(alpha=alpha),
              "atan": lambda alpha: surrogate.ATan(alpha=alpha)}
CASES = ("op/lif/hard_sigmoid", "op/lif/hard_sigmoid_detach_reset", "op/lif/hard_atan",
         "op/lif/hard_atan_tau1.5_vth0.8_vreset-0.2")


@pytest.fixture(scope="module")
def golden_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("golden") / "golden.h5"
    golden.generate(path, seed=3, only="op/lif/hard_*")
    return path


def run_lifnode(case):
    p = case.params
    node = neuron.LIFNode(tau=p["tau"], decay_input=True, v_threshold=p["v_th"], v_reset=p["v_reset"],
                             surrogate_function=SURROGATES[p["surrogate"]](p["alpha"]),
                             detach_reset=p["detach_reset"], step_mode="m")
    x = torch.tensor(case.inputs["x_seq"], dtype=torch.float64, requires_grad=True)
    spikes = node(x)
    spikes.backward(torch.tensor(case.upstream["y"], dtype=torch.float64))
    return {case.path("outputs", "y"): spikes.detach().numpy(), case.path("grads", "x_seq"): x.grad.numpy()}


def test_lifnode_matches_golden(golden_file, tmp_path):
    tensors, seen = {}, []
    for case in golden.read_cases(golden_file):
        if case.name in CASES:
            assert case.conventions["lif_reset"] == "hard" and not case.params["soft"]
            tensors.update(run_lifnode(case))
            seen.append(case.name)
    assert sorted(seen) == sorted(CASES)
    path = tmp_path / "spikingjelly.h5"
    golden.write_candidate(path, tensors, implementation="spikingjelly LIFNode")
    for name in CASES:
        report = verify.verify(golden_file, path, only=f"{name}/*")
        assert report.passed and len(report.rows) == 2, report.table()


def test_a_soft_reset_node_is_caught(golden_file, tmp_path):
    """v_reset=None (SpikingJelly's soft reset, V -= v_th) is not gee_ref's hard reset: verify says so."""
    case = next(c for c in golden.read_cases(golden_file) if c.name == "op/lif/hard_sigmoid")
    node = neuron.LIFNode(tau=2.0, decay_input=True, v_threshold=1.0, v_reset=None,
                             surrogate_function=surrogate.Sigmoid(alpha=4.0), step_mode="m")
    x = torch.tensor(case.inputs["x_seq"], dtype=torch.float64, requires_grad=True)
    spikes = node(x)
    spikes.backward(torch.tensor(case.upstream["y"], dtype=torch.float64))
    path = tmp_path / "soft_reset.h5"
    golden.write_candidate(path, {case.path("outputs", "y"): spikes.detach().numpy(),
                                  case.path("grads", "x_seq"): x.grad.numpy()})
    report = verify.verify(golden_file, path, only="op/lif/hard_sigmoid/")
    assert not report.row(case.path("grads", "x_seq")).passed
