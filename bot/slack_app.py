"""The Slack app: ``/eks504``, ``@eks504`` mentions, the message shortcut, and the Re-run,
Apply and Measure keep-alive buttons.

:func:`create_app` builds the Bolt app around a :class:`~bot.service.Checker`;
:func:`serve` runs it, over Socket Mode when ``SLACK_APP_TOKEN`` is set, else over HTTP.

Settings come from arguments or the environment: ``SLACK_BOT_TOKEN``,
``SLACK_SIGNING_SECRET`` (HTTP mode), ``SLACK_APP_TOKEN`` (Socket Mode) and
``SLACK_API_URL`` (another Web API endpoint, e.g. a local stand-in in tests).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit

from slack_bolt import App
from slack_bolt.lazy_listener import ThreadLazyListenerRunner
from slack_sdk import WebClient

from bot.clusters import ClusterRouter
from bot.config import BotConfig, ProbeConfig, probe_enabled
from bot.guard import shared_from_env
from bot.listeners import register
from bot.listeners.apply import service_from_env
from bot.listeners.options import Options
from bot.policy import Policy
from bot.probe import LiveProbe
from bot.service import Checker
from bot.slack_http import serve_http
from checks.collect.probe import PROBE_IMAGE
from checks.errors import Eks504Error, InputError

logger = logging.getLogger(__name__)

DEFAULT_HTTP_PORT = 3000
DEFAULT_HTTP_HOST = "0.0.0.0"
# Threads for the slow work of listeners (checks, probes, applies); more requests queue.
DEFAULT_WORKERS = 16

T = TypeVar("T")


def web_api_url(given: str | None = None, env: Mapping[str, str] = os.environ) -> str:
    """The Web API base URL: ``given``, else ``SLACK_API_URL``, else Slack's own; with a
    trailing slash. Raises :class:`InputError` for anything but an http(s) URL with a host,
    so a mistyped setting stops eks504 at start rather than at its first call to Slack."""
    url = given or env.get("SLACK_API_URL") or WebClient.BASE_URL
    problem = _url_problem(url)
    if problem:
        name = "The Slack Web API URL" if given else "SLACK_API_URL"
        raise InputError(
            f"{name} is {url[:200]!r}: {problem}.",
            f"Set it to an http(s) URL such as {WebClient.BASE_URL}, or unset it.",
        )
    # The client appends the method name to the URL as is.
    return url if url.endswith("/") else url + "/"


def _url_problem(url: str) -> str:
    if url != url.strip() or any(c.isspace() for c in url):
        return "it has spaces, so it is not a URL"
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "not an http:// or https:// URL"
    if not parts.hostname:
        return "the URL names no host"
    return ""


class _ThreadPerTask(Executor):
    """Runs every task at once on a thread of its own, so no task waits for another.

    Bolt runs the listeners' ``ack`` functions on its listener executor; each is quick, but
    in a bounded pool shared with the checks it waits behind them and misses Slack's 3 s.
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future: Future[T] = Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        threading.Thread(target=run, name="eks504-ack", daemon=True).start()
        return future


def create_app(
    checker: Checker,
    *,
    token: str,
    signing_secret: str,
    api_url: str | None = None,
    process_before_response: bool = False,
    options: Options | None = None,
    workers: int = DEFAULT_WORKERS,
) -> App:
    """A Bolt app whose listeners answer with ``checker``'s results.

    ``options`` carries the policy (clusters, channel rules, rate limits), the shared
    event ledger and how answers are shown; the default keeps everything in process.
    The token is checked once with ``auth.test`` when the app is built, so a wrong token
    or an unreachable API fails here rather than on the first command.

    Acknowledgements never wait for work: each runs at once on its own thread, while the
    slow work (checks, probes, applies: Bolt's lazy listeners) shares a pool of
    ``workers`` threads and queues when they are all busy.
    """
    base_url = web_api_url(api_url)
    client = WebClient(token=token, base_url=base_url)
    app = App(
        client=client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        listener_executor=_ThreadPerTask(),
    )
    app.listener_runner.lazy_listener_runner = ThreadLazyListenerRunner(
        logger=app.logger,
        executor=ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eks504-work"),
    )
    register(app, checker, options)
    logger.info("Slack app ready (Web API at %s)", base_url)
    return app


def _setting(name: str, hint: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise Eks504Error(f"{name} is not set.", hint)
    return value


def options_for(
    checker: Checker, config: BotConfig | None, env: Mapping[str, str] = os.environ
) -> Options:
    """The listeners' options for a served app: Redis-shared state when ``REDIS_URL`` is
    set, the configuration's rules, the clusters the checker can reach, who may apply
    fixes, and whether (and where) the keep-alive probe may start pods."""
    shared = shared_from_env(env)
    clusters = checker.names if isinstance(checker, ClusterRouter) else None
    probe = config.probe if config is not None else ProbeConfig()
    enabled = probe_enabled(config, env)
    logger.info("keep-alive probe: %s", "on" if enabled else "off")
    return Options(
        policy=Policy(config, shared.limiter, clusters=clusters),
        ledger=shared.ledger,
        apply=service_from_env(checker, config, env),
        probe_enabled=enabled,
        probe_runner=LiveProbe(namespace=probe.namespace, image=probe.image or PROBE_IMAGE),
    )


def serve(
    checker: Checker,
    *,
    http_port: int | None = None,
    host: str = DEFAULT_HTTP_HOST,
    config: BotConfig | None = None,
) -> None:
    """Run the app until interrupted: Socket Mode if ``SLACK_APP_TOKEN`` is set, else HTTP."""
    token = _setting("SLACK_BOT_TOKEN", "Set it to the bot token (xoxb-...) of the Slack app.")
    app_token = os.environ.get("SLACK_APP_TOKEN", "")
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        # Socket Mode requests arrive over an authenticated socket, not signed HTTP.
        app = create_app(
            checker,
            token=token,
            signing_secret=os.environ.get("SLACK_SIGNING_SECRET", ""),
            options=options_for(checker, config),
        )
        logger.info("serving over Socket Mode")
        SocketModeHandler(app, app_token).start()  # type: ignore[no-untyped-call]
        return

    secret = _setting(
        "SLACK_SIGNING_SECRET",
        "Set it to the signing secret from the Slack app's Basic Information.",
    )
    app = create_app(
        checker, token=token, signing_secret=secret, options=options_for(checker, config)
    )
    port = http_port if http_port is not None else int(os.environ.get("PORT", DEFAULT_HTTP_PORT))
    serve_http(app, host, port, secret)
