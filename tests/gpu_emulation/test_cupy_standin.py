"""The strict CuPy stand-in (tests/gpu_emulation/cupy_standin): its refusals, gee_ref's GPU path
on it against the CPU path, and the host synchronisations a training step and an evaluation make.

Runs in plain CI: each test installs the stand-in only inside the ``cupy`` fixture, which puts
sys.modules back as it was (and under GEE_REF_CUPY_STANDIN=1 shares the session's install).
"""
import sys

import numpy as np
import pytest

from gpu_emulation import cupy_standin, kernel_emulation
from gpu_emulation.cupy_standin import launches, memory, names, products, transfers
from gee_ref import backend


@pytest.fixture
def cupy():
    with cupy_standin.installed() as module:
        yield module


# ---------------------------------------------------------------- installing

def test_installed_is_cupy_inside_and_leaves_no_trace():
    before = {k: v for k, v in sys.modules.items() if k == "cupy" or k.startswith("cupy.")}
    was_available = backend.gpu_available()
    with cupy_standin.installed() as module:
        import cupy

        assert cupy is module and backend.gpu_available() and backend.xp_for("gpu") is module
        assert type(module.zeros(2)).__module__ == "cupy" and backend.device_of(module.zeros(2)) == "gpu"
        from cupy._core import _routines_linalg  # what backend.set_tf32 imports

        assert _routines_linalg.get_compute_type(np.float32) == _routines_linalg.COMPUTE_TYPE_DEFAULT
    after = {k: v for k, v in sys.modules.items() if k == "cupy" or k.startswith("cupy.")}
    assert after == before and backend.gpu_available() == was_available


# ---------------------------------------------------------------- refusals

