"""Save and load a CMA-ES run (HDF5), so that a resumed run continues bit for bit.

Everything that the next generation reads is stored: mean, sigma, sigma0, the per-coordinate
multipliers stds, the covariance object's arrays (C, B, D of the last lazy decomposition, or
diag(C) and D), both evolution paths, the counters, the termination settings and history, the
best solution, and the state of the host random generator (as JSON, PCG64's 128-bit integers
included). Floats are stored as float64, so nothing is rounded.

Formats: this module writes "gee_ref.cmaes/2". It also reads "gee_ref.cmaes/1" (before stds,
tolupsigma and tolfacupx existed): such a run continues bit for bit with stds = 1, the default
tolupsigma and tolfacupx, and, since the file holds no sigma0, the sigma at loading as sigma0
(the runaway-step criteria count from the resume on). Any other file is refused in one line.

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

FORMAT = "gee_ref.cmaes/2"
FORMAT_BEFORE_STDS = "gee_ref.cmaes/1"
_COUNTERS = ("generation", "evaluations", "eigen_updates", "eigen_evaluations", "nonfinite_evaluations")
_VECTORS = ("mean", "p_sigma", "p_c")
_THRESHOLDS = ("tolfun", "tolx", "max_condition", "tolupsigma", "tolfacupx")


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
    for name in _THRESHOLDS:
        attrs[name] = getattr(es, name)
    attrs["sigma0"] = numpy.float64(es.sigma0)
    attrs["sigma"] = numpy.float64(es.sigma)
    attrs["best_f"] = numpy.float64(es.best_f)
    for name in _COUNTERS:
        attrs[name] = int(getattr(es, name))
    attrs["rng_state"] = json.dumps(es.rng.bit_generator.state)
    for name in _VECTORS:
        h5.create_dataset(name, data=host(getattr(es, name)))
    h5.create_dataset("stds", data=host(es.stds))
    for name, array in es.covariance.state().items():
        h5.create_dataset(name, data=host(array))
    h5.create_dataset("best_x", data=es.best_x)
    h5.create_dataset("best_history", data=numpy.asarray(es.best_history, dtype=numpy.float64))
    h5.create_dataset("last_f", data=es.last_f)


def load_state(cls, path, backend=None):
    """A ``cls`` (CMAES) instance restored from ``path``, on ``backend`` or the saved device.

    A missing file is FileNotFoundError; any other unreadable file a ValueError naming it."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no CMA-ES state file at {path}")
    try:
        with h5py.File(path, "r") as h5:
            return _read(h5, cls, path, backend)
    except (OSError, KeyError, TypeError, ValueError) as error:
        if str(error).startswith(path):
            raise
        first_line = (str(error).splitlines() or [type(error).__name__])[0]
        raise ValueError(f"{path}: not a readable gee_ref CMA-ES state ({first_line})") from error


def _read(h5, cls, path, backend):
    attrs = h5.attrs
    found = attrs.get("format")
    if found not in (FORMAT, FORMAT_BEFORE_STDS):
        raise ValueError(f"{path} is not a gee_ref CMA-ES state file: format {found!r}, expected {FORMAT!r} "
                         f"or {FORMAT_BEFORE_STDS!r}")
    current = found == FORMAT
    maxiter = int(attrs["maxiter"])
    thresholds = {name: float(attrs[name]) for name in _THRESHOLDS if name in attrs}
    es = cls(h5["mean"][...], float(attrs["sigma0"] if current else attrs["sigma"]),
             popsize=int(attrs["popsize"]), seed=None, diagonal=bool(attrs["diagonal"]),
             active=bool(attrs["active"]), backend=backend or str(attrs["device"]),
             maxiter=None if maxiter < 0 else maxiter, stds=h5["stds"][...] if current else None,
             **thresholds)
    xp = es.xp
    es.seed = json.loads(attrs["seed"])
    es.sigma = float(attrs["sigma"])
    es.best_f = float(attrs["best_f"])
    for name in _COUNTERS:
        setattr(es, name, int(attrs[name]))
    es.rng.bit_generator.state = json.loads(attrs["rng_state"])
    for name in _VECTORS:
        setattr(es, name, xp.asarray(h5[name][...]))
    es.covariance.restore({name: h5[name][...] for name in es.covariance.state()})
    es.best_x = h5["best_x"][...]
    es.best_history = [float(v) for v in h5["best_history"][...]]
    es.last_f = h5["last_f"][...]
    return es
