"""A bounded on-disk FIFO of line-protocol batches, so nothing is lost while InfluxDB is down or slow.

Layout: one directory; each batch is a segment file ``<seq:016d>.lp.gz`` (gzip of a ``#`` header line
- ignored by InfluxDB as a comment - followed by the batch's lines). A segment is written to a
temporary file, fsynced, renamed into place and the directory fsynced, so a segment either exists
whole or not at all, and a process killed at any moment leaves a readable spool: a new `Spool` on the
same directory sees every segment and continues the sequence.

Bounded: `put` raises `SpoolFull` instead of dropping anything once `max_bytes` (compressed) would be
exceeded; the caller must then not acknowledge its input upstream (backpressure, as Telegraf's
``max_undelivered_messages``). One process owns a spool at a time (an exclusive ``flock`` on
``.lock``): two writers would race each other's segments.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sentinel.stores.base import StoreFull

log = logging.getLogger(__name__)

SUFFIX = ".lp.gz"
HEADER = "# sentinel-spool v1"


class SpoolFull(StoreFull):
    """The spool is at its byte bound: stop acknowledging input until it drains (backpressure)."""


class SpoolLocked(RuntimeError):
    """Another live process (or an unclosed store in this one) owns this spool directory."""


@dataclass(frozen=True)
class Segment:
    seq: int
    lines: list[str]
    created_ns: int


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int = 1 << 30, *, compresslevel: int = 1) -> None:
        self.dir = Path(directory)
        self.max_bytes = max_bytes
        self.compresslevel = compresslevel
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = (self.dir / ".lock").open("a")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolLocked(f"spool {self.dir} is in use by another process (or an unclosed store)") from None
        for tmp in self.dir.glob(".tmp-*"):  # a write interrupted before its rename: never acknowledged
            tmp.unlink(missing_ok=True)
        self._sizes: dict[int, int] = {}
        for path in self.dir.glob("*" + SUFFIX):
            try:
                self._sizes[int(path.name[: -len(SUFFIX)])] = path.stat().st_size
            except ValueError:
                continue
        self._next = max(self._sizes, default=0) + 1
        self.bytes = sum(self._sizes.values())
        if self._sizes:
            log.info("spool %s: %d segment(s), %d bytes waiting from an earlier run", self.dir, len(self), self.bytes)

    def __len__(self) -> int:
        return len(self._sizes)

    def _path(self, seq: int) -> Path:
        return self.dir / f"{seq:016d}{SUFFIX}"

    def put(self, lines: Sequence[str]) -> int:
        """Append one batch durably; returns its sequence number. Raises SpoolFull at the bound."""
        seq = self._next
        text = f"{HEADER} seq={seq} lines={len(lines)} created_ns={time.time_ns()}\n" + "\n".join(lines) + "\n"
        data = gzip.compress(text.encode("utf-8"), compresslevel=self.compresslevel, mtime=0)
        if self.bytes + len(data) > self.max_bytes:
            raise SpoolFull(f"spool {self.dir} is full ({self.bytes} of {self.max_bytes} bytes, {len(self)} "
                            f"segments): not accepting {len(lines)} more lines until InfluxDB takes the backlog")
        tmp = self.dir / f".tmp-{seq}"
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(seq))
        self._fsync_dir()
        self._next = seq + 1
        self._sizes[seq] = len(data)
        self.bytes += len(data)
        return seq

    def peek(self) -> Segment | None:
        """The oldest segment, or None when empty. An unreadable segment is set aside (``.bad``), logged."""
        while self._sizes:
            seq = min(self._sizes)
            try:
                text = gzip.decompress(self._path(seq).read_bytes()).decode("utf-8")
            except (OSError, EOFError, UnicodeDecodeError) as exc:
                log.error("spool segment %s is unreadable (%s): moved aside as .bad", self._path(seq), exc)
                with contextlib.suppress(OSError):
                    self._path(seq).rename(self._path(seq).with_suffix(".bad"))
                self._forget(seq)
                continue
            header, _, body = text.partition("\n")
            created = int(header.rsplit("created_ns=", 1)[-1]) if "created_ns=" in header else 0
            return Segment(seq, body.splitlines(), created)
        return None

    def pop(self, seq: int) -> None:
        """Delete a segment once InfluxDB has it (or rejected it, dead-lettered)."""
        self._path(seq).unlink(missing_ok=True)
        self._forget(seq)

    def _forget(self, seq: int) -> None:
        self.bytes -= self._sizes.pop(seq, 0)

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Release the directory for another process; the segments stay."""
        if not self._lock.closed:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
