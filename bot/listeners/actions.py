"""The Re-run button under a result: a fresh check, answered in the same thread."""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.commands import validate_target
from bot.listeners.delivery import check_and_deliver, checking
from bot.listeners.options import Options
from bot.render_slack import RERUN_ACTION_ID
from bot.service import Checker
from checks.models import Target

logger = logging.getLogger(__name__)


def target_from_value(value: str) -> Target | None:
    """The target a Re-run button carries, or None if the value is not one of ours."""
    try:
        data = json.loads(value)
        target = Target(
            namespace=str(data["namespace"]),
            service=str(data["service"]),
            cluster=str(data.get("cluster", "default")),
        )
    except (ValueError, KeyError, TypeError):
        return None
    cluster = None if target.cluster == "default" else target.cluster
    if validate_target(target.namespace, target.service, cluster):
        return None
    return target


def register(app: App, checker: Checker, options: Options) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def rerun(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        action: dict[str, Any] = next(
            (a for a in body.get("actions", []) if a.get("action_id") == RERUN_ACTION_ID), {}
        )
        target = target_from_value(str(action.get("value", "")))
        user = body.get("user", {}).get("id")
        container = body.get("container", {})
        channel = body.get("channel", {}).get("id") or container.get("channel_id")
        if target is None or not channel:
            logger.warning("ignored a Re-run click from %s with an unusable value", user)
            return
        message = body.get("message") or {}
        thread_ts = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
        logger.info("re-run %s from %s in %s (thread %s)", target.ask, user, channel, thread_ts)

        ephemeral = bool(container.get("is_ephemeral")) or not thread_ts
        admission = options.policy.admit(target, user=user, channel=channel)
        notice = checking(target) if admission.target is not None else admission.refusal
        if not ephemeral and user:
            try:
                client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=thread_ts, text=notice
                )
            except SlackApiError as err:
                logger.debug("chat.postEphemeral refused: %s", err.response.get("error"))
        elif admission.target is None:
            respond(text=notice, response_type="ephemeral", replace_original=False)
        if admission.target is None:
            return
        dest = options.destination(
            client, channel, thread_ts, respond=respond, ephemeral_only=ephemeral
        )
        check_and_deliver(checker, admission.target, dest, fresh=True)

    app.action(RERUN_ACTION_ID)(ack=acknowledge, lazy=[rerun])
