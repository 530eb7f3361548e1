"""Block Kit rendering of a :class:`~checks.models.Report`.

A report becomes a parent message (verdict, load balancers, Re-run button), one thread reply
per failing or warning finding, and a closing reply with what passed and what could not be
checked. Slack's limits are enforced here, at the edge: 50 blocks a message, 3000 characters
a section, 150 a header, 75 a button label, 40000 the ``text`` fallback. What does not fit
is cut with a note that says how much was left out and how to see all of it.

Every value that comes from a cluster or AWS is escaped for mrkdwn (``&``, ``<``, ``>``),
code blocks included, so nothing in a report can turn into a mention or a link.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.commands import escape_mrkdwn, mrkdwn_code
from bot.probe import PROBED_CODE, Reuse, reuse_window
from bot.render_text import ladder_table
from bot.service import STEPS
from checks.errors import Eks504Error
from checks.models import Finding, Fix, LoadBalancerSummary, Report, Rung, Status, Target
from checks.probe import ProbeResult

if TYPE_CHECKING:
    from bot.apply import Offer

logger = logging.getLogger(__name__)

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 40000

RERUN_ACTION_ID = "eks504_rerun"
APPLY_ACTION_ID = "eks504_apply"
UNDO_ACTION_ID = "eks504_undo"
MEASURE_ACTION_ID = "eks504_measure_keepalive"

_EMOJI = {
    Status.FAIL: ":red_circle:",
    Status.WARN: ":large_orange_circle:",
    Status.UNKNOWN: ":white_circle:",
    Status.PASS: ":large_green_circle:",
}
_LB_TYPES = {
    "classic": "Classic LB",
    "application": "ALB",
    "network": "NLB",
}
_FENCE = "```"

Block = dict[str, Any]


@dataclass(frozen=True)
class FileUpload:
    """A file for the thread: what does not fit in Block Kit, or a chart."""

    filename: str
    title: str
    content: bytes
    alt_txt: str = ""


@dataclass(frozen=True)
class SlackMessages:
    """``parent`` goes to the channel; ``replies`` go, in order, to its thread, then
    ``files``."""

    parent: dict[str, Any]
    replies: list[dict[str, Any]]
    target: Target = field(default_factory=lambda: Target(namespace="", service=""))
    files: list[FileUpload] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Text that fits


def _shorten(text: str, limit: int, marker: str = "…") -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - len(marker)]
    # In escaped text every "&" starts an entity; never leave half of one behind.
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + marker


def _escaped_pieces(raw: str, limit: int) -> list[str]:
    """``raw`` escaped and cut into pieces of at most ``limit`` characters.

    Cutting after escaping could split an entity such as ``&amp;``; this cuts between
    the escaped forms of whole characters instead.
    """
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for char in raw:
        piece = escape_mrkdwn(char)
        if size + len(piece) > limit and current:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(piece)
        size += len(piece)
    pieces.append("".join(current))
    return pieces


def _pack(items: Iterable[str], limit: int, sep: str = "\n") -> list[tuple[str, int]]:
    """Join already-escaped ``items`` with ``sep`` into chunks of at most ``limit``.

    Returns each chunk with the number of items it carries, so that a cut can say how much
    it left out. An item longer than ``limit`` is shortened (callers pre-cut long lines).
    """
    chunks: list[tuple[str, int]] = []
    current: list[str] = []
    size = 0
    for raw_item in items:
        item = _shorten(raw_item, limit)
        extra = len(item) + (len(sep) if current else 0)
        if current and size + extra > limit:
            chunks.append((sep.join(current), len(current)))
            current, size, extra = [], 0, len(item)
        current.append(item)
        size += extra
    if current:
        chunks.append((sep.join(current), len(current)))
    return chunks


def _escaped_lines(raw: str, limit: int) -> list[str]:
    lines: list[str] = []
    for raw_line in raw.splitlines() or [""]:
        lines.extend(_escaped_pieces(raw_line, limit))
    return lines


# ---------------------------------------------------------------------------
# Blocks


# A thread with more finding replies than this is read by no one during an incident.
MAX_FINDING_REPLIES = 15


def _section(text: str) -> Block:
    return {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _shorten(text or " ", MAX_SECTION_TEXT)},
    }


def _context(text: str) -> Block:
    return {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": _shorten(text or " ", MAX_CONTEXT_TEXT)}],
    }


def _header(text: str) -> Block:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _shorten(text, MAX_HEADER_TEXT), "emoji": True},
    }


def _button(label: str, action_id: str, value: str) -> Block:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": _shorten(label, MAX_BUTTON_TEXT), "emoji": True},
        "action_id": action_id,
        "value": value[:MAX_BUTTON_VALUE],
    }


def _cut_note(left_out: int, what: str, target: Target) -> Block:
    return _context(
        f"… {left_out} more {what}; run `eks504 check {escape_mrkdwn(target.ask)}` for all"
    )


def _fit(
    head: Sequence[Block],
    body: Sequence[tuple[Block, int]],
    tail: Sequence[Block],
    target: Target,
) -> list[Block]:
    """``head``, ``body``, ``tail`` in at most MAX_BLOCKS blocks, cutting the body's end.

    Each body block comes with the number of lines it carries, for the note that replaces
    whatever does not fit.
    """
    budget = MAX_BLOCKS - len(head) - len(tail)
    if len(body) <= budget:
        return [*head, *(block for block, _ in body), *tail]
    kept = body[: budget - 1]
    left_out = sum(lines for _, lines in body[budget - 1 :])
    logger.debug("cut %d lines to fit %d blocks for %s", left_out, MAX_BLOCKS, target.ask)
    return [*head, *(block for block, _ in kept), _cut_note(left_out, "lines", target), *tail]


def _bullet_sections(title: str, raw_items: Sequence[str]) -> list[tuple[Block, int]]:
    lines = [title]
    for item in raw_items:
        lines.extend(_escaped_lines(f"• {item}", MAX_SECTION_TEXT))
    return [(_section(text), count) for text, count in _pack(lines, MAX_SECTION_TEXT)]


def _code_sections(raw: str) -> list[tuple[Block, int]]:
    # Room for the fences and their newlines inside one section.
    inner = MAX_SECTION_TEXT - 2 * len(_FENCE) - 2
    lines = _escaped_lines(raw.rstrip("\n"), inner)
    return [(_section(f"{_FENCE}\n{text}\n{_FENCE}"), count) for text, count in _pack(lines, inner)]


def _message(text: str, blocks: list[Block]) -> dict[str, Any]:
    return {"text": _shorten(text, MAX_FALLBACK_TEXT), "blocks": blocks}


# ---------------------------------------------------------------------------
# Report


def _verdict_emoji(report: Report) -> str:
    statuses = {f.status for f in report.findings}
    for status in (Status.FAIL, Status.WARN, Status.UNKNOWN):
        if status in statuses:
            return _EMOJI[status]
    return _EMOJI[Status.PASS]


def _where(target: Target) -> str:
    return "" if target.cluster == "default" else f" (cluster {escape_mrkdwn(target.cluster)})"


def _lb_line(lb: LoadBalancerSummary) -> str:
    """One load balancer, unescaped: the caller escapes the whole line."""
    kind = _LB_TYPES.get(lb.type, lb.type or "load balancer")
    parts = [f"{kind} `{lb.name}`", f"`{lb.dns_name}`" if lb.dns_name else "no DNS name yet"]
    if lb.scheme:
        parts.append(lb.scheme)
    if lb.idle_timeout_s is not None:
        parts.append(f"idle timeout {lb.idle_timeout_s} s")
    else:
        parts.append("idle timeout unknown")
    if lb.serves:
        parts.append(f"serves {lb.serves}")
    return " · ".join(parts)


def rerun_value(target: Target) -> str:
    """The Re-run button's value: the target, as JSON."""
    return json.dumps(
        {"cluster": target.cluster, "namespace": target.namespace, "service": target.service},
        separators=(",", ":"),
    )


