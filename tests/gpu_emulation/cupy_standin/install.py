"""Putting the stand-in in ``sys.modules`` as ``cupy`` (and taking it out again, leaving no trace).

``installed()`` is a context manager: inside it ``import cupy`` gives the stand-in and
``gee_ref.backend.gpu_available()`` is True; after it, every ``cupy*`` entry of
``sys.modules`` is what it was before (a real CuPy included), the cuBLAS compute type is
back at its default, and gee_ref's caches that may hold stand-in objects (the compiled
kernel modules, this thread's im2col scratch buffer for "cupy") are emptied. Nested uses
share the outer installation. ``install()`` alone is for a whole process (tests/conftest.py
with ``GEE_REF_CUPY_STANDIN=1``, run.py).
"""
from __future__ import annotations

import contextlib
import sys

from . import namespace, products

_saved: dict | None = None


def _is_cupy_name(name: str) -> bool:
    return name == "cupy" or name.startswith("cupy.") or name == "cupyx" or name.startswith("cupyx.")


def is_installed() -> bool:
    return sys.modules.get("cupy") is namespace.cupy


def install() -> None:
    """Make ``import cupy`` give the stand-in from now on."""
    global _saved
    if is_installed():
        return
    _saved = {name: module for name, module in sys.modules.items() if _is_cupy_name(name)}
    for name in _saved:
        del sys.modules[name]
    sys.modules.update(namespace.MODULES)
    _clear_gee_ref_caches()


def uninstall() -> None:
    """Put back the ``cupy*`` modules there were before install()."""
    global _saved
    if not is_installed():
        return
    for name in [n for n in sys.modules if _is_cupy_name(n)]:
        del sys.modules[name]
    sys.modules.update(_saved or {})
    _saved = None
    products.reset()
    _clear_gee_ref_caches()


@contextlib.contextmanager
def installed():
    """``with installed() as cupy:`` the stand-in is ``cupy`` inside the block only."""
    outer = is_installed()
    install()
    try:
        yield namespace.cupy
    finally:
        if not outer:
            uninstall()


def _clear_gee_ref_caches() -> None:
    compiler = sys.modules.get("gee_ref.kernels.compiler")
    if compiler is not None:
        compiler._module.cache_clear()
        compiler._kernel.cache_clear()
    im2col = sys.modules.get("gee_ref.ops.im2col")
    if im2col is not None:
        buffers = getattr(im2col._scratch, "buffers", {})
        for key in [k for k in buffers if k[0] == "cupy"]:
            del buffers[key]
