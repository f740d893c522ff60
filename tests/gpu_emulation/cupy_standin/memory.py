"""The device memory the stand-in's arrays hold, as CuPy's default memory pool would report it.

Every buffer a stand-in array owns (the root ``base`` of its NumPy array) is counted from the
moment an array wraps it until the last array or view on it is garbage: ``used_bytes``. A
CuPy pool keeps freed blocks for reuse instead of returning them to the driver, so
``total_bytes`` (what the pool holds) only grows, to the high-water mark of ``used_bytes``,
until ``free_all_blocks()`` hands the unused part back. Sizes are rounded up to CuPy's
allocation unit of 512 bytes (cupy/cuda/memory.pyx ``_allocation_unit_size``). The idealised
part: a real pool reuses a freed block only for a request of the same size bin, so its
total can exceed this high-water mark.

``set_limit(size=...)`` makes an allocation past the limit raise ``OutOfMemoryError`` (a
``MemoryError``, as CuPy's), and ``cupy.cuda.MemoryHook`` subclasses entered with ``with``
see ``malloc_postprocess``/``free_postprocess`` calls with CuPy's keyword arguments.
"""
from __future__ import annotations

import itertools
import threading
import weakref

ALLOCATION_UNIT = 512


class OutOfMemoryError(MemoryError):
    """CuPy's cupy.cuda.memory.OutOfMemoryError, raised past the pool's limit."""

    def __init__(self, size, total, limit=0):
        super().__init__(f"Out of memory allocating {size:,} bytes (allocated so far: {total:,} bytes"
                         + (f", limit set to: {limit:,} bytes" if limit else "") + ").")


def rounded(nbytes: int) -> int:
    return -(-nbytes // ALLOCATION_UNIT) * ALLOCATION_UNIT


class MemoryPool:
    """cupy.cuda.MemoryPool's accounting for the stand-in's buffers."""

    def __init__(self):
        self._lock = threading.Lock()
        self._live: dict[int, int] = {}
        self._used = 0
        self._held = 0
        self._limit = 0
        self._ids = itertools.count(1)

    def used_bytes(self) -> int:
        return self._used

    def total_bytes(self) -> int:
        return self._held

    def free_bytes(self) -> int:
        return self._held - self._used

    def n_free_blocks(self) -> int:
        return 1 if self._held > self._used else 0

    def free_all_blocks(self, stream=None) -> None:
        with self._lock:
            self._held = self._used

    def set_limit(self, size=None, fraction=None) -> None:
        if fraction is not None:
            raise NotImplementedError("the stand-in has no device size: use set_limit(size=...)")
        self._limit = int(size or 0)

    def get_limit(self) -> int:
        return self._limit

    def track(self, array) -> None:
        """Count the buffer under a NumPy array, once, until nothing refers to it any more."""
        root = array
        while root.base is not None and hasattr(root.base, "base") and hasattr(root.base, "nbytes"):
            root = root.base
        key = id(root)
        if key in self._live:
            return
        size = rounded(root.nbytes)
        with self._lock:
            if self._limit and self._used + size > self._limit:
                raise OutOfMemoryError(size, self._used, self._limit)
            pointer = next(self._ids)
            self._live[key] = size
            self._used += size
            self._held = max(self._held, self._used)
        hooks.call("malloc_postprocess", device_id=0, size=size, mem_size=size, mem_ptr=pointer, pmem_id=key)
        weakref.finalize(root, self._release, key, size, pointer)

    def _release(self, key, size, pointer) -> None:
        with self._lock:
            if self._live.pop(key, None) is None:
                return
            self._used -= size
        hooks.call("free_postprocess", device_id=0, mem_size=size, mem_ptr=pointer, pmem_id=key)


class _Hooks:
    """The memory hooks entered with ``with hook:`` (cupy.cuda.memory_hook's thread-local list)."""

    def __init__(self):
        self.active: list = []

    def call(self, method: str, **kwargs) -> None:
        for hook in list(self.active):
            getattr(hook, method)(**kwargs)


hooks = _Hooks()


class MemoryHook:
    """cupy.cuda.MemoryHook: subclass it, override the *_postprocess methods, use it in ``with``."""

    name = "MemoryHook"

    def __enter__(self):
        hooks.active.append(self)
        return self

    def __exit__(self, *exc):
        hooks.active.remove(self)

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass


default_pool = MemoryPool()
default_pinned_pool = MemoryPool()
