"""A parent message that shows a check's steps as they run, then becomes the verdict.

The message is posted at the first step and edited with ``chat.update`` afterwards, never
more often than once every ``interval_s`` seconds: steps that arrive in between are
coalesced into the next edit, which a timer sends. ``chat.update`` is a Tier 3 method
(about 50 calls a minute) and Slack asks for at most about one message a second per
channel, so one edit a second per message leaves room for several checks at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.render_slack import render_progress
from checks.models import Target

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0


class ProgressMessage:
    """A ``progress(step, state)`` callback for :meth:`~bot.service.Checker.check` that keeps
    a Slack message up to date; :meth:`finish` turns the message into the answer."""

    def __init__(
        self,
        client: WebClient,
        channel: str,
        thread_ts: str | None,
        target: Target,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._channel = channel
        self._thread_ts = thread_ts
        self._target = target
        self._interval_s = interval_s
        self._clock = clock
        self._steps: dict[str, str] = {}
        self._dirty = False
        self._closed = False
        self._broken = False
        self._timer: threading.Timer | None = None
        self._last_sent: float | None = None
        self.ts: str | None = None
        # _lock guards the fields above; _send serialises the calls to Slack.
        self._lock = threading.Lock()
        self._send = threading.Lock()

    def __call__(self, step: str, state: str) -> None:
        with self._lock:
            if self._closed or self._broken:
                return
            self._steps[step] = state
            self._dirty = True
            if self._timer is not None:
                return  # the edit already scheduled will carry this step too
            delay = 0.0
            if self._last_sent is not None:
                delay = max(0.0, self._last_sent + self._interval_s - self._clock())
            self._timer = threading.Timer(delay, self._flush)
            self._timer.daemon = True
            self._timer.start()

    def _flush(self) -> None:
        with self._send:
            with self._lock:
                self._timer = None
                if self._closed or not self._dirty:
                    return
                steps = dict(self._steps)
                self._dirty = False
            message = render_progress(self._target, steps)
            if self.ts is None:
                self._post(message)
            else:
                self._update(message)

    def _post(self, message: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            answer = self._client.chat_postMessage(
                channel=self._channel, thread_ts=self._thread_ts, **message
            )
        except SlackApiError as err:
            # Without a message to edit the answer is posted whole at the end.
            logger.info(
                "chat.postMessage (progress) in %s: %s", self._channel, err.response.get("error")
            )
            with self._lock:
                self._broken = True
            return
        self.ts = str(answer["ts"])
        self._last_sent = self._clock()
        logger.info(
            "chat.postMessage (progress) in %s: ok in %.2f s",
            self._channel,
            time.monotonic() - started,
        )

    def _update(self, message: dict[str, Any]) -> bool:
        started = time.monotonic()
        try:
            self._client.chat_update(channel=self._channel, ts=str(self.ts), **message)
        except SlackApiError as err:
            logger.info(
                "chat.update %s in %s: %s", self.ts, self._channel, err.response.get("error")
            )
            return False
        finally:
            self._last_sent = self._clock()
        logger.info(
            "chat.update %s in %s: ok in %.2f s", self.ts, self._channel, time.monotonic() - started
        )
        return True

    def finish(self, message: dict[str, Any]) -> str | None:
        """Edit the message into ``message``; its ts, or None when there is no message to
        edit (no step was shown, or Slack refused) and the caller must post one."""
        with self._lock:
            self._closed = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        with self._send:
            if self.ts is None:
                return None
            if self._last_sent is not None:
                wait = self._last_sent + self._interval_s - self._clock()
                if wait > 0:
                    time.sleep(wait)
            return self.ts if self._update(message) else None
