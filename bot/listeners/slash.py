"""The ``/eks504`` slash command."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.commands import USAGE, parse
from bot.listeners.delivery import Destination, check_and_deliver, checking
from bot.service import Checker

logger = logging.getLogger(__name__)

COMMAND = "/eks504"


def register(app: App, checker: Checker) -> None:
    def acknowledge(ack: Ack, command: dict[str, Any]) -> None:
        parsed = parse(command.get("text", ""))
        logger.info(
            "%s %s from %s in %s",
            COMMAND,
            parsed.target.ask if parsed.target else parsed.kind,
            command.get("user_id"),
            command.get("channel_id"),
        )
        if parsed.kind == "help":
            ack(text=USAGE, response_type="ephemeral")
        elif parsed.kind == "invalid":
            ack(text=parsed.message, response_type="ephemeral")
        else:
            assert parsed.target is not None
            ack(text=checking(parsed.target), response_type="ephemeral")

    def run_check(command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        parsed = parse(command.get("text", ""))
        if parsed.kind != "check" or parsed.target is None:
            return
        dest = Destination(client=client, channel=command["channel_id"], respond=respond)
        check_and_deliver(checker, parsed.target, dest)

    app.command(COMMAND)(ack=acknowledge, lazy=[run_check])
