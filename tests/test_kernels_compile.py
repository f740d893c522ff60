"""The fused kernels compile for the GPU as CuPy will compile them, checked without a GPU.

NVRTC (CuPy's default compiler, loaded through ctypes) builds each .cu file with the options
of ``gee_ref.kernels.compiler`` plus those CuPy adds (``-ftz=true``, the architecture), for
REAL=float and REAL=double and 32- and 64-bit indices: to PTX for compute_XX and to a CUBIN for
sm_XX (which also runs the assembler). nvcc, when present, compiles the same files to PTX as a second opinion.
Also here: the package ships its .cu files, and the launch geometry.
"""
from __future__ import annotations

import re

import numpy
import pytest

from gee_ref.kernels import compiler

from gpu_emulation import nvrtc_ctypes


KERNELS = {"lif.cu": ("lif_forward", "lif_backward"), "im2col.cu": ("im2col", "col2im"),
           "batch_norm.cu": ("bn_lane_moments", "bn_forward_statistics", "bn_normalise",
                             "bn_lane_gradient_sums", "bn_backward_totals", "bn_backward_dx")}
#: kernels that sum float data in double on purpose (batch_norm.cu's reduction stages)
WIDENING_KERNELS = {"bn_lane_moments", "bn_forward_statistics", "bn_lane_gradient_sums", "bn_backward_totals"}
#: kernels whose products and sums must stay separately rounded, as in the plain xp code
NO_FMA_KERNELS = {"lif.cu": ("lif_forward",), "batch_norm.cu": ("bn_normalise", "bn_backward_dx",
                                                                 "bn_forward_statistics")}
DTYPES = [numpy.float32, numpy.float64]
INDEX_TYPES = [numpy.int32, numpy.int64]
H100 = 90  # the GPU of the benchmarks; the newest supported architecture if NVRTC lacks it


@pytest.fixture(scope="module")
def nvrtc():
    library = nvrtc_ctypes.load_nvrtc()
    if library is None:
        pytest.skip("libnvrtc not found (pip install nvidia-cuda-nvrtc, or a CUDA toolkit)")
    return library


@pytest.fixture(scope="module")
def arch(nvrtc):
    supported = nvrtc_ctypes.supported_architectures(nvrtc)
    return H100 if H100 in supported else max(supported)


def _entries(ptx: str) -> set:
    return set(re.findall(r"\.entry\s+(\w+)\(", ptx))


