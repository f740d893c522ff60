"""A strict stand-in for CuPy 14.2 on NumPy: gee_ref's GPU code path, run without a GPU.

Its arrays wrap NumPy arrays but refuse what CuPy refuses (implicit conversion to NumPy, a
NumPy array where a device array is needed, a name CuPy does not have), and it counts every
host/device crossing a GPU would make (transfers.py), so that a mistake a GPU would reveal
shows up on a CPU machine and in CI. Use::

    from gpu_emulation.cupy_standin import installed, transfers
    with installed() as cupy, transfers.counting() as seen:
        ...                      # gee_ref with device="gpu"
    seen.counts, seen.host_syncs

or the whole test suite with ``GEE_REF_CUPY_STANDIN=1 python -m pytest tests``, or a command
line with ``python tests/gpu_emulation/cupy_standin/run.py -m gee_ref.train --device gpu ...``.
One module per concept: conversion (what crosses to NumPy), ndarray (with ndarray_operators and
ndarray_methods), indexing, ufuncs, functions/creation/linalg_functions (module-level names),
random_generator, cuda_device, memory,
products (TF32), raw_module (kernels through g++), names (the CuPy 14.2 snapshot),
namespace (the module objects), install.
"""
from . import transfers
from .install import install, installed, is_installed, uninstall
from .namespace import cupy

__all__ = ["cupy", "install", "installed", "is_installed", "transfers", "uninstall"]
