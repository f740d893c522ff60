"""cupy.cuda of the stand-in: one device (id 0, compute capability 9.0, 80 GiB), its streams.

``Device().synchronize()``, ``Stream.synchronize()`` and ``runtime.deviceSynchronize()`` wait
for the device: each counts a ``synchronize`` transfer event. Device ids other than 0 raise
CUDARuntimeError, as CUDA does for an ordinal past the device count.
"""
from __future__ import annotations

from . import memory, products, transfers

DEVICE_COUNT = 1
TOTAL_MEMORY = 80 * 2**30
DEVICE_NAME = "CuPy stand-in (NumPy on the host)"


class CUDARuntimeError(RuntimeError):
    """cupy_backends.cuda.api.runtime.CUDARuntimeError."""


def _check_id(device_id) -> int:
    device_id = int(device_id)
    if not 0 <= device_id < DEVICE_COUNT:
        raise CUDARuntimeError("cudaErrorInvalidDevice: invalid device ordinal")
    return device_id


class Device:
    """cupy.cuda.Device (only device 0 exists)."""

    def __init__(self, device=None):
        self.id = _check_id(0 if device is None else device)

    def __repr__(self):
        return f"<CUDA Device {self.id}>"

    def __eq__(self, other):
        return isinstance(other, Device) and other.id == self.id

    def __hash__(self):
        return hash(("Device", self.id))

    def __int__(self):
        return self.id

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def use(self):
        return None

    @property
    def compute_capability(self) -> str:
        return products.COMPUTE_CAPABILITY

    @property
    def mem_info(self):
        return TOTAL_MEMORY - memory.default_pool.total_bytes(), TOTAL_MEMORY

    @property
    def pci_bus_id(self):
        return "0000:00:00.0"

    def synchronize(self):
        transfers.record("synchronize", "Device.synchronize")


class Stream:
    """cupy.cuda.Stream: work is already done when a stand-in call returns."""

    null = None  # set below

    def __init__(self, null=False, non_blocking=False, ptds=False, priority=None):
        self.ptr = 0 if null else id(self)
        self.is_non_blocking, self.ptds, self.priority = non_blocking, ptds, priority or 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def use(self):
        return self

    @property
    def done(self) -> bool:
        return True

    def synchronize(self):
        transfers.record("synchronize", "Stream.synchronize")


Stream.null = Stream(null=True)


def get_current_stream(device_id=None):
    return Stream.null


def get_device_id() -> int:
    return 0


def is_available() -> bool:
    return True


# cupy.cuda.runtime
def getDeviceCount() -> int:
    return DEVICE_COUNT


def getDevice() -> int:
    return 0


def setDevice(device) -> None:
    _check_id(device)


def deviceSynchronize() -> None:
    transfers.record("synchronize", "runtime.deviceSynchronize")


def runtimeGetVersion() -> int:
    return 13000


def driverGetVersion() -> int:
    return 13000


def memGetInfo():
    return Device(0).mem_info


def getDeviceProperties(device) -> dict:
    _check_id(device)
    return {"name": DEVICE_NAME.encode(), "totalGlobalMem": TOTAL_MEMORY, "major": 9, "minor": 0,
            "multiProcessorCount": 132, "warpSize": 32, "maxThreadsPerBlock": 1024,
            "clockRate": 1_755_000, "memoryClockRate": 2_619_000, "memoryBusWidth": 5120,
            "l2CacheSize": 50 * 2**20, "pciBusID": 0, "pciDeviceID": 0, "pciDomainID": 0}


MemoryHook = memory.MemoryHook
MemoryPool = memory.MemoryPool
PinnedMemoryPool = memory.MemoryPool
OutOfMemoryError = memory.OutOfMemoryError
