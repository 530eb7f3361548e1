"""The Apply and Undo buttons, and the modal that confirms a patch before it runs.

A click by someone the apply policy does not allow gets an ephemeral refusal. Anyone else
gets a modal with the exact patch (a Block Kit confirm dialog holds only 300 characters,
too few for a patch). Submitting it runs the fix (dry run, patch, audit entry) and posts
who applied what, and the result, in the thread; an applied fix's reply carries an Undo
button that goes through the same authorization and the same modal.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.apply import (
    UNDO_CONFLICT,
    ApplyService,
    Cluster,
    Pending,
    canonical_kind,
    kubectl_command,
    pending_from_env,
)
from bot.apply_policy import ApplyPolicy, GroupMembers, policy_from_env
from bot.audit import (
    APPLIED,
    DRY_RUN_FAILED,
    FAILED,
    UNCHANGED,
    AuditEntry,
    audit_from_env,
)
from bot.clusters import connection_of
from bot.commands import escape_mrkdwn, mrkdwn_code
from bot.config import BotConfig
from bot.render_slack import APPLY_ACTION_ID, MAX_BLOCKS, UNDO_ACTION_ID, code_blocks
from bot.service import Checker

logger = logging.getLogger(__name__)

CONFIRM_CALLBACK_ID = "eks504_apply_confirm"
# A modal holds 100 blocks; room is kept for the note that says the rest was cut.
_MAX_MODAL_BLOCKS = 99
_USER_ID = re.compile(r"[UW][A-Z0-9]+")

NOT_ALLOWED = (
    ":no_entry: You are not allowed to apply fixes from Slack. Ask whoever runs eks504 to "
    "add you, or a user group of yours, to the apply policy; the copy-paste fix still works."
)
EXPIRED = (
    ":hourglass: This button has expired or is not one of eks504's. Run the check again "
    "for a fresh one."
)
NOT_UNDOABLE = ":information_source: That audit entry changed nothing that can be undone."
_PATCH_TYPES = {"strategic": "strategic merge", "merge": "JSON merge", "json": "JSON patch"}


# ---------------------------------------------------------------------------
# Wiring


def apply_policy(config: BotConfig | None, env: Mapping[str, str] = os.environ) -> ApplyPolicy:
    """Who may apply: the configuration's ``apply:`` section, else the environment's lists."""
    if config is not None and config.apply is not None:
        policy = config.apply
        source = "the configuration file"
    else:
        policy = policy_from_env(env)
        source = "the environment"
    logger.info(
        "apply policy from %s: %d user(s), %d user group(s)",
        source,
        len(policy.users),
        len(policy.groups),
    )
    return policy


def service_from_env(
    checker: Checker, config: BotConfig | None = None, env: Mapping[str, str] = os.environ
) -> ApplyService:
    """Policy (see :func:`apply_policy`), offers and audit log from the configuration and
    the environment; each cluster's kube connection from the checker, so that a fix is
    applied to the cluster its report came from."""

    def clusters(name: str) -> Cluster | None:
        connection = connection_of(checker, name)
        if connection is None:
            return None
        return Cluster(connection, connection.cluster if name == "default" else name)

    return ApplyService(
        policy=apply_policy(config, env),
        pending=pending_from_env(env),
        audit=audit_from_env(env),
        clusters=clusters,
    )


def _members(client: WebClient) -> GroupMembers:
    def members(group: str) -> list[str]:
        try:
            answer = client.usergroups_users_list(usergroup=group)
        except SlackApiError as err:
            raise LookupError(str(err.response.get("error"))) from err
        return [str(u) for u in answer.get("users") or []]

    return members


def _where(body: Mapping[str, Any]) -> tuple[str, str | None]:
    """The channel and thread of the message a button sits in."""
    container = body.get("container") or {}
    message = body.get("message") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    thread_ts = message.get("thread_ts") or message.get("ts") or container.get("message_ts")
    return channel, str(thread_ts) if thread_ts else None


def _clicked(body: Mapping[str, Any], action_id: str) -> str:
    action: Mapping[str, Any] = next(
        (a for a in body.get("actions") or [] if a.get("action_id") == action_id), {}
    )
    return str(action.get("value", ""))


def _ephemeral(
    client: WebClient, channel: str, user: str, thread_ts: str | None, text: str
) -> None:
    try:
        client.chat_postEphemeral(channel=channel, user=user, thread_ts=thread_ts, text=text)
    except SlackApiError as err:
        logger.warning("chat.postEphemeral to %s refused: %s", user, err.response.get("error"))


# ---------------------------------------------------------------------------
# Rendering


def _mention(user: str) -> str:
    return f"<@{user}>" if _USER_ID.fullmatch(user) else mrkdwn_code(user)


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": text[:limit]}


def confirm_view(
    pending: Pending, channel: str, thread_ts: str | None, *, undo: bool = False
) -> dict[str, Any]:
    """The modal that shows the exact patch before it runs."""
    patch = pending.fix.apply
    assert patch is not None
    ref = f"{canonical_kind(patch.kind).lower()}/{patch.namespace}/{patch.name}"
    origin = f"the check of {mrkdwn_code(pending.ask)}" if pending.ask else "a check"
    if pending.code:
        origin += f", finding {mrkdwn_code(pending.code)}"
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*{escape_mrkdwn(pending.fix.title)}*\n"
                f"Object: {mrkdwn_code(ref)} in cluster {mrkdwn_code(pending.cluster)}\n"
                f"From {origin}",
            },
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": "A server-side dry run goes first: if the API server rejects the "
                    "patch, nothing is changed. The result goes to the audit log and to "
                    "the thread.",
                }
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": "*The same with kubectl*"}},
        *code_blocks(kubectl_command(patch)),
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": f"*Patch* ({_PATCH_TYPES.get(patch.patch_type, patch.patch_type)})",
            },
        },
        *code_blocks(json.dumps(patch.patch, indent=2, ensure_ascii=False)),
    ]
    if len(blocks) > _MAX_MODAL_BLOCKS:
        blocks = blocks[: _MAX_MODAL_BLOCKS - 1]
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "… the patch is cut here."}],
            }
        )
    metadata = {"id": "", "channel": channel, "thread_ts": thread_ts}
    return {
        "type": "modal",
        "callback_id": CONFIRM_CALLBACK_ID,
        "title": _plain("Undo a fix" if undo else "Apply a fix", 24),
        "submit": _plain("Undo" if undo else "Apply", 24),
        "close": _plain("Cancel", 24),
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": blocks,
    }


def _value(value: Any) -> str:
    shown = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return shown if len(shown) <= 80 else shown[:79] + "…"


def render_outcome(entry: AuditEntry) -> dict[str, Any]:
    """The thread reply for an apply or undo: who, what, the result; Undo if it changed."""
    who = _mention(entry.user)
    what = f"*{escape_mrkdwn(entry.title)}* to {mrkdwn_code(entry.object_ref)}"
    did = "undid" if entry.action == "undo" else "applied"
    detail = escape_mrkdwn(entry.detail)
    if entry.result == APPLIED:
        text = f":white_check_mark: {who} {did} {what}: dry run passed, patch applied."
    elif entry.result == UNCHANGED:
        text = f":information_source: {who} asked to apply {what}: {detail}"
    elif entry.result == DRY_RUN_FAILED:
        hint = escape_mrkdwn(UNDO_CONFLICT) if entry.action == "undo" else ""
        text = (
            f":x: {who} tried to {entry.action} {what}: the server-side dry run failed, so "
            f"nothing was changed. {detail}{hint}"
        )
    elif entry.result == FAILED:
        text = f":x: {who} tried to {entry.action} {what}: the patch failed. {detail}"
    else:
        text = f":no_entry: {who} could not {entry.action} {what}: {detail}"
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    if entry.changes:
        lines = [
            f"• `{escape_mrkdwn(c.path)}`: "
            f"{escape_mrkdwn(_value(c.before)) if c.was_set else '(unset)'} → "
            f"{escape_mrkdwn(_value(c.after)) if c.is_set else '(removed)'}"
            for c in entry.changes
        ]
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)[:3000]}}
        )
    when = datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    facts = f"audit entry `{escape_mrkdwn(entry.id)}` · {when} · cluster " + escape_mrkdwn(
        entry.cluster
    )
    if entry.undoes:
        facts += f" · undoes `{escape_mrkdwn(entry.undoes)}`"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": facts}]})
    if entry.undoable and entry.action == "apply":
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Undo"},
                        "action_id": UNDO_ACTION_ID,
                        "value": entry.id,
                    }
                ],
            }
        )
    return {"text": text, "blocks": blocks[:MAX_BLOCKS]}


# ---------------------------------------------------------------------------
# Listeners


def register(app: App, service: ApplyService) -> None:

    def acknowledge(ack: Ack) -> None:
        ack()

    def allowed(
        client: WebClient, user: str, where: tuple[str, str | None], pending: Pending | None
    ) -> bool:
        if service.allows(user, _members(client)):
            return True
        logger.warning("refused an apply request from %s", user)
        if pending is not None:
            service.record_refusal(pending, user, "not allowed by the apply policy")
        channel, thread_ts = where
        if channel:
            _ephemeral(client, channel, user, thread_ts, NOT_ALLOWED)
        return False

    def open_confirm(
        body: Mapping[str, Any], client: WebClient, pending_id: str, pending: Pending, undo: bool
    ) -> None:
        channel, thread_ts = _where(body)
        view = confirm_view(pending, channel, thread_ts, undo=undo)
        view["private_metadata"] = json.dumps(
            {"id": pending_id, "channel": channel, "thread_ts": thread_ts}, separators=(",", ":")
        )
        try:
            client.views_open(trigger_id=str(body.get("trigger_id", "")), view=view)
        except SlackApiError as err:
            logger.warning("views.open failed: %s", err.response.get("error"))

    def clicked_apply(body: dict[str, Any], client: WebClient) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        pending_id = _clicked(body, APPLY_ACTION_ID)
        pending = service.lookup(pending_id)
        if not allowed(client, user, _where(body), pending):
            return
        if pending is None or pending.fix.apply is None:
            channel, thread_ts = _where(body)
            _ephemeral(client, channel, user, thread_ts, EXPIRED)
            return
        logger.info("%s asked to apply %r: confirming", user, pending.fix.title)
        open_confirm(body, client, pending_id, pending, undo=False)

    def clicked_undo(body: dict[str, Any], client: WebClient) -> None:
        user = str((body.get("user") or {}).get("id", ""))
        if not allowed(client, user, _where(body), None):
            return
        entry = service.audit.get(_clicked(body, UNDO_ACTION_ID))
        if entry is None or not entry.undoable:
            channel, thread_ts = _where(body)
            _ephemeral(client, channel, user, thread_ts, NOT_UNDOABLE)
            return
        pending_id, pending = service.offer_undo(entry)
        logger.info("%s asked to undo audit entry %s: confirming", user, entry.id)
        open_confirm(body, client, pending_id, pending, undo=True)

    def submitted(body: dict[str, Any], client: WebClient) -> None:
        view = body.get("view") or {}
        try:
            meta = json.loads(view.get("private_metadata") or "{}")
        except ValueError:
            meta = {}
        channel = str(meta.get("channel") or "")
        thread_ts = str(meta["thread_ts"]) if meta.get("thread_ts") else None
        pending = service.lookup(str(meta.get("id", "")))
        user = str((body.get("user") or {}).get("id", ""))
        # Checked again: the policy may have changed while the modal was open.
        if not allowed(client, user, (channel, thread_ts), pending):
            return
        if pending is None or pending.fix.apply is None or not channel:
            if channel:
                _ephemeral(client, channel, user, thread_ts, EXPIRED)
            return
        entry = service.run(pending, user)
        message = render_outcome(entry)
        try:
            client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, unfurl_links=False, **message
            )
        except SlackApiError as err:
            logger.error(
                "could not post the result of audit entry %s: %s",
                entry.id,
                err.response.get("error"),
            )

    app.action(APPLY_ACTION_ID)(ack=acknowledge, lazy=[clicked_apply])
    app.action(UNDO_ACTION_ID)(ack=acknowledge, lazy=[clicked_undo])
    app.view(CONFIRM_CALLBACK_ID)(ack=acknowledge, lazy=[submitted])
