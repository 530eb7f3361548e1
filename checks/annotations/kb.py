"""The annotation knowledge base: ``known.yaml`` read into typed records.

The data says, for every load-balancer annotation key either AWS controller reads, its value
grammar, range, default, where it is read and since which AWS Load Balancer Controller
release. Code here only loads and looks up; judging lives in :mod:`checks.annotations.judge`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

logger = logging.getLogger(__name__)

KNOWN_FILE = Path(__file__).resolve().parent / "known.yaml"

# Where a key is read; see the header of known.yaml.
ROLES = ("alb-ingress", "alb-backend", "clb", "nlb-intree", "nlb-lbc")
ROLE_WORDS = {
    "alb-ingress": "an ALB Ingress",
    "alb-backend": "the backend Service of an ALB Ingress",
    "clb": "a Service behind a Classic LB (in-tree controller)",
    "nlb-intree": "a Service behind an NLB made by the in-tree controller (type nlb)",
    "nlb-lbc": "a Service behind an NLB made by the AWS Load Balancer Controller",
}

ALB_PREFIX = "alb.ingress.kubernetes.io/"
SERVICE_PREFIX = "service.beta.kubernetes.io/"
# The LBC also accepts this prefix for its Service keys.
SERVICE_ALT_PREFIX = "service.kubernetes.io/"

Version = tuple[int, int, int]


def parse_version(text: str | None) -> Version | None:
    """``v2.7.2`` / ``2.7`` -> (2, 7, 2) / (2, 7, 0); anything else -> None."""
    if not text:
        return None
    parts = str(text).strip().lstrip("vV").split("-")[0].split(".")
    numbers: list[int] = []
    for part in parts[:3]:
        if not part.isdigit():
            return None
        numbers.append(int(part))
    while len(numbers) < 3:
        numbers.append(0)
    return numbers[0], numbers[1], numbers[2]


def format_version(version: Version) -> str:
    return "v" + ".".join(str(n) for n in version)


@dataclass(frozen=True)
class ValueSpec:
    """The grammar of one value: an annotation's, or one attribute's inside a stringMap."""

    type: str
    values: tuple[str, ...] = ()
    range: tuple[int, int] | None = None
    range_classic: tuple[int, int] | None = None
    default: str | None = None
    idle: bool = False

    def range_for(self, lb_type: str | None) -> tuple[int, int] | None:
        if lb_type == "classic" and self.range_classic is not None:
            return self.range_classic
        return self.range


@dataclass(frozen=True)
class AnnotationSpec:
    key: str
    value: ValueSpec
    read_by: tuple[str, ...]
    pattern: bool = False
    since: Version | None = None
    merge: str | None = None
    attributes: str | None = None
    deprecated: str | None = None

    @property
    def prefix(self) -> str:
        return self.key.split("/", 1)[0] + "/"


@dataclass(frozen=True)
class AttributeTable:
    name: str
    attributes: dict[str, ValueSpec]
    prefixes: tuple[str, ...] = ()

    def get(self, attribute: str) -> ValueSpec | None:
        if attribute in self.attributes:
            return self.attributes[attribute]
        if any(attribute.startswith(p) for p in self.prefixes):
            return ValueSpec("string")
        return None

    def nearest(self, attribute: str) -> str | None:
        return closest(attribute, tuple(self.attributes))


# How alike two spellings must be (0-100, normalized InDel similarity) to suggest one.
SIMILARITY_CUTOFF = 60


@lru_cache(maxsize=4096)
def closest(word: str, choices: tuple[str, ...]) -> str | None:
    """The choice spelled most like ``word``, or None when none is alike enough."""
    found = process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=SIMILARITY_CUTOFF)
    return str(found[0]) if found else None


@dataclass(frozen=True)
class KnowledgeBase:
    specs: tuple[AnnotationSpec, ...]
    tables: dict[str, AttributeTable]
    escaped_comma_since: Version | None = None
    _exact: dict[str, AnnotationSpec] = field(default_factory=dict, repr=False)

    def lookup(self, key: str) -> AnnotationSpec | None:
        """The spec that reads ``key``; the LBC's alternative Service prefix maps to the
        main one."""
        if key.startswith(SERVICE_ALT_PREFIX) and "aws-load-balancer-" in key:
            key = SERVICE_PREFIX + key[len(SERVICE_ALT_PREFIX) :]
        spec = self._exact.get(key)
        if spec is not None:
            return spec
        for candidate in self.specs:
            if (
                candidate.pattern
                and key.startswith(candidate.key)
                and len(key) > len(candidate.key)
            ):
                return candidate
        return None

    def keys(self) -> list[str]:
        return [s.key for s in self.specs]

    def nearest(self, key: str) -> str | None:
        """The known key closest to ``key`` by spelling, or None when none is close."""
        names = tuple(s.key.rstrip(".") for s in self.specs)
        found = closest(key, names)
        if found:
            return found
        # Compare the part after the prefix too: a wrong prefix hides a right name.
        tails = {n.split("/", 1)[-1]: n for n in names}
        found = closest(key.split("/", 1)[-1], tuple(tails))
        return tails[found] if found else None

    def table(self, name: str | None) -> AttributeTable | None:
        return self.tables.get(name) if name else None


def is_load_balancer_key(key: str) -> bool:
    """Whether ``key`` sits under a prefix one of the AWS controllers reads."""
    lowered = key.strip().lower()
    return (
        lowered.startswith(ALB_PREFIX)
        or lowered.startswith(SERVICE_PREFIX + "aws-")
        or lowered.startswith(SERVICE_PREFIX + "load-balancer-")
        or (lowered.startswith(SERVICE_ALT_PREFIX) and "aws-load-balancer-" in lowered)
        or "alb.ingress.kubernetes.io" in lowered
        or "aws-load-balancer-" in lowered
    )


def _range(raw: Any) -> tuple[int, int] | None:
    if raw is None:
        return None
    low, high = raw
    return int(low), int(high)


def _value(entry: dict[str, Any]) -> ValueSpec:
    return ValueSpec(
        type=str(entry.get("type", "string")),
        values=tuple(str(v) for v in entry.get("values", ())),
        range=_range(entry.get("range")),
        range_classic=_range(entry.get("range_classic")),
        default=None if entry.get("default") is None else str(entry["default"]),
        idle=bool(entry.get("idle", False)),
    )


def load(path: Path = KNOWN_FILE) -> KnowledgeBase:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    specs: list[AnnotationSpec] = []
    for entry in data["keys"]:
        roles = tuple(str(r) for r in entry["read_by"])
        unknown_roles = set(roles) - set(ROLES)
        if unknown_roles:
            raise ValueError(f"{entry['key']}: unknown read_by {sorted(unknown_roles)}")
        specs.append(
            AnnotationSpec(
                key=str(entry["key"]),
                value=_value(entry),
                read_by=roles,
                pattern=bool(entry.get("pattern", False)),
                since=parse_version(entry.get("since")),
                merge=entry.get("merge"),
                attributes=entry.get("attributes"),
                deprecated=entry.get("deprecated"),
            )
        )
    tables: dict[str, AttributeTable] = {}
    for name, table in (data.get("attributes") or {}).items():
        table = dict(table)
        prefixes = tuple(str(p) for p in table.pop("prefixes", ()))
        tables[str(name)] = AttributeTable(
            name=str(name),
            attributes={str(k): _value(v) for k, v in table.items()},
            prefixes=prefixes,
        )
    parser = data.get("string_map_parser") or {}
    kb = KnowledgeBase(
        specs=tuple(specs),
        tables=tables,
        escaped_comma_since=parse_version(parser.get("escaped_comma_since")),
        _exact={s.key: s for s in specs if not s.pattern},
    )
    logger.debug("annotation knowledge base: %d keys, %d attribute tables", len(specs), len(tables))
    return kb


@cache
def knowledge_base() -> KnowledgeBase:
    return load()
