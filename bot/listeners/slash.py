"""The ``/eks504`` slash command."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient

from bot.commands import USAGE, parse
from bot.listeners.delivery import check_and_deliver, checking
from bot.listeners.options import Options
from bot.listeners.probe import Prober, ProbeThread, already, starting
from bot.service import Checker
from checks.models import Target

logger = logging.getLogger(__name__)

COMMAND = "/eks504"
# The decision on a command, made once and read by both the acknowledgement and the check.
DECISION = "eks504_decision"

NO_CHANNEL = (
    ":warning: Slack sent this command without its channel, so I cannot tell where to answer "
    "or which rules apply there. Please run it again from a channel or a direct message."
)


@dataclass(frozen=True)
class Decision:
    """What to do with one command: check (or probe) ``target``, or answer ``reply`` and
    stop."""

    target: Target | None
    reply: str
    probe: bool = False


def register(app: App, checker: Checker, options: Options, prober: Prober) -> None:
    def decide(
        command: dict[str, Any],
        context: BoltContext,
        next: Any,
    ) -> None:
        # A listener middleware runs once per request, before the acknowledgement and the
        # lazy check are started on their own threads: the rate limit counts it once.
        parsed = parse(command.get("text", ""))
        user, channel = command.get("user_id"), command.get("channel_id")
        logger.info(
            "%s %s %s from %s in %s",
            COMMAND,
            parsed.kind,
            parsed.target.ask if parsed.target else "-",
            user,
            channel,
        )
        if parsed.kind == "help":
            decision = Decision(None, USAGE)
        elif parsed.kind == "invalid" or parsed.target is None:
            decision = Decision(None, parsed.message)
        elif not channel:
            # Slack always names the channel; without one there is nowhere to answer.
            logger.warning("%s from %s came without a channel_id; refused", COMMAND, user)
            decision = Decision(None, NO_CHANNEL)
        elif parsed.kind == "probe":
            admitted = prober.admit(parsed.target, user=user, channel=channel)
            if isinstance(admitted, str):
                decision = Decision(None, admitted)
            else:
                decision = Decision(admitted, starting(admitted), probe=True)
        else:
            admission = options.policy.admit(parsed.target, user=user, channel=channel)
            if admission.target is None:
                decision = Decision(None, admission.refusal)
            else:
                decision = Decision(admission.target, checking(admission.target))
        context[DECISION] = decision
        next()

    def acknowledge(ack: Ack, context: BoltContext) -> None:
        decision: Decision = context[DECISION]
        ack(text=decision.reply, response_type="ephemeral")

    def run_check(
        command: dict[str, Any], context: BoltContext, client: WebClient, respond: Respond
    ) -> None:
        decision: Decision | None = context.get(DECISION)
        channel = command.get("channel_id")
        if decision is None or decision.target is None or not channel:
            return
        if decision.probe:
            # The probe's announcement opens a thread in the channel for its result.
            where = ProbeThread(client, channel, respond=respond)
            if not prober.start(decision.target, where, from_report=True):
                respond(
                    text=already(decision.target),
                    response_type="ephemeral",
                    replace_original=False,
                )
            return
        dest = options.destination(client, channel, respond=respond)
        check_and_deliver(checker, decision.target, dest)

    app.command(COMMAND, middleware=[decide])(ack=acknowledge, lazy=[run_check])
