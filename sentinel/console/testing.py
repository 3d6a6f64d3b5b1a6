"""A live processor without MQTT, for tests and demos of the console.

`ProcessorThread` runs a real `LiveRunner` on its own thread, which creates and owns the pipeline and its
SQLite store exactly as `sentinel run` does; readings are handed in with `feed` (through `runner.call`,
the same door the console's actions use), so nothing here bypasses the threading rules of the real thing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alerts.notifiers import Notifier
from rules.loader import RuleSet
from sentinel.catalog import Catalog
from sentinel.console.actions import PipelineActions
from sentinel.live import LiveRunner
from sentinel.pipeline import Pipeline, StepOutcome
from sentinel.readings import Batch
from sentinel.stores.sqlite import SQLiteStore


class IdleSource:
    """Stands in for the MQTT source: no messages ever arrive."""

    def __init__(self, wait_s: float = 0.02) -> None:
        self.wait_s = wait_s

    def poll(self, max_messages: int, timeout_s: float) -> list[Any]:
        time.sleep(min(timeout_s, self.wait_s))
        return []

    def ack(self, messages: Sequence[Any]) -> None:
        pass

    def stats(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        pass


class ProcessorThread:
    def __init__(self, catalog: Catalog, ruleset: RuleSet, store_path: str | Path, *,
                 notifiers: Sequence[Notifier] = (), resolve_after_s: float = 900.0) -> None:
        self.catalog, self.ruleset, self.store_path = catalog, ruleset, Path(store_path)
        self.notifiers, self.resolve_after_s = list(notifiers), resolve_after_s
        self.runner: LiveRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="processor", daemon=True)

    def _main(self) -> None:
        try:
            store = SQLiteStore(self.store_path, self.catalog)
            pipeline = Pipeline(self.catalog, self.ruleset, store=store, notifiers=self.notifiers,
                                resolve_after_s=self.resolve_after_s)
            self.runner = LiveRunner(pipeline, IdleSource(), decoder=None, poll_timeout_s=0.02,  # type: ignore[arg-type]
                                     stats_every_s=3600.0)
        except BaseException as exc:
            self._error = exc
            raise
        finally:
            self._ready.set()
        try:
            self.runner.run()
        finally:
            pipeline.close()

    def start(self) -> ProcessorThread:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None or self.runner is None:
            raise RuntimeError(f"processor did not start: {self._error!r}")
        return self

    @property
    def pipeline(self) -> Pipeline:
        assert self.runner is not None, "start() first"
        return self.runner.pipeline

    def feed(self, batch: Batch, timeout_s: float = 30.0) -> StepOutcome:
        """Process one batch on the processor's thread, as if it had arrived over MQTT."""
        assert self.runner is not None, "start() first"
        return self.runner.call(lambda: self.pipeline.process(batch), timeout_s)

    def actions(self) -> PipelineActions:
        """Acknowledge/resolve for the console, through the processing thread (as `sentinel run` wires it)."""
        assert self.runner is not None, "start() first"
        return PipelineActions(self.pipeline, self.runner.call)

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self._thread.join(30)

    def __enter__(self) -> ProcessorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
