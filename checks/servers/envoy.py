"""Envoy: the HTTP connection manager's ``common_http_protocol_options.idle_timeout``.

Envoy's default is 1 hour, but it applies only where a configuration is visible and
leaves the value unset; a bootstrap baked into the image is not seen, and then the value
is unknown.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import yaml

from checks import numbers
from checks.servers.base import (
    ContainerView,
    MountedFile,
    Origin,
    ServerKeepAlive,
    find_flag,
    seconds_text,
)

logger = logging.getLogger(__name__)

NAMES = frozenset({"envoy"})
DEFAULT_IDLE_TIMEOUT_S = 3600.0
_HCM_TYPE = "HttpConnectionManager"


def _duration(value: object) -> float | None:
    if isinstance(value, dict):
        try:
            seconds = float(value.get("seconds", 0)) + float(value.get("nanos", 0)) / 1e9
        except (TypeError, ValueError, OverflowError):
            return None
    elif isinstance(value, str) and value.endswith("s"):
        try:
            seconds = float(value[:-1])
        except ValueError:
            return None
    else:
        return None
    # A zero idle timeout turns the timeout off: idle connections stay open.
    return math.inf if seconds == 0 else seconds


def _managers(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if str(node.get("@type", "")).endswith(_HCM_TYPE):
            yield node
        for value in node.values():
            yield from _managers(value)
    elif isinstance(node, list):
        for value in node:
            yield from _managers(value)


def _unknown(view: ContainerView, source: str, note: str) -> ServerKeepAlive:
    return ServerKeepAlive(
        server="envoy",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=None,
        source=source,
        assumed_default=False,
        note=note,
    )


def detect(view: ContainerView) -> ServerKeepAlive | None:
    words = view.program(NAMES)
    if words is None and "envoy" not in view.image_basename:
        return None
    words = words or []
    inline = find_flag(words, ("--config-yaml",))
    path_hit = find_flag(words, ("--config-path",), "-c")
    config: MountedFile | None = view.file(path_hit.value) if path_hit else None
    if inline is not None:
        text, where, origin = inline.value, "--config-yaml", Origin(kind="argv")
    elif config is not None:
        text, where = config.text, config.describe()
        origin = config.origin()
    else:
        shown = (
            f"config {path_hit.value}, not mounted from a ConfigMap"
            if path_hit
            else f"image {view.image}, no configuration mounted from a ConfigMap"
        )
        return _unknown(view, shown, "Envoy's bootstrap configuration is not visible")
    try:
        document = numbers.load_yaml(text)
    except yaml.YAMLError as exc:
        logger.debug("envoy config in %s does not parse: %s", view.name, exc)
        return _unknown(view, where, f"the configuration does not parse as YAML: {exc}")

    values: list[tuple[float, str]] = []
    for manager in _managers(document):
        options = manager.get("common_http_protocol_options") or {}
        raw = options.get("idle_timeout") if isinstance(options, dict) else None
        if raw is None:
            values.append((DEFAULT_IDLE_TIMEOUT_S, f"Envoy's default idle_timeout, {where}"))
            continue
        seconds = _duration(raw)
        if seconds is None:
            return _unknown(view, where, f"idle_timeout {raw!r} is not a duration")
        values.append((seconds, f"common_http_protocol_options.idle_timeout {raw}, {where}"))
    if not values:
        return _unknown(view, where, "no HTTP connection manager in the configuration")
    seconds, source = min(values)
    return ServerKeepAlive(
        server="envoy",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=seconds,
        source=source,
        assumed_default=source.startswith("Envoy's default"),
        note="" if math.isfinite(seconds) else f"idle timeout off ({seconds_text(seconds)})",
        origin=origin,
    )