def test_no_implicit_conversion_to_numpy(cupy):
    a = cupy.arange(3.0)
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.array([a, a])
    np.testing.assert_array_equal(a.get(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(cupy.asnumpy(a), [0.0, 1.0, 2.0])


@pytest.mark.parametrize("operation", [
    lambda a, h: a + h, lambda a, h: h + a, lambda a, h: a * h[0:1], lambda a, h: a @ h,
    lambda a, h: np.add(a, h), lambda a, h: a.__iadd__(h), lambda a, h: a + h[0, ...],
])
def test_a_numpy_operand_is_a_type_error(cupy, operation):
    """CuPy's kernels take device arrays and scalars only; a NumPy array, even 0-d, is refused."""
    a, host = cupy.ones(3), np.ones(3)
    with pytest.raises(TypeError, match="Unsupported type|NotImplemented"):
        operation(a, host)


def test_scalars_and_0d_comparisons_are_accepted(cupy):
    a = cupy.arange(4.0)
    assert (a + 1).get().tolist() == [1.0, 2.0, 3.0, 4.0]
    assert (np.float32(2) * a).dtype == np.float64 and (2.0 * a.astype(np.float32)).dtype == np.float32
    assert (a < np.array(2.0)).get().tolist() == [True, True, False, False]  # __richcmp__: other.item()
    with pytest.raises(TypeError):
        a == None  # noqa: E711  (NumPy's ufunc finds no implementation, as with CuPy)
    with pytest.raises(TypeError):
        a + [1, 2, 3, 4]


def test_names_cupy_does_not_have_are_attribute_errors(cupy):
    assert names.CUPY_VERSION == "14.2.0"
    with pytest.raises(AttributeError, match="not a name of CuPy"):
        cupy.float128
    with pytest.raises(AttributeError):
        cupy.linalg.matrix_norm_of_numpy_only
    with pytest.raises(AttributeError):
        cupy.random.default_rng(0).normal(0.0, 1.0, 3)  # NumPy's Generator has normal, CuPy's not
    with pytest.raises(AttributeError):
        cupy.zeros(2).ctypes
    with pytest.raises(TypeError):
        range(cupy.asarray(3))  # no __index__ on a CuPy array: a device value is no Python index
    with pytest.raises(NotImplementedError, match="does not emulate"):
        cupy.fuse(lambda x: x)


def test_everything_the_standin_defines_is_a_cupy_name(cupy):
    """The stand-in adds no NumPy-only name of its own: its ndarray attributes and module
    attributes are all in the CuPy 14.2 snapshot."""
    defined = {n for klass in type(cupy.zeros(1)).__mro__[:-1] for n in vars(klass)}
    extra = {n for n in defined if not n.startswith("_") or n.startswith("__")} - set(names.names("cupy.ndarray"))
    assert extra <= {"__slots__", "__weakref__", "__module__", "__dict__", "__annotations__"}, extra
    assert "__index__" not in defined and "normal" not in dir(cupy.random.default_rng(0))
    for module, section in [(cupy, "cupy"), (cupy.linalg, "cupy.linalg"), (cupy.random, "cupy.random"),
                            (cupy.cuda, "cupy.cuda"), (cupy.cuda.runtime, "cupy.cuda.runtime")]:
        public = {n for n in vars(module) if not n.startswith("_")}
        assert public <= set(names.names(section)), public - set(names.names(section))


def test_numpy_only_keywords_are_type_errors(cupy):
    a = cupy.ones((2, 3))
    with pytest.raises(TypeError, match="unexpected keyword argument 'where'"):
        cupy.sum(a, where=a > 0)
    with pytest.raises(TypeError, match="Wrong arguments"):
        cupy.exp(a, where=a > 0)
    with pytest.raises(TypeError):
        a.clip(min=0.0)  # CuPy's ndarray.clip(a_min, a_max, out)
    with pytest.raises(TypeError, match="must be a cupy.ndarray"):
        cupy.mean([1.0, 2.0])  # CuPy calls the argument's method: a list has none


def test_numpy_functions_dispatch_to_cupy_or_fail(cupy):
    a = cupy.arange(4.0)
    assert isinstance(np.exp(a), cupy.ndarray) and isinstance(np.concatenate([a, a]), cupy.ndarray)
    assert isinstance(np.sum(a), cupy.ndarray) and np.sum(a).ndim == 0  # reductions give 0-d device arrays
    with pytest.raises(TypeError, match="no implementation found"):
        np.nanpercentile(a, 50)  # no such function in CuPy
    with pytest.raises(TypeError):
        np.add.reduce(a)  # CuPy's __array_ufunc__ serves only '__call__'


def test_indices_and_assigned_values_follow_cupys_rules(cupy):
    a = cupy.zeros(4)
    with transfers.counting() as seen:
        a[np.array([0, 1])] = np.array([5.0, 6.0])  # both copied to the device by core.array
        a[[2]] = 7.0
    assert a.get().tolist() == [5.0, 6.0, 7.0, 0.0]
    assert seen.counts["host_to_device"] == 3 and seen.host_syncs == 0
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[0:2] = np.ones(2)
    a[...] = np.array(1.5)  # a 0-d NumPy value is a scalar for fill
    assert a.get().tolist() == [1.5] * 4
    assert isinstance(a[1], cupy.ndarray) and a[1].ndim == 0


def test_host_reads_are_counted(cupy):
    a = cupy.arange(6.0)
    with transfers.counting() as seen:
        b = (a * 2).sum()
        assert seen.host_syncs == 0  # device work only
        float(b), bool(b > 0), b.item(), repr(b), a[a > 2], list(a)
    assert seen.counts == {"host_to_device": 0, "device_to_host": 0, "implicit_sync": 5, "synchronize": 0}
    with transfers.counting() as seen:
        cupy.cuda.Device().synchronize()
        a.get()
    assert seen.counts["synchronize"] == 1 and seen.counts["device_to_host"] == 1 and seen.host_syncs == 2


def test_memory_pool_counts_live_buffers(cupy):
    pool = cupy.get_default_memory_pool()
    pool.free_all_blocks()
    used = pool.used_bytes()
    a = cupy.empty(1000, dtype=np.float64)
    view = a[::2]
    assert pool.used_bytes() == used + memory.rounded(8000)
    del a
    assert pool.used_bytes() == used + memory.rounded(8000)  # the view keeps the buffer
    del view
    assert pool.used_bytes() == used and pool.total_bytes() >= used + 8000  # freed block kept
    pool.free_all_blocks()
    assert pool.total_bytes() == pool.used_bytes()


def test_kernel_launches_are_counted_as_cupy_runs_them(cupy):
    a = cupy.ones((4, 3, 10), dtype=np.float32)
    with launches.counting() as seen:
        b = a * 2.0          # elementwise: reads 120, writes 120
        b.sum(axis=(0, 2))   # one reduction: reads 120, writes 3
        b[:, 0].copy()       # a copy: 40 read, 40 written
        b[0] @ b[0].T        # one GEMM: 30 + 30 read, 9 written
    assert seen.kernels == {"elementwise": 1, "reduction": 1, "copy": 1, "matmul": 1}
    assert seen.elements == {"elementwise": 240, "reduction": 123, "copy": 80, "matmul": 69}
    with launches.counting() as seen:  # CuPy's einsum: [C, N*S] copies of both, then a batched GEMM
        cupy.einsum("ncs,ncs->c", a, b)
    assert seen.kernels == {"elementwise": 0, "reduction": 0, "copy": 2, "matmul": 1}
    with launches.counting() as seen:  # no copy where the transposed operand reshapes in place
        cupy.einsum("ij,jk->ik", a[0], b[0].T)
        cupy.einsum("ncs->c", a)
    assert seen.kernels == {"elementwise": 0, "reduction": 1, "copy": 0, "matmul": 1}


@pytest.mark.parametrize("shape", [(8, 3, 5, 5), (6, 4)])
def test_batch_norm_channel_sums_take_fewer_kernels_and_passes_than_einsum(cupy, shape):
    """ops.batch_norm._channel_sums on CuPy: the product and one reduction, no batched GEMM of
    C dot products (issue 13). For [N, C, H, W] CuPy's einsum also copies both operands; an
    [N, C] input it multiplies in place, in one GEMM (fewer elements read, but the batched dot)."""
    from gee_ref.ops.batch_norm import _channel_sums

    rng = np.random.default_rng(0)
    a_host, b_host = rng.standard_normal(shape), rng.standard_normal(shape)
    a, b = cupy.asarray(a_host), cupy.asarray(b_host)
    a3, b3 = (v.reshape(shape[0], shape[1], -1) for v in (a, b))
    with launches.counting() as by_einsum:
        cupy.einsum("ncs,ncs->c", a3, b3)
    with launches.counting() as by_sums:
        sums = _channel_sums(a, b)
    assert by_sums.kernels == {"elementwise": 1, "reduction": 1, "copy": 0, "matmul": 0}
    if len(shape) == 4:
        assert by_einsum.kernels == {"elementwise": 0, "reduction": 0, "copy": 2, "matmul": 1}
        assert by_sums.total_elements < by_einsum.total_elements
    else:
        assert by_einsum.kernels == {"elementwise": 0, "reduction": 0, "copy": 0, "matmul": 1}
    axes = (0,) + tuple(range(2, len(shape)))
    np.testing.assert_allclose(sums.get(), (a_host * b_host).sum(axis=axes), rtol=1e-12)
    np.testing.assert_allclose(_channel_sums(a).get(), a_host.sum(axis=axes), rtol=1e-12)


def test_batch_norm_channel_sums_keep_numpys_einsum():
    from gee_ref.ops.batch_norm import _channel_sums

    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 3, 4, 4)), rng.standard_normal((5, 3, 4, 4))
    np.testing.assert_array_equal(_channel_sums(a, b), np.einsum("ncs,ncs->c", a.reshape(5, 3, 16), b.reshape(5, 3, 16)))
    np.testing.assert_array_equal(_channel_sums(a), np.einsum("ncs->c", a.reshape(5, 3, 16)))
    assert _channel_sums(np.ones((0, 3, 2, 2))).tolist() == [0.0, 0.0, 0.0]


