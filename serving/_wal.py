"""A replica's write-ahead files for the prediction log: every answered request is appended to a local file
before its answer goes out, so that a replica killed between two Delta commits loses nothing.

Layout, under ``<log table>/_wal`` (a folder Delta readers and delta-rs ``vacuum`` leave alone: its name
starts with ``_``)::

    _wal/<owner>/owner.lock          flock()ed by the live replica for as long as it runs
    _wal/<owner>/000000000003.wal    segments: frames appended, sealed at each commit, deleted once committed

The kernel releases a dead process's flock, so a folder whose lock can be taken belongs to no live
replica: its segments are *adopted* (committed, then deleted) by whichever replica takes the lock first.
Each commit names its owner and last segment as a Delta application transaction (``txn``), so a segment
committed just before its owner died is not committed again: exactly once, by request id and row.

A frame is ``<meta length, body length, output length, crc32>`` (4 little-endian uint32) then the three
parts; a frame cut short by a crash mid-write (its answer was never returned) is ignored at the tail.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import struct
import threading
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("ray.serve")

WAL_FOLDER = "_wal"
_LOCK = "owner.lock"
_SUFFIX = ".wal"
_HEADER = struct.Struct("<IIII")


@dataclass(frozen=True)
class Frame:
    """One appended request: its metadata (JSON), its body as received and its output (JSON)."""

    meta: bytes
    body: bytes
    output: bytes


def encode(frame: Frame) -> bytes:
    checksum = zlib.crc32(frame.output, zlib.crc32(frame.body, zlib.crc32(frame.meta)))
    header = _HEADER.pack(len(frame.meta), len(frame.body), len(frame.output), checksum)
    return b"".join((header, frame.meta, frame.body, frame.output))


def decode(data: bytes) -> tuple[list[Frame], int]:
    """The whole frames of a segment's bytes, and how many bytes at the end were not one (a torn write)."""
    frames, offset = [], 0
    while offset + _HEADER.size <= len(data):
        meta_length, body_length, output_length, checksum = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        end = start + meta_length + body_length + output_length
        if end > len(data):
            break
        meta = data[start : start + meta_length]
        body = data[start + meta_length : start + meta_length + body_length]
        output = data[start + meta_length + body_length : end]
        if zlib.crc32(output, zlib.crc32(body, zlib.crc32(meta))) != checksum:
            break
        frames.append(Frame(meta, body, output))
        offset = end
    return frames, len(data) - offset


def segment_number(path: Path) -> int:
    return int(path.stem)


def segments(folder: Path) -> list[Path]:
    """A folder's segments, oldest first."""
    try:
        return sorted((p for p in folder.iterdir() if p.suffix == _SUFFIX), key=segment_number)
    except FileNotFoundError:
        return []


def read_segment(path: Path) -> list[Frame]:
    frames, torn = decode(path.read_bytes())
    if torn:
        logger.warning(
            "prediction log: %d bytes at the end of %s are not a whole entry (a write cut short "
            "by a crash; its answer was not returned): ignored",
            torn,
            path,
        )
    return frames


def _try_lock(path: Path) -> int | None:
    """An fd holding ``path``'s exclusive flock, or None when a live process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def orphaned(root: Path, own: str) -> Iterator[tuple[str, list[Path], int]]:
    """Each folder of ``root`` that no live replica owns (its lock could be taken): its owner, segments
    and the lock's fd, which the caller passes to ``release`` once the segments are committed or not."""
    try:
        folders = [p for p in root.iterdir() if p.is_dir() and p.name != own]
    except FileNotFoundError:
        return
    for folder in folders:
        try:
            fd = _try_lock(folder / _LOCK)
        except FileNotFoundError:  # removed meanwhile by another replica's adoption
            continue
        if fd is not None:
            yield folder.name, segments(folder), fd


def release(root: Path, owner: str, fd: int, committed: bool) -> None:
    """After an adoption: the folder removed when its segments are committed (and deleted), the lock let go."""
    folder = root / owner
    try:
        if committed:
            for path in segments(folder):
                path.unlink(missing_ok=True)
            (folder / _LOCK).unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # a new file in it (cannot happen: its owner is dead): kept
                folder.rmdir()
    finally:
        os.close(fd)


class WriteAheadLog:
    """One replica's folder of segments: ``append`` before answering, ``seal`` before committing."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.owner = uuid.uuid4().hex[:16]
        self.folder = root / self.owner
        self.folder.mkdir(parents=True)
        fd = _try_lock(self.folder / _LOCK)
        assert fd is not None, "a new folder's lock is free"
        self._lock_fd: int | None = fd
        self._number = 0  # of the open segment
        self._fd: int | None = None  # the open segment, created at its first append
        self._guard = threading.Lock()  # appends (the event loop) against seal and sync (threads)

    def append(self, data: bytes) -> None:
        """Write ``data`` to the open segment: in the kernel's hands when this returns, so it outlives this
        process (a SIGKILL, an OOM kill); ``sync`` makes it outlive the machine."""
        with self._guard:
            if self._fd is None:
                path = self.folder / f"{self._number:012d}{_SUFFIX}"
                self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]

    def sync(self) -> None:
        """fdatasync the open segment (on a duplicate descriptor: a seal may close it meanwhile)."""
        with self._guard:
            fd = None if self._fd is None else os.dup(self._fd)
        if fd is not None:
            try:
                os.fdatasync(fd)
            finally:
                os.close(fd)

    def seal(self) -> list[Path]:
        """Close the open segment (later appends start the next one); every sealed segment, oldest first."""
        with self._guard:
            fd, self._fd = self._fd, None
            if fd is not None:
                self._number += 1
        if fd is not None:
            os.fdatasync(fd)
            os.close(fd)
        return [path for path in segments(self.folder) if segment_number(path) < self._number]

    def close(self, keep: bool) -> None:
        """At a graceful stop: the folder removed unless ``keep`` (segments left to adopt); the lock let go."""
        self.seal()
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        release(self.root, self.owner, fd, committed=not keep)
