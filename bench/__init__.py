"""Benchmarks of gee_ref beside independent references (PyTorch eager, pycma): ``python -m bench``.

See ``bench/README.md`` for the command, what each figure means and the targets; the code
that runs them is ``bench.run`` (CLI, timing, report) and ``bench.cases_*`` (one benchmark
family each); ``bench.torch_reference`` is the PyTorch-user model.
"""
