"""What every listener shares besides the checker: the policy, the event ledger, and how
answers are shown (progress updates, charts)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.guard import EventLedger, MemoryLedger
from bot.policy import Policy
from bot.progress import DEFAULT_INTERVAL_S


@dataclass(frozen=True)
class Options:
    policy: Policy = field(default_factory=Policy)
    ledger: EventLedger = field(default_factory=MemoryLedger)
    # Seconds between two edits of a progress message; None shows no progress.
    progress_interval_s: float | None = DEFAULT_INTERVAL_S
    # Upload a PNG chart for findings carried by metrics.
    charts: bool = True
