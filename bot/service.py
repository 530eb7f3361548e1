"""Runs a check for a target: cache and single flight, collectors, then the checks.

This is the one entry point the CLI and the Slack app share.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.cache import ResultCache, cache_key
from checks.collect.settings import Connection
from checks.collect.snapshot import collect
from checks.models import Report, Target
from checks.run import build_report

logger = logging.getLogger(__name__)

# progress(step, state): step is e.g. "resolving", "metrics"; state "running" or "done".
Progress = Callable[[str, str], None]
STEPS = ("resolving", "metrics", "keep-alive", "network")


@dataclass(frozen=True)
class CheckOutcome:
    report: Report
    cache_hit: bool = False
    age_s: float = 0.0


class Checker(Protocol):
    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        """Check ``target``; ``fresh`` bypasses the cache. Raises ``Eks504Error``."""
        ...


class LiveChecker:
    """Checks against the cluster and AWS account a :class:`Connection` names."""

    def __init__(
        self,
        connection: Connection,
        cache: ResultCache,
        *,
        ttl_s: int = 300,
        window_s: int = 3600,
    ) -> None:
        self.connection = connection
        self.cache = cache
        self.ttl_s = ttl_s
        self.window_s = window_s

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        cluster = target.cluster if target.cluster != "default" else self.connection.cluster
        key = cache_key(cluster, target.namespace, target.service, self.window_s)

        def compute() -> dict[str, Any]:
            snapshot = collect(
                target.namespace,
                target.service,
                self.connection,
                window_s=self.window_s,
                progress=progress,
            )
            return build_report(snapshot).to_dict()

        cached = self.cache.get_or_compute(key, compute, ttl_s=self.ttl_s, fresh=fresh)
        logger.info(
            "check %s/%s/%s: %s",
            cluster,
            target.namespace,
            target.service,
            f"cached {cached.age_s:.0f} s" if cached.hit else "computed",
        )
        return CheckOutcome(Report.from_dict(cached.value), cached.hit, cached.age_s)
