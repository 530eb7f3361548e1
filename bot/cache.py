"""The result cache: a report computed once is served again until its TTL runs out.

Two implementations share one protocol. ``RedisCache`` is shared by every process that
talks to the same Redis; ``MemoryCache`` lives in one process and is what runs when no
``REDIS_URL`` is set. Both give *single flight*: while one caller computes a key, others
asking for the same key wait for that result instead of computing it again.

The cache never fails a check because of Redis: when Redis is down or erroring, the value
is computed and returned uncached, and the outage is logged once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

logger = logging.getLogger(__name__)

Compute = Callable[[], dict[str, Any]]

# Bump when the shape of a stored report changes, so old entries are not read as new ones.
KEY_VERSION = "v1"


@dataclass(frozen=True)
class Cached:
    """A report and where it came from; ``age_s`` is 0.0 for a value computed just now."""

    value: dict[str, Any]
    age_s: float
    hit: bool


class ResultCache(Protocol):
    def get_or_compute(
        self,
        key: str,
        compute: Compute,
        *,
        ttl_s: int,
        fresh: bool = False,
        wait_s: float = 60.0,
    ) -> Cached:
        """Return the stored value for ``key`` or call ``compute`` and store its result.

        ``fresh`` ignores a stored value. Exceptions from ``compute`` propagate and are not
        stored. A caller that finds another computing the same key waits up to ``wait_s``
        for that result, then computes on its own.
        """
        ...


def cache_key(cluster: str, namespace: str, service: str, window_s: int) -> str:
    """The key of one check result.

    Kubernetes names cannot contain ``:``, so putting the cluster (an ARN may hold colons)
    last keeps every key unambiguous.
    """
    for name, value in (("cluster", cluster), ("namespace", namespace), ("service", service)):
        if not value:
            raise ValueError(f"{name} must not be empty")
    for name, value in (("namespace", namespace), ("service", service)):
        if ":" in value:
            raise ValueError(f"{name} must not contain ':', got {value!r}")
    if window_s <= 0:
        raise ValueError(f"window_s must be positive, got {window_s}")
    return f"check:{KEY_VERSION}:{window_s}:{namespace}:{service}:{cluster}"


def cache_from_env(env: Mapping[str, str] = os.environ) -> ResultCache:
    """A ``RedisCache`` when ``REDIS_URL`` is set, else a ``MemoryCache``."""
    url = env.get("REDIS_URL", "").strip()
    if url:
        logger.info("result cache: redis at %s", _describe_url(url))
        return RedisCache(url)
    logger.info("result cache: in process memory (REDIS_URL is not set)")
    return MemoryCache()


def _check_ttl(ttl_s: int) -> None:
    if ttl_s < 1:
        raise ValueError(f"ttl_s must be at least 1, got {ttl_s}")


def _encode(value: dict[str, Any], created: float) -> str:
    return json.dumps({"created": created, "value": value}, separators=(",", ":"))


def _decode(raw: str) -> tuple[dict[str, Any], float] | None:
    """The value and creation time in ``raw``, or None when it is not a stored entry."""
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    value, created = data.get("value"), data.get("created")
    if not isinstance(value, dict) or not isinstance(created, int | float):
        return None
    return value, float(created)


def _describe_url(url: str) -> str:
    """``url`` without its credentials, for log lines."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


# ---------------------------------------------------------------------------- memory


@dataclass
class _Entry:
    payload: str
    created: float  # time.monotonic()
    expires: float  # time.monotonic()


@dataclass
class _KeyLock:
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0


