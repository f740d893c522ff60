"""HDF5 files built in memory, then written atomically (no equation of the paper).

h5py writing straight to disk cannot survive a full disk: when HDF5 fails to write while
it closes the file, the process can die with SIGSEGV and leave its temporary file behind.
So every HDF5 file gee_ref writes is built in a ``BytesIO`` (h5py's file-object driver),
and only its finished bytes go to disk, with plain file I/O (``gee_ref.storage.atomic``):
a full disk is then an ordinary ``DiskFullError``, and the previous file stays intact.

Measured on a dense ResNet-19 checkpoint (model and AdamW moments, 152.6 MB): the
file-object driver built the image in 137 ms with 158 MB of extra memory, HDF5's in-memory
"core" driver plus ``get_file_image`` in 279 ms with 303 MB (it copies the image once more).

    with writing_hdf5(path, what="checkpoint") as h5:
        h5.attrs["format"] = ...
        h5.create_dataset("w", data=array)
"""
from __future__ import annotations

import contextlib
import io

import h5py

from gee_ref.storage import atomic


@contextlib.contextmanager
def writing_hdf5(path, what: str = "HDF5 file", replace: bool = True, **file_options):
    """Yield a new, empty ``h5py.File`` held in memory; when the block ends without an
    error, its bytes replace ``path`` atomically (``atomic.write_bytes``, which explains
    ``what`` and ``replace``). ``file_options`` go to ``h5py.File`` (e.g. track_order).
    After an error nothing is written."""
    image = io.BytesIO()
    with h5py.File(image, "w", **file_options) as h5:
        yield h5
    atomic.write_bytes(path, image.getbuffer(), what=what, replace=replace)
