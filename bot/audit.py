"""The audit trail of fixes applied from Slack: who, what, when, and the result.

Each :class:`AuditEntry` keeps the values the change replaced (its :class:`Change` list),
so that the change can be undone from the entry alone. Entries go to the Redis stream
``eks504:audit`` (``XADD``) when ``REDIS_URL`` is set, where every replica and an operator
with ``redis-cli XRANGE eks504:audit - +`` can read them; else to a list in this process.

An entry that Redis cannot take is kept in this process instead and the failure logged,
so an outage never loses the record of a change that was made.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import redis

logger = logging.getLogger(__name__)

STREAM = "eks504:audit"
# Old entries are trimmed beyond this many; an undo needs its entry still there.
STREAM_MAXLEN = 100_000

APPLIED = "applied"
UNCHANGED = "unchanged"
DRY_RUN_FAILED = "dry-run failed"
FAILED = "failed"
REFUSED = "refused"


@dataclass(frozen=True)
class Change:
    """One value the change touched, at a JSON pointer into the object.

    ``was_set`` False: the path did not exist before; ``is_set`` False: it was removed.
    """

    path: str
    before: Any = None
    after: Any = None
    was_set: bool = True
    is_set: bool = True

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            path=str(data["path"]),
            before=data.get("before"),
            after=data.get("after"),
            was_set=bool(data.get("was_set", True)),
            is_set=bool(data.get("is_set", True)),
        )


@dataclass(frozen=True)
class AuditEntry:
    action: str  # "apply" or "undo"
    user: str
    cluster: str
    kind: str
    namespace: str
    name: str
    title: str
    patch_type: str
    patch: Any
    result: str
    detail: str = ""
    changes: tuple[Change, ...] = ()
    at: float = 0.0
    undoes: str = ""  # the id of the entry an undo reverses
    id: str = ""  # assigned when recorded

    @property
    def object_ref(self) -> str:
        return f"{self.kind.lower()}/{self.namespace}/{self.name}"

    @property
    def undoable(self) -> bool:
        return self.result == APPLIED and bool(self.changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("id")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], entry_id: str = "") -> AuditEntry:
        return cls(
            action=str(data["action"]),
            user=str(data["user"]),
            cluster=str(data.get("cluster", "default")),
            kind=str(data["kind"]),
            namespace=str(data["namespace"]),
            name=str(data["name"]),
            title=str(data.get("title", "")),
            patch_type=str(data["patch_type"]),
            patch=data.get("patch"),
            result=str(data["result"]),
            detail=str(data.get("detail", "")),
            changes=tuple(Change.from_dict(c) for c in data.get("changes") or ()),
            at=float(data.get("at", 0.0)),
            undoes=str(data.get("undoes", "")),
            id=entry_id,
        )


class AuditLog(Protocol):
    def record(self, entry: AuditEntry) -> AuditEntry:
        """Store ``entry`` (stamped with the time if it has none); return it with its id."""
        ...

    def get(self, entry_id: str) -> AuditEntry | None: ...

    def entries(self) -> list[AuditEntry]:
        """Every entry this log can read, oldest first."""
        ...


def _stamped(entry: AuditEntry) -> AuditEntry:
    return entry if entry.at else replace(entry, at=time.time())


class MemoryAuditLog:
    """Entries in this process, for a bot without Redis (and as Redis's fallback)."""

    def __init__(self) -> None:
        self._entries: list[AuditEntry] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, entry: AuditEntry) -> AuditEntry:
        with self._lock:
            stored = replace(_stamped(entry), id=f"local-{next(self._ids)}")
            self._entries.append(stored)
        logger.info(
            "audit %s: %s %s %s by %s (in process)",
            stored.id,
            stored.action,
            stored.object_ref,
            stored.result,
            stored.user,
        )
        return stored

    def get(self, entry_id: str) -> AuditEntry | None:
        with self._lock:
            return next((e for e in self._entries if e.id == entry_id), None)

    def entries(self) -> list[AuditEntry]:
        with self._lock:
            return list(self._entries)


@dataclass
class RedisAuditLog:
    """Entries in the Redis stream ``stream``; the flat fields are for people reading it."""

    url: str
    stream: str = STREAM
    fallback: MemoryAuditLog = field(default_factory=MemoryAuditLog)

    def __post_init__(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0
        )

    def record(self, entry: AuditEntry) -> AuditEntry:
        entry = _stamped(entry)
        fields: dict[Any, Any] = {
            "who": entry.user,
            "what": f"{entry.action} {entry.object_ref}: {entry.title}",
            "when": f"{entry.at:.3f}",
            "result": entry.result,
            "entry": json.dumps(entry.to_dict(), separators=(",", ":")),
        }
        started = time.monotonic()
        try:
            entry_id = self._client.xadd(
                self.stream, fields, maxlen=STREAM_MAXLEN, approximate=True
            )
        except redis.RedisError as err:
            logger.error(
                "audit entry for %s %s could not go to Redis (%s); kept in this process",
                entry.action,
                entry.object_ref,
                type(err).__name__,
            )
            return self.fallback.record(entry)
        logger.info(
            "XADD %s %s: %s %s %s by %s in %.3f s",
            self.stream,
            entry_id,
            entry.action,
            entry.object_ref,
            entry.result,
            entry.user,
            time.monotonic() - started,
        )
        return replace(entry, id=str(entry_id))

    def get(self, entry_id: str) -> AuditEntry | None:
        local = self.fallback.get(entry_id)
        if local is not None or entry_id.startswith("local-"):
            return local
        try:
            found = self._client.xrange(self.stream, min=entry_id, max=entry_id, count=1)
        except redis.ResponseError:
            return None  # not a stream id at all
        except redis.RedisError as err:
            logger.warning("could not read audit entry %s from Redis: %s", entry_id, err)
            return None
        return _decode(found[0]) if found else None

    def entries(self) -> list[AuditEntry]:
        try:
            found = self._client.xrange(self.stream, "-", "+")
        except redis.RedisError as err:
            logger.warning("could not read the audit stream from Redis: %s", err)
            found = []
        decoded = [e for e in (_decode(item) for item in found or []) if e is not None]
        return sorted([*decoded, *self.fallback.entries()], key=lambda e: e.at)


def _decode(item: Any) -> AuditEntry | None:
    entry_id, fields = item
    try:
        return AuditEntry.from_dict(json.loads(fields["entry"]), str(entry_id))
    except (KeyError, ValueError, TypeError):
        logger.warning("audit stream entry %s is not one of ours", entry_id)
        return None


def audit_from_env(env: Mapping[str, str] = os.environ) -> AuditLog:
    """A Redis stream when ``REDIS_URL`` is set, else a list in this process."""
    url = env.get("REDIS_URL", "").strip()
    if url:
        return RedisAuditLog(url)
    logger.info("audit log: in process memory (REDIS_URL is not set)")
    return MemoryAuditLog()