def test_tf32_rounds_float32_products(cupy):
    x = np.float32(1.0) + np.float32(2.0 ** -12)  # needs 12 mantissa bits
    assert products.round_to_tf32(np.array([x], np.float32))[0] == np.float32(1.0)
    a = cupy.asarray(np.full((1, 1), x, np.float32))
    assert float((a @ a)[0, 0]) != 1.0
    backend.set_tf32(True)
    try:
        assert backend.tf32_enabled() and float((a @ a)[0, 0]) == 1.0
    finally:
        backend.set_tf32(False)


def test_random_numbers_are_not_numpys_stream(cupy):
    drawn = backend.to_host(backend.rng(5, "gpu").standard_normal(4, dtype=np.float32))
    again = backend.to_host(backend.rng(5, "gpu").standard_normal(4, dtype=np.float32))
    np.testing.assert_array_equal(drawn, again)
    assert not np.allclose(drawn, np.random.default_rng(5).standard_normal(4, dtype=np.float32))


def test_raw_module_runs_a_kernel_on_device_arrays(cupy):
    kernel_emulation.gxx() or pytest.skip("g++ is needed to emulate raw kernels")
    source = ('extern "C" __global__ void twice(const double* x, double* y, long long n) {\n'
              '  for (long long i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += blockDim.x * gridDim.x)\n'
              '    y[i] = 2.0 * x[i];\n}\n')
    kernel = cupy.RawModule(code=source, options=("-DREAL=double",)).get_function("twice")
    x, y = cupy.arange(10.0), cupy.zeros(10)
    kernel((1,), (32,), (x, y, np.int64(10)))
    assert y.get().tolist() == [2.0 * i for i in range(10)]
    with pytest.raises(TypeError, match="Unsupported type"):
        kernel((1,), (32,), (np.arange(10.0), y, np.int64(10)))


