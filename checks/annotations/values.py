"""Value parsers that read annotation values the way the AWS controllers do.

The AWS Load Balancer Controller parses with Go's ``strconv`` and its own comma splitter,
which changed between releases (see ``string_map_parser`` in known.yaml); a value is judged
with the splitter of the installed release, or with both when the release is unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from checks import numbers
from checks.annotations.kb import Version

_GO_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_GO_FALSE = {"0", "f", "F", "FALSE", "false", "False"}

# Left unrendered by envsubst, a shell, Helm or kustomize.
_PLACEHOLDERS = (
    re.compile(r"\$\{[^}]*\}"),
    re.compile(r"\$\(?[A-Z][A-Z0-9_]*\)?"),
    re.compile(r"\{\{.*?\}\}"),
    re.compile(r"<no value>"),
)
_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def placeholder(raw: str) -> str | None:
    """The first unrendered template variable in ``raw``, if any."""
    for pattern in _PLACEHOLDERS:
        match = pattern.search(raw)
        if match:
            return match.group(0)
    return None


def literal_quotes(raw: str) -> bool:
    """Whether the value carries its own quotes, as after ``key: '"300"'``."""
    text = raw.strip()
    return len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'"


def key_syntax_error(key: str) -> str | None:
    """Why ``key`` is not a valid Kubernetes annotation key, or None."""
    if key != key.strip():
        return "it has leading or trailing whitespace"
    if key.count("/") > 1:
        return "it has more than one '/'"
    prefix, _, name = key.rpartition("/")
    if not name:
        return "the name after '/' is empty"
    if len(name) > 63:
        return "the name after '/' is longer than 63 characters"
    if not _KEY_NAME.match(name):
        return (
            f"the name {name!r} may hold only letters, digits, '-', '_' and '.', and must "
            "start and end with a letter or digit"
        )
    if prefix:
        labels = prefix.split(".")
        if len(prefix) > 253 or not all(_DNS_LABEL.match(label) for label in labels):
            return f"the prefix {prefix!r} is not a lower-case DNS subdomain"
    return None


def parse_bool(raw: str) -> bool | None:
    if raw in _GO_TRUE:
        return True
    if raw in _GO_FALSE:
        return False
    return None


def parse_int(raw: str) -> int | None:
    """``raw`` as Go's ``strconv.ParseInt`` reads it (ASCII digits after an optional sign),
    or None; a number too long to convert reads as beyond every range (see
    :mod:`checks.numbers`)."""
    return numbers.whole(raw, signed=True)


def parse_string_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def json_error(raw: str) -> str | None:
    try:
        numbers.loads_json(raw)
    except ValueError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class MapParse:
    """A stringMap value as one controller release reads it."""

    pairs: dict[str, str] = field(default_factory=dict)
    error: str = ""
    colon_pairs: tuple[tuple[str, str], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.error


def _split_simple(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _split_escaped(raw: str) -> list[str]:
    """The newer splitter: ``\\,`` is a literal comma, and a comma not followed by another
    ``key=`` stays in the value before it."""
    items: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(raw):
        char = raw[i]
        if char == "\\" and i + 1 < len(raw):
            current.append(raw[i + 1])
            i += 2
            continue
        if char == ",":
            rest = raw[i + 1 :].strip()
            if "=" in rest:
                items.append("".join(current).strip())
                current = []
            elif rest:
                items.append("".join(current).strip())
                items.append(rest)
                return items
            else:
                current.append(char)
        else:
            current.append(char)
        i += 1
    if current:
        items.append("".join(current).strip())
    return items


def _colon_pairs(items: list[str]) -> tuple[tuple[str, str], ...]:
    found: list[tuple[str, str]] = []
    for item in items:
        if "=" not in item and ":" in item:
            key, _, value = item.partition(":")
            if key.strip() and value.strip():
                found.append((key.strip(), value.strip()))
    return tuple(found)


def parse_string_map(raw: str, escaped: bool) -> MapParse:
    """``k1=v1,k2=v2`` with the older (``escaped=False``) or newer splitter."""
    items = _split_escaped(raw) if escaped else _split_simple(raw)
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if escaped:
            key, value = key.strip(), value.strip()
        if not sep or not key:
            return MapParse(error=f"{item!r} is not key=value", colon_pairs=_colon_pairs(items))
        pairs[key] = value
    return MapParse(pairs=pairs)


@dataclass(frozen=True)
class MapReading:
    """A stringMap value judged for a release: ``parse`` is what that release reads;
    ``doubt`` says how releases disagree when the release is unknown."""

    parse: MapParse
    doubt: str = ""


def read_string_map(raw: str, version: Version | None, escaped_since: Version | None) -> MapReading:
    if escaped_since is None:
        return MapReading(parse_string_map(raw, escaped=False))
    if version is not None:
        return MapReading(parse_string_map(raw, escaped=version >= escaped_since))
    older = parse_string_map(raw, escaped=False)
    newer = parse_string_map(raw, escaped=True)
    if older == newer:
        return MapReading(older)
    # The release decides; report the failing reading, or the newer one when both parse.
    chosen = newer if not newer.ok or older.ok else older
    doubt = (
        "controller releases read this value differently (older: "
        f"{_describe(older)}; newer: {_describe(newer)}), and the installed release is "
        "unknown"
    )
    return MapReading(chosen, doubt)


def _describe(parse: MapParse) -> str:
    if not parse.ok:
        return f"rejected, {parse.error}"
    return ", ".join(f"{k}={v!r}" for k, v in parse.pairs.items()) or "empty"
