"""Reading a tar archive in one pass, refusing one that was cut short or damaged.

Python's ``tarfile`` reads a truncated stream as the archive's end: a tar cut at a member
boundary, or a .tar.gz cut where the compressed stream happens to end a member, gives
fewer members and no error. ``tar_members`` therefore checks, on top of ``tarfile``:

- the compression layer: the gzip (bz2, xz) stream is read to its end-of-stream marker,
  which checks its CRC and length (Python's ``gzip``, ``bz2``, ``lzma`` readers);
- every member's data is complete (``tarfile`` checks the members it reads, and the last
  byte of each member it skips);
- the archive ends with its end-of-archive marker, two 512-byte blocks of zeros (POSIX).

Any failure is a ConversionError naming the archive and what is wrong.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib

from data_tools import ConversionError, one_line

BLOCK = 512
END_OF_ARCHIVE = 2 * BLOCK
_COMPRESSIONS = ((b"\x1f\x8b", "gzip", gzip.open), (b"BZh", "bzip2", bz2.open),
                 (b"\xfd7zXZ\x00", "xz", lzma.open))
_DAMAGE = (tarfile.TarError, OSError, EOFError, zlib.error, lzma.LZMAError)


class _Recording:
    """A read-only stream that remembers its position and the bytes from ``keep_from`` on."""

    def __init__(self, stream):
        self.stream = stream
        self.position = 0
        self.keep_from = None
        self.kept = bytearray()
        self.window = bytearray()  # the last bytes read, enough to cover tarfile's read-ahead

    def read(self, size=-1):
        data = self.stream.read(size)
        start = self.position
        self.position += len(data)
        self.window += data
        del self.window[:-4 * tarfile.RECORDSIZE]
        if self.keep_from is not None and len(self.kept) < END_OF_ARCHIVE:
            self.kept += data[max(0, self.keep_from - start):]
        return data

    def bytes_from(self, offset):
        """Keep, from now on, the bytes from ``offset`` (already read ones from the window)."""
        window_start = self.position - len(self.window)
        if offset < window_start:
            raise ValueError(f"offset {offset} is no longer in the window (starts at {window_start})")
        self.keep_from = offset
        self.kept = bytearray(self.window[offset - window_start:])


def _open_decompressed(path):
    """``(stream, kind)``: the archive's decompressed bytes and the compression's name."""
    with open(path, "rb") as raw:
        magic = raw.read(6)
    for prefix, kind, opener in _COMPRESSIONS:
        if magic.startswith(prefix):
            return opener(path, "rb"), kind
    return open(path, "rb"), "tar"


def tar_members(path, wanted):
    """Yield ``(member name, bytes)`` of every regular file member for which
    ``wanted(name)`` is true, in archive order; then check the archive is complete.

    Raises ConversionError (one line) for an unreadable, truncated or corrupt archive,
    also after the last member has been yielded: read the generator to its end.
    """
    try:
        stream, kind = _open_decompressed(path)
    except OSError as error:
        raise ConversionError(f"cannot read {path} ({one_line(error)})") from None
    last = None
    try:
        with stream:
            recording = _Recording(stream)
            with tarfile.open(fileobj=recording, mode="r|") as archive:
                for member in archive:
                    last = member
                    if member.isfile() and wanted(member.name):
                        yield member.name, archive.extractfile(member).read()
                end = archive.offset  # where tarfile looked for the next header
            recording.bytes_from(end)
            while recording.read(1 << 20):  # to the end of the compressed stream: its CRC is checked
                pass
    except EOFError:
        raise ConversionError(f"{path} is truncated: its {kind} stream ends before the end-of-stream marker "
                              f"({_after(last)})") from None
    except tarfile.ReadError as error:
        if "unexpected end of data" in str(error):
            raise ConversionError(f"{path} is truncated: {_after(last, cut=True)}") from None
        raise ConversionError(f"{path} is not a readable tar archive ({one_line(error)})") from None
    except _DAMAGE as error:
        raise ConversionError(f"{path} is not a readable tar archive, or it is corrupt "
                              f"({kind}: {one_line(error)})") from None
    marker = bytes(recording.kept[:END_OF_ARCHIVE])
    if marker != bytes(END_OF_ARCHIVE):
        what = ("it ends without the end-of-archive blocks" if len(marker) < END_OF_ARCHIVE
                else "what follows is neither a member header nor the end-of-archive blocks")
        raise ConversionError(f"{path} is truncated or corrupt: at byte {end:,} of the tar data, "
                              f"{what} ({_after(last)})")


def _after(last, cut=False):
    """Where reading stopped, for a message: after which member."""
    if last is None:
        return "before the first member"
    if cut:
        return f"the data of member {last.name} ({last.size:,} bytes) is cut short"
    return f"after member {last.name}"
