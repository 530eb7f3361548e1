"""Apache httpd: ``KeepAliveTimeout`` (default 5 s) and ``KeepAlive Off``.

A value in a ``<VirtualHost>`` applies to that host; the shortest one that applies is
reported, because a connection closes after the shortest timeout it meets.
"""

from __future__ import annotations

import logging
import re

from checks.servers.base import ContainerView, Origin, ServerKeepAlive

logger = logging.getLogger(__name__)

PROGRAMS = frozenset(
    {"httpd", "apache2", "httpd-foreground", "apache2-foreground", "apachectl", "apache2ctl"}
)
IMAGES = frozenset({"httpd", "apache2", "apache"})
CONFIG_DIRS = ("/usr/local/apache2/conf", "/etc/apache2", "/etc/httpd")
DEFAULT_KEEPALIVE_TIMEOUT_S = 5.0

_TIMEOUT = re.compile(r"^([0-9]+)(ms)?$", re.IGNORECASE)


def _seconds(raw: str) -> float | None:
    match = _TIMEOUT.match(raw)
    if not match:
        return None
    value = float(match.group(1))
    return value / 1000 if match.group(2) else value


def _is_apache(view: ContainerView) -> bool:
    if view.program(PROGRAMS) is not None:
        return True
    tag = view.image.rsplit(":", 1)[-1] if ":" in view.image.rsplit("/", 1)[-1] else ""
    return view.image_basename in IMAGES or (view.image_basename == "php" and "apache" in tag)


def detect(view: ContainerView) -> ServerKeepAlive | None:
    if not _is_apache(view):
        return None
    files = [f for d in CONFIG_DIRS for f in view.files_under(d, ".conf")]
    global_value: tuple[float, str, Origin] | None = None
    hosts: list[tuple[float, str, Origin] | None] = []
    hosts_off: set[int] = set()
    for config in files:
        in_host = False
        for number, raw_line in enumerate(config.text.splitlines(), start=1):
            line = raw_line.strip()
            if not line or line.startswith("#"):
                continue
            lowered = line.lower()
            if lowered.startswith("<virtualhost"):
                in_host = True
                hosts.append(None)
                continue
            if lowered.startswith("</virtualhost"):
                in_host = False
                continue
            parts = line.split()
            name = parts[0].lower()
            if name == "keepalive" and len(parts) > 1 and parts[1].lower() == "off":
                if not in_host:
                    return _off(view, f"KeepAlive Off, {config.describe(number)}")
                hosts_off.add(len(hosts) - 1)
                continue
            if name != "keepalivetimeout" or len(parts) < 2:
                continue
            value = _seconds(parts[1])
            origin = config.origin(number)
            source = f"KeepAliveTimeout {parts[1]}, {config.describe(number)}"
            if value is None:
                return ServerKeepAlive(
                    server="apache",
                    container=view.name,
                    reuses_connections=True,
                    idle_timeout_s=None,
                    source=source,
                    assumed_default=False,
                    note=f"{parts[1]!r} is not a KeepAliveTimeout value",
                )
            if in_host:
                hosts[-1] = (value, source, origin)
            else:
                global_value = (value, source, origin)

    base = global_value or (
        DEFAULT_KEEPALIVE_TIMEOUT_S,
        f"Apache's default KeepAliveTimeout ({DEFAULT_KEEPALIVE_TIMEOUT_S:g} s)",
        Origin(kind="default"),
    )
    candidates = [host or base for i, host in enumerate(hosts) if i not in hosts_off]
    if hosts and not candidates:
        return _off(view, "KeepAlive Off in every <VirtualHost>")
    candidates = candidates or [base]
    value, source, origin = min(candidates, key=lambda c: c[0])
    return ServerKeepAlive(
        server="apache",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=value,
        source=source,
        assumed_default=origin.kind == "default",
        origin=origin,
    )


def _off(view: ContainerView, source: str) -> ServerKeepAlive:
    return ServerKeepAlive(
        server="apache",
        container=view.name,
        reuses_connections=False,
        idle_timeout_s=0.0,
        source=source,
        assumed_default=False,
        note="keep-alive is off: each connection closes after its response",
    )
