"""The Slack app's HTTP front: a threaded WSGI server for Bolt at ``/slack/events``.

Each request is checked before Bolt sees it: its size, then Slack's signature and
timestamp over the raw bytes, and only then is the body decoded and parsed. Unsigned or
stale requests get 401, signed bodies that are not UTF-8 JSON or a form get 400, each
with one log line (Bolt itself would parse first and answer such requests with a 500 and
a traceback).

Every request gets a thread of its own, and the listen backlog takes a burst of Slack
requests at once: with a short backlog the kernel drops the connections beyond it and the
client retries them a second later, which eats into Slack's 3 s for an acknowledgement.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App, BoltRequest, BoltResponse
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.adapter.wsgi.http_request import WsgiHttpRequest
from slack_bolt.request.internals import build_context

logger = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack refuses requests older than this, and so does Bolt.
MAX_AGE_S = 5 * 60
# Far above what Slack sends (a view submission with its whole modal), far below harm.
MAX_BODY_BYTES = 2 * 1024 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
_UNIX_TIME = re.compile(r"[0-9]{1,12}")


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class VerifiedRequestHandler(SlackRequestHandler):
    """Bolt's WSGI adapter, refusing in one log line what is not a signed Slack request."""

    def __init__(
        self,
        app: App,
        signing_secret: str,
        path: str = EVENTS_PATH,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(app, path)
        self._secret = signing_secret.encode()
        self._clock = clock

    def dispatch(self, request: WsgiHttpRequest) -> BoltResponse:
        try:
            raw = self._read_body(request)
            self._verify(request, raw)
            bolt_request = self._parse(request, raw)
        except _Refused as refused:
            logger.warning(
                "refused a request from %s: %s (HTTP %d)",
                request.environ.get("REMOTE_ADDR", "?"),
                refused.reason,
                refused.status,
            )
            error = "invalid request" if refused.status == 401 else "bad request"
            return BoltResponse(status=refused.status, body={"error": error})
        return self.app.dispatch(bolt_request)

    def _read_body(self, request: WsgiHttpRequest) -> bytes:
        length = str(request.environ.get("CONTENT_LENGTH") or "0").strip()
        if not length.isascii() or not length.isdigit():
            raise _Refused(400, f"Content-Length {length[:20]!r} is not a number")
        if int(length) > MAX_BODY_BYTES:
            raise _Refused(413, f"a body of {int(length)} bytes is too large")
        stream = request.environ.get("wsgi.input")
        return bytes(stream.read(int(length))) if stream is not None and int(length) else b""

    def _verify(self, request: WsgiHttpRequest, raw: bytes) -> None:
        headers = request.get_headers()
        timestamp = str(headers.get("x-slack-request-timestamp") or "")
        signature = str(headers.get("x-slack-signature") or "")
        if not timestamp or not signature:
            raise _Refused(401, "not signed (no X-Slack-Request-Timestamp or X-Slack-Signature)")
        if not _UNIX_TIME.fullmatch(timestamp):
            raise _Refused(401, f"X-Slack-Request-Timestamp {timestamp[:20]!r} is not a Unix time")
        skew = self._clock() - int(timestamp)
        if abs(skew) > MAX_AGE_S:
            raise _Refused(401, f"X-Slack-Request-Timestamp is {skew:.0f} s off the clock")
        base = b"v0:" + timestamp.encode() + b":" + raw
        expected = "v0=" + hmac.new(self._secret, base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise _Refused(401, "the signature does not match the signing secret")

    def _parse(self, request: WsgiHttpRequest, raw: bytes) -> BoltRequest:
        try:
            body = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Refused(400, f"the signed body is not UTF-8 (byte {exc.start})") from exc
        try:
            parsed = BoltRequest(
                body=body, query=request.query_string, headers=request.get_headers()
            )
        except json.JSONDecodeError as exc:
            raise _Refused(400, f"the signed body is not valid JSON ({exc.msg})") from exc
        except Exception as exc:  # building it only parses the body and reads fields of it
            raise _Refused(400, f"the signed body is not one Slack sends ({exc!r:.80})") from exc
        if not isinstance(parsed.body, dict):
            raise _Refused(400, "the signed body is not a JSON object or a form")
        if parsed.content_type == FORM_TYPE:
            fields = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
            if "payload" not in fields:
                # Bolt reads a form that mentions "payload" anywhere (a slash command's
                # text, say) as an interaction's payload field and finds none: read it
                # as the plain form it is.
                return _FormRequest(
                    fields, body=body, query=request.query_string, headers=request.get_headers()
                )
        return parsed


class _FormRequest(BoltRequest):
    """A form-encoded request whose body is ``fields``, in it and in every copy Bolt makes
    for its lazy listeners (which would otherwise parse the raw body again)."""

    def __init__(self, fields: dict[str, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.body = fields
        self.context = build_context(self.context, fields)

    def to_copyable(self) -> BoltRequest:
        copy = super().to_copyable()
        copy.body = dict(self.body)
        return copy


class SlackHttpServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    # Connections waiting to be accepted (socketserver's default is 5).
    request_queue_size = 128


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        # The request line carries no secret, but one line per request is Bolt's to log.
        logger.debug("http: %s", format % args)


def http_server(app: App, host: str, port: int, signing_secret: str) -> SlackHttpServer:
    """A server for ``app`` bound to ``host``:``port`` (0 takes a free port), not started;
    it takes only requests signed with ``signing_secret``."""
    server = make_server(
        host,
        port,
        VerifiedRequestHandler(app, signing_secret),
        server_class=SlackHttpServer,
        handler_class=_QuietHandler,
    )
    assert isinstance(server, SlackHttpServer)
    return server


def serve_http(app: App, host: str, port: int, signing_secret: str) -> None:
    """Serve ``app`` over HTTP until interrupted; the port taken is logged."""
    server = http_server(app, host, port, signing_secret)
    logger.info("serving HTTP on http://%s:%s%s", host, server.server_port, EVENTS_PATH)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        logger.info("stopping")
    finally:
        server.server_close()
