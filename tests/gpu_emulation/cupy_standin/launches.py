"""Counters of the kernels a GPU would launch for the stand-in's array operations, and of the
array elements they read and write (their passes over device memory), as CuPy runs them.

Counted, by kind:

- ``elementwise``: a ufunc call (and so every arithmetic operator): one kernel, reading each
  array operand and writing its output;
- ``reduction``: ``ndarray.sum``, ``mean``, ``max``, ``min``, ``prod``, ``all``, ``any``,
  ``argmax``, ``argmin``: one kernel reading the array and writing the result;
- ``copy``: ``ndarray.copy``, and ``cupy.array``/``asarray``/``ascontiguousarray`` of a device array
  when they copy it (another dtype or layout): one kernel reading and writing every element;
- ``matmul``: ``cupy.matmul``, ``cupy.dot``, ``ndarray.dot`` and ``@``: one cuBLAS call (a
  strided-batched GEMM for more than two dimensions), reading both operands, writing the product;
- ``einsum``, by CuPy 14's own route (cupy/linalg/_einsum.py): with one operand, one reduction;
  with two, each operand is transposed to [batch, kept, contracted] and reshaped (a copy when
  that view cannot be reshaped in place), then multiplied by one batched matmul.

Other module-level functions (``cupy.sum(x)``...) are not counted: this is a measure for
comparing two ways of writing one computation, not a profile of a whole program.
"""
from __future__ import annotations

import contextlib
import threading

KINDS = ("elementwise", "reduction", "copy", "matmul")
_lock = threading.Lock()
_active: list = []  # the Counted objects of the counting() blocks now open


class Counted:
    """What a counting() block saw: ``kernels`` and ``elements`` (read + written) per kind."""

    def __init__(self):
        self.kernels = dict.fromkeys(KINDS, 0)
        self.elements = dict.fromkeys(KINDS, 0)

    @property
    def total_kernels(self) -> int:
        return sum(self.kernels.values())

    @property
    def total_elements(self) -> int:
        return sum(self.elements.values())

    def __repr__(self):
        return f"Counted(kernels={self.kernels}, elements={self.elements})"


def record(kind: str, elements: int) -> None:
    """One kernel of ``kind`` touching ``elements`` array elements (each read or write counted)."""
    if kind not in KINDS:
        raise ValueError(f"unknown launch kind {kind!r}: expected one of {', '.join(KINDS)}")
    with _lock:
        for seen in _active:
            seen.kernels[kind] += 1
            seen.elements[kind] += int(elements)


@contextlib.contextmanager
def counting():
    """``with counting() as seen:`` -> ``seen.kernels``, ``seen.elements`` of that block."""
    seen = Counted()
    with _lock:
        _active.append(seen)
    try:
        yield seen
    finally:
        with _lock:
            _active.remove(seen)