def test_gee_ref_kernels_compile_on_the_standin_and_leave_no_cached_module():
    """compiler.kernel goes through cupy.RawModule; leaving installed() empties its caches, so that
    no stand-in kernel outlives the stand-in."""
    kernel_emulation.gxx() or pytest.skip("g++ is needed to emulate raw kernels")
    from gee_ref.kernels import compiler

    with cupy_standin.installed():
        assert compiler.kernel("lif.cu", "lif_forward", np.float32).name == "lif_forward"
        assert compiler._module.cache_info().currsize >= 1
    assert compiler._module.cache_info().currsize == 0 or cupy_standin.is_installed()


# ---------------------------------------------------------------- gee_ref's GPU path against its CPU path

def _digits(n_train=64, n_test=64):
    from gee_ref.data import datasets

    splits, _ = datasets.digits_splits()
    (x, y), (xt, yt) = splits["train"], splits["test"]
    return x[:n_train], y[:n_train], xt[:n_test], yt[:n_test]


def _digits_model(device):
    from gee_ref.models import build_model

    return build_model("digits", genetic=True, genes=16, num_classes=10, in_channels=1, image_size=8,
                       time_steps=2, seed=1, device=device)


def _trained(device, steps):
    from gee_ref.data.loader import Loader
    from gee_ref.training import loop as training
    from gee_ref.training.optimizer import make_optimizer

    x, y, xt, yt = _digits()
    model = _digits_model(device)
    loader = Loader(x, y, 16, seed=0, device=device)
    result = training.train_steps(model, loader, make_optimizer(model, "sgd", lr=0.1), steps=steps)
    test = Loader(xt, yt, 16, shuffle=False, mean=loader.mean, std=loader.std, device=device)
    return model, result, training.evaluate(model, test, record=True)


@pytest.mark.parametrize("fused", [False, True], ids=["plain", "fused-kernels"])
def test_training_and_evaluation_on_gpu_match_cpu(cupy, fused):
    """On "gpu", with the plain xp ops or with gee_ref's fused CUDA kernels (LIF, im2col, col2im,
    batch norm: here compiled by g++ behind the stand-in's RawModule), the same numbers as on "cpu"."""
    from gee_ref import kernels
    from gee_ref.autograd.gradcheck import relative_difference

    if fused:
        kernel_emulation.gxx() or pytest.skip("g++ is needed to emulate raw kernels")
    cpu_model, cpu_result, cpu_eval = _trained("cpu", 3)
    with kernels.using(fused):
        gpu_model, gpu_result, gpu_eval = _trained("gpu", 3)
    assert gpu_result["loss"] == pytest.approx(cpu_result["loss"], rel=1e-5)
    for (name, p_cpu), (_, p_gpu) in zip(cpu_model.named_parameters(), gpu_model.named_parameters()):
        assert backend.device_of(p_gpu.data) == "gpu"
        # a bias just before batch norm has a zero gradient in exact arithmetic: its values are
        # rounding noise (~1e-9), which only an absolute floor can compare
        difference = np.abs(backend.to_host(p_gpu.data) - p_cpu.data).max()
        assert difference <= 1e-5 * np.abs(p_cpu.data).max() + 1e-7, (name, relative_difference(p_gpu.data, p_cpu.data))
    for key in ("loss", "accuracy", "spikes_per_sample", "temporal_difference"):
        assert gpu_eval[key] == pytest.approx(cpu_eval[key], rel=1e-5, abs=1e-7), key


