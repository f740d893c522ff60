"""gee_ref: a NumPy/CuPy reference implementation of GEE (genetically encoded spiking networks).

The folders are the layers of DESIGN.md section 2; a module imports only from its own layer or
the layers above it in this list (lower numbers), never in a cycle, and always at the top of
the file (inside a function only for an optional third-party package: cupy, dask, matplotlib,
torch, scikit-learn). ``tests/test_layers.py`` walks every import and holds the code to it.

    1  backend                                   NumPy or CuPy, devices, dtypes, seeds
    2  ops, kernels, init                        pure array math: the ops (forward/backward, one
                                                 equation each), their fused CUDA twins, the
                                                 initial values (eq. 6-9)
    3  autograd                                  the tape, the functional API, gradient checks
    4  nn, models                                modules and architectures
    5  optim, data, storage, measure, training   optimisers, datasets and loaders, files, what
                                                 is measured, the training loop and evaluation
    6  cmaes, evolution, runs, verification,     the method: CMA-ES, the genotype and its
       experiments                               fitness, the evolution, the runs behind the
                                                 commands, golden vectors, the reproduction
                                                 experiments
    7  cli and the commands train, evolve,       parse, check, call the library, print
       params, report, golden, verify, reproduce
"""
__version__ = "0.1.0"

#: Every package and top-level module of gee_ref, by layer (see the module docstring).
LAYERS = {
    "backend": 1,
    "ops": 2, "kernels": 2, "init": 2,
    "autograd": 3,
    "nn": 4, "models": 4,
    "optim": 5, "data": 5, "storage": 5, "measure": 5, "training": 5,
    "cmaes": 6, "evolution": 6, "runs": 6, "verification": 6, "experiments": 6,
    "cli": 7, "train": 7, "evolve": 7, "params": 7, "report": 7, "golden": 7, "verify": 7, "reproduce": 7,
}
