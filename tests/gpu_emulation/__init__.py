"""Test-only stand-ins for a GPU, so that gee_ref's CuPy path and its CUDA kernels are checked
on a machine without one:

- ``cupy_standin/``: a strict CuPy 14.2 on NumPy (``GEE_REF_CUPY_STANDIN=1`` for the test suite,
  ``python tests/gpu_emulation/cupy_standin/run.py -m ...`` for a command line);
- ``kernel_emulation.py`` and ``kernel_emulation.h``: the .cu kernels compiled by g++ and run
  thread after thread on NumPy arrays;
- ``nvrtc_ctypes.py``: NVRTC (CuPy's compiler) through ctypes, to compile the kernels without a GPU;
- ``kernel_cases.py``: the hypothesis cases shared by the emulated and the GPU kernel tests;
- the tests of the stand-in itself (``test_cupy_standin.py``) and the run of every GPU test on
  it (``test_gpu_tests_on_standin.py``).

Nothing in gee_ref imports this package.
"""
