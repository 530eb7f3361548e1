"""What every listener shares besides the checker: the policy, the event ledger, how
answers are shown (progress updates, charts), the one-click fixes and the keep-alive
probe."""

from __future__ import annotations

from dataclasses import dataclass, field

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.apply import ApplyService
from bot.guard import EventLedger, MemoryLedger
from bot.listeners.delivery import Destination
from bot.policy import Policy
from bot.probe import LiveProbe, ProbeRunner
from bot.progress import DEFAULT_INTERVAL_S
from bot.render_slack import FixOffers


@dataclass(frozen=True)
class Options:
    policy: Policy = field(default_factory=Policy)
    ledger: EventLedger = field(default_factory=MemoryLedger)
    # Seconds between two edits of a progress message; None shows no progress.
    progress_interval_s: float | None = DEFAULT_INTERVAL_S
    # Upload a PNG chart for findings carried by metrics.
    charts: bool = True
    # The one-click fixes (who may apply, offers waiting for a click, the audit log); None
    # builds them from the environment when the listeners are registered.
    apply: ApplyService | None = None
    # What a finding reply offers for a fix that is one Kubernetes patch (an Apply button,
    # or why there is none); None offers what ``apply`` offers.
    offers: FixOffers | None = None
    # The keep-alive probe starts a pod in the cluster, so it is off unless enabled.
    probe_enabled: bool = False
    # What runs it: the listeners call it in a background thread.
    probe_runner: ProbeRunner = field(default_factory=LiveProbe)

    def destination(
        self,
        client: WebClient,
        channel: str,
        thread_ts: str | None = None,
        *,
        respond: Respond | None = None,
        ephemeral_only: bool = False,
    ) -> Destination:
        """Where a check's answer goes, shown the way these options say."""
        return Destination(
            client=client,
            channel=channel,
            thread_ts=thread_ts,
            respond=respond,
            ephemeral_only=ephemeral_only,
            progress_interval_s=self.progress_interval_s,
            charts=self.charts,
            offers=self.offers,
            measure=self.probe_enabled,
        )
