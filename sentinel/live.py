"""The live loop: MQTT -> decode -> pipeline -> acknowledge, with rule hot reload and warm restarts.

Messages are acknowledged to the broker only after the pipeline has stored what came out of them, so
a crash means redelivery, not loss. Decoding and evaluation happen on this thread, never in paho's
callbacks. The engine and alert state are saved periodically and on stop.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from ingest.decoders import Decoder
from ingest.mqtt_source import MqttSource
from rules import snapshot
from rules.levels import NO_TIME
from sentinel.pipeline import Pipeline
from sentinel.readings import iso
from sentinel.rules_watch import RulesWatcher
from sentinel.stores.base import StoreFull

log = logging.getLogger(__name__)
T = TypeVar("T")


class LiveRunner:
    def __init__(self, pipeline: Pipeline, source: MqttSource, decoder: Decoder, *,
                 watcher: RulesWatcher | None = None, state_path: Path | None = None,
                 poll_max: int = 5000, poll_timeout_s: float = 0.2, stats_every_s: float = 30.0,
                 state_every_s: float = 60.0) -> None:
        self.pipeline, self.source, self.decoder, self.watcher = pipeline, source, decoder, watcher
        self.state_path = state_path
        self.poll_max, self.poll_timeout_s = poll_max, poll_timeout_s
        self.stats_every_s, self.state_every_s = stats_every_s, state_every_s
        self.stop_event = threading.Event()
        self.messages = 0
        self._commands: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()

    def restore_state(self) -> bool:
        """Warm start from the state file, if there is one for this catalog."""
        if self.state_path is None or not self.state_path.exists():
            return False
        state, extra = snapshot.load(self.state_path, self.pipeline.engine)
        self.pipeline.resume(state, extra)
        log.info("restored engine and alert state from %s (readings up to %s, %d open alerts)", self.state_path,
                 iso(state.watermark) if state.watermark != NO_TIME else "none", len(self.pipeline.book.open_alerts()))
        self.pipeline.reconcile_alerts()
        return True

    def save_state(self) -> None:
        if self.state_path is not None:
            snapshot.save(self.state_path, self.pipeline.state, {"alerts": self.pipeline.book.snapshot()},
                          engine=self.pipeline.engine)

    def step(self) -> int:
        """One poll-decode-process-ack round; returns the number of messages handled.

        While a store is full the same batch is retried with growing pauses and nothing is acknowledged,
        so the broker keeps the backlog (and stops sending once our in-flight window is full).
        """
        messages = self.source.poll(self.poll_max, self.poll_timeout_s)
        if not messages:
            return 0
        decoded = self.decoder.decode_many(messages)
        pause = 1.0
        processed = False
        while True:
            try:
                if not processed:
                    self.pipeline.process(decoded.batch, decoded.dead_letters)
                    processed = True
                self.pipeline.flush()  # whatever a store buffers is durable before the broker forgets it
                break
            except StoreFull as exc:
                log.error("store full, holding %d message(s) unacknowledged; retrying in %.0f s: %s",
                          len(messages), pause, exc)
                if self.stop_event.wait(pause):
                    raise
                pause = min(pause * 2, 30.0)
        self.source.ack(messages)
        self.messages += len(messages)
        return len(messages)

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on the loop's thread between two batches (the pipeline and alert book are not
        thread-safe): how the console's acknowledge/resolve reach the alert book."""
        fut: Future[T] = Future()
        self._commands.put((fn, fut))
        return fut

    def call(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        return self.submit(fn).result(timeout)

    def _run_commands(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except BaseException as exc:  # handed to the caller, e.g. AlertError for a resolved alert
                    fut.set_exception(exc)

    def run(self, until: Callable[[], bool] | None = None) -> None:
        last_stats = last_state = time.monotonic()
        clean = False
        try:
            while not self.stop_event.is_set() and not (until and until()):
                self.step()
                self._run_commands()
                now = time.monotonic()
                if self.watcher is not None:
                    ruleset = self.watcher.poll()
                    if ruleset is not None:
                        self.pipeline.reload(ruleset)
                if now - last_stats >= self.stats_every_s:
                    last_stats = now
                    log.info("stats: %s; mqtt %s", self.pipeline.counters.as_dict(), self.source.stats())
                if (self.state_path is not None and now - last_state >= self.state_every_s
                        and not self.pipeline.outputs_pending):
                    last_state = now
                    self.save_state()
            clean = True
        finally:
            # after a failure the engine may be ahead of what was acknowledged: keep the last good
            # snapshot, so the redelivered messages are evaluated again on restart
            if clean and not self.pipeline.outputs_pending:
                self.save_state()

    def stop(self) -> None:
        self.stop_event.set()