class MemoryCache:
    """An in-process cache; single flight holds between threads of this process only.

    Values are stored as JSON, like in Redis, so a caller never receives a dict that
    another caller can mutate, and a value that Redis could not store fails here too.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._key_locks: dict[str, _KeyLock] = {}
        self._guard = threading.Lock()

    def get_or_compute(
        self,
        key: str,
        compute: Compute,
        *,
        ttl_s: int,
        fresh: bool = False,
        wait_s: float = 60.0,
    ) -> Cached:
        _check_ttl(ttl_s)
        requested_at = time.monotonic()
        if not fresh:
            found = self._read(key, not_before=None)
            if found is not None:
                return found

        key_lock = self._enter(key)
        try:
            if not key_lock.lock.acquire(timeout=max(0.0, wait_s)):
                logger.debug("waited %.1f s for %s; computing it here as well", wait_s, key)
                return self._compute_and_store(key, compute, ttl_s)
            try:
                # A value stored while this caller waited for the lock is as fresh as asked.
                found = self._read(key, not_before=None if not fresh else requested_at)
                if found is not None:
                    return found
                return self._compute_and_store(key, compute, ttl_s)
            finally:
                key_lock.lock.release()
        finally:
            self._leave(key, key_lock)

    def _read(self, key: str, *, not_before: float | None) -> Cached | None:
        now = time.monotonic()
        with self._guard:
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= now:
                del self._entries[key]
                entry = None
        if entry is None or (not_before is not None and entry.created < not_before):
            return None
        decoded = _decode(entry.payload)
        if decoded is None:
            return None
        logger.debug("cache hit for %s", key)
        return Cached(value=decoded[0], age_s=max(0.0, now - entry.created), hit=True)

    def _compute_and_store(self, key: str, compute: Compute, ttl_s: int) -> Cached:
        value = compute()
        now = time.monotonic()
        entry = _Entry(payload=_encode(value, now), created=now, expires=now + ttl_s)
        with self._guard:
            self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
            self._entries[key] = entry
        return Cached(value=value, age_s=0.0, hit=False)

    def _enter(self, key: str) -> _KeyLock:
        with self._guard:
            key_lock = self._key_locks.setdefault(key, _KeyLock())
            key_lock.users += 1
            return key_lock

    def _leave(self, key: str, key_lock: _KeyLock) -> None:
        with self._guard:
            key_lock.users -= 1
            if key_lock.users == 0:
                del self._key_locks[key]


# ----------------------------------------------------------------------------- redis

# Deletes the lock only while it still holds this caller's token: a leader whose lock
# expired during a long computation must not delete the lock of the leader after it.
_RELEASE_LUA = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""

_POLL_FIRST_S = 0.02
_POLL_MAX_S = 0.25


class _Unavailable(Exception):
    """Redis failed during a call; the failure is already recorded and logged."""


class RedisCache:
    """A cache in Redis, shared by every process that uses the same server and prefix.

    An entry is ``{"created": <unix time>, "value": {...}}`` stored with ``SET EX``. The
    caller that wins ``SET <key>:lock NX PX`` computes; the others poll for the value.

    After a failure Redis is not asked again for ``retry_after_s`` seconds, so an
    unreachable server costs one connect timeout per interval rather than per request.
    ``lock_ttl_s`` bounds how long a crashed leader can hold other callers back.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "eks504:",
        socket_timeout_s: float = 0.5,
        lock_ttl_s: float = 120.0,
        retry_after_s: float = 5.0,
    ) -> None:
        self._prefix = prefix
        self._where = _describe_url(url)
        self._lock_ttl_ms = max(1, int(lock_ttl_s * 1000))
        self._retry_after_s = retry_after_s
        # One immediate retry reconnects a pooled connection that a Redis restart closed;
        # more, or any backoff, would only delay the fallback when Redis is really down.
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_s,
            socket_connect_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 1),
            decode_responses=True,
        )
        self._release_script = self._client.register_script(_RELEASE_LUA)
        self._state_lock = threading.Lock()
        self._down = False
        self._next_try = 0.0

    def close(self) -> None:
        self._client.close()

    def get_or_compute(
        self,
        key: str,
        compute: Compute,
        *,
        ttl_s: int,
        fresh: bool = False,
        wait_s: float = 60.0,
    ) -> Cached:
        _check_ttl(ttl_s)
        if self._skipping():
            return Cached(value=compute(), age_s=0.0, hit=False)
        try:
            return self._get_or_compute(key, compute, ttl_s=ttl_s, fresh=fresh, wait_s=wait_s)
        except _Unavailable:
            logger.debug("computing %s without the cache", key)
            return Cached(value=compute(), age_s=0.0, hit=False)

    def _get_or_compute(
        self, key: str, compute: Compute, *, ttl_s: int, fresh: bool, wait_s: float
    ) -> Cached:
        value_key = self._prefix + key
        lock_key = value_key + ":lock"
        requested_at = time.time()
        # A fresh caller still joins a computation in flight, but only takes a value that
        # was stored after it asked.
        # Limitation: this compares clocks of different hosts, so skew between them can make
        # a fresh caller take a value a little older than its request, or compute once more.
        not_before = requested_at if fresh else None
        if not fresh:
            found = self._hit(self._call(self._client.get, value_key), not_before=None)
            if found is not None:
                logger.debug("cache hit for %s", key)
                return found

        deadline = time.monotonic() + max(0.0, wait_s)
        token = uuid.uuid4().hex
        while True:
            if self._call(self._client.set, lock_key, token, nx=True, px=self._lock_ttl_ms):
                return self._lead(value_key, lock_key, token, compute, ttl_s, fresh=fresh)
            logger.debug("%s is being computed elsewhere; waiting", key)
            found, leader_gone = self._wait(value_key, lock_key, not_before, deadline)
            if found is not None:
                return found
            if not leader_gone:
                logger.debug("waited %.1f s for %s; computing it here as well", wait_s, key)
                value = compute()
                self._store(value_key, value, ttl_s)
                return Cached(value=value, age_s=0.0, hit=False)
            logger.debug("the computation of %s ended without a value; taking it over", key)

    def _lead(
        self,
        value_key: str,
        lock_key: str,
        token: str,
        compute: Compute,
        ttl_s: int,
        *,
        fresh: bool,
    ) -> Cached:
        try:
            if not fresh:
                # The previous leader may have stored the value between our GET and SET NX.
                raw = self._call(self._client.get, value_key)
                found = self._hit(raw, not_before=None, warn=False)
                if found is not None:
                    return found
            value = compute()
            # Stored before the lock goes, so a waiter never sees neither lock nor value.
            self._store(value_key, value, ttl_s)
            return Cached(value=value, age_s=0.0, hit=False)
        finally:
            self._release(lock_key, token)

    def _wait(
        self, value_key: str, lock_key: str, not_before: float | None, deadline: float
    ) -> tuple[Cached | None, bool]:
        """Poll until the value appears, the lock is gone, or ``deadline`` passes.

        Returns the value found, or None and whether the lock is gone.
        """
        delay = _POLL_FIRST_S
        while True:
            raw, holder = self._call(self._client.mget, value_key, lock_key)
            # The leader replaces an unreadable entry; warning on each poll would only repeat.
            found = self._hit(raw, not_before=not_before, warn=False)
            if found is not None:
                return found, True
            if holder is None:
                return None, True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None, False
            time.sleep(min(delay, remaining))
            delay = min(delay * 1.5, _POLL_MAX_S)

    def _hit(self, raw: Any, *, not_before: float | None, warn: bool = True) -> Cached | None:
        if raw is None:
            return None
        decoded = _decode(raw)
        if decoded is None:
            if warn:
                logger.warning("ignoring an unreadable cache entry in redis at %s", self._where)
            return None
        value, created = decoded
        if not_before is not None and created < not_before:
            return None
        return Cached(value=value, age_s=max(0.0, time.time() - created), hit=True)

    def _store(self, value_key: str, value: dict[str, Any], ttl_s: int) -> None:
        payload = _encode(value, time.time())
        try:
            self._call(self._client.set, value_key, payload, ex=ttl_s)
        except _Unavailable:
            logger.debug("could not store %s; returning it uncached", value_key)

    def _release(self, lock_key: str, token: str) -> None:
        try:
            self._call(self._release_script, keys=[lock_key], args=[token])
        except _Unavailable:
            # The lock expires on its own after lock_ttl_s.
            logger.debug("could not release %s", lock_key)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run one Redis command, recording whether Redis answered."""
        try:
            result = fn(*args, **kwargs)
        except redis.RedisError as exc:
            self._record_failure(exc)
            raise _Unavailable from exc
        self._record_success()
        return result

    def _skipping(self) -> bool:
        with self._state_lock:
            return self._down and time.monotonic() < self._next_try

    def _record_failure(self, exc: Exception) -> None:
        with self._state_lock:
            self._next_try = time.monotonic() + self._retry_after_s
            if self._down:
                return
            self._down = True
        logger.warning(
            "redis at %s failed (%s: %s); computing results without the cache until it answers",
            self._where,
            type(exc).__name__,
            exc,
        )

    def _record_success(self) -> None:
        if not self._down:
            return
        with self._state_lock:
            if not self._down:
                return
            self._down = False
        logger.info("redis is back at %s; caching again", self._where)