def _parent(report: Report, *, cache_hit: bool, age_s: float, intro: str) -> dict[str, Any]:
    target = report.target
    emoji = _verdict_emoji(report)
    verdict = escape_mrkdwn(report.verdict())
    ask = escape_mrkdwn(target.ask)
    head = [_section(intro)] if intro else []
    body: list[tuple[Block, int]] = [(_section(f"{emoji} *{ask}*{_where(target)}: {verdict}"), 1)]
    if report.load_balancers:
        title = "*Load balancer*" if len(report.load_balancers) == 1 else "*Load balancers*"
        body += _bullet_sections(title, [_lb_line(lb) for lb in report.load_balancers])
    else:
        body.append((_section("No load balancer found in front of it."), 1))

    tail: list[Block] = []
    if report.path:
        tail.append(_context("Path: " + escape_mrkdwn(" → ".join(report.path))))
    facts = [f"cached {round(age_s)} s ago" if cache_hit else "checked just now"]
    facts.append(f"metrics of the last {max(1, round(report.window_s / 60))} min")
    if report.problems:
        facts.append("details in the thread")
    tail.append(_context(" · ".join(facts)))
    tail.append(
        {"type": "actions", "elements": [_button("Re-run", RERUN_ACTION_ID, rerun_value(target))]}
    )
    return _message(f"{emoji} {ask}: {verdict}", _fit(head, body, tail, target))


