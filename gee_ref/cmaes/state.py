"""Save and load a CMA-ES run (HDF5), so that a resumed run continues bit for bit.

Everything that the next generation reads is stored: mean, sigma, C (or its diagonal), the
eigensystem B, D of the last lazy decomposition, both evolution paths, the counters, the
termination history, the best solution, and the state of the host random generator (as JSON,
PCG64's 128-bit integers included). Floats are stored as float64, so nothing is rounded.

The file is written atomically (``gee_ref.storage.atomic``): a crash leaves either the old or the new
file, never half of one.
"""
from __future__ import annotations

import json
import os

import h5py
import numpy

from gee_ref.storage.hdf5_image import writing_hdf5
from gee_ref import backend as array_backend

FORMAT = "gee_ref.cmaes/1"
_COUNTERS = ("generation", "evaluations", "eigen_updates", "eigen_evaluations", "nonfinite_evaluations")
_VECTORS = ("mean", "D", "p_sigma", "p_c")


def save_state(es, path) -> None:
    """Write the state of the CMAES ``es`` to ``path`` atomically."""
    with writing_hdf5(path, what="CMA-ES state") as h5:
        _write(h5, es)


def _write(h5, es) -> None:
    host = array_backend.to_host
    attrs = h5.attrs
    attrs["format"] = FORMAT
    attrs["n"] = es.n
    attrs["popsize"] = es.popsize
    attrs["diagonal"] = es.diagonal
    attrs["active"] = es.params.active
    attrs["device"] = es.device
    attrs["seed"] = json.dumps(es.seed if isinstance(es.seed, (int, type(None))) else str(es.seed))
    attrs["maxiter"] = -1 if es.maxiter is None else es.maxiter
    attrs["tolfun"], attrs["tolx"], attrs["max_condition"] = es.tolfun, es.tolx, es.max_condition
    attrs["sigma"] = numpy.float64(es.sigma)
    attrs["best_f"] = numpy.float64(es.best_f)
    for name in _COUNTERS:
        attrs[name] = int(getattr(es, name))
    attrs["rng_state"] = json.dumps(es.rng.bit_generator.state)
    for name in _VECTORS:
        h5.create_dataset(name, data=host(getattr(es, name)))
    if es.diagonal:
        h5.create_dataset("diagonal_C", data=host(es.diagonal_C))
    else:
        h5.create_dataset("C", data=host(es.C))
        h5.create_dataset("B", data=host(es.B))
    h5.create_dataset("best_x", data=es.best_x)
    h5.create_dataset("best_history", data=numpy.asarray(es.best_history, dtype=numpy.float64))
    h5.create_dataset("last_f", data=es.last_f)


def load_state(cls, path, backend=None):
    """A ``cls`` (CMAES) instance restored from ``path``, on ``backend`` or the saved device."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no CMA-ES state file at {path}")
    with h5py.File(path, "r") as h5:
        attrs = h5.attrs
        if attrs.get("format") != FORMAT:
            raise ValueError(f"{path} is not a gee_ref CMA-ES state file (format {FORMAT!r})")
        maxiter = int(attrs["maxiter"])
        es = cls(h5["mean"][...], 1.0, popsize=int(attrs["popsize"]), seed=None,
                 diagonal=bool(attrs["diagonal"]), active=bool(attrs["active"]),
                 backend=backend or str(attrs["device"]),
                 maxiter=None if maxiter < 0 else maxiter, tolfun=float(attrs["tolfun"]),
                 tolx=float(attrs["tolx"]), max_condition=float(attrs["max_condition"]))
        xp = es.xp
        es.seed = json.loads(attrs["seed"])
        es.sigma = float(attrs["sigma"])
        es.best_f = float(attrs["best_f"])
        for name in _COUNTERS:
            setattr(es, name, int(attrs[name]))
        es.rng.bit_generator.state = json.loads(attrs["rng_state"])
        for name in _VECTORS:
            setattr(es, name, xp.asarray(h5[name][...]))
        if es.diagonal:
            es._diagonal_C = xp.asarray(h5["diagonal_C"][...])
        else:
            es._C = xp.asarray(h5["C"][...])
            es.B = xp.asarray(h5["B"][...])
        es.best_x = h5["best_x"][...]
        es.best_history = [float(v) for v in h5["best_history"][...]]
        es.last_f = h5["last_f"][...]
    return es