@pytest.mark.parametrize("index", INDEX_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("file", compiler.SOURCES)
def test_nvrtc_compiles_every_kernel(nvrtc, arch, file, dtype, index):
    options = compiler.compile_options(dtype, index)
    ptx, log = nvrtc_ctypes.compile_with_nvrtc(nvrtc, compiler.source_text(file), file, options,
                                               f"compute_{arch}")
    ptx = ptx.rstrip(b"\0").decode()
    assert log.strip() == "", log  # no warnings either
    assert _entries(ptx) == set(KERNELS[file])  # extern "C": RawModule.get_function finds them by name
    if dtype == numpy.float32:
        # float data is never widened to double (a double math routine on float data would be
        # slow), except where batch_norm.cu sums in double on purpose
        for name in set(KERNELS[file]) - WIDENING_KERNELS:
            assert not re.search(r"cvt(\.\w+)*\.f64\.f32", _entry_body(ptx, name)), name
        for name in WIDENING_KERNELS & set(KERNELS[file]):  # and there the sums are in double
            assert re.search(r"\badd(\.rn)?\.f64", _entry_body(ptx, name)), name
    if index == numpy.int32:  # 32-bit indices: no 64-bit division or remainder left anywhere
        assert not re.search(r"\b(div|rem)\.[su]64\b", ptx)
    for name in NO_FMA_KERNELS.get(file, ()):
        # --fmad=false: e.g. h (1 - s) + v_reset s, gamma x_hat + beta stay two roundings, as in
        # the plain xp code
        assert not re.search(r"\bfma\.", _entry_body(ptx, name)), name
    cubin, _ = nvrtc_ctypes.compile_with_nvrtc(nvrtc, compiler.source_text(file), file, options, f"sm_{arch}")
    assert cubin[:4] == b"\x7fELF"


def _entry_body(ptx: str, name: str) -> str:
    """The PTX of one kernel: from its .entry line to the next .entry (or the end)."""
    start = ptx.index(f".entry {name}(")
    end = ptx.find(".entry ", start + 1)
    return ptx[start:] if end < 0 else ptx[start:end]


@pytest.mark.parametrize("options, message", [
    (("-DINDEX_BITS=32", "--fmad=false"), "compile with -DREAL=float or -DREAL=double"),
    (("-DREAL=float", "--fmad=false"), "compile with -DINDEX_BITS=32 or -DINDEX_BITS=64"),
    (("-DREAL=float", "-DINDEX_BITS=16"), "compile with -DINDEX_BITS=32 or -DINDEX_BITS=64")])
def test_the_element_and_index_types_must_be_given(nvrtc, arch, options, message):
    """Without -DREAL or -DINDEX_BITS every source stops with a message that says what to pass."""
    for file in compiler.SOURCES:
        with pytest.raises(AssertionError, match=message):
            nvrtc_ctypes.compile_with_nvrtc(nvrtc, compiler.source_text(file), file, options, f"compute_{arch}")


@pytest.mark.skipif(nvrtc_ctypes.nvcc() is None, reason="nvcc not found")
@pytest.mark.parametrize("index", INDEX_TYPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_nvcc_compiles_every_kernel(tmp_path, dtype, index):
    for file in compiler.SOURCES:
        source = tmp_path / file
        source.write_text(compiler.source_text(file))
        ptx = nvrtc_ctypes.compile_with_nvcc(source, compiler.compile_options(dtype, index), f"sm_{H100}", tmp_path)
        assert _entries(ptx) == set(KERNELS[file])


def test_the_package_ships_its_kernel_sources():
    for file, names in KERNELS.items():
        text = compiler.source_text(file)
        assert all(f'extern "C" __global__ void {name}(' in text for name in names)
        assert compiler.kernel_names(file) == names
    with pytest.raises(ValueError, match="unknown kernel file"):
        compiler.source_text("relu.cu")


def test_compile_options_and_element_types():
    assert compiler.compile_options(numpy.float32) == ("-DREAL=float", "-DINDEX_BITS=64", "--fmad=false")
    assert compiler.compile_options("float64", numpy.int32)[:2] == ("-DREAL=double", "-DINDEX_BITS=32")
    for bad in (numpy.float16, numpy.int64, "complex128"):
        with pytest.raises(ValueError, match="float32 and float64"):
            compiler.compile_options(bad)
    for bad in (numpy.int16, numpy.uint32, numpy.float32, "float64"):
        with pytest.raises(ValueError, match="numpy.int32 or numpy.int64"):
            compiler.compile_options(numpy.float32, bad)


def test_index_type_keeps_every_index_and_one_grid_stride_in_an_int():
    """32 bits up to 2**31 - 1 - MAX_BLOCKS x 256 (a thread's last index plus one grid stride)."""
    stride = compiler.MAX_BLOCKS * compiler.THREADS_PER_BLOCK
    assert compiler.index_type(0) is compiler.index_type(2**31 - 1 - stride) is numpy.int32
    assert compiler.index_type(2**31 - stride) is compiler.index_type(2**40) is numpy.int64


@pytest.mark.parametrize("count", [1, 255, 256, 257, 256 * compiler.MAX_BLOCKS, 256 * compiler.MAX_BLOCKS + 1, 2**40])
def test_launch_geometry_covers_any_count(count):
    blocks, threads = compiler.launch_geometry(count)
    assert threads == compiler.THREADS_PER_BLOCK == 256
    assert 1 <= blocks <= compiler.MAX_BLOCKS
    # either one element per thread (no thread idle for a whole block), or the grid-stride loop
    assert blocks * threads >= count > (blocks - 1) * threads or blocks == compiler.MAX_BLOCKS


def test_launch_runs_nothing_for_no_elements():
    calls = []
    compiler.launch(lambda *args: calls.append(args), 0, ())
    compiler.launch(lambda *args: calls.append(args), 3, ("a",))
    assert calls == [((1,), (256,), ("a",))]
    with pytest.raises(ValueError, match=">= 0"):
        compiler.launch_geometry(-1)
