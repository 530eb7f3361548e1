"""Node.js: ``http.Server`` closes idle keep-alive sockets after ``keepAliveTimeout``, 5 s.

The value is set in application code, which a pod spec does not show, so the default is
assumed whenever the container runs ``node`` and says so.
"""

from __future__ import annotations

import logging

from checks.servers.base import ContainerView, Origin, ServerKeepAlive

logger = logging.getLogger(__name__)

NAMES = frozenset({"node", "nodejs"})
PACKAGE_RUNNERS = frozenset({"npm", "yarn", "pnpm"})
DEFAULT_KEEPALIVE_S = 5.0


def detect(view: ContainerView) -> ServerKeepAlive | None:
    runs_node = view.program(NAMES) is not None
    node_image = view.image_basename == "node"
    if not runs_node and not (
        node_image and (not view.words or view.program(PACKAGE_RUNNERS) is not None)
    ):
        return None
    return ServerKeepAlive(
        server="Node.js",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=DEFAULT_KEEPALIVE_S,
        source=f"Node.js http.Server default keepAliveTimeout ({DEFAULT_KEEPALIVE_S:g} s)",
        assumed_default=True,
        note="the application code may set server.keepAliveTimeout, which eks504 cannot see",
        origin=Origin(kind="default"),
    )
