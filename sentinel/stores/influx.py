"""The InfluxDB 2 store: our own batching, synchronous writes, retries and a disk spool; nothing lost.

influxdb-client's background batching WriteApi can lose points on close/exit and its errors can pass
silently (shared/design/anchors.md, "Known traps"), so this store uses the client only for HTTP
(`WriteService.post_write`, synchronous) and owns everything else:

- **Batching**: lines are encoded (`influx_schema`) into an in-memory buffer and sent in chunks of
  `batch_size` lines (10,000: the best of 2k-20k measured), gzip level 1 (~10x smaller bodies; on
  loopback it costs ~10 % throughput, so turn it off when InfluxDB runs on the same host). A write
  call sends every full chunk; the rest goes out once `flush_interval_s` has passed since the last
  full flush, on `flush()` and on `close()`. There is no background thread: errors surface here, and
  exit loses nothing once `flush()`/`close()` returned. With ``flush_interval_s=0`` every write call
  flushes, which keeps the `Store` promise "durable (or spooled) when the call returns" - the live
  runner acknowledges MQTT right after `Pipeline.process`, so that is what `sentinel run` uses.
- **Retries**: connection errors, timeouts, 5xx and 429 are retried with exponential backoff and full
  jitter (``Retry-After`` honoured) within `retry_budget_s` per flush, so a write never blocks the
  engine for long; after that the chunk goes to the spool and the store stays "down" (every write goes
  straight to the spool) until a reconnect probe, backing off from 1 s to `reconnect_max_s`.
- **Spool** (`sentinel.stores.spool`): a bounded on-disk FIFO. Every flush first drains it oldest
  first (for at most `drain_budget_s`), and while it holds anything new chunks queue behind it, so
  order is kept. Full spool -> `SpoolFull` from the write call: backpressure, never a drop.
- **Rejected points** (HTTP 400, 422 partial writes, a lone line over 413): the chunk is bisected to
  isolate the offending lines (InfluxDB writes the valid points of a partial write, and re-writing a
  good line is harmless: same series + time overwrites); each rejected line becomes a `DeadLetter`
  with InfluxDB's message, handed to `on_dead_letter` (default: logged and kept in `.rejected`).
- **Refused** (401/403: the token; 404: bucket or org): a clear error naming URL, org and bucket (never
  the token), data to the spool, no crash; a later store with the right token drains it.

Threading: like `SQLiteStore`, one thread uses a store. One process owns a spool directory.
"""

from __future__ import annotations

import gzip as gzip_module
import logging
import random
import re
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import urllib3
from influxdb_client import InfluxDBClient
from influxdb_client.rest import ApiException
from influxdb_client.service.write_service import WriteService
from pydantic import SecretStr

from sentinel.deadletter import DeadLetter
from sentinel.readings import Batch
from sentinel.stores.influx_schema import (
    DEAD_LETTERS,
    ReadingsEncoder,
    encode_alert_changes,
    encode_dead_letters,
    encode_detections,
    measurement_of,
)
from sentinel.stores.spool import Spool, SpoolFull

if TYPE_CHECKING:
    from alerts.model import AlertChange
    from sentinel.catalog import Catalog
    from sentinel.detections import Detection
    from sentinel.settings import Settings

log = logging.getLogger(__name__)

REJECTED_REASON = "influx rejected"
DEFAULT_BATCH_SIZE = 10_000  # measured: `python -m bench.influx_write --sweep` (2k-20k lines, gzip on/off)
_DROPPED = re.compile(r"dropped=(\d+)")
_FIELD = re.compile(r'input field \\?"([^"\\]+)\\?"')

Kind = Literal["ok", "rejected", "transient", "refused", "too_large"]


@dataclass(frozen=True)
class _Outcome:
    kind: Kind
    status: int = 0
    message: str = ""
    retry_after: float | None = None


