"""The disk spool: FIFO, bounded without dropping, and whole after the process is killed."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.stores.spool import HEADER, Spool, SpoolFull, SpoolLocked

REPO = Path(__file__).resolve().parents[1]


def lines(tag: str, n: int = 3) -> list[str]:
    return [f'm,t={tag} v={i}.5,s="a b" {1000 + i}' for i in range(n)]


def test_fifo_by_sequence_and_lines_round_trip(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    seqs = [spool.put(lines(tag)) for tag in "abc"]
    assert seqs == sorted(seqs) and len(spool) == 3
    got = []
    while (seg := spool.peek()) is not None:
        got.append(seg.lines)
        spool.pop(seg.seq)
    assert got == [lines("a"), lines("b"), lines("c")]
    assert len(spool) == 0 and spool.bytes == 0


def test_segment_is_gzip_line_protocol_with_a_comment_header(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    seq = spool.put(lines("a"))
    text = gzip.decompress(next(tmp_path.glob("*.lp.gz")).read_bytes()).decode()
    header, *body = text.splitlines()
    assert header.startswith(HEADER) and f"seq={seq}" in header and "lines=3" in header
    assert body == lines("a")  # the rest is plain line protocol; InfluxDB ignores the # header


def test_full_spool_refuses_instead_of_dropping(tmp_path: Path) -> None:
    probe = Spool(tmp_path / "probe")
    probe.put(lines("a", 50))
    one = probe.bytes  # the compressed size of one such segment
    spool = Spool(tmp_path / "spool", max_bytes=int(one * 2.5))
    spool.put(lines("a", 50))
    spool.put(lines("b", 50))
    with pytest.raises(SpoolFull, match="full"):
        spool.put(lines("c", 50))
    assert len(spool) == 2 and spool.bytes <= spool.max_bytes
    first = spool.peek()
    assert first is not None and first.lines == lines("a", 50)  # the oldest is still there, intact
    spool.pop(first.seq)
    spool.put(lines("c", 50))  # room again once InfluxDB took a segment
    assert [seg.lines[0] for seg in _drain(spool)] == [lines("b", 50)[0], lines("c", 50)[0]]


def _drain(spool: Spool) -> list:
    out = []
    while (seg := spool.peek()) is not None:
        out.append(seg)
        spool.pop(seg.seq)
    return out


def test_a_killed_writer_leaves_every_segment_for_the_next_process(tmp_path: Path) -> None:
    code = (
        "import os, signal, sys\n"
        "from sentinel.stores.spool import Spool\n"
        "s = Spool(sys.argv[1])\n"
        "for i in range(5):\n"
        "    s.put([f'm v={i} {i}'])\n"
        "open(os.path.join(sys.argv[1], '.tmp-99'), 'w').write('half a segment')\n"  # a write cut short
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    spool = Spool(tmp_path)  # the dead process's lock went with it
    assert len(spool) == 5
    assert not list(tmp_path.glob(".tmp-*"))
    newer = spool.put(["m v=5 5"])
    got = []
    while (seg := spool.peek()) is not None:
        got += seg.lines
        spool.pop(seg.seq)
    assert got == [f"m v={i} {i}" for i in range(6)]
    assert newer == 6


def test_one_owner_at_a_time(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    with pytest.raises(SpoolLocked):
        Spool(tmp_path)
    first.close()
    Spool(tmp_path).close()


def test_an_unreadable_segment_is_set_aside_not_fatal(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    bad = spool.put(lines("a"))
    spool.put(lines("b"))
    (tmp_path / f"{bad:016d}.lp.gz").write_bytes(b"not gzip")
    seg = spool.peek()
    assert seg is not None and seg.lines == lines("b")
    assert (tmp_path / f"{bad:016d}.lp.bad").exists()
    assert os.path.getsize(tmp_path / f"{bad:016d}.lp.bad") == len(b"not gzip")
