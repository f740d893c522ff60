"""Where a population's evaluations run: here, one after another, or on Dask distributed
(DESIGN.md section 6; no equation of the paper).

An executor has one method that matters::

    results = executor.map(fn, list_of_args, on_result=None)   # results[i] = fn(list_of_args[i])

and ``close()``. ``on_result(i, result)`` is called as each result arrives (in completion
order, for a progress bar); the returned list is always in argument order. Because every
evaluation seeds itself from (run seed, generation, index) (``backend.derive_seed``), its result
does not depend on the executor, the worker or the order of completion: a Dask run gives the
same numbers as a serial one.

Dask is optional (``pip install gee_ref[dask]``). ``DaskExecutor`` connects to a running
scheduler (``address``) or starts a ``LocalCluster`` of ``workers`` processes with one thread
each: an evaluation already keeps the cores of its worker busy (BLAS on the CPU, the GPU), so
more threads per worker would only contend.
"""
from __future__ import annotations

from gee_ref.evolution.evaluation import evaluate_individual, evaluate_population

EXECUTORS = ("serial", "dask", "batched")


class ExecutorUnavailableError(OSError):
    """Dask is not installed, or its scheduler cannot be reached; the message is one line."""


class SerialExecutor:
    """Runs each call in this process, in order."""

    name = "serial"

    def map(self, fn, args_list, on_result=None) -> list:
        results = []
        for i, args in enumerate(args_list):
            result = fn(args)
            results.append(result)
            if on_result is not None:
                on_result(i, result)
        return results

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class BatchedExecutor(SerialExecutor):
    """Evaluates a whole population in one call, in this process (``evaluation.evaluate_population``).

    ``map(evaluate_individual, tasks)`` becomes ``evaluate_population(tasks)``: the generation's
    networks are stacked and trained together. Its records equal the serial ones up to rounding
    (float32: about 1e-7 relative), so a run may differ from a serial one where two fitness
    values nearly tie. Any other function runs serially.
    """

    name = "batched"

    def map(self, fn, args_list, on_result=None) -> list:
        if fn is not evaluate_individual:
            return super().map(fn, args_list, on_result)
        results = evaluate_population(args_list)
        if on_result is not None:
            for i, result in enumerate(results):
                on_result(i, result)
        return results


class DaskExecutor:
    """Submits each call to a Dask distributed cluster and gathers the results in order.

    ``address``: a scheduler to connect to ("tcp://host:8786"), waited for at most
    ``timeout`` seconds; without it a LocalCluster of ``workers`` single-threaded worker
    processes is started (``processes=False`` keeps it in this process: tests only).
    """

    name = "dask"

    def __init__(self, address=None, workers=None, timeout=10.0, processes=True):
        try:
            import distributed
        except ImportError:
            raise ExecutorUnavailableError(
                "--executor dask needs Dask distributed (pip install gee_ref[dask])") from None
        if workers is not None and (int(workers) != workers or workers < 1):
            raise ValueError(f"workers must be a positive integer, got {workers!r}")
        self._distributed = distributed
        self._cluster = None
        if address is not None:
            try:
                self.client = distributed.Client(address, timeout=f"{float(timeout)}s")
            except (OSError, TimeoutError) as error:
                first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
                raise ExecutorUnavailableError(
                    f"cannot reach the Dask scheduler at {address} within {timeout:g} s ({first_line})") from None
        else:
            self._cluster = distributed.LocalCluster(
                n_workers=int(workers or 1), threads_per_worker=1, processes=processes,
                dashboard_address=None)
            self.client = distributed.Client(self._cluster)

    def map(self, fn, args_list, on_result=None) -> list:
        futures = [self.client.submit(fn, args, pure=False) for args in args_list]
        position = {future.key: i for i, future in enumerate(futures)}
        results = [None] * len(futures)
        try:
            for future in self._distributed.as_completed(futures):
                i = position[future.key]
                results[i] = future.result()  # re-raises a worker's exception here
                if on_result is not None:
                    on_result(i, results[i])
        finally:
            for future in futures:
                future.release()
        return results

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def make_executor(kind="serial", address=None, workers=None, timeout=10.0):
    """The executor named by ``kind`` ("serial", "dask" or "batched"), see the classes above."""
    if kind in ("serial", "batched"):
        if address is not None:
            raise ValueError("a Dask scheduler address needs --executor dask")
        return SerialExecutor() if kind == "serial" else BatchedExecutor()
    if kind == "dask":
        return DaskExecutor(address=address, workers=workers, timeout=timeout)
    raise ValueError(f"unknown executor {kind!r}: expected one of {', '.join(EXECUTORS)}")
