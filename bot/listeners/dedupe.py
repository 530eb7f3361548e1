"""Answer each Events API event once, however often and wherever Slack delivers it.

Slack sends an event again (``X-Slack-Retry-Num`` over HTTP; ``retry_attempt`` in Socket
Mode, which Bolt passes on as the same header) when it saw no quick acknowledgement, and
replicas behind one URL may each get a copy. The first to claim the ``event_id`` in the
shared ledger answers; every other copy is acknowledged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_bolt import BoltRequest, BoltResponse

from bot.guard import EventLedger

logger = logging.getLogger(__name__)

RETRY_HEADER = "x-slack-retry-num"


def retry_number(request: BoltRequest) -> int:
    values = request.headers.get(RETRY_HEADER) or ["0"]
    try:
        return int(values[0])
    except ValueError:
        return 0


def event_dedupe(ledger: EventLedger) -> Callable[..., BoltResponse | None]:
    """A global Bolt middleware that drops Events API deliveries already taken."""

    def dedupe(
        body: dict[str, Any],
        request: BoltRequest,
        response: BoltResponse | None,
        next: Callable[[], None],
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id:
            retry = retry_number(request)
            if not ledger.claim(str(event_id)):
                logger.info(
                    "event %s (delivery retry %d) was already taken; acknowledged, not answered",
                    event_id,
                    retry,
                )
                return BoltResponse(status=200, body="")
            if retry:
                logger.info("event %s arrived first as retry %d; answering it", event_id, retry)
        next()
        return response

    return dedupe
