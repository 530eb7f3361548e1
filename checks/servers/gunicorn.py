"""gunicorn: ``--keep-alive`` (default 2 s), and whether the worker keeps connections at all.

The default ``sync`` worker closes the connection after each response; ``gthread`` (also
what ``sync`` becomes with ``--threads`` above 1), ``gevent``, ``eventlet``, ``tornado`` and
uvicorn's worker keep it for ``keepalive`` seconds. Settings are read in gunicorn's order:
the config file, then ``GUNICORN_CMD_ARGS``, then the command line, the last one winning.
"""

from __future__ import annotations

import logging
import re
import shlex

from checks import numbers
from checks.servers.base import (
    ContainerView,
    FlagHit,
    MountedFile,
    Origin,
    ServerKeepAlive,
    Word,
    find_flag,
    flag_origin,
    parse_seconds,
)

logger = logging.getLogger(__name__)

NAMES = frozenset({"gunicorn", "gunicorn3"})
DEFAULT_KEEPALIVE_S = 2.0
ENV = "GUNICORN_CMD_ARGS"
KEEPALIVE_FLAG = "--keep-alive"
IMPLICIT_CONFIG = "gunicorn.conf.py"

_KEEPALIVE_LINE = re.compile(r"^\s*keepalive\s*=\s*([0-9.]+)\s*(?:#.*)?$", re.MULTILINE)
_WORKER_LINE = re.compile(r"^\s*worker_class\s*=\s*['\"]([^'\"]+)['\"]", re.MULTILINE)
_THREADS_LINE = re.compile(r"^\s*threads\s*=\s*([0-9]+)", re.MULTILINE)


def is_sync_worker(worker_class: str) -> bool:
    name = worker_class.rsplit("#", 1)[-1].rsplit(".", 1)[-1].lower()
    return name in ("sync", "syncworker")


def _settings(words: list[Word]) -> tuple[FlagHit | None, FlagHit | None, FlagHit | None]:
    return (
        find_flag(words, (KEEPALIVE_FLAG,)),
        find_flag(words, ("--worker-class",), "-k"),
        find_flag(words, ("--threads",)),
    )


def _config_file(
    view: ContainerView, words: list[Word], env_words: list[Word]
) -> tuple[str, MountedFile | None]:
    hit = find_flag(words, ("--config",), "-c") or find_flag(env_words, ("--config",), "-c")
    if hit is None:
        # Without -c, gunicorn reads gunicorn.conf.py from its working directory if it is there.
        implicit = view.file(IMPLICIT_CONFIG)
        return (implicit.path, implicit) if implicit else ("", None)
    path = hit.value.removeprefix("file:")
    return path, view.file(path)


def detect(view: ContainerView) -> ServerKeepAlive | None:
    words = view.program(NAMES)
    if words is None:
        return None
    env_words = [Word(t, "env", 0) for t in shlex.split(view.env.get(ENV, ""))]
    cli_keepalive, cli_worker, cli_threads = _settings(words)
    env_keepalive, env_worker, env_threads = _settings(env_words)
    config_path, config = _config_file(view, words, env_words)
    config_text = config.text if config else ""
    # Limitation: a gunicorn.conf.py baked into the image (read when no -c is given) is not seen.
    config_hidden = bool(config_path) and config is None

    worker, worker_from = "sync", "gunicorn's default worker"
    if cli_worker or env_worker:
        hit = cli_worker or env_worker
        assert hit is not None
        worker = hit.value
        worker_from = f"--worker-class {worker}" + (f" in {ENV}" if not cli_worker else "")
    elif (match := _WORKER_LINE.search(config_text)) and config:
        worker, worker_from = match.group(1), f"worker_class in {config.describe()}"
    elif config_hidden:
        worker_from = ""
    threads_hit = cli_threads or env_threads
    threads_text = threads_hit.value if threads_hit else ""
    if not threads_text and (match := _THREADS_LINE.search(config_text)):
        threads_text = match.group(1)
    threads = numbers.whole(threads_text) or 1

    if is_sync_worker(worker) and threads > 1:
        worker, worker_from = "gthread", f"sync worker with {threads} threads runs as gthread"
    if is_sync_worker(worker):
        if not worker_from:
            return ServerKeepAlive(
                server="gunicorn",
                container=view.name,
                reuses_connections=True,
                idle_timeout_s=None,
                source=f"config file {config_path} (not mounted from a ConfigMap)",
                assumed_default=False,
                note=f"the worker class and keepalive are set in {config_path}, which is not "
                "visible",
            )
        return ServerKeepAlive(
            server="gunicorn",
            container=view.name,
            reuses_connections=False,
            idle_timeout_s=0.0,
            source=worker_from,
            assumed_default=worker_from == "gunicorn's default worker",
            note="the sync worker closes each connection after its response",
        )
    note = f"worker {worker} ({worker_from})" if worker_from else f"worker {worker}"

    if cli_keepalive is not None:
        return _from_flag(view, cli_keepalive, cli_keepalive.word.text, note)
    if env_keepalive is not None:
        value = parse_seconds(env_keepalive.value)
        return ServerKeepAlive(
            server="gunicorn",
            container=view.name,
            reuses_connections=value != 0,
            idle_timeout_s=value,
            source=f"{ENV} ({KEEPALIVE_FLAG} {env_keepalive.value})",
            assumed_default=False,
            note=note,
            origin=Origin(kind="env", name=ENV, text=view.env.get(ENV, "")),
        )
    if config is not None and (match := _KEEPALIVE_LINE.search(config.text)):
        line = config.text.count("\n", 0, match.start(1)) + 1
        value = parse_seconds(match.group(1))
        return ServerKeepAlive(
            server="gunicorn",
            container=view.name,
            reuses_connections=value != 0,
            idle_timeout_s=value,
            source=f"keepalive = {match.group(1)}, {config.describe(line)}",
            assumed_default=False,
            note=note,
            origin=config.origin(line),
        )
    if config_hidden:
        return ServerKeepAlive(
            server="gunicorn",
            container=view.name,
            reuses_connections=True,
            idle_timeout_s=None,
            source=f"config file {config_path} (not mounted from a ConfigMap)",
            assumed_default=False,
            note=f"{note}; keepalive may be set in {config_path}, which is not visible",
        )
    logger.debug("gunicorn in %s sets no keepalive: default assumed", view.name)
    return ServerKeepAlive(
        server="gunicorn",
        container=view.name,
        reuses_connections=True,
        idle_timeout_s=DEFAULT_KEEPALIVE_S,
        source=f"gunicorn's default ({DEFAULT_KEEPALIVE_S:g} s)",
        assumed_default=True,
        note=note,
        origin=Origin(kind="default"),
    )


def _from_flag(view: ContainerView, hit: FlagHit, text: str, note: str) -> ServerKeepAlive:
    value = parse_seconds(hit.value)
    source = text if hit.joined else f"{KEEPALIVE_FLAG} {hit.value}"
    return ServerKeepAlive(
        server="gunicorn",
        container=view.name,
        reuses_connections=value != 0,
        idle_timeout_s=value,
        source=source,
        assumed_default=False,
        note=note,
        origin=flag_origin(hit),
    )
