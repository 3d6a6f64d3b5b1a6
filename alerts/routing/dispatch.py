"""Delivery: send the router's notifications without ever blocking the engine, retry, record every attempt.

One worker thread per receiver, so a dead DingTalk robot delays only DingTalk messages, never mail. A
receiver's messages go out in order (a "resolved" never overtakes the "firing" it ends), which means a
message being retried holds back the ones behind it for that receiver, at most for the whole backoff.

`RoutingNotifier` plugs routing into the pipeline as an ordinary Notifier (notify/close), plus `tick` /
`run_ticks` for the time-driven part (group_wait, batches, repeats, escalations).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alerts.model import AlertChange
from alerts.notification import DeliveryError, Notification, Sender
from alerts.routing.config import RoutingConfig, build_senders
from alerts.routing.journal import DeliveryJournal, DeliveryRecord, MemoryJournal, Status
from alerts.routing.router import Router
from alerts.routing.silences import SilenceBook

log = logging.getLogger(__name__)

_STOP = object()


class Dispatcher:
    """Sends notifications to their receivers' senders on background threads.

    Retryable DeliveryErrors (and OSErrors) are retried up to `max_attempts` in all, waiting `backoff_s[i]`
    seconds before attempt i+2 (the last value repeats); a non-retryable error gives up at once. Every
    attempt goes to the journal; what gave up is also kept in `failed()` and logged at error. The
    dispatcher owns the senders and the journal: `close()` closes them.
    """

    def __init__(self, senders: Mapping[str, Sender], *, journal: DeliveryJournal | None = None,
                 max_attempts: int = 5, backoff_s: Sequence[float] = (1, 2, 5, 15, 60),
                 clock: Callable[[], int] = time.time_ns) -> None:
        if max_attempts < 1 or not backoff_s or any(b < 0 for b in backoff_s):
            raise ValueError("need max_attempts >= 1 and non-negative backoff_s")
        self.senders = dict(senders)
        self.journal: DeliveryJournal = journal if journal is not None else MemoryJournal()
        self.max_attempts, self.backoff_s, self._clock = max_attempts, tuple(backoff_s), clock
        self._failed: list[DeliveryRecord] = []
        self._idle = threading.Condition()
        self._in_flight = 0
        self._closing = False
        self._abort = threading.Event()  # close() timed out: stop waiting, record the rest as failed
        self._queues: dict[str, queue.Queue[Any]] = {}
        self._threads: list[threading.Thread] = []
        for name in self.senders:
            q: queue.Queue[Any] = queue.Queue()
            t = threading.Thread(target=self._run, args=(name, q), name=f"deliver-{name}", daemon=True)
            self._queues[name] = q
            self._threads.append(t)
            t.start()

    def submit(self, notifications: Iterable[Notification]) -> None:
        """Queue notifications for delivery; returns at once."""
        for n in notifications:
            q = self._queues.get(n.receiver)
            if q is None or self._closing:
                why = "dispatcher closed" if q is not None else f"no sender for receiver {n.receiver!r}"
                self._record(n, n.to_dict(), 0, "failed", why)
                continue
            with self._idle:
                self._in_flight += 1
            q.put(n)

    def failed(self) -> list[DeliveryRecord]:
        """The final record of every notification that gave up (since this dispatcher started)."""
        with self._idle:
            return list(self._failed)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far was delivered or given up."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    def close(self, timeout: float | None = 30.0) -> bool:
        """Deliver what is queued (waiting at most `timeout` s), record the rest as failed, close senders
        and journal. Returns True if everything queued was delivered or gave up on its own."""
        self._closing = True
        drained = self.wait_idle(timeout)
        if not drained:
            self._abort.set()
        for q in self._queues.values():
            q.put(_STOP)
        for t in self._threads:
            t.join(timeout=None if drained else 10.0)
        for name, sender in self.senders.items():
            try:
                sender.close()
            except Exception:
                log.exception("closing sender for %s failed", name)
        self.journal.close()
        return drained

    # -- the workers -------------------------------------------------------------------------------

    def _run(self, name: str, q: queue.Queue[Any]) -> None:
        while (n := q.get()) is not _STOP:
            try:
                self._deliver(self.senders[name], n)
            except Exception:  # never lose the worker: the next message must still go out
                log.exception("delivering to %s failed unexpectedly", name)
            finally:
                with self._idle:
                    self._in_flight -= 1
                    self._idle.notify_all()

    def _deliver(self, sender: Sender, n: Notification) -> None:
        payload = n.to_dict()
        for attempt in range(1, self.max_attempts + 1):
            if self._abort.is_set():
                self._record(n, payload, attempt - 1, "failed", "dispatcher closed before delivery")
                return
            try:
                sender.send(n)
            except DeliveryError as exc:
                retryable, error = exc.retryable, str(exc)
            except OSError as exc:
                retryable, error = True, f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # a sender bug: retrying the same message cannot help
                retryable, error = False, f"{type(exc).__name__}: {exc}"
            else:
                self._record(n, payload, attempt, "ok", None)
                return
            last = not retryable or attempt == self.max_attempts
            self._record(n, payload, attempt, "failed" if last else "retry", error)
            if last:
                return
            log.warning("delivery to %s (%s %s) attempt %d/%d failed, will retry: %s", n.receiver, n.reason,
                        n.group_key, attempt, self.max_attempts, error)
            if self._abort.wait(self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]):
                self._record(n, payload, attempt, "failed", f"dispatcher closed while retrying; last error: {error}")
                return

    def _record(self, n: Notification, payload: dict[str, Any], attempt: int, status: Status,
                error: str | None) -> None:
        rec = DeliveryRecord(self._clock(), n.receiver, n.group_key, n.reason, attempt, status, error, payload)
        if status == "failed":
            log.error("delivery to %s (%s %s) gave up after %d attempt(s): %s", n.receiver, n.reason,
                      n.group_key, attempt, error)
            with self._idle:
                self._failed.append(rec)
        try:
            self.journal.record(rec)
        except Exception:
            log.exception("delivery journal write failed for %s %s (%s)", n.receiver, n.group_key, status)


class RoutingNotifier:
    """The pipeline's Notifier for routed alerting: changes go through the Router, notifications to the
    Dispatcher. The live loop calls `tick()` every second (or `run_ticks()` starts a thread that does).

    With `state_path`, the router's state is saved there after every change and restored at start, so a
    restart neither re-notifies nor forgets. Thread-safe: notify and tick may come from different threads.
    """

    def __init__(self, router: Router, dispatcher: Dispatcher, *, state_path: str | Path | None = None,
                 clock: Callable[[], int] = time.time_ns) -> None:
        self.router, self.dispatcher, self._clock = router, dispatcher, clock
        self.state_path = Path(state_path) if state_path is not None else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        if self.state_path is not None and self.state_path.exists():
            self._load(self.state_path)

    @classmethod
    def from_config(cls, config: RoutingConfig, sender_factory: Callable[[str, dict[str, Any]], Sender], *,
                    silences: SilenceBook | None = None, journal: DeliveryJournal | None = None,
                    state_path: str | Path | None = None, clock: Callable[[], int] = time.time_ns,
                    max_attempts: int = 5, backoff_s: Sequence[float] = (1, 2, 5, 15, 60)) -> RoutingNotifier:
        """Everything wired from a loaded routing file: senders (a refused spec raises located
        InputErrors), router, dispatcher. Call `run_ticks()` on the result, or `tick()` from your loop."""
        senders = build_senders(config, sender_factory)
        dispatcher = Dispatcher(senders, journal=journal, max_attempts=max_attempts, backoff_s=backoff_s,
                                clock=clock)
        return cls(Router(config, silences), dispatcher, state_path=state_path, clock=clock)

    def notify(self, changes: Sequence[AlertChange]) -> None:
        if changes:
            with self._lock:
                notes = self.router.observe(changes, self._clock())
                self._save()
                self.dispatcher.submit(notes)  # under the lock: a receiver sees messages in decision order

    def tick(self, now_ns: int | None = None) -> list[Notification]:
        """Send whatever is due now (group waits ended, batches, repeats, escalations)."""
        with self._lock:
            notes = self.router.tick(self._clock() if now_ns is None else now_ns)
            if notes:
                self._save()
            self.dispatcher.submit(notes)
        return notes

    def run_ticks(self, interval_s: float = 1.0) -> threading.Thread:
        """Start a daemon thread calling `tick()` every `interval_s` until `close()`."""
        def loop() -> None:
            while not self._stop.wait(interval_s):
                try:
                    self.tick()
                except Exception:
                    log.exception("routing tick failed")

        if self._ticker is None:
            self._ticker = threading.Thread(target=loop, name="routing-ticks", daemon=True)
            self._ticker.start()
        return self._ticker

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop ticking, save the state (what is due goes out after the restart), drain the dispatcher."""
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._save()
        self.dispatcher.close(timeout)

    def _load(self, path: Path) -> None:
        """Restore the router; an unreadable file is set aside (kept for a post-mortem), not fatal:
        starting fresh may repeat a message, refusing to start would send none at all."""
        try:
            self.router.restore(json.loads(path.read_text(encoding="utf-8")), now_ns=self._clock())
        except (OSError, ValueError, KeyError, TypeError):
            aside = path.with_name(path.name + ".unreadable")
            log.exception("routing state %s unreadable; starting fresh, file moved to %s", path, aside)
            with contextlib.suppress(OSError):
                os.replace(path, aside)

    def _save(self) -> None:
        """Atomically replace the state file (a crash mid-write leaves the previous one)."""
        if self.state_path is None:
            return
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.router.snapshot(), separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.state_path)
        except (OSError, ValueError):
            log.exception("could not save routing state to %s", self.state_path)
            with contextlib.suppress(OSError):
                tmp.unlink()