# Evidence lines kept in a reply whose whole evidence goes into a file.
EVIDENCE_PREVIEW_LINES = 5
EVIDENCE_PREVIEW_CHARS = 300


# What a finding reply offers for a fix that is one Kubernetes patch: an Apply button, or
# why there is none. Without it, fixes stay copy-paste.
FixOffers = Callable[[Target, Finding, Fix], "Offer | None"]


def _offer_blocks(
    target: Target, finding: Finding, fix: Fix, offers: FixOffers | None
) -> list[tuple[Block, int]]:
    if fix.apply is None or offers is None:
        return []
    try:
        offer = offers(target, finding, fix)
    except Exception:
        # The copy-paste fix above still stands; an Apply button is a convenience.
        logger.exception("could not prepare an Apply button for %s", finding.code)
        return []
    if offer is None:
        return []
    if offer.pending_id:
        button = _button("Apply", APPLY_ACTION_ID, offer.pending_id)
        button["style"] = "primary"
        where = escape_mrkdwn(offer.object_ref)
        return [
            ({"type": "actions", "elements": [button]}, 1),
            (_context(f"Patches `{where}` after a server-side dry run; you see it first."), 1),
        ]
    blocks = [(_context(f":information_source: {escape_mrkdwn(offer.note)}"), 1)]
    if offer.git_snippet:
        blocks += _code_sections(offer.git_snippet)
    return blocks


def code_blocks(raw: str) -> list[Block]:
    """``raw`` in code sections that each fit a section, escaped."""
    return [block for block, _ in _code_sections(raw)]


def _fixes_body(
    finding: Finding, target: Target, offers: FixOffers | None
) -> list[tuple[Block, int]]:
    body: list[tuple[Block, int]] = []
    for fix in finding.fixes:
        language = f" ({escape_mrkdwn(fix.language)})" if fix.language else ""
        body.append((_section(f"*Fix: {escape_mrkdwn(fix.title)}*{language}"), 1))
        body += _code_sections(fix.text)
        body += _offer_blocks(target, finding, fix, offers)
    return body


def measure_value(target: Target, reuse: Reuse | None) -> str:
    """The Measure keep-alive button's value: the target and the reuse window to beat."""
    return json.dumps(
        {
            "cluster": target.cluster,
            "namespace": target.namespace,
            "service": target.service,
            "reuse": reuse.to_value() if reuse is not None else None,
        },
        separators=(",", ":"),
    )


def _measure_blocks(target: Target, reuse: Reuse | None) -> list[tuple[Block, int]]:
    button = _button("Measure keep-alive", MEASURE_ACTION_ID, measure_value(target, reuse))
    return [
        ({"type": "actions", "elements": [button]}, 1),
        (
            _context(
                "Starts a short-lived pod in the cluster that times when a ready pod of the "
                "Service closes an idle connection; the result comes in this thread."
            ),
            1,
        ),
    ]


def evidence_filename(finding: Finding) -> str:
    return f"{finding.code.lower()}-evidence.txt"


def finding_as_text(finding: Finding) -> str:
    """The whole finding as plain text, for a file: nothing cut."""
    lines = [f"{finding.code} ({finding.status.value}, {finding.severity.value})"]
    if finding.resource:
        lines.append(f"Resource: {finding.resource}")
    lines += ["", finding.summary, "", "Evidence:"]
    lines += [f"- {item}" for item in finding.evidence]
    for fix in finding.fixes:
        lines += ["", f"Fix: {fix.title} ({fix.language})", fix.text.rstrip("\n")]
    return "\n".join(lines) + "\n"


