"""Layer 6. Golden vectors: float64 ground truth for other implementations of GEE to check
against, and the comparison ``python -m gee_ref.verify`` makes (``compare``). May import layers 1-6.

    python -m gee_ref.golden --out golden.h5 [--seed S]      write every case
    python -m gee_ref.golden --list [--golden golden.h5]     list the cases (name, description)

The cases (each a group of the HDF5 file, see ``fileformat``):

* ``op/...``: every op of ``gee_ref.autograd.functional`` under several settings (``op_cases``):
  inputs, parameters, the output, an upstream gradient and the input gradients;
* ``network/...``: the digits net and genetic ResNet basic blocks over T steps
  (``network_cases``): inputs, every parameter by name, outputs, loss, every gradient;
* ``lowrank/...``: a dense weight compressed to genetic form, eq. 6-8 (``lowrank_cases``);
* ``cmaes/...``: 10-generation CMA-ES trajectories driven by stored N(0, I) samples
  (``cmaes_cases``);
* ``fitness/...``: R_T, R_S and the dynamic fitness, eq. 13-16 (``fitness_cases``).

Every case draws its random numbers from its own generator, seeded from (seed, case name):
a file is a deterministic function of the seed, and adding a case changes no other.

For implementers: ``read_cases(path)`` yields each ``Case`` (inputs, upstream, params,
conventions); run your code, collect ``{case.path("outputs", t): array, ...}`` for every
``t`` of ``case.outputs`` and ``case.grads``, ``write_candidate(path, tensors)``, then
``python -m gee_ref.verify --golden golden.h5 --candidate yours.h5``.
"""
from __future__ import annotations

from gee_ref import backend
from gee_ref.verification.case import Case
from gee_ref.verification.cmaes_cases import CMAES_CASES
from gee_ref.verification.fileformat import (CANDIDATE_FORMAT, FORMAT, GoldenFileError, matches, read_cases,
                                             write_candidate, write_golden)
from gee_ref.verification.fitness_cases import FITNESS_CASES
from gee_ref.verification.lowrank_cases import LOWRANK_CASES
from gee_ref.verification.network_cases import NETWORK_CASES
from gee_ref.verification.op_cases import OP_CASES

DEFAULT_SEED = 0


def case_builders() -> dict:
    """Every case name -> its builder ``(name, rng) -> Case``, in file order."""
    return {**OP_CASES, **NETWORK_CASES, **LOWRANK_CASES, **CMAES_CASES, **FITNESS_CASES}


def build_cases(seed: int = DEFAULT_SEED, only=None) -> list:
    """Compute the cases (all, or those whose name matches ``only``) for ``seed``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    cases = []
    for name, build in case_builders().items():
        if only is not None and not matches(name, only):
            continue
        cases.append(build(name, backend.rng(backend.derive_seed("gee_ref.golden", seed, name))))
    return cases


def generate(path, seed: int = DEFAULT_SEED, only=None, replace: bool = True) -> list:
    """Build the cases and write them to ``path`` (replacing a file there only if ``replace``);
    returns the cases."""
    cases = build_cases(seed, only)
    if not cases:
        raise ValueError(f"no golden case matches {only!r}")
    write_golden(path, cases, seed, replace)
    return cases


__all__ = ["CANDIDATE_FORMAT", "Case", "DEFAULT_SEED", "FORMAT", "GoldenFileError", "build_cases",
           "case_builders", "generate", "read_cases", "write_candidate", "write_golden"]