@pytest.mark.parametrize("executor", ["serial", "batched"])
def test_an_evolution_generation_on_gpu_matches_cpu(cupy, tmp_path, executor):
    from gee_ref import evolve
    from gee_ref.cli.options import options_of
    from gee_ref.evolution.executors import make_executor
    from gee_ref.evolution.search import Evolution, read_log
    from gee_ref.runs.data import read_run_data
    from gee_ref.runs.evolution_run import OPTION_DEFAULTS, resolve_config

    data = read_run_data(None)
    records = {}
    for device in ("cpu", "gpu"):
        argv = ["--genes", "4", "--popsize", "4", "--eval-steps", "2", "--batch-size", "64", "--val-fraction",
                "0.05", "--generations", "1", "--device", device, "--executor", executor, "--no-progress"]
        config = resolve_config(options_of(evolve.build_parser().parse_args(argv), OPTION_DEFAULTS), data)
        out = tmp_path / device
        out.mkdir()
        run = Evolution(config, out, make_executor(executor), data.path)
        run.begin()
        run.run()
        (records[device],) = read_log(out / "log.jsonl")
    cpu, gpu = ([i["loss"] for i in records[d]["individuals"]] for d in ("cpu", "gpu"))
    np.testing.assert_allclose(gpu, cpu, rtol=1e-5)
    assert np.argsort(gpu).tolist() == np.argsort(cpu).tolist()


def test_cmaes_on_gpu_matches_cpu(cupy):
    from gee_ref.cmaes import CMAES

    def sphere(X):
        return (np.asarray(X) ** 2).sum(axis=1)

    cpu = CMAES(np.full(8, 1.0), 0.5, seed=2)
    gpu = CMAES(np.full(8, 1.0), 0.5, seed=2, backend="gpu")
    for _ in range(3):
        X = cpu.ask()
        assert isinstance(gpu.ask(), cupy.ndarray)
        cpu.tell(X, sphere(X))
        gpu.tell(cupy.asarray(X), sphere(X))
    np.testing.assert_allclose(backend.to_host(gpu.mean), cpu.mean, rtol=1e-9)
    assert gpu.sigma == pytest.approx(cpu.sigma, rel=1e-10)


# ---------------------------------------------------------------- host synchronisations

def test_one_host_sync_per_training_step(cupy):
    """training._step_summary reads loss, finiteness and accuracy back in one copy per step."""
    from gee_ref.data.loader import Loader
    from gee_ref.training import loop as training
    from gee_ref.training.optimizer import make_optimizer

    x, y, _, _ = _digits()
    model = _digits_model("gpu")
    loader = Loader(x, y, 16, seed=0, device="gpu")
    optimizer = make_optimizer(model, "sgd", lr=0.1)
    for steps in (1, 3):
        with transfers.counting() as seen:
            training.train_steps(model, loader, optimizer, steps=steps)
        assert seen.host_syncs == steps, seen.events
        assert seen.counts["host_to_device"] == 2 * steps  # the batch's images and labels


@pytest.mark.parametrize("record, syncs_per_pass", [(False, 2), (True, 21)])
def test_evaluation_syncs_once_per_pass_not_per_batch(cupy, record, syncs_per_pass):
    """Sums stay on the device until the pass ends: the count does not grow with the batches.
    (record=True reads 21 statistics at the end of the pass for the digits net's 3 LIF and
    3 weight layers.)"""
    from gee_ref.training import loop as training
    from gee_ref.data.loader import Loader

    _, _, xt, yt = _digits(n_test=64)
    model = _digits_model("gpu")
    for batch_size in (32, 8):  # 2 batches, then 8
        loader = Loader(xt, yt, batch_size, shuffle=False, device="gpu")
        with transfers.counting() as seen:
            training.evaluate(model, loader, record=record)
        assert seen.host_syncs == syncs_per_pass, (batch_size, seen.events)
