"""State the Slack app's replicas share: which events were taken, and how many checks each
user and channel asked for lately.

Slack delivers an Events API event again when it did not see a quick 200 (with
``X-Slack-Retry-Num`` over HTTP, ``retry_attempt`` in Socket Mode), and may deliver it to
any replica; the first replica to claim its ``event_id`` answers it, the others drop it.
Rate limits count checks in fixed windows.

With ``REDIS_URL`` both live in Redis (``SET NX EX`` and ``INCR``/``EXPIRE``), shared by
every replica; without it, in process memory. When Redis fails, each falls back to memory,
says so once in the log, and goes back to Redis when it answers again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.cache import _describe_url

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Slack retries an event three times within about five minutes; an hour covers them all.
EVENT_TTL_S = 3600


@dataclass(frozen=True)
class Verdict:
    """Whether a request is within a limit; if not, when the window resets."""

    allowed: bool
    count: int
    retry_after_s: int = 0


class EventLedger(Protocol):
    def claim(self, event_id: str) -> bool:
        """True for the first caller with ``event_id``; False for every later one."""
        ...


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int, window_s: int) -> Verdict:
        """Count one request under ``key``; allowed while at most ``limit`` in the window."""
        ...


# ---------------------------------------------------------------------------- memory


class MemoryLedger:
    def __init__(self, ttl_s: float = EVENT_TTL_S, clock: Callable[[], float] = time.monotonic):
        self._ttl_s = ttl_s
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def claim(self, event_id: str) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expires = self._seen.get(event_id)
            if expires is not None and expires > now:
                return False
            self._seen[event_id] = now + self._ttl_s
            return True


class MemoryRateLimiter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: int, window_s: int) -> Verdict:
        now = self._clock()
        window = int(now // window_s)
        with self._lock:
            self._counts = {k: c for k, c in self._counts.items() if k[1] >= window}
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        return _verdict(count, limit, now, window_s)


def _verdict(count: int, limit: int, now: float, window_s: int) -> Verdict:
    if count <= limit:
        return Verdict(True, count)
    reset = (math.floor(now / window_s) + 1) * window_s
    return Verdict(False, count, max(1, math.ceil(reset - now)))


# ----------------------------------------------------------------------------- redis


class _RedisState:
    """One Redis client for the app's shared state, and whether Redis is answering."""

    def __init__(self, url: str, *, socket_timeout_s: float = 0.5, retry_after_s: float = 5.0):
        self.where = _describe_url(url)
        self._retry_after_s = retry_after_s
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._lock = threading.Lock()
        self._down = False
        self._next_try = 0.0

    def run(self, what: str, fn: Callable[[], T]) -> T | None:
        """``fn()``, or None when Redis is down (then not asked again for a few seconds)."""
        with self._lock:
            if self._down and time.monotonic() < self._next_try:
                return None
        try:
            result = fn()
        except redis.RedisError as exc:
            with self._lock:
                self._next_try = time.monotonic() + self._retry_after_s
                first = not self._down
                self._down = True
            if first:
                logger.warning(
                    "redis at %s failed during %s (%s); keeping %s in process memory until it "
                    "answers",
                    self.where,
                    what,
                    type(exc).__name__,
                    what,
                )
            return None
        with self._lock:
            was_down, self._down = self._down, False
        if was_down:
            logger.info("redis is back at %s; sharing %s again", self.where, what)
        return result


class RedisLedger:
    def __init__(self, state: _RedisState, *, prefix: str = "eks504:", ttl_s: int = EVENT_TTL_S):
        self._state = state
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._fallback = MemoryLedger(ttl_s)

    def claim(self, event_id: str) -> bool:
        key = f"{self._prefix}event:{event_id}"
        taken = self._state.run(
            "event ids", lambda: bool(self._state.client.set(key, "1", nx=True, ex=self._ttl_s))
        )
        if taken is None:
            return self._fallback.claim(event_id)
        return taken


class RedisRateLimiter:
    def __init__(self, state: _RedisState, *, prefix: str = "eks504:") -> None:
        self._state = state
        self._prefix = prefix
        self._fallback = MemoryRateLimiter()

    def hit(self, key: str, limit: int, window_s: int) -> Verdict:
        now = time.time()
        counter = f"{self._prefix}rate:{key}:{int(now // window_s)}"

        def count() -> Any:
            pipe = self._state.client.pipeline(transaction=True)
            pipe.incr(counter)
            pipe.expire(counter, window_s + 1)
            return pipe.execute()[0]

        counted = self._state.run("rate limits", count)
        if counted is None:
            return self._fallback.hit(key, limit, window_s)
        return _verdict(int(counted), limit, now, window_s)


@dataclass(frozen=True)
class Shared:
    """The ledger and the rate limiter, from one place."""

    ledger: EventLedger
    limiter: RateLimiter


def shared_from_env(env: Mapping[str, str]) -> Shared:
    """Redis-backed when ``REDIS_URL`` is set, else in process memory."""
    url = env.get("REDIS_URL", "").strip()
    if not url:
        logger.info("event ids and rate limits: in process memory (REDIS_URL is not set)")
        return Shared(MemoryLedger(), MemoryRateLimiter())
    state = _RedisState(url)
    logger.info("event ids and rate limits: redis at %s", state.where)
    return Shared(RedisLedger(state), RedisRateLimiter(state))
