"""nginx: ``keepalive_timeout``, scoped by the ``http``, ``server`` and ``location`` blocks.

nginx's compiled-in default is 75 s, but the official images (``nginx``,
``nginxinc/nginx-unprivileged``) ship an ``/etc/nginx/nginx.conf`` that sets 65 s in the
``http`` block and includes ``/etc/nginx/conf.d/*.conf`` inside it. A ``server`` or
``location`` value overrides the ``http`` one there, and a connection closes after the
timeout of the last request's location, so the shortest value that applies is reported.
``keepalive_timeout 0`` turns keep-alive off.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from checks import numbers
from checks.servers.base import ContainerView, MountedFile, Origin, ServerKeepAlive, find_flag

logger = logging.getLogger(__name__)

NAMES = frozenset({"nginx"})
IMAGES = frozenset({"nginx", "nginx-unprivileged"})
OFFICIAL_IMAGES = frozenset(
    {"nginx", "nginxinc/nginx-unprivileged", "nginx/nginx", "nginx/nginx-unprivileged"}
)
MAIN_CONF = "/etc/nginx/nginx.conf"
CONF_DIR = "/etc/nginx/conf.d"
COMPILED_DEFAULT_S = 75.0
OFFICIAL_IMAGE_DEFAULT_S = 65.0

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000}
_UNITS["y"] = 31536000
_TIME_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|M|y)?")


def parse_time(text: str) -> float | None:
    """An nginx time value ("30s", "75", "1m30s", "500ms") in seconds."""
    compact = text.replace(" ", "")
    parts = list(_TIME_PART.finditer(compact))
    if not parts or "".join(p.group(0) for p in parts) != compact:
        return None
    return float(sum((numbers.whole(p.group(1)) or 0) * _UNITS[p.group(2) or "s"] for p in parts))


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int
    blocks: tuple[str, ...]  # enclosing block names, outermost first
    server: int  # the enclosing server block's number in its file, or -1


@dataclass(frozen=True)
class Parsed:
    directives: tuple[Directive, ...]
    servers: tuple[int, ...]  # numbers of the server blocks inside http


def _tokens(text: str) -> Iterator[tuple[str, int, bool]]:
    """(token, line, quoted); "{", "}" and ";" are tokens of their own."""
    i, line, n = 0, 1, len(text)
    while i < n:
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
        elif char.isspace():
            i += 1
        elif char == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif char in "{};":
            yield char, line, False
            i += 1
        elif char in "\"'":
            start_line, j, out = line, i + 1, []
            while j < n and text[j] != char:
                if text[j] == "\\" and j + 1 < n:
                    j += 1
                if text[j] == "\n":
                    line += 1
                out.append(text[j])
                j += 1
            yield "".join(out), start_line, True
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "{};":
                j += 1
            yield text[i:j], line, False
            i = j


def parse(text: str, context: tuple[str, ...] = ()) -> Parsed:
    """Directives with their enclosing blocks; ``context`` is where the file is included."""
    stack: list[str] = list(context)
    server_stack: list[int] = []
    words: list[str] = []
    first_line = 0
    directives: list[Directive] = []
    servers: list[int] = []
    for token, line, quoted in _tokens(text):
        if not quoted and token == "{":
            name = words[0] if words else ""
            if name == "server" and stack and stack[-1] == "http":
                servers.append(len(servers))
                server_stack.append(servers[-1])
            elif name == "server":
                server_stack.append(-1)
            stack.append(name)
            words = []
        elif not quoted and token == "}":
            if len(stack) > len(context) and stack.pop() == "server":
                server_stack.pop()
            words = []
        elif not quoted and token == ";":
            if words:
                enclosing = next((s for s in reversed(server_stack) if s >= 0), -1)
                directives.append(
                    Directive(words[0], tuple(words[1:]), first_line, tuple(stack), enclosing)
                )
            words = []
        else:
            if not words:
                first_line = line
            words.append(token)
    return Parsed(tuple(directives), tuple(servers))


@dataclass(frozen=True)
class _Value:
    seconds: float | None
    raw: str
    source: str
    origin: Origin
    assumed: bool = False


def _from_directive(directive: Directive, config: MountedFile) -> _Value:
    raw = " ".join(directive.args)
    return _Value(
        seconds=parse_time(directive.args[0]) if directive.args else None,
        raw=raw,
        source=f"keepalive_timeout {raw}, {config.describe(directive.line)}",
        origin=config.origin(directive.line),
    )


def _is_nginx(view: ContainerView) -> bool:
    return view.program(NAMES) is not None or view.image_basename in IMAGES


def detect(view: ContainerView) -> ServerKeepAlive | None:
    if not _is_nginx(view):
        return None
    words = view.program(NAMES) or []
    conf_flag = find_flag(words, (), "-c")
    main_path = conf_flag.value if conf_flag else MAIN_CONF
    main = view.file(main_path)
    # Limitation: only conf.d/*.conf is taken as included in http; other include paths are not.
    included = [f for f in view.files_under(CONF_DIR, ".conf") if f.path != main_path]
    official = view.image_repository in OFFICIAL_IMAGES

    http_value: _Value | None = None
    candidates: list[_Value | None] = []
    parsed_main = parse(main.text) if main else None
    parsed_included = [(f, parse(f.text, ("http",))) for f in included]

    for config, parsed in ([(main, parsed_main)] if main and parsed_main else []) + [
        (f, p) for f, p in parsed_included
    ]:
        for d in parsed.directives:
            if d.name == "keepalive_timeout" and d.blocks == ("http",):
                http_value = _from_directive(d, config)
    if http_value is None:
        if main is not None:
            http_value = _Value(
                COMPILED_DEFAULT_S,
                "",
                f"nginx's compiled-in default ({COMPILED_DEFAULT_S:g} s); "
                f"{main.describe()} sets none",
                Origin(kind="default", path=main.path, configmap=main.configmap, key=main.key),
                assumed=True,
            )
        elif official:
            target = included[0] if included else None
            http_value = _Value(
                OFFICIAL_IMAGE_DEFAULT_S,
                "",
                f"keepalive_timeout {OFFICIAL_IMAGE_DEFAULT_S:g} in the http block of the "
                f"{view.image_repository} image's {MAIN_CONF} (image default)",
                Origin(
                    kind="default",
                    path=target.path if target else "",
                    configmap=target.configmap if target else "",
                    key=target.key if target else "",
                ),
                assumed=True,
            )

    # Limitation: every server block counts, not only the one listening on the Service's port.
    any_server = False
    for config, parsed in ([(main, parsed_main)] if main and parsed_main else []) + [
        (f, p) for f, p in parsed_included
    ]:
        for server in parsed.servers:
            any_server = True
            own = [
                d for d in parsed.directives if d.name == "keepalive_timeout" and d.server == server
            ]
            at_server = [d for d in own if d.blocks[-1] == "server"]
            in_locations = [d for d in own if d.blocks[-1] != "server"]
            candidates.append(_from_directive(at_server[-1], config) if at_server else http_value)
            candidates.extend(_from_directive(d, config) for d in in_locations)
    if not any_server:
        candidates.append(http_value)

    unknown = [c for c in candidates if c is None or c.seconds is None]
    if unknown:
        shown = next((c for c in unknown if c is not None), None)
        return ServerKeepAlive(
            server="nginx",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=None,
            source=shown.source if shown else f"image {view.image}",
            assumed_default=False,
            note=(
                f"keepalive_timeout {shown.raw!r} is not a time"
                if shown
                else "the http block's keepalive_timeout comes from a configuration that is "
                "not visible (not an official nginx image, no nginx.conf from a ConfigMap)"
            ),
        )
    known = [c for c in candidates if c is not None and c.seconds is not None]
    chosen = min(known, key=lambda c: c.seconds or 0.0)
    assert chosen.seconds is not None
    logger.debug("nginx in %s: %d keepalive values, shortest %s", view.name, len(known), chosen)
    return ServerKeepAlive(
        server="nginx",
        container=view.name,
        reuses_connections=chosen.seconds > 0,
        idle_timeout_s=chosen.seconds,
        source=chosen.source,
        assumed_default=chosen.assumed,
        note="" if chosen.seconds > 0 else "keepalive_timeout 0 turns keep-alive off",
        origin=chosen.origin,
    )
