"""Whether a check asked in Slack may run, and on which cluster.

In order: the cluster (``--cluster``, else the channel's default, else the configured one),
the channel's namespaces, then the rate limits of the user and of the channel. A refusal
is a friendly mrkdwn sentence; user input in it is escaped.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from bot.commands import mrkdwn_code
from bot.config import BotConfig
from bot.guard import MemoryRateLimiter, RateLimiter
from checks.models import Target

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    """A target that may be checked now, or why not."""

    target: Target | None
    refusal: str = ""


def _listing(names: Sequence[str]) -> str:
    return ", ".join(mrkdwn_code(n) for n in names) or "none"


def _wait(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"


class Policy:
    """Decides for each check asked in Slack; without a configuration, only rate limits."""

    def __init__(
        self,
        config: BotConfig | None = None,
        limiter: RateLimiter | None = None,
        *,
        clusters: Sequence[str] | None = None,
    ) -> None:
        self.config = config or BotConfig()
        self.limiter = limiter or MemoryRateLimiter()
        # The clusters a checker can reach; None when any name goes (a single checker).
        names = list(clusters) if clusters is not None else list(self.config.clusters)
        self.clusters: tuple[str, ...] | None = tuple(names) if names else None

    def admit(self, target: Target, *, user: str | None, channel: str | None) -> Admission:
        resolved = self._cluster(target, channel)
        if isinstance(resolved, str):
            return Admission(None, resolved)
        target = resolved

        rules = self.config.channel(channel)
        if not rules.allows(target.namespace):
            logger.info("refused %s in %s: namespace not allowed there", target.ask, channel)
            allowed = rules.namespaces or ()
            return Admission(
                None,
                f":no_entry: Checks from this channel are limited to the namespaces "
                f"{_listing(allowed)}, so I will not check {mrkdwn_code(target.ask)} here. "
                "Ask in the channel of the team that owns it, or ask whoever runs eks504 to "
                "allow it for this channel.",
            )

        limits = self.config.rate_limits
        for scope, key, limit in (
            ("user", user, limits.per_user),
            ("channel", channel, limits.per_channel),
        ):
            if not key or limit <= 0:
                continue
            verdict = self.limiter.hit(f"{scope}:{key}", limit, limits.window_s)
            if verdict.allowed:
                continue
            logger.info("rate limit of %s %s reached (%d)", scope, key, verdict.count)
            who = "You have" if scope == "user" else "This channel has"
            return Admission(
                None,
                f":hourglass: {who} asked for {limit} checks in the last "
                f"{_wait(limits.window_s)}, as many as I take. Please try "
                f"{mrkdwn_code(target.ask)} again in {_wait(verdict.retry_after_s)}; "
                "recent answers are in the threads above.",
            )
        return Admission(target)

    def _cluster(self, target: Target, channel: str | None) -> Target | str:
        asked = target.cluster if target.cluster != "default" else None
        name = asked or self.config.cluster_for(channel)
        if self.clusters is None:
            return target if name is None else replace(target, cluster=name)
        if name is None and len(self.clusters) == 1:
            name = next(iter(self.clusters))
        if name is None:
            return (
                f":grey_question: Which cluster should I check {mrkdwn_code(target.ask)} in? "
                f"Add `--cluster NAME`; I know {_listing(self.clusters)}."
            )
        if name not in self.clusters:
            return (
                f":grey_question: I do not know the cluster {mrkdwn_code(name)}. "
                f"I know {_listing(self.clusters)}."
            )
        return replace(target, cluster=name)
