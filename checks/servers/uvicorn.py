"""uvicorn: ``--timeout-keep-alive`` (default 5 s), or ``UVICORN_TIMEOUT_KEEP_ALIVE``.

The command-line option wins over the environment variable, as uvicorn documents.
"""

from __future__ import annotations

import logging

from checks.servers.base import (
    ContainerView,
    Origin,
    ServerKeepAlive,
    find_flag,
    flag_origin,
    parse_seconds,
)

logger = logging.getLogger(__name__)

NAMES = frozenset({"uvicorn"})
DEFAULT_KEEPALIVE_S = 5.0
FLAG = "--timeout-keep-alive"
ENV = "UVICORN_TIMEOUT_KEEP_ALIVE"


def detect(view: ContainerView) -> ServerKeepAlive | None:
    words = view.program(NAMES)
    if words is None:
        return None
    hit = find_flag(words, (FLAG,))
    if hit is not None:
        value = parse_seconds(hit.value)
        return ServerKeepAlive(
            server="uvicorn",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=value,
            source=hit.word.text if hit.joined else f"{FLAG} {hit.value}",
            assumed_default=False,
            origin=flag_origin(hit),
        )
    if ENV in view.env:
        return ServerKeepAlive(
            server="uvicorn",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=parse_seconds(view.env[ENV]),
            source=f"{ENV}={view.env[ENV]}",
            assumed_default=False,
            origin=Origin(kind="env", name=ENV, text=view.env[ENV]),
        )
    logger.debug("uvicorn in %s sets no keep-alive timeout: default assumed", view.name)
    return ServerKeepAlive(
        server="uvicorn",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=DEFAULT_KEEPALIVE_S,
        source=f"uvicorn's default ({DEFAULT_KEEPALIVE_S:g} s)",
        assumed_default=True,
        origin=Origin(kind="default"),
    )