def _finding_reply(
    finding: Finding,
    target: Target,
    offers: FixOffers | None = None,
    measure: bool = False,
    reuse: Reuse | None = None,
) -> tuple[dict[str, Any], FileUpload | None]:
    """The reply for one finding, and the file that carries its whole evidence when the
    evidence would not fit in one message.

    ``measure`` adds the Measure keep-alive button, which carries ``reuse``, the window the
    server's keep-alive has to beat.
    """
    emoji = _EMOJI[finding.status]
    summary = escape_mrkdwn(finding.summary)
    about = f"*{finding.status.value}* · {finding.severity.value}"
    if finding.resource:
        about += f" · {escape_mrkdwn(finding.resource)}"
    head = [_header(f"{emoji} {finding.code}")]
    text = f"{emoji} {escape_mrkdwn(finding.code)} ({finding.status.value}): {summary}"
    first: list[tuple[Block, int]] = [(_section(f"{about}\n{summary}"), 1)]
    evidence = _bullet_sections("*Evidence*", finding.evidence) if finding.evidence else []
    fixes = _fixes_body(finding, target, offers)
    if measure and finding.code == PROBED_CODE:
        fixes += _measure_blocks(target, reuse)
    if len(head) + len(first) + len(evidence) + len(fixes) <= MAX_BLOCKS:
        return _message(text, [*head, *(block for block, _ in [*first, *evidence, *fixes])]), None

    upload = FileUpload(
        filename=evidence_filename(finding),
        title=f"{finding.code}: full evidence",
        content=finding_as_text(finding).encode("utf-8"),
    )
    if len(head) + len(first) + len(evidence) + 1 > MAX_BLOCKS:
        # Raw text, escaped later by _bullet_sections: cut it plainly.
        preview = [
            item
            if len(item) <= EVIDENCE_PREVIEW_CHARS
            else item[: EVIDENCE_PREVIEW_CHARS - 1] + "…"
            for item in finding.evidence[:EVIDENCE_PREVIEW_LINES]
        ]
        evidence = _bullet_sections("*Evidence (first lines)*", preview)
    size_kb = max(1, round(len(upload.content) / 1024))
    counted = f"{len(finding.evidence)} evidence lines, {len(finding.fixes)} fixes, {size_kb} KB"
    note = _context(
        f":page_facing_up: This finding is too long for one message; all of it ({counted}) "
        f"is in the file `{escape_mrkdwn(upload.filename)}` below."
    )
    body = [*first, *evidence, (note, 0), *fixes]
    logger.debug("evidence of %s for %s goes into a file", finding.code, target.ask)
    return _message(text, _fit(head, body, [], target)), upload


def _more_reply(report: Report, rest: list[Finding]) -> dict[str, Any]:
    """The problems past the reply cap, one line each, so a thread stays readable."""
    items = [f"`{f.code}` ({f.status.value}): {escape_mrkdwn(f.summary)}" for f in rest]
    title = (
        f"{_EMOJI[Status.WARN]} *{len(rest)} more problems*; run "
        f"`eks504 check {escape_mrkdwn(report.target.ask)}` for their evidence and fixes"
    )
    text = f"{len(rest)} more problems: " + ", ".join(dict.fromkeys(f.code for f in rest))
    return _message(
        escape_mrkdwn(text), _fit([], _bullet_sections(title, items), [], report.target)
    )


def _closing_reply(report: Report) -> dict[str, Any]:
    target = report.target
    passed = list(dict.fromkeys(f.code for f in report.findings if f.status is Status.PASS))
    unknown = [f for f in report.sorted_findings() if f.status is Status.UNKNOWN]

    body: list[tuple[Block, int]] = []
    title = f"{_EMOJI[Status.PASS]} *Passed*"
    if passed:
        items = [f"`{escape_mrkdwn(code)}`" for code in passed]
        items[0] = f"{title} ({len(passed)}): {items[0]}"
        body += [(_section(chunk), n) for chunk, n in _pack(items, MAX_SECTION_TEXT, ", ")]
    else:
        body.append((_section(f"{title}: none"), 1))
    if unknown:
        items = []
        for f in unknown:
            reason = f.summary + (": " + "; ".join(f.evidence) if f.evidence else "")
            items.append(f"`{f.code}`: {reason}")
        body += _bullet_sections(f"{_EMOJI[Status.UNKNOWN]} *Could not check*", items)
    else:
        body.append((_section("Every check could look at what it needed."), 1))

    if report.ladder:
        body += _ladder_sections(report.ladder)

    text = "Passed: " + (", ".join(passed) or "none")
    if unknown:
        text += ". Could not check: " + ", ".join(dict.fromkeys(f.code for f in unknown))
    return _message(escape_mrkdwn(text), _fit([], body, [], target))


