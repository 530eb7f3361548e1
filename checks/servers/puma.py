"""Puma: ``persistent_timeout`` (default 20 s) in the config file, or, from Puma 7,
``PUMA_PERSISTENT_TIMEOUT``. The config file wins over the variable."""

from __future__ import annotations

import logging
import re

from checks.servers.base import (
    ContainerView,
    MountedFile,
    Origin,
    ServerKeepAlive,
    Word,
    find_flag,
    parse_seconds,
)

logger = logging.getLogger(__name__)

NAMES = frozenset({"puma"})
DEFAULT_PERSISTENT_TIMEOUT_S = 20.0
ENV = "PUMA_PERSISTENT_TIMEOUT"
_ENVIRONMENT_VARIABLES = ("APP_ENV", "RACK_ENV", "RAILS_ENV")

_SETTING = re.compile(r"^\s*persistent_timeout[\s(]+([0-9.]+)", re.MULTILINE)


def _implicit_config(view: ContainerView, words: list[Word]) -> MountedFile | None:
    """Without -C, Puma reads config/puma/ENVIRONMENT.rb, else config/puma.rb, from its
    working directory."""
    environment_hit = find_flag(words, ("--environment",), "-e")
    environment = environment_hit.value if environment_hit else ""
    for name in _ENVIRONMENT_VARIABLES:
        environment = environment or view.env.get(name, "")
    for path in (f"config/puma/{environment or 'development'}.rb", "config/puma.rb"):
        if found := view.file(path):
            return found
    return None


def detect(view: ContainerView) -> ServerKeepAlive | None:
    words = view.program(NAMES)
    if words is None:
        return None
    hit = find_flag(words, ("--config",), "-C")
    config = view.file(hit.value) if hit else _implicit_config(view, words)
    if hit is not None and config is None:
        return ServerKeepAlive(
            server="puma",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=None,
            source=f"config file {hit.value} (not mounted from a ConfigMap)",
            assumed_default=False,
            note=f"persistent_timeout may be set in {hit.value}, which is not visible",
        )
    if config is not None and (match := _SETTING.search(config.text)):
        line = config.text.count("\n", 0, match.start(1)) + 1
        return ServerKeepAlive(
            server="puma",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=parse_seconds(match.group(1)),
            source=f"persistent_timeout {match.group(1)}, {config.describe(line)}",
            assumed_default=False,
            origin=config.origin(line),
        )
    if ENV in view.env:
        return ServerKeepAlive(
            server="puma",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=parse_seconds(view.env[ENV]),
            source=f"{ENV}={view.env[ENV]}",
            assumed_default=False,
            note="Puma reads this variable from version 7",
            origin=Origin(kind="env", name=ENV, text=view.env[ENV]),
        )
    # Limitation: a config/puma.rb baked into the image, read when no -C is given, is not seen.
    return ServerKeepAlive(
        server="puma",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=DEFAULT_PERSISTENT_TIMEOUT_S,
        source=f"Puma's default persistent_timeout ({DEFAULT_PERSISTENT_TIMEOUT_S:g} s)",
        assumed_default=True,
        origin=Origin(kind="default"),
    )
