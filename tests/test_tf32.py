"""backend.set_tf32: TF32 tensor-core products on the GPU, an explicit option that is off by default."""
import numpy
import pytest

from gee_ref import backend

requires_gpu = pytest.mark.skipif(not backend.gpu_available(), reason="needs CuPy and a CUDA GPU")


@pytest.mark.skipif(backend.gpu_available(), reason="checks the machine without a GPU")
def test_tf32_without_a_gpu_is_a_clear_error():
    assert backend.tf32_enabled() is False
    with pytest.raises(backend.DeviceUnavailableError, match="TF32 is a GPU option"):
        backend.set_tf32(True)


@requires_gpu
def test_tf32_is_off_by_default_and_rounds_products_when_on():
    cupy = backend.xp_for("gpu")
    rng = numpy.random.default_rng(0)
    a, b = rng.standard_normal((256, 512)), rng.standard_normal((512, 256))
    exact = a @ b
    a32, b32 = cupy.asarray(a, dtype=cupy.float32), cupy.asarray(b, dtype=cupy.float32)
    assert backend.tf32_enabled() is False

    def error():
        return float(numpy.abs(backend.to_host(a32 @ b32) - exact).max() / numpy.abs(exact).max())

    strict = error()
    backend.set_tf32(True)
    try:
        assert backend.tf32_enabled() is True
        tf32 = error()
    finally:
        backend.set_tf32(False)
    assert backend.tf32_enabled() is False
    assert strict < 1e-5              # float32 products: about 2^-24 per term
    assert 1e-5 < tf32 < 1e-2         # TF32: inputs rounded to a 10-bit mantissa (2^-11)
    assert error() == strict          # switched back: the same strict result again
