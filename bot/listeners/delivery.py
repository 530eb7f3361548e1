"""Running a check for a listener and delivering the result to Slack.

Shared by the slash command, mentions and the Re-run button: they differ only in where
the answer goes (a new thread, an existing thread, or only to the user who asked).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from slack_bolt import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.charts import alt_text, chart_filename, render_png
from bot.commands import escape_mrkdwn, mrkdwn_code
from bot.progress import ProgressMessage
from bot.render_slack import FileUpload, FixOffers, pack, render, render_error
from bot.service import Checker, CheckOutcome
from checks.errors import Eks504Error
from checks.models import Target

logger = logging.getLogger(__name__)

# Failures on the way to Slack rather than answers from it (a dropped connection, a timeout).
TRANSPORT_ERRORS = (SlackRequestError, OSError)
# chat.postMessage errors that mean "the bot cannot post here", not "something broke".
NOT_A_MEMBER = frozenset({"not_in_channel", "channel_not_found"})

INVITE = (
    ":information_source: I cannot post in this channel, so only you see this answer. "
    "Invite me with `/invite @eks504` to get results in a thread everyone can see."
)
POST_FAILED = (
    ":warning: I found the answer for {target} but Slack did not let me post it ({error}). "
    "Try again, or ask whoever runs eks504 to look at its logs."
)


def checking(target: Target) -> str:
    return f":hourglass_flowing_sand: Checking {mrkdwn_code(target.ask)}…"


@dataclass(frozen=True)
class Destination:
    """Where an answer goes.

    ``thread_ts`` None starts a new thread under the parent message; ``respond`` (the
    request's response_url) carries ephemeral answers and errors when it is set.
    """

    client: WebClient
    channel: str
    thread_ts: str | None = None
    respond: Respond | None = None
    # Only the asking user may see the answer (e.g. a click in an ephemeral message).
    ephemeral_only: bool = False
    # Seconds between edits of the parent while the check runs; None posts only the answer.
    progress_interval_s: float | None = None
    # Upload charts of the metrics behind findings into the thread.
    charts: bool = False
    # What a fix that is one Kubernetes patch offers (an Apply button); None: copy-paste.
    offers: FixOffers | None = None
    # Offer to measure the keep-alive the keep-alive finding read from configuration.
    measure: bool = False


def post_message(
    client: WebClient, channel: str, thread_ts: str | None, message: dict[str, Any]
) -> str:
    """Post ``message`` in ``channel`` (in the thread ``thread_ts``, if set); its ts."""
    started = time.monotonic()
    try:
        answer = client.chat_postMessage(
            channel=channel,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
            **message,
        )
    except SlackApiError as err:
        logger.info(
            "chat.postMessage in %s (thread %s): %s in %.2f s",
            channel,
            thread_ts,
            err.response.get("error"),
            time.monotonic() - started,
        )
        raise
    logger.info(
        "chat.postMessage in %s (thread %s): ok in %.2f s",
        channel,
        thread_ts,
        time.monotonic() - started,
    )
    return str(answer["ts"])


def _respond_all(respond: Respond, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        answer = respond(response_type="ephemeral", replace_original=False, **message)
        logger.info("response_url post: HTTP %s", answer.status_code)


def say(dest: Destination, message: dict[str, Any]) -> None:
    """One message: ephemeral through the response URL if there is one, else in the thread."""
    if dest.respond is not None:
        _respond_all(dest.respond, [message])
        return
    try:
        post_message(dest.client, dest.channel, dest.thread_ts, message)
    except SlackApiError:
        logger.warning("could not post a message in %s (thread %s)", dest.channel, dest.thread_ts)


def _upload(client: WebClient, channel: str, thread_ts: str, upload: FileUpload) -> None:
    started = time.monotonic()
    try:
        client.files_upload_v2(
            channel=channel,
            thread_ts=thread_ts,
            file=upload.content,
            filename=upload.filename,
            title=upload.title,
            alt_txt=upload.alt_txt or None,
        )
    except SlackApiError as err:
        logger.warning(
            "file upload %s in %s (thread %s): %s",
            upload.filename,
            channel,
            thread_ts,
            err.response.get("error"),
        )
        return
    except TRANSPORT_ERRORS as err:
        logger.warning("file upload %s in %s failed: %s", upload.filename, channel, err)
        return
    logger.info(
        "file upload %s (%d bytes) in %s (thread %s): ok in %.2f s",
        upload.filename,
        len(upload.content),
        channel,
        thread_ts,
        time.monotonic() - started,
    )


def chart_uploads(outcome: CheckOutcome) -> list[FileUpload]:
    """A PNG for each chart of the report; none when matplotlib is missing."""
    uploads: list[FileUpload] = []
    for chart in outcome.report.charts:
        png = render_png(chart)
        if png is None:
            break
        uploads.append(
            FileUpload(
                filename=chart_filename(chart),
                title=chart.title,
                content=png,
                alt_txt=alt_text(chart),
            )
        )
    return uploads


def deliver(
    dest: Destination, outcome: CheckOutcome, progress: ProgressMessage | None = None
) -> None:
    """Turn the progress message into the verdict (or post the parent), then each reply
    and file in its thread; fall back to ephemeral answers."""
    messages = render(
        outcome.report,
        cache_hit=outcome.cache_hit,
        age_s=outcome.age_s,
        offers=dest.offers,
        measure=dest.measure,
    )
    if dest.ephemeral_only and dest.respond is not None:
        _respond_all(dest.respond, pack(messages))
        return
    root = progress.finish(messages.parent) if progress is not None else None
    if root is None:
        try:
            root = post_message(dest.client, dest.channel, dest.thread_ts, messages.parent)
        except SlackApiError as err:
            _post_failed(dest, outcome, str(err.response.get("error")))
            return

    thread_ts = dest.thread_ts or root
    for reply in messages.replies:
        try:
            post_message(dest.client, dest.channel, thread_ts, reply)
        except (SlackApiError, *TRANSPORT_ERRORS):
            # One reply Slack refuses, or one the network loses, must not hide the others.
            logger.exception("could not post a reply for %s", messages.target.ask)
    uploads = list(messages.files)
    if dest.charts:
        uploads += chart_uploads(outcome)
    for upload in uploads:
        _upload(dest.client, dest.channel, thread_ts, upload)


def _post_failed(dest: Destination, outcome: CheckOutcome, error: str) -> None:
    target = outcome.report.target
    if dest.respond is None:
        logger.error("could not post the result for %s: %s", target.ask, error)
        return
    if error in NOT_A_MEMBER:
        intro_messages = render(
            outcome.report,
            cache_hit=outcome.cache_hit,
            age_s=outcome.age_s,
            intro=INVITE,
            offers=dest.offers,
            measure=dest.measure,
        )
        _respond_all(dest.respond, pack(intro_messages))
        return
    logger.error("could not post the result for %s: %s", target.ask, error)
    text = POST_FAILED.format(target=mrkdwn_code(target.ask), error=escape_mrkdwn(error))
    _respond_all(dest.respond, [{"text": text}])


def _fail(dest: Destination, message: dict[str, Any], progress: ProgressMessage | None) -> None:
    """A check that could not run: the progress message says so, or a message does."""
    if progress is not None and progress.finish(message) is not None:
        return
    say(dest, message)


def check_and_deliver(
    checker: Checker, target: Target, dest: Destination, *, fresh: bool = False
) -> None:
    """Run the check and deliver its result, or a plain-words message if it could not run.

    While it runs, the parent message shows its steps (unless only the asker may see the
    answer, or progress is off).
    """
    progress = None
    if dest.progress_interval_s is not None and not dest.ephemeral_only:
        progress = ProgressMessage(
            dest.client,
            dest.channel,
            dest.thread_ts,
            target,
            interval_s=dest.progress_interval_s,
        )
    started = time.monotonic()
    try:
        outcome = checker.check(target, fresh=fresh, progress=progress)
    except Eks504Error as err:
        logger.info("check of %s could not run: %s", target.ask, err)
        _fail(dest, render_error(err, target.ask), progress)
        return
    except Exception as err:
        logger.exception("check of %s failed unexpectedly", target.ask)
        _fail(dest, render_error(err, target.ask), progress)
        return
    logger.info(
        "check of %s: %s (cache hit %s) in %.2f s",
        target.ask,
        outcome.report.verdict(),
        outcome.cache_hit,
        time.monotonic() - started,
    )
    try:
        deliver(dest, outcome, progress)
    except Exception:
        # The check itself stands: whatever reached Slack stays as it is.
        logger.exception("delivering the result of %s to Slack failed", target.ask)
