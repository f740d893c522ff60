"""Peak memory of a run, as its report gives it (no equation of the paper).

GPU: the largest ``total_bytes()`` of CuPy's default memory pool seen by ``sample()`` (the
bytes the pool holds from the driver; the pool keeps freed blocks, so this is the pool's
high-water mark). CPU: ``resource.getrusage`` max RSS of the whole process (Python, NumPy and
the data included), which the kernel tracks itself. The two are different quantities, and the
report says which one it gives.
"""
from __future__ import annotations

import resource
import sys

from gee_ref import backend


class PeakMemory:
    """Peak memory of this process on the device it computes on (module docstring)."""

    def __init__(self, device: str):
        self.device = device
        self.peak_pool_bytes = 0

    def sample(self) -> None:
        if self.device == "gpu":
            pool = backend.xp_for("gpu").get_default_memory_pool()
            self.peak_pool_bytes = max(self.peak_pool_bytes, int(pool.total_bytes()))

    def report(self) -> dict:
        self.sample()
        if self.device == "gpu":
            return {"bytes": self.peak_pool_bytes, "mebibytes": self.peak_pool_bytes / 2**20,
                    "what": "peak of the CuPy default memory pool (bytes held on the GPU)"}
        max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        max_rss_bytes = max_rss if sys.platform == "darwin" else max_rss * 1024  # Linux: kilobytes
        return {"bytes": int(max_rss_bytes), "mebibytes": max_rss_bytes / 2**20,
                "what": "process max RSS (resource.getrusage, CPU run: host memory of the whole process)"}
