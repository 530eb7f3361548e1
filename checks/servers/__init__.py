"""Which HTTP server a container runs, and how long it keeps idle keep-alive connections.

:func:`detect` asks each server module in turn; the first that recognises the container
(from its command line, environment, image name or mounted configuration) answers. A
container none of them recognises is ``unknown`` with no value: nothing is guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from checks.servers import apache, envoy, gunicorn, nginx, node, puma, tomcat, uvicorn
from checks.servers.base import ContainerView, MountedFile, Origin, ServerKeepAlive, view

__all__ = ["ContainerView", "MountedFile", "Origin", "ServerKeepAlive", "detect"]

logger = logging.getLogger(__name__)

# Servers recognised by the program they run come before those recognised by image alone,
# so that gunicorn running uvicorn workers is gunicorn, and node in an nginx image is node.
_DETECTORS: tuple[Callable[[ContainerView], ServerKeepAlive | None], ...] = (
    gunicorn.detect,
    uvicorn.detect,
    puma.detect,
    node.detect,
    envoy.detect,
    apache.detect,
    tomcat.detect,
    nginx.detect,
)


def detect(
    container: dict[str, Any], pod: dict[str, Any], configmaps: dict[str, dict[str, Any]]
) -> ServerKeepAlive:
    """The keep-alive behaviour of ``container`` in ``pod``; ``configmaps`` by name."""
    facts = view(container, pod, configmaps)
    for detector in _DETECTORS:
        found = detector(facts)
        if found is not None and facts.unread and found.origin.kind in ("default", "none"):
            # A value the ConfigMap might set stands in for one that was not read: say so.
            return ServerKeepAlive(
                server=found.server,
                container=facts.name,
                reuses_connections=True,
                idle_timeout_s=None,
                source=f"{', '.join(facts.unread)} not read",
                assumed_default=False,
                note=f"its settings may be in {', '.join(facts.unread)}, which could not be read",
            )
        if found is not None:
            logger.debug(
                "container %s: %s, idle %s (%s)",
                facts.name,
                found.server,
                found.idle_timeout_s,
                found.source,
            )
            return found
    shown = " ".join(w.text for w in facts.words[:4]) or "(the image's own)"
    return ServerKeepAlive(
        server="unknown",
        container=facts.name,
        reuses_connections=True,
        idle_timeout_s=None,
        source=f"image {facts.image or '(none)'}, command {shown}",
        assumed_default=False,
        note="no known HTTP server in the command, image name or mounted configuration",
    )
