"""Workers a report has stopped waiting for.

When the report's deadline passes, the collector sets a stop event and reports what did not
finish. A worker still running checks the event before each further call and gives up; a
call already on its way may still fail afterwards (in the sandbox the servers are gone by
then), and what the HTTP libraries log about that is dropped here: the report has already
said what was not read, so those warnings would be noise printed after it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

# urllib3 warns on every retry of a refused connection; websocket-client logs its errors.
HTTP_LOGGERS = ("urllib3.connectionpool", "websocket")

_current = threading.local()


def stopped() -> bool:
    """Whether the report this thread works for has stopped waiting for it."""
    stop: threading.Event | None = getattr(_current, "stop", None)
    return stop is not None and stop.is_set()


class _DropAfterStop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not stopped()


_FILTER = _DropAfterStop()
for _name in HTTP_LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def run_until(stop: threading.Event, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn`` run in this thread on behalf of a report that sets ``stop`` when it stops
    waiting: from then on :func:`stopped` is true here and the HTTP layers' logs are dropped."""
    previous = getattr(_current, "stop", None)
    _current.stop = stop
    try:
        return fn(*args, **kwargs)
    finally:
        _current.stop = previous
        if stop.is_set():
            logger.debug(
                "%s finished after the report stopped waiting", getattr(fn, "__name__", fn)
            )