# Narrower than the terminal's: Slack wraps a code block at the width of the thread pane.
LADDER_LAYER_WIDTH = 32


def _ladder_sections(ladder: list[Rung]) -> list[tuple[Block, int]]:
    """The timeout ladder as a monospace table, under a title."""
    title = (_section("*Timeout ladder*, outermost first"), 1)
    return [title, *_code_sections("\n".join(ladder_table(ladder, LADDER_LAYER_WIDTH)))]


def render(
    report: Report,
    *,
    cache_hit: bool,
    age_s: float,
    intro: str = "",
    offers: FixOffers | None = None,
    measure: bool = False,
) -> SlackMessages:
    """The Slack messages for ``report``: parent, one reply per problem, closing reply.

    ``intro`` (mrkdwn, already escaped) opens the parent, e.g. to say why the answer is
    ephemeral. ``offers`` decides what a fix that is one Kubernetes patch offers (an Apply
    button); ``measure`` adds a Measure keep-alive button to the keep-alive finding.
    """
    parent = _parent(report, cache_hit=cache_hit, age_s=age_s, intro=intro)
    replies: list[dict[str, Any]] = []
    files: list[FileUpload] = []
    reuse = reuse_window(report) if measure else None
    problems = report.problems
    for finding in problems[:MAX_FINDING_REPLIES]:
        reply, upload = _finding_reply(finding, report.target, offers, measure, reuse)
        replies.append(reply)
        if upload is not None:
            files.append(upload)
    if len(problems) > MAX_FINDING_REPLIES:
        replies.append(_more_reply(report, problems[MAX_FINDING_REPLIES:]))
    replies.append(_closing_reply(report))
    return SlackMessages(parent=parent, replies=replies, target=report.target, files=files)


# Progress marks for a check's steps, in the order the check runs them.
_STEP_MARKS = {"running": ":hourglass_flowing_sand:", "done": ":white_check_mark:"}
_WAITING_MARK = ":white_small_square:"


def render_progress(target: Target, steps: dict[str, str]) -> dict[str, Any]:
    """The parent message while a check runs: each step waiting, running or done."""
    ask = escape_mrkdwn(target.ask)
    order = [*STEPS, *(step for step in steps if step not in STEPS)]
    marks = [
        f"{_STEP_MARKS.get(steps.get(step, ''), _WAITING_MARK)} {escape_mrkdwn(step)}"
        for step in order
    ]
    done = sum(1 for step in order if steps.get(step) == "done")
    text = f":hourglass_flowing_sand: Checking {ask}{_where(target)}… ({done}/{len(order)} steps)"
    return _message(text, [_section(text), _context("   ".join(marks))])


# ---------------------------------------------------------------------------
# Errors and other shapes


GENERIC_ERROR = (
    "Something went wrong while checking {target}. It has been logged; "
    "try again in a minute, or ask whoever runs eks504 to look at its logs."
)


def render_error(err: BaseException, target_text: str) -> dict[str, Any]:
    """A plain-words message for a check that could not run; never a traceback."""
    target = mrkdwn_code(target_text)
    if isinstance(err, Eks504Error):
        text = f":warning: Could not check {target}: {escape_mrkdwn(str(err))}"
    else:
        text = ":warning: " + GENERIC_ERROR.format(target=target)
    text = _shorten(text, MAX_SECTION_TEXT)
    return {"text": text, "blocks": [_section(text)]}


# ---------------------------------------------------------------------------
# The keep-alive probe


def _seconds(value: float) -> str:
    return f"{round(value, 1):g}"


def render_probe_started(target: Target, limit_s: float) -> dict[str, Any]:
    """The message that opens a probe's thread, or announces it in one."""
    text = (
        f":stopwatch: Measuring how long the pods of {mrkdwn_code(target.ask)}"
        f"{_where(target)} keep an idle connection open: a short-lived pod in the cluster "
        f"sends one request and waits up to {_seconds(limit_s)} s for the server to close "
        "the connection. The result comes in this thread."
    )
    return {"text": text, "blocks": [_section(text)]}


# A measured close this close to the reuse window is the same moment: the race remains.
_SAME_MOMENT_S = 0.5