def resolve_token(token: SecretStr | str | None, token_file: str | Path | None) -> SecretStr:
    """The token from settings or from a file (e.g. a mounted secret); exactly one must be given."""
    value = token.get_secret_value() if isinstance(token, SecretStr) else token
    if value and token_file:
        raise ValueError("both an InfluxDB token and a token file are set; use one "
                         "(SENTINEL_INFLUX_TOKEN or SENTINEL_INFLUX_TOKEN_FILE)")
    if token_file:
        text = Path(token_file).read_text(encoding="utf-8").strip()
        if not text:
            raise ValueError(f"InfluxDB token file {token_file} is empty")
        return SecretStr(text)
    if value:
        return SecretStr(value)
    raise ValueError("no InfluxDB token: set SENTINEL_INFLUX_TOKEN or SENTINEL_INFLUX_TOKEN_FILE")


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class InfluxStore:
    """`sentinel.stores.base.Store` on an InfluxDB 2 bucket (see the module doc for the guarantees)."""

    def __init__(self, url: str, org: str, bucket: str, token: SecretStr | str, catalog: Catalog, *,
                 spool_dir: str | Path, batch_size: int = DEFAULT_BATCH_SIZE, flush_interval_s: float = 1.0,
                 gzip: bool = True,
                 timeout_s: float = 10.0, max_retries: int = 5, retry_budget_s: float = 3.0,
                 drain_budget_s: float = 2.0, reconnect_max_s: float = 30.0, spool_max_bytes: int = 1 << 30,
                 max_pending_lines: int | None = None,
                 on_dead_letter: Callable[[list[DeadLetter]], None] | None = None) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.url, self.org, self.bucket = url.rstrip("/"), org, bucket
        self._token = token if isinstance(token, SecretStr) else SecretStr(token)
        self.batch_size, self.flush_interval_s, self.gzip = batch_size, flush_interval_s, gzip
        self.timeout_s, self.max_retries, self.retry_budget_s = timeout_s, max_retries, retry_budget_s
        self.drain_budget_s, self.reconnect_max_s = drain_budget_s, reconnect_max_s
        self.max_pending_lines = max_pending_lines or 4 * batch_size
        self.on_dead_letter = on_dead_letter
        self.rejected: deque[DeadLetter] = deque(maxlen=10_000)
        self.last_error: str | None = None
        self.client = InfluxDBClient(url=self.url, token=self._token.get_secret_value(), org=org,
                                     timeout=int(timeout_s * 1000), enable_gzip=False)
        self._writer = WriteService(self.client.api_client)
        self._readings = ReadingsEncoder(catalog)
        self._pending: list[str] = []
        self._letters: list[DeadLetter] = []
        self._counts: Counter[str] = Counter()
        self._state: Literal["ok", "down", "refused"] = "ok"
        self._down_level = 0
        self._down_until = 0.0
        self._last_flush = time.monotonic()
        self._closed = False
        self.spool = Spool(spool_dir, spool_max_bytes)
        if len(self.spool):  # left by an earlier run (or a killed one): send it before anything new
            self.flush()

    def __repr__(self) -> str:
        return f"InfluxStore(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r}, spool={str(self.spool.dir)!r})"

    # -- the Store protocol -------------------------------------------------------------------------

    def write_readings(self, batch: Batch) -> None:
        self._accept(self._readings.encode(batch))

    def write_detections(self, detections: Sequence[Detection]) -> None:
        self._accept(encode_detections(detections))

    def write_alert_changes(self, changes: Sequence[AlertChange]) -> None:
        self._accept(encode_alert_changes(changes))

    def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        self._accept(encode_dead_letters(letters))

    def flush(self) -> None:
        """Try InfluxDB now (even while "down"): drain the spool, then send or spool everything buffered.
        Raises SpoolFull if buffered lines fit neither InfluxDB nor the spool (they stay buffered)."""
        self._flush(everything=True, force=True)

    def drain(self, timeout_s: float | None = None) -> bool:
        """Flush until the spool is empty (True) or `timeout_s` passed / InfluxDB is unreachable (False)."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            before = len(self.spool)
            self.flush()
            if not len(self.spool) and not self._pending:
                return True
            if self._state != "ok" or len(self.spool) >= before or (end is not None and time.monotonic() >= end):
                return False

    def close(self) -> None:
        """Flush; what InfluxDB does not take stays in the spool for the next run."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            if self._pending:
                log.error("InfluxDB store closing with %d lines neither written nor spooled (spool full): they "
                          "were not acknowledged upstream if the caller honoured SpoolFull", len(self._pending))
            self._closed = True
            self.client.close()
            self.spool.close()

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stats(self) -> dict[str, int | str | None]:
        """Counters in lines: accepted (encoded), written (InfluxDB took them, from memory or the spool),
        spooled, drained (written from the spool), rejected (dead-lettered); HTTP requests and retries."""
        c = self._counts
        return {"accepted": c["accepted"], "written": c["written"], "spooled": c["spooled"],
                "drained": c["drained"], "rejected": c["rejected"], "requests": c["requests"],
                "retries": c["retries"], "pending": len(self._pending), "spool_segments": len(self.spool),
                "spool_bytes": self.spool.bytes, "state": self._state, "last_error": self.last_error}

    # -- buffering ---------------------------------------------------------------------------------

    def _accept(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._closed:
            raise RuntimeError("InfluxStore is closed")
        if len(self._pending) >= self.max_pending_lines:
            self._flush(everything=True, force=False)  # SpoolFull here: nothing new was accepted
        self._pending.extend(lines)
        self._counts["accepted"] += len(lines)
        due = time.monotonic() - self._last_flush >= self.flush_interval_s
        if due or len(self._pending) >= self.batch_size:
            self._flush(everything=due, force=False)

    def _flush(self, *, everything: bool, force: bool) -> None:
        bs = self.batch_size
        take = len(self._pending) if everything else len(self._pending) // bs * bs
        chunks = [self._pending[i:i + bs] for i in range(0, take, bs)]
        del self._pending[:take]
        if everything:
            self._last_flush = time.monotonic()
        try:
            self._deliver(chunks, force)
        finally:
            self._hand_over_letters()

    def _deliver(self, chunks: list[list[str]], force: bool) -> None:
        now = time.monotonic()
        # while down, a write's reconnect probe is a single attempt: the engine must not wait on retries
        deadline = now + (self.retry_budget_s if force or self._state == "ok" else 0.0)
        clear = (force or now >= self._down_until) and self._drain(now + self.drain_budget_s, deadline)
        for i, chunk in enumerate(chunks):
            if clear:
                done, bad = self._write_chunk(chunk, deadline)
                if done:
                    self._done(len(chunk), bad, drained=False)
                    continue
                clear = False  # keep order: everything after a failed chunk queues behind it
            try:
                self.spool.put(chunk)
            except SpoolFull:
                for rest in reversed(chunks[i:]):  # back to the buffer, in order; the caller must not ack
                    self._pending[:0] = rest
                raise
            self._counts["spooled"] += len(chunk)

    def _drain(self, until: float, deadline: float) -> bool:
        """Send spooled segments oldest first; True when the spool is empty."""
        while len(self.spool):
            if time.monotonic() >= until:
                return False
            seg = self.spool.peek()
            if seg is None:
                break
            done, bad = self._write_chunk(seg.lines, deadline)
            if not done:
                return False
            self.spool.pop(seg.seq)
            self._done(len(seg.lines), bad, drained=True)
        return True

    def _done(self, n: int, bad: list[tuple[str, str]], *, drained: bool) -> None:
        self._counts["written"] += n - len(bad)
        if drained:
            self._counts["drained"] += n - len(bad)
        if bad:
            self._reject(bad)

    # -- sending -----------------------------------------------------------------------------------

    def _write_chunk(self, lines: list[str], deadline: float) -> tuple[bool, list[tuple[str, str]]]:
        """(done, rejected lines with InfluxDB's reason); not done = spool it and try later."""
        out = self._send(lines, deadline)
        if out.kind == "ok":
            return True, []
        if out.kind == "too_large" and len(lines) > 1:
            mid = len(lines) // 2
            first, bad1 = self._write_chunk(lines[:mid], deadline)
            second, bad2 = self._write_chunk(lines[mid:], deadline) if first else (False, [])
            return (True, bad1 + bad2) if first and second else (False, [])
        if out.kind in ("rejected", "too_large"):
            bad = self._isolate(lines, out, deadline)
            return (False, []) if bad is None else (True, bad)
        self._mark_down(out)
        return False, []

    def _isolate(self, lines: list[str], out: _Outcome, deadline: float) -> list[tuple[str, str]] | None:
        """The lines InfluxDB rejects, found by bisection; None if InfluxDB became unreachable meanwhile."""
        if len(lines) == 1:
            return [(lines[0], out.message)]
        m = _DROPPED.search(out.message) if out.status == 422 else None
        dropped = int(m.group(1)) if m else None
        if dropped is not None and dropped >= len(lines):
            return [(ln, out.message) for ln in lines]
        bad: list[tuple[str, str]] = []
        mid = len(lines) // 2
        for half in (lines[:mid], lines[mid:]):
            if dropped is not None and len(bad) >= dropped:
                break  # a partial write already stored the rest of this request
            r = self._send(half, deadline)
            if r.kind == "ok":
                continue
            if r.kind not in ("rejected", "too_large"):
                self._mark_down(r)
                return None
            sub = self._isolate(half, r, deadline)
            if sub is None:
                return None
            bad += sub
        return bad

    def _send(self, lines: list[str], deadline: float) -> _Outcome:
        body = ("\n".join(lines) + "\n").encode("utf-8")
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=1, mtime=0)
        attempt = 0
        while True:
            timeout = min(self.timeout_s, max(1.0, deadline - time.monotonic()))
            out = self._post(body, timeout)
            self._counts["requests"] += 1
            if out.kind == "ok":
                self._up()
                return out
            if out.kind != "transient" or attempt >= self.max_retries:
                return out
            delay = out.retry_after if out.retry_after is not None else \
                random.uniform(0, min(2.0, 0.1 * 2 ** attempt))  # full jitter
            if time.monotonic() + delay > deadline:
                return out
            attempt += 1
            self._counts["retries"] += 1
            time.sleep(delay)

    def _post(self, body: bytes, timeout: float) -> _Outcome:
        headers = {"content_encoding": "gzip"} if self.gzip else {}
        try:
            self._writer.post_write(org=self.org, bucket=self.bucket, body=body, precision="ns",
                                    content_type="text/plain; charset=utf-8", _request_timeout=timeout * 1000,  # ms
                                    **headers)
        except ApiException as exc:
            return self._classify(exc)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return _Outcome("transient", 0, f"cannot reach InfluxDB at {self.url}: {type(exc).__name__}: {exc}")
        return _Outcome("ok", 204)

    def _classify(self, exc: ApiException) -> _Outcome:
        status = int(exc.status or 0)
        msg = str(getattr(exc, "message", None) or exc.reason or "")
        where = f"bucket {self.bucket!r} of org {self.org!r} at {self.url}"
        if status in (400, 422):
            return _Outcome("rejected", status, msg)
        if status == 413:
            return _Outcome("too_large", status, f"request too large: {msg}")
        if status in (401, 403):
            return _Outcome("refused", status, f"InfluxDB refused the token for {where} (HTTP {status}: {msg}); "
                            "check SENTINEL_INFLUX_TOKEN / SENTINEL_INFLUX_TOKEN_FILE and the token's write "
                            "permission")
        if status == 404:
            return _Outcome("refused", status, f"InfluxDB has no {where} (HTTP 404: {msg}); create it "
                            "(`sentinel influx init`) or fix SENTINEL_INFLUX_ORG / SENTINEL_INFLUX_BUCKET")
        retry_after = _retry_after((exc.headers or {}).get("Retry-After")) if exc.headers else None
        return _Outcome("transient", status, f"InfluxDB at {self.url} answered HTTP {status}: {msg}", retry_after)

    # -- health ------------------------------------------------------------------------------------

    def _mark_down(self, out: _Outcome) -> None:
        state: Literal["down", "refused"] = "refused" if out.kind == "refused" else "down"
        changed = state != self._state  # once per outage, not once per probe
        self._state, self.last_error = state, out.message
        self._down_level = min(self._down_level + 1, 16)
        backoff = min(self.reconnect_max_s, 2.0 ** (self._down_level - 1))
        if out.retry_after is not None:
            backoff = max(backoff, out.retry_after)
        self._down_until = time.monotonic() + backoff * random.uniform(0.5, 1.0)
        if changed:
            (log.error if state == "refused" else log.warning)(
                "%s; points go to the spool %s (%d segments waiting) until InfluxDB takes them",
                out.message, self.spool.dir, len(self.spool))

    def _up(self) -> None:
        if self._state != "ok":
            log.info("InfluxDB at %s accepts writes again (bucket %r); draining %d spooled segment(s)",
                     self.url, self.bucket, len(self.spool))
        self._state, self._down_level, self._down_until = "ok", 0, 0.0

    # -- dead letters ------------------------------------------------------------------------------

    def _reject(self, bad: list[tuple[str, str]]) -> None:
        now = time.time_ns()
        letters = []
        for lp_line, msg in bad:
            m = _FIELD.search(msg)
            letters.append(DeadLetter.of(f"influx:{self.org}/{self.bucket}", f"{REJECTED_REASON}: {msg}", lp_line,
                                         now, m.group(1) if m else None))
        self._counts["rejected"] += len(letters)
        self.rejected.extend(letters)
        log.warning("InfluxDB rejected %d line(s) for bucket %r: %s (first: %.200s)", len(letters), self.bucket,
                    bad[0][1], bad[0][0])
        # a rejected dead_letters line is never routed on: if the sink is this store, that would loop
        self._letters += [d for d, (ln, _) in zip(letters, bad, strict=True) if measurement_of(ln) != DEAD_LETTERS]

    def _hand_over_letters(self) -> None:
        if not self._letters:
            return
        letters, self._letters = self._letters, []
        if self.on_dead_letter is None:
            return
        try:
            self.on_dead_letter(letters)
        except Exception:  # the sink failing must not stop the writes; the letters stay in .rejected
            log.exception("dead-letter sink failed for %d rejected InfluxDB line(s)", len(letters))


def from_settings(s: Settings, catalog: Catalog, *,
                  on_dead_letter: Callable[[list[DeadLetter]], None] | None = None) -> InfluxStore:
    """The store `sentinel run` uses, from SENTINEL_INFLUX_* settings."""
    return InfluxStore(s.influx_url, s.influx_org, s.influx_bucket, resolve_token(s.influx_token, s.influx_token_file),
                       catalog, spool_dir=s.influx_spool_dir, batch_size=s.influx_batch_size,
                       flush_interval_s=s.influx_flush_interval_s, gzip=s.influx_gzip, timeout_s=s.influx_timeout_s,
                       retry_budget_s=s.influx_retry_budget_s, spool_max_bytes=s.influx_spool_max_bytes,
                       on_dead_letter=on_dead_letter)
