"""The "Check with eks504" message shortcut: checks the Service a message names, in that
message's thread (e.g. on "web/frontend is throwing 504s")."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.commands import find_targets, mrkdwn_code
from bot.listeners.delivery import check_and_deliver
from bot.listeners.options import Options
from bot.service import Checker

logger = logging.getLogger(__name__)

CALLBACK_ID = "eks504_check_message"
# More names than this in one message is a list, not a question about one Service.
MAX_LISTED = 5

NONE_FOUND = (
    ":mag: I found no Service in that message. I look for `NAMESPACE/SERVICE`, such as "
    "`shop/web`; or mention me in the thread: `@eks504 check NAMESPACE/SERVICE`."
)


def register(app: App, checker: Checker, options: Options) -> None:
    def acknowledge(ack: Ack) -> None:
        ack()

    def check_message(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        user = (body.get("user") or {}).get("id")
        targets = find_targets(str(message.get("text", "")))
        logger.info(
            "message shortcut from %s in %s: %s",
            user,
            channel,
            ", ".join(t.ask for t in targets) or "no service named",
        )
        if not channel:
            return
        if not targets:
            respond(text=NONE_FOUND, response_type="ephemeral", replace_original=False)
            return
        if len(targets) > 1:
            names = ", ".join(mrkdwn_code(t.ask) for t in targets[:MAX_LISTED])
            respond(
                text=f":point_right: That message names {len(targets)} Services ({names}). "
                "Mention me in its thread with the one to check: "
                "`@eks504 check NAMESPACE/SERVICE`.",
                response_type="ephemeral",
                replace_original=False,
            )
            return
        admission = options.policy.admit(targets[0], user=user, channel=channel)
        if admission.target is None:
            respond(text=admission.refusal, response_type="ephemeral", replace_original=False)
            return
        dest = options.destination(
            client,
            channel,
            message.get("thread_ts") or message.get("ts") or body.get("message_ts"),
            respond=respond,
        )
        check_and_deliver(checker, admission.target, dest)

    app.message_shortcut(CALLBACK_ID)(ack=acknowledge, lazy=[check_message])
