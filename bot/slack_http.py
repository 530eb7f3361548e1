"""The Slack app's HTTP front: a threaded WSGI server for Bolt at ``/slack/events``.

Every request gets a thread of its own, and the listen backlog takes a burst of Slack
requests at once: with a short backlog the kernel drops the connections beyond it and the
client retries them a second later, which eats into Slack's 3 s for an acknowledgement.
"""

from __future__ import annotations

import logging
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"


class SlackHttpServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Connections waiting to be accepted (socketserver's default is 5).
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries no secret, but one line per request is Bolt's to log.
        logger.debug("http: %s", format % args)


def http_server(app: App, host: str, port: int) -> SlackHttpServer:
    """A server for ``app`` bound to ``host``:``port`` (0 takes a free port), not started."""
    server = make_server(
        host,
        port,
        SlackRequestHandler(app, EVENTS_PATH),
        server_class=SlackHttpServer,
        handler_class=_QuietHandler,
    )
    assert isinstance(server, SlackHttpServer)
    return server


def serve_http(app: App, host: str, port: int) -> None:
    """Serve ``app`` over HTTP until interrupted; the port taken is logged."""
    server = http_server(app, host, port)
    logger.info("serving HTTP on http://%s:%s%s", host, server.server_port, EVENTS_PATH)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.server_close()
