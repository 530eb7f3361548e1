"""The keep-alive probe in Slack: ``probe NS/SVC`` and the Measure keep-alive button.

Both take the same steps: the probe must be enabled (it starts a pod in the cluster), the
policy admits the target (its cluster, the channel's namespaces, the rate limits), and a
target is probed once at a time in this process. The probe runs in a background thread of
its own, apart from the report's deadline and from Bolt's listener threads, since it waits
up to the reuse window plus a margin. It announces itself in the thread (a new thread in
the channel for the slash command) and posts its result there as a follow-up.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.clusters import UnknownClusterError, connection_of
from bot.commands import mrkdwn_code
from bot.listeners.actions import target_from_value
from bot.listeners.delivery import post_message
from bot.listeners.options import Options
from bot.probe import Reuse, probe_limit, reuse_window
from bot.render_slack import (
    MEASURE_ACTION_ID,
    render_probe_error,
    render_probe_result,
    render_probe_started,
)
from bot.service import Checker
from checks.errors import Eks504Error
from checks.models import Target

logger = logging.getLogger(__name__)

PROBE_OFF = (
    ":no_entry: The keep-alive probe is off: it starts a short-lived pod in the cluster, so "
    "it runs only where whoever runs eks504 has turned it on, with `probe: {enabled: true}` "
    "in the configuration file that `EKS504_CONFIG` names, or with `EKS504_PROBE=1`."
)
NOT_OURS = (
    ":grey_question: That button is not one of eks504's, or no longer readable. Run the check "
    "again for a fresh one."
)


def starting(target: Target) -> str:
    return f":stopwatch: Starting the keep-alive probe of {mrkdwn_code(target.ask)}…"


def already(target: Target) -> str:
    return (
        f":stopwatch: {mrkdwn_code(target.ask)} is being measured already; its result comes "
        "in the thread where it was asked."
    )


def measure_request(value: str) -> tuple[Target, Reuse | None] | None:
    """The target and the reuse window a Measure keep-alive button carries; None when the
    value is not one of ours."""
    target = target_from_value(value)
    if target is None:
        return None
    raw = json.loads(value).get("reuse")
    reuse = Reuse.from_value(raw)
    if raw is not None and reuse is None:
        return None
    return target, reuse


@dataclass
class ProbeThread:
    """Where a probe's messages go: the thread ``ts``, opened by the first message when it
    is None; through ``respond``, seen only by the asker, where Slack refuses a post."""

    client: WebClient
    channel: str
    ts: str | None = None
    respond: Respond | None = None

    def post(self, message: dict[str, Any]) -> None:
        try:
            posted = post_message(self.client, self.channel, self.ts, message)
        except SlackApiError as err:
            if self.respond is None:
                logger.warning(
                    "could not post the probe's message in %s: %s",
                    self.channel,
                    err.response.get("error"),
                )
                return
            self.respond(response_type="ephemeral", replace_original=False, **message)
            return
        if self.ts is None:
            self.ts = posted

    def fail(self, message: dict[str, Any]) -> None:
        """A probe that could not start: only the asker sees it when no thread is open."""
        if self.ts is None and self.respond is not None:
            self.respond(response_type="ephemeral", replace_original=False, **message)
            return
        self.post(message)


class Prober:
    """Starts probes in background threads, one at a time per target, and posts each
    result in its thread."""

    def __init__(self, checker: Checker, options: Options) -> None:
        self._checker = checker
        self._options = options
        # Limitation: replicas do not share this, so two replicas may probe one target at once.
        self._running: set[Target] = set()
        self._lock = threading.Lock()

    def admit(self, target: Target, *, user: str | None, channel: str | None) -> Target | str:
        """The target to probe, resolved to its cluster, or why it may not be probed now."""
        if not self._options.probe_enabled:
            logger.info("refused a probe of %s from %s: the probe is off", target.ask, user)
            return PROBE_OFF
        admission = self._options.policy.admit(target, user=user, channel=channel)
        return admission.target if admission.target is not None else admission.refusal

    def start(
        self,
        target: Target,
        where: ProbeThread,
        reuse: Reuse | None = None,
        *,
        from_report: bool = False,
    ) -> bool:
        """Probe ``target`` in the background, against the reuse window ``reuse`` (None:
        nothing in front of the pods is known to reuse connections), or, ``from_report``,
        the one its report shows (the cached report when it is recent). False when the
        target is being probed already.
        """
        with self._lock:
            if target in self._running:
                logger.info("probe of %s asked again while it runs", target.ask)
                return False
            self._running.add(target)
        thread = threading.Thread(
            target=self._run,
            args=(target, where, reuse, from_report),
            name=f"eks504-probe-{target.ask}",
            daemon=True,
        )
        thread.start()
        return True

    def _run(
        self, target: Target, where: ProbeThread, reuse: Reuse | None, from_report: bool
    ) -> None:
        try:
            if from_report:
                reuse = reuse_window(self._checker.check(target).report)
            connection = connection_of(self._checker, target.cluster)
            if connection is None:
                raise UnknownClusterError(
                    f"There is no Kubernetes connection for cluster {target.cluster}."
                )
            limit_s = probe_limit(reuse)
            where.post(render_probe_started(target, limit_s))
            started = time.monotonic()
            result = self._options.probe_runner(connection, target, limit_s)
            logger.info(
                "probe of %s in %s: %s in %.1f s",
                target.ask,
                target.cluster,
                result.detail,
                time.monotonic() - started,
            )
            where.post(render_probe_result(target, result, reuse, limit_s))
        except Eks504Error as err:
            logger.info("probe of %s could not measure: %s", target.ask, err)
            where.fail(render_probe_error(err, target))
        except Exception as err:
            logger.exception("probe of %s failed unexpectedly", target.ask)
            where.fail(render_probe_error(err, target))
        finally:
            with self._lock:
                self._running.discard(target)


def register(app: App, prober: Prober) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def measure(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        action: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == MEASURE_ACTION_ID), {}
        )
        user = (body.get("user") or {}).get("id")
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id") or container.get("channel_id")
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts") or container.get("message_ts")

        request = measure_request(str(action.get("value", "")))
        if request is None or not channel:
            logger.warning(
                "ignored a Measure keep-alive click from %s with an unusable value", user
            )
            respond(text=NOT_OURS, response_type="ephemeral", replace_original=False)
            return
        target, reuse = request
        logger.info("measure keep-alive of %s from %s in %s", target.ask, user, channel)
        admitted = prober.admit(target, user=user, channel=channel)
        if isinstance(admitted, str):
            respond(text=admitted, response_type="ephemeral", replace_original=False)
            return
        where = ProbeThread(client, channel, thread_ts, respond)
        if not prober.start(admitted, where, reuse):
            respond(text=already(admitted), response_type="ephemeral", replace_original=False)

    app.action(MEASURE_ACTION_ID)(ack=acknowledge, lazy=[measure])
