"""Parsing what a user types after ``/eks504`` or ``@eks504`` into a :class:`Command`:
``check`` or ``probe`` a Service, or ``help``.

Slack hands over message text with ``&``, ``<`` and ``>`` escaped, mentions as ``<@U123>``
and auto-linked words as ``<http://x|x>``; those are undone before the words are read.
Anything echoed back goes through :func:`mrkdwn_code`, so user input can never inject
mentions or links into a reply.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from checks.models import Target
from checks.names import CLUSTER_RULE, DNS_LABEL, DNS_LABEL_MAX, LABEL_RULE, is_cluster_name

logger = logging.getLogger(__name__)

USAGE = (
    "*Usage*\n"
    "• `/eks504 check NAMESPACE/SERVICE`: find why a Service returns 504/502\n"
    "• `/eks504 check SERVICE -n NAMESPACE` (or `--namespace NAMESPACE`)\n"
    "• add `--cluster NAME` to pick a cluster other than the default\n"
    "• `/eks504 probe NAMESPACE/SERVICE`: measure how long its pods keep an idle connection "
    "open (starts a short-lived pod in the cluster; only where it is turned on)\n"
    "• `/eks504 help`: this message\n"
    "You can also mention the bot: `@eks504 check shop/web`. It answers in a thread."
)


_LEADING_MENTION = re.compile(r"^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*")
_LABELLED_LINK = re.compile(r"<[^<>|]+\|([^<>]*)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^<>|]+)>")


@dataclass(frozen=True)
class Command:
    kind: Literal["check", "probe", "help", "invalid"]
    target: Target | None = None
    # For "invalid": a mrkdwn sentence saying what is wrong; user input in it is escaped.
    message: str = ""


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters Slack treats as control characters in message text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_code(text: str, limit: int = 80) -> str:
    """``text`` as inline code for a terminal: shortened, backticks in it made quotes."""
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "`" + text.replace("`", "'") + "`"


def mrkdwn_code(text: str, limit: int = 80) -> str:
    """``text`` as inline code, escaped and shortened, safe to embed in any mrkdwn."""
    return escape_mrkdwn(plain_code(text, limit))


def _unslack(text: str) -> str:
    text = _LEADING_MENTION.sub("", text, count=1)
    text = _LABELLED_LINK.sub(r"\1", text)
    text = _BARE_LINK.sub(r"\1", text)
    # Slack formatting around a name (`shop/web`, *shop/web*) and non-breaking spaces from
    # copy-paste: no Kubernetes name holds these characters, so they go.
    text = text.translate(_FORMATTING)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


_FORMATTING = str.maketrans({"`": None, "*": None, "~": None, "\u00a0": " ", "\u202f": " "})


Quote = Callable[[str], str]


def invalid_name(value: str, what: str, quote: Quote = mrkdwn_code) -> str | None:
    """Why ``value`` cannot be a Kubernetes ``what`` name, or None when it can. ``quote``
    shows user input: :func:`mrkdwn_code` for Slack, :func:`plain_code` for a terminal."""
    if not value:
        return f"The {what} name is empty: {LABEL_RULE}."
    if len(value) <= DNS_LABEL_MAX and DNS_LABEL.fullmatch(value):
        return None
    if len(value) > DNS_LABEL_MAX:
        reason = f"it is {len(value)} characters long"
    elif value.lower() != value and DNS_LABEL.fullmatch(value.lower()):
        reason = "it has uppercase letters"
    elif bad := sorted({c for c in value if not (c.isascii() and (c.isalnum() or c == "-"))}):
        reason = "it contains " + ", ".join(quote(c) for c in bad[:5])
    else:
        reason = "it starts or ends with `-`"
    return f"{quote(value)} is not a valid {what} name: {reason}; {LABEL_RULE}."


def invalid_cluster(value: str, quote: Quote = mrkdwn_code) -> str | None:
    """Why ``value`` cannot name a cluster, or None when it can."""
    if is_cluster_name(value):
        return None
    return f"{quote(value)} is not a valid cluster name: {CLUSTER_RULE}."


def validate_target(namespace: str, service: str, cluster: str | None = None) -> str | None:
    """The first reason the names cannot form a target, or None when they can."""
    return (
        invalid_name(namespace, "namespace")
        or invalid_name(service, "service")
        or (invalid_cluster(cluster) if cluster is not None else None)
    )


def _invalid(message: str) -> Command:
    return Command(kind="invalid", message=f"{message}\n\n{USAGE}")


def parse(text: str) -> Command:
    """Read the text of a ``/eks504`` command or an ``@eks504`` mention."""
    cleaned = _unslack(text)
    try:
        words = shlex.split(cleaned)
    except ValueError:
        words = cleaned.split()
    if not words or words[0].lower() in ("help", "-h", "--help", "?"):
        return Command(kind="help")
    verb, args = words[0].lower(), words[1:]
    if verb == "check":
        kind: Literal["check", "probe"] = "check"
    elif verb == "probe":
        kind = "probe"
    else:
        return _invalid(f"I do not know the command {mrkdwn_code(words[0])}.")

    namespace: str | None = None
    cluster: str | None = None
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-n", "--namespace", "--cluster"):
            if i + 1 >= len(args):
                return _invalid(f"{mrkdwn_code(arg)} needs a value after it.")
            if arg == "--cluster":
                cluster = args[i + 1]
            else:
                namespace = args[i + 1]
            i += 2
            continue
        if arg.startswith("--namespace="):
            namespace = arg.partition("=")[2]
        elif arg.startswith("--cluster="):
            cluster = arg.partition("=")[2]
        elif arg.startswith("-") and len(arg) > 1:
            return _invalid(f"I do not know the option {mrkdwn_code(arg)}.")
        else:
            positional.append(arg)
        i += 1

    if len(positional) != 1:
        what = "nothing" if not positional else f"{len(positional)} names"
        return _invalid(f"`{kind}` needs exactly one Service (`NAMESPACE/SERVICE`), got {what}.")
    name = positional[0]
    if "/" in name:
        if namespace is not None:
            return _invalid(
                f"{mrkdwn_code(name)} already names a namespace; "
                "drop `-n` or the `NAMESPACE/` part."
            )
        namespace, _, service = name.partition("/")
        if "/" in service:
            return _invalid(
                f"{mrkdwn_code(name)} is not `NAMESPACE/SERVICE`: it has more than one `/`."
            )
    else:
        service = name
        if namespace is None:
            problem = invalid_name(name, "service")
            if problem:
                return _invalid(problem)
            return _invalid(
                f"Which namespace is {mrkdwn_code(name)} in? "
                f"Write {mrkdwn_code('NAMESPACE/' + name)} or add `-n NAMESPACE`."
            )

    problem = validate_target(namespace, service, cluster)
    if problem:
        logger.debug("rejected check input: %s", problem)
        return _invalid(problem)
    if cluster is None:
        return Command(kind=kind, target=Target(namespace=namespace, service=service))
    return Command(kind=kind, target=Target(namespace=namespace, service=service, cluster=cluster))


_NAMED_SERVICE = re.compile(r"[a-z0-9-]{1,63}/[a-z0-9-]{1,63}")
# Characters that wrap a name in prose or mrkdwn: "(shop/web)", "`shop/web`,", "*shop/web*".
_WRAPPING = "\"'`*_~()[]{}<>.,;:!?"


def find_targets(text: str) -> list[Target]:
    """The Services a message names as ``NAMESPACE/SERVICE``, in order, each once.

    A message that is itself a command (``check web -n shop --cluster prod``) names exactly
    its target. Words that are not valid Kubernetes names, such as URL paths, are
    skipped.
    """
    command = parse(text)
    if command.kind in ("check", "probe") and command.target is not None:
        return [command.target]
    found: dict[str, Target] = {}
    for word in _unslack(text).split():
        candidate = word.strip(_WRAPPING)
        if not _NAMED_SERVICE.fullmatch(candidate):
            continue
        namespace, _, service = candidate.partition("/")
        if validate_target(namespace, service) is None:
            found.setdefault(candidate, Target(namespace=namespace, service=service))
    return list(found.values())
