"""The stand-in's module objects: ``cupy`` and the submodules gee_ref and its tests import.

Each is a StrictModule: a name CuPy 14.2 does not have (per cupy_names.json) is an
AttributeError, even where NumPy has it (``cupy.float128``, ``cupy.random.Generator.normal``),
so NumPy-only code called through ``xp`` fails here as on a GPU. A name CuPy has is NumPy's
function, ufunc, type or constant of that name on device arrays (functions.py, ufuncs.py),
or the stand-in's own (creation, random_generator, cuda_device, raw_module); a CuPy name
with neither is a NotEmulated placeholder that raises NotImplementedError when used, never
a silent NumPy call.
"""
from __future__ import annotations

import types

import numpy

from . import (creation, cuda_device, einsum_count, functions, linalg_functions, memory, names, products,
               random_generator, raw_module, ufuncs)
from .ndarray import ndarray


class NotEmulated:
    """A CuPy name the stand-in does not provide: any use is a NotImplementedError."""

    def __init__(self, qualified_name: str):
        self._name = qualified_name

    def _refuse(self, *args, **kwargs):
        raise NotImplementedError(f"{self._name} exists in CuPy {names.CUPY_VERSION} but the CuPy stand-in does not "
                                  "emulate it (add it to tests/gpu_emulation/cupy_standin if gee_ref needs it)")

    __call__ = _refuse

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self._refuse()

    def __repr__(self):
        return f"<not emulated: {self._name}>"


class StrictModule(types.ModuleType):
    """A module exposing only the names of one snapshot section, resolved on first use."""

    def __init__(self, name: str, section: str | None, resolve=None, **explicit):
        super().__init__(name)
        self._section, self._resolve = section, resolve
        for key, value in explicit.items():
            setattr(self, key, value)

    def __getattr__(self, attribute):
        if attribute.startswith("__") or self._section is None or not names.has(self._section, attribute):
            raise AttributeError(f"module '{self.__name__}' has no attribute '{attribute}' "
                                 f"(not a name of CuPy {names.CUPY_VERSION}: the CuPy stand-in refuses it)")
        value = self._resolve(attribute) if self._resolve else None
        if value is None:
            value = NotEmulated(f"{self.__name__}.{attribute}")
        setattr(self, attribute, value)
        return value

    def __dir__(self):
        listed = set(names.names(self._section)) if self._section else set()
        return sorted(listed | set(self.__dict__))


_EXCEPTIONS = {n: getattr(numpy.exceptions, n) for n in dir(numpy.exceptions) if not n.startswith("_")}
_CONSTANTS = {"Inf": numpy.inf, "Infinity": numpy.inf, "infty": numpy.inf, "PINF": numpy.inf, "NINF": -numpy.inf,
              "NAN": numpy.nan, "NaN": numpy.nan, "PZERO": 0.0, "NZERO": -0.0}


def _resolver(section: str, numpy_module):
    def resolve(name):
        kind = names.kind(section, name)
        found = getattr(numpy_module, name, _missing)
        if kind == "ufunc":
            if isinstance(found, numpy.ufunc):
                return ufuncs.get(name)
            return None if found is _missing else functions.elementwise(section, name, found)
        if kind == "function":
            return None if found is _missing or not callable(found) else functions.from_numpy(section, name, found)
        if kind == "type":
            return found if isinstance(found, type) else _EXCEPTIONS.get(name)
        if kind == "constant":
            return found if found is not _missing else _CONSTANTS.get(name)
        return None
    return resolve


_missing = object()

linalg = StrictModule(
    "cupy.linalg", "cupy.linalg", _resolver("cupy.linalg", numpy.linalg),
    matmul=linalg_functions.matmul, LinAlgError=numpy.linalg.LinAlgError)

random_module = StrictModule("cupy.random", "cupy.random", None,
                             default_rng=random_generator.default_rng, Generator=random_generator.Generator)

runtime = StrictModule("cupy.cuda.runtime", "cupy.cuda.runtime", None, **{
    n: getattr(cuda_device, n) for n in ("getDeviceCount", "getDevice", "setDevice", "deviceSynchronize",
                                  "runtimeGetVersion", "driverGetVersion", "memGetInfo", "getDeviceProperties",
                                  "CUDARuntimeError")})

memory_module = StrictModule("cupy.cuda.memory", "cupy.cuda.memory", None, OutOfMemoryError=memory.OutOfMemoryError,
                             MemoryPool=memory.MemoryPool, PinnedMemoryPool=memory.MemoryPool)

cuda_module = StrictModule("cupy.cuda", "cupy.cuda", None, runtime=runtime, memory=memory_module, **{
    n: getattr(cuda_device, n) for n in ("Device", "Stream", "MemoryHook", "MemoryPool", "PinnedMemoryPool",
                                  "get_current_stream", "get_device_id", "is_available")})

routines_linalg = StrictModule("cupy._core._routines_linalg", "cupy._core._routines_linalg", None,
                               get_compute_type=products.get_compute_type, set_compute_type=products.set_compute_type,
                               **products.COMPUTE_TYPES)
core_module = StrictModule("cupy._core", None, None, _routines_linalg=routines_linalg)

cupy = StrictModule(
    "cupy", "cupy", _resolver("cupy", numpy),
    __version__=names.CUPY_VERSION, __file__=__file__, ndarray=ndarray, ufunc=ufuncs.ufunc,
    linalg=linalg, random=random_module, cuda=cuda_module, _core=core_module,
    array=creation.array, asarray=creation.asarray, asnumpy=creation.asnumpy,
    ascontiguousarray=creation.ascontiguousarray, asfortranarray=creation.asfortranarray,
    get_array_module=creation.get_array_module, matmul=linalg_functions.matmul, dot=linalg_functions.dot,
    einsum=einsum_count.einsum,
    get_default_memory_pool=lambda: memory.default_pool,
    get_default_pinned_memory_pool=lambda: memory.default_pinned_pool,
    is_available=lambda: True, RawModule=raw_module.RawModule, RawKernel=NotEmulated("cupy.RawKernel"),
    newaxis=None)

#: what sys.modules gets while the stand-in is installed
MODULES = {"cupy": cupy, "cupy.linalg": linalg, "cupy.random": random_module, "cupy.cuda": cuda_module,
           "cupy.cuda.runtime": runtime, "cupy.cuda.memory": memory_module, "cupy._core": core_module,
           "cupy._core._routines_linalg": routines_linalg}
