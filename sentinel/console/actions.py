"""How operator actions reach the alert book: through the processor's own thread, never around it.

The alert book and the pipeline's store connection belong to the processing thread, so the console
hands each action to `call` (LiveRunner.call in `sentinel run --console`), which runs it between two
batches and returns its result or raises its exception (AlertError for an unknown or resolved alert).
A console serving a store without a processor has no way to act: `NoActions` says so (HTTP 503).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from alerts.model import AlertChange

T = TypeVar("T")


class ActionsUnavailable(RuntimeError):
    """No processor to act through (console serving a store alone), or it did not answer in time."""


class AlertActions(Protocol):
    def acknowledge(self, alert_id: str, actor: str, note: str | None) -> AlertChange: ...

    def resolve(self, alert_id: str, actor: str, note: str | None) -> AlertChange: ...


class PipelineActions:
    """Acknowledge/resolve on a `Pipeline` via `call(fn)`, which runs fn on the processing thread.

    Without `call`, fn runs directly under a lock: right only when the pipeline (and its store connection)
    may be used from any thread, e.g. a pipeline without a store in a test.
    """

    def __init__(self, pipeline: Any, call: Callable[[Callable[[], Any]], Any] | None = None,
                 timeout_s: float = 10.0) -> None:
        self.pipeline = pipeline
        self._lock = threading.Lock()
        self._call = call
        self.timeout_s = timeout_s

    def _run(self, fn: Callable[[], T]) -> T:
        if self._call is None:
            with self._lock:
                return fn()
        try:
            return self._call(fn)
        except TimeoutError:
            raise ActionsUnavailable("the processor did not take the action in time (busy or stopping); "
                                     "nothing was changed, try again") from None

    def acknowledge(self, alert_id: str, actor: str, note: str | None) -> AlertChange:
        return self._run(lambda: self.pipeline.acknowledge(alert_id, actor, note))

    def resolve(self, alert_id: str, actor: str, note: str | None) -> AlertChange:
        return self._run(lambda: self.pipeline.resolve(alert_id, actor, note))


class NoActions:
    """The console is only reading a store: acknowledge and resolve need the processor."""

    MESSAGE = ("this console only reads the store: acknowledge and resolve need the processor, so run the "
               "console inside it (`sentinel run --console HOST:PORT`)")

    def acknowledge(self, alert_id: str, actor: str, note: str | None) -> AlertChange:
        raise ActionsUnavailable(self.MESSAGE)

    def resolve(self, alert_id: str, actor: str, note: str | None) -> AlertChange:
        raise ActionsUnavailable(self.MESSAGE)
