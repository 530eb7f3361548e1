"""``@eks504 check NS/SVC`` and ``@eks504 probe NS/SVC`` mentions: answered in the mention's
thread."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.commands import USAGE, parse
from bot.listeners.delivery import check_and_deliver, say
from bot.listeners.options import Options
from bot.listeners.probe import Prober, ProbeThread, already
from bot.service import Checker

logger = logging.getLogger(__name__)

# Shown on the mention while the check runs, so the asker knows it was heard.
WORKING_REACTION = "eyes"


def register(app: App, checker: Checker, options: Options, prober: Prober) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def answer(event: dict[str, Any], client: WebClient) -> None:
        parsed = parse(event.get("text", ""))
        channel, ts = event.get("channel"), event.get("ts")
        user = event.get("user")
        if not channel or not ts:
            # Slack always names both; without them there is nowhere to answer.
            logger.warning("mention from %s came without its channel or ts; ignored", user)
            return
        # A mention inside a thread is answered there; elsewhere it starts a thread.
        thread_ts = event.get("thread_ts") or ts
        dest = options.destination(client, channel, thread_ts)
        logger.info(
            "mention %s %s from %s in %s",
            parsed.kind,
            parsed.target.ask if parsed.target else "-",
            user,
            channel,
        )
        if parsed.kind == "help":
            say(dest, {"text": USAGE})
            return
        if parsed.kind == "invalid" or parsed.target is None:
            say(dest, {"text": parsed.message})
            return
        if parsed.kind == "probe":
            admitted = prober.admit(parsed.target, user=user, channel=channel)
            if isinstance(admitted, str):
                say(dest, {"text": admitted})
            elif not prober.start(
                admitted, ProbeThread(client, channel, thread_ts), from_report=True
            ):
                say(dest, {"text": already(admitted)})
            return
        admission = options.policy.admit(parsed.target, user=user, channel=channel)
        if admission.target is None:
            say(dest, {"text": admission.refusal})
            return
        try:
            client.reactions_add(channel=channel, timestamp=ts, name=WORKING_REACTION)
        except SlackApiError as err:
            logger.debug("reactions.add refused: %s", err.response.get("error"))
        check_and_deliver(checker, admission.target, dest)

    app.event("app_mention")(ack=acknowledge, lazy=[answer])