def _probe_verdict(closed_s: float | None, reuse: Reuse) -> str:
    layer, window = escape_mrkdwn(reuse.layer), reuse.seconds
    if closed_s is None or closed_s > window + _SAME_MOMENT_S:
        return f"{_EMOJI[Status.PASS]} It keeps idle connections longer than {layer}: no race."
    if closed_s >= window - _SAME_MOMENT_S:
        return (
            f"{_EMOJI[Status.WARN]} It closes them when {layer} stops reusing them: the race "
            f"remains. Make the server's keep-alive longer than {window} s."
        )
    return (
        f"{_EMOJI[Status.FAIL]} It closes them first, so {layer} can send a request on a "
        "connection the server has just closed (a 502 or 504). Make the server's keep-alive "
        f"longer than {window} s, or have {layer} stop reusing them before "
        f"{_seconds(closed_s)} s."
    )


def render_probe_result(
    target: Target, result: ProbeResult, reuse: Reuse | None, limit_s: float
) -> dict[str, Any]:
    """The probe's follow-up: what the server did with an idle connection, next to how long
    the layer in front of it reuses one."""
    ask = mrkdwn_code(target.ask)
    behind = (
        f"{escape_mrkdwn(reuse.layer)} reuses them for {reuse.seconds} s"
        if reuse is not None
        else "nothing in front of it is known to reuse idle connections"
    )
    if not result.reuse:
        text = f":stopwatch: {ask}: the server answered Connection: close: no reuse."
        verdict = "Each connection carries one response, so there is no idle connection to race."
    elif result.closed_after_s is None:
        text = (
            f":stopwatch: {ask}: the server kept an idle connection open for the whole "
            f"{_seconds(limit_s)} s the probe waited ({behind})."
        )
        verdict = _probe_verdict(None, reuse) if reuse is not None else ""
    else:
        text = (
            f":stopwatch: {ask}: the server closed an idle connection after "
            f"{_seconds(result.closed_after_s)} s ({behind})."
        )
        verdict = _probe_verdict(result.closed_after_s, reuse) if reuse is not None else ""
    blocks = [_section(f"{text}\n{verdict}" if verdict else text)]
    if result.detail:
        blocks.append(_context(f"Probe: {escape_mrkdwn(result.detail)}"))
    return _message(text, blocks)


def render_probe_error(err: BaseException, target: Target) -> dict[str, Any]:
    """A probe that could not measure, in plain words; never a traceback."""
    ask = mrkdwn_code(target.ask)
    if isinstance(err, Eks504Error):
        text = f":warning: Could not measure the keep-alive of {ask}: {escape_mrkdwn(str(err))}"
    else:
        text = (
            f":warning: Could not measure the keep-alive of {ask}: something went wrong. It "
            "has been logged; ask whoever runs eks504 to look at its logs."
        )
    text = _shorten(text, MAX_SECTION_TEXT)
    return {"text": text, "blocks": [_section(text)]}


def pack(messages: SlackMessages, *, max_messages: int = 5) -> list[dict[str, Any]]:
    """All of ``messages`` in at most ``max_messages`` messages, the parent first.

    For answers that cannot go to a thread (a response_url takes at most five posts): the
    replies are packed, separated by dividers, into as few messages as the block limit
    allows; what still does not fit is cut with a note.
    """
    packed: list[dict[str, Any]] = []
    blocks: list[Block] = []
    texts: list[str] = []
    for reply in messages.replies:
        extra = [{"type": "divider"}, *reply["blocks"]] if blocks else reply["blocks"]
        if blocks and len(blocks) + len(extra) > MAX_BLOCKS:
            packed.append(_message("\n".join(texts), blocks))
            blocks, texts, extra = [], [], reply["blocks"]
        blocks.extend(extra)
        texts.append(reply["text"])
    if blocks:
        packed.append(_message("\n".join(texts), blocks))

    room = max_messages - 1
    if len(packed) > room:
        left_out = len(packed) - room
        last = packed[room - 1]
        cut = [*last["blocks"][: MAX_BLOCKS - 1], _cut_note(left_out, "messages", messages.target)]
        packed = [*packed[: room - 1], _message(last["text"], cut)]
    return [messages.parent, *packed]


def to_json(messages: SlackMessages) -> str:
    """The messages as JSON, parent then replies, for ``eks504 check --format slack``."""
    return json.dumps(
        {"parent": messages.parent, "replies": messages.replies}, indent=2, ensure_ascii=False
    )
