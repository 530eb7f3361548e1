"""Tomcat: an HTTP ``<Connector>``'s ``keepAliveTimeout``, which defaults to its
``connectionTimeout``.

Tomcat's own default for ``connectionTimeout`` is 60 s, but the ``server.xml`` shipped with
Tomcat (and in the ``tomcat`` image) sets 20000 ms; that is assumed when no ``server.xml``
is mounted. ``maxKeepAliveRequests="1"`` turns keep-alive off.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET

from checks.servers.base import ContainerView, MountedFile, Origin, ServerKeepAlive

logger = logging.getLogger(__name__)

PROGRAMS = frozenset({"catalina.sh", "catalina"})
SERVER_XML = "/usr/local/tomcat/conf/server.xml"
SHIPPED_CONNECTION_TIMEOUT_MS = 20_000
BUILTIN_CONNECTION_TIMEOUT_MS = 60_000


def _server_xml(view: ContainerView) -> MountedFile | None:
    exact = view.file(SERVER_XML)
    return exact or next((f for f in view.files if f.path.endswith("/server.xml")), None)


def detect(view: ContainerView) -> ServerKeepAlive | None:
    if view.program(PROGRAMS) is None and view.image_basename != "tomcat":
        return None
    config = _server_xml(view)
    if config is None:
        seconds = SHIPPED_CONNECTION_TIMEOUT_MS / 1000
        return ServerKeepAlive(
            server="tomcat",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=seconds,
            source=f"the connectionTimeout of Tomcat's shipped server.xml ({seconds:g} s), "
            "which keepAliveTimeout follows",
            assumed_default=True,
            origin=Origin(kind="default"),
        )
    origin = config.origin()
    try:
        root = ET.fromstring(config.text)
    except ET.ParseError as exc:
        return ServerKeepAlive(
            server="tomcat",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=None,
            source=config.describe(),
            assumed_default=False,
            note=f"server.xml does not parse: {exc}",
        )
    values: list[tuple[float, str]] = []
    for connector in root.iter("Connector"):
        if "AJP" in connector.get("protocol", "").upper():
            continue
        if connector.get("maxKeepAliveRequests") == "1":
            continue
        for attribute in ("keepAliveTimeout", "connectionTimeout"):
            raw = connector.get(attribute)
            if raw is None:
                continue
            try:
                millis = int(raw)
            except ValueError:
                logger.debug("tomcat %s=%r is not a number", attribute, raw)
                return ServerKeepAlive(
                    server="tomcat",
                    container=view.name,
                    reuses_connections=True,
                    idle_timeout_s=None,
                    source=f'{attribute}="{raw}", {config.describe()}',
                    assumed_default=False,
                    note=f"{attribute} is not a number of milliseconds",
                )
            # A negative timeout means none: the connection stays open.
            seconds = math.inf if millis < 0 else millis / 1000
            values.append((seconds, f'{attribute}="{raw}", {config.describe()}'))
            break
        else:
            values.append(
                (
                    BUILTIN_CONNECTION_TIMEOUT_MS / 1000,
                    f"Tomcat's default connectionTimeout (60 s), {config.describe()}",
                )
            )
    if not values:
        return ServerKeepAlive(
            server="tomcat",
            container=view.name,
            reuses_connections=False,
            idle_timeout_s=0.0,
            source=f'maxKeepAliveRequests="1", {config.describe()}',
            assumed_default=False,
            note="keep-alive is off on every HTTP connector",
        )
    seconds, source = min(values)
    return ServerKeepAlive(
        server="tomcat",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=seconds,
        source=source,
        assumed_default=source.startswith("Tomcat's default"),
        origin=origin,
    )
