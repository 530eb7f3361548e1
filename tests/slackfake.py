"""A local stand-in for Slack's Web API and response URLs, for tests.

``SlackFake()`` listens on 127.0.0.1 (a free port) and answers ``POST /api/<method>`` the
way Slack does: HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``,
form or JSON bodies, the token in an ``Authorization: Bearer`` header (or a ``token`` form
field). It records every call, and the messages posted with ``chat.postMessage`` and to
response URLs (``/response/<id>``), with helpers that wait for them. ``views.open``
records the modal it is given; ``usergroups.users.list`` answers what ``set_usergroup``
set; ``view_submission`` builds the body Slack sends when a modal is submitted.

``signed_post`` sends a request signed the way Slack signs its requests to an app:
``X-Slack-Signature: v0=HMAC-SHA256(signing secret, "v0:{timestamp}:{body}")``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

logger = logging.getLogger(__name__)

BOT_TOKEN = "xoxb-test-token"
BOT_USER_ID = "UBOT"
TEAM_ID = "T0001"

# Methods whose failure can be set per channel with SlackFake.fail_channel.
_CHANNEL_METHODS = (
    "chat.postMessage",
    "chat.postEphemeral",
    "chat.update",
    "conversations.info",
    "reactions.add",
)


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    token: str | None
    # time.monotonic() when the call arrived
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Post:
    """A message Slack accepted: via chat.postMessage, chat.postEphemeral or chat.update."""

    method: str
    channel: str
    ts: str
    thread_ts: str | None
    text: str
    blocks: list[dict[str, Any]]
    user: str | None = None

    def all_text(self) -> str:
        """The fallback text and every text in the blocks, for loose assertions."""
        return self.text + "\n" + json.dumps(self.blocks, ensure_ascii=False)


@dataclass(frozen=True)
class SharedFile:
    """A file shared by the two-step upload: the URL asked for, the bytes POSTed to it, and
    where ``files.completeUploadExternal`` shared it."""

    id: str
    filename: str
    length: int
    data: bytes
    title: str
    channel: str | None
    thread_ts: str | None
    alt_txt: str = ""


@dataclass(frozen=True)
class Response:
    """A body posted to a response URL."""

    response_id: str
    body: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.body.get("text", ""))

    def all_text(self) -> str:
        return self.text + "\n" + json.dumps(self.body.get("blocks", []), ensure_ascii=False)


@dataclass
class _State:
    calls: list[Call] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    ephemerals: list[Post] = field(default_factory=list)
    updates: list[Post] = field(default_factory=list)
    reactions: list[dict[str, Any]] = field(default_factory=list)
    responses: list[Response] = field(default_factory=list)
    uploads: dict[str, bytes] = field(default_factory=dict)
    # file id -> the files.getUploadURLExternal parameters
    upload_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[SharedFile] = field(default_factory=list)
    views: list[dict[str, Any]] = field(default_factory=list)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    # channel -> (error, methods it applies to)
    channel_errors: dict[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    # Close the connection of every file upload without an answer, as a network that drops it.
    drop_uploads: bool = False


def _parse_body(content_type: str, raw: bytes) -> dict[str, Any]:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        loaded = json.loads(raw.decode("utf-8"))
        return loaded if isinstance(loaded, dict) else {}
    params: dict[str, Any] = dict(urllib.parse.parse_qsl(raw.decode("utf-8")))
    # Form-encoded callers send structured arguments as JSON strings.
    for key in ("blocks", "attachments", "metadata", "view"):
        if isinstance(params.get(key), str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


class SlackFake:
    """Slack's Web API and response URLs, recorded, on 127.0.0.1."""

    def __init__(self, token: str = BOT_TOKEN) -> None:
        self.token = token
        self._state = _State()
        self._changed = threading.Condition()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/api/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    # -- lifecycle

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SlackFake:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- configuration

    def fail_channel(
        self, channel: str, error: str, methods: tuple[str, ...] = _CHANNEL_METHODS
    ) -> None:
        """Make ``methods`` answer ``{"ok": false, "error": error}`` for ``channel``."""
        with self._changed:
            self._state.channel_errors[channel] = (error, methods)

    def drop_uploads(self) -> None:
        """Drop every file upload's connection before answering it."""
        with self._changed:
            self._state.drop_uploads = True

    def set_usergroup(self, group_id: str, users: list[str]) -> None:
        """Make ``usergroups.users.list`` answer ``users`` for ``group_id``."""
        with self._changed:
            self._state.usergroups[group_id] = list(users)

    def response_url(self, response_id: str | None = None) -> str:
        """A fresh response URL whose posts are recorded under ``response_id``."""
        return f"{self.base}/response/{response_id or f'R{next(self._ids)}'}"

    # -- what happened

    @property
    def calls(self) -> list[Call]:
        with self._changed:
            return list(self._state.calls)

    @property
    def posts(self) -> list[Post]:
        with self._changed:
            return list(self._state.posts)

    @property
    def ephemerals(self) -> list[Post]:
        with self._changed:
            return list(self._state.ephemerals)

    @property
    def updates(self) -> list[Post]:
        with self._changed:
            return list(self._state.updates)

    @property
    def reactions(self) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._state.reactions)

    @property
    def responses(self) -> list[Response]:
        with self._changed:
            return list(self._state.responses)

    @property
    def views(self) -> list[dict[str, Any]]:
        """Views opened with ``views.open``, as Slack holds them (with ``id``)."""
        with self._changed:
            return list(self._state.views)

    @property
    def files(self) -> list[SharedFile]:
        with self._changed:
            return list(self._state.files)

    def message(self, ts: str) -> Post:
        """The message posted at ``ts`` as it reads now, after any chat.update."""
        with self._changed:
            versions = [p for p in self._state.posts + self._state.updates if p.ts == ts]
        if not versions:
            raise KeyError(f"no message at {ts}")
        return versions[-1]

    def wait_for_files(self, count: int, timeout: float = 5.0) -> list[SharedFile]:
        return self._wait(lambda: self._state.files, count, timeout)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def _wait(self, what: Callable[[], list[Any]], count: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(what()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"wanted {count}, got {len(what())}: {what()!r}")
                self._changed.wait(remaining)
            return list(what())

    def wait_for_posts(self, count: int, timeout: float = 3.0) -> list[Post]:
        """Block until at least ``count`` chat.postMessage calls succeeded; return them all."""
        return self._wait(lambda: self._state.posts, count, timeout)

    def wait_for_responses(self, count: int, timeout: float = 3.0) -> list[Response]:
        """Block until at least ``count`` response-URL posts arrived; return them all."""
        return self._wait(lambda: self._state.responses, count, timeout)

    def wait_for_ephemerals(self, count: int, timeout: float = 3.0) -> list[Post]:
        return self._wait(lambda: self._state.ephemerals, count, timeout)

    def wait_for_views(self, count: int, timeout: float = 3.0) -> list[dict[str, Any]]:
        return self._wait(lambda: self._state.views, count, timeout)

    def wait_for_calls(self, method: str, count: int, timeout: float = 3.0) -> list[Call]:
        return self._wait(
            lambda: [c for c in self._state.calls if c.method == method], count, timeout
        )

    # -- the API

    def _next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    def _answer(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        state = self._state
        state.calls.append(Call(method=method, params=params, token=token))
        if token != self.token:
            return {"ok": False, "error": "not_authed" if not token else "invalid_auth"}
        channel = str(params.get("channel", ""))
        failure = state.channel_errors.get(channel)
        if failure and method in failure[1]:
            return {"ok": False, "error": failure[0]}

        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "eks504",
                "team_id": TEAM_ID,
                "user_id": BOT_USER_ID,
                "bot_id": "BBOT",
            }
        if method in ("chat.postMessage", "chat.postEphemeral", "chat.update"):
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            if not params.get("text") and not params.get("blocks"):
                return {"ok": False, "error": "no_text"}
            ts = str(params["ts"]) if method == "chat.update" else self._next_ts()
            thread_ts = params.get("thread_ts")
            post = Post(
                method=method,
                channel=channel,
                ts=ts,
                thread_ts=str(thread_ts) if thread_ts else None,
                text=str(params.get("text", "")),
                blocks=list(params.get("blocks") or []),
                user=str(params["user"]) if params.get("user") else None,
            )
            if method == "chat.postMessage":
                state.posts.append(post)
                return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
            if method == "chat.postEphemeral":
                state.ephemerals.append(post)
                return {"ok": True, "message_ts": ts}
            state.updates.append(post)
            return {"ok": True, "channel": channel, "ts": ts, "text": post.text}
        if method == "conversations.info":
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            return {"ok": True, "channel": {"id": channel, "is_member": True}}
        if method == "reactions.add":
            state.reactions.append(dict(params))
            return {"ok": True}
        if method == "views.open":
            view = params.get("view")
            if isinstance(view, str):
                view = json.loads(view)
            if not params.get("trigger_id"):
                return {"ok": False, "error": "invalid_trigger_id"}
            if not isinstance(view, dict) or view.get("type") != "modal":
                return {"ok": False, "error": "invalid_arguments"}
            opened = {**view, "id": f"V{next(self._ids):06d}", "team_id": TEAM_ID}
            state.views.append(opened)
            return {"ok": True, "view": opened}
        if method == "usergroups.users.list":
            group = str(params.get("usergroup", ""))
            if group not in state.usergroups:
                return {"ok": False, "error": "no_such_subteam"}
            return {"ok": True, "users": list(state.usergroups[group])}
        if method == "files.getUploadURLExternal":
            if not params.get("filename") or not str(params.get("length", "")).isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            file_id = f"F{next(self._ids):06d}"
            state.upload_requests[file_id] = dict(params)
            return {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}
        if method == "files.completeUploadExternal":
            files = params.get("files", [])
            if isinstance(files, str):
                files = json.loads(files)
            missing = [f for f in files if f.get("id") not in state.uploads]
            if not files or missing:
                return {"ok": False, "error": "file_not_found"}
            thread_ts = params.get("thread_ts")
            for f in files:
                asked = state.upload_requests.get(f["id"], {})
                state.files.append(
                    SharedFile(
                        id=f["id"],
                        filename=str(asked.get("filename", "")),
                        length=int(asked.get("length", -1)),
                        data=state.uploads[f["id"]],
                        title=str(f.get("title") or ""),
                        channel=str(params["channel_id"]) if params.get("channel_id") else None,
                        thread_ts=str(thread_ts) if thread_ts else None,
                        alt_txt=str(asked.get("alt_txt") or ""),
                    )
                )
            return {
                "ok": True,
                "files": [{"id": f["id"], "title": f.get("title", "")} for f in files],
            }
        return {"ok": False, "error": "unknown_method"}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug("slackfake: %s", format % args)

            def _reply(self, status: int, body: str, content_type: str) -> None:
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                content_type = self.headers.get("Content-Type", "")
                path = urllib.parse.urlsplit(self.path).path
                if path.startswith("/api/"):
                    params = _parse_body(content_type, raw)
                    auth = self.headers.get("Authorization", "")
                    token = auth.removeprefix("Bearer ").strip() if auth else None
                    token = token or params.pop("token", None)
                    with fake._changed:
                        answer = fake._answer(path.removeprefix("/api/"), params, token)
                        fake._changed.notify_all()
                    self._reply(200, json.dumps(answer), "application/json; charset=utf-8")
                elif path.startswith("/response/"):
                    body = _parse_body(content_type or "application/json", raw)
                    with fake._changed:
                        fake._state.responses.append(
                            Response(response_id=path.removeprefix("/response/"), body=body)
                        )
                        fake._changed.notify_all()
                    self._reply(200, "ok", "text/plain")
                elif path.startswith("/upload/"):
                    if fake._state.drop_uploads:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    with fake._changed:
                        fake._state.uploads[path.removeprefix("/upload/")] = raw
                        fake._changed.notify_all()
                    self._reply(200, "OK - " + str(len(raw)), "text/plain")
                else:
                    self._reply(404, "Not Found", "text/plain")

        return Handler


# ---------------------------------------------------------------------------
# Signed requests to an app


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: str
    headers: Mapping[str, str]
    elapsed_s: float

    def json(self) -> Any:
        return json.loads(self.body)


def slack_signature(signing_secret: str, timestamp: str, body: str) -> str:
    """Slack's v0 request signature of ``body`` sent at ``timestamp``."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def signed_post(
    app_url: str,
    signing_secret: str,
    body: str,
    content_type: str = "application/x-www-form-urlencoded",
    *,
    timestamp: int | None = None,
    signature: str | None = None,
    timeout: float = 10.0,
    extra_headers: Mapping[str, str] | None = None,
    signed: bool = True,
) -> HttpResult:
    """POST ``body`` to ``app_url`` signed with ``signing_secret`` as Slack would.

    ``timestamp`` (seconds since the epoch, default now) and ``signature`` (default the
    correct one) let a test send stale or forged requests; ``signed=False`` sends neither
    header. ``extra_headers`` go along, e.g. ``X-Slack-Retry-Num``.
    """
    sent_at = str(int(time.time()) if timestamp is None else timestamp)
    headers = {"Content-Type": content_type}
    if signed:
        headers["X-Slack-Request-Timestamp"] = sent_at
        headers["X-Slack-Signature"] = signature or slack_signature(signing_secret, sent_at, body)
    headers.update(extra_headers or {})
    request = urllib.request.Request(
        app_url, data=body.encode("utf-8"), headers=headers, method="POST"
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            status, data, got = answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as err:
        status, data, got = err.code, err.read(), dict(err.headers)
    return HttpResult(
        status=status,
        body=data.decode("utf-8"),
        headers=got,
        elapsed_s=time.monotonic() - started,
    )


def form(**fields: str) -> str:
    """A form-encoded body, as Slack sends slash commands and interactions."""
    return urllib.parse.urlencode(fields)


def view_submission(
    view: Mapping[str, Any], user: str, values: Mapping[str, Any] | None = None
) -> str:
    """The form body Slack sends an app when ``user`` submits the modal ``view``."""
    submitted = {
        **view,
        "state": {"values": dict(values or {})},
        "hash": "1700000000.abcdef",
    }
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM_ID},
        "user": {"id": user, "team_id": TEAM_ID},
        "api_app_id": "A1",
        "trigger_id": "123.456.submit",
        "view": submitted,
    }
    return form(payload=json.dumps(payload))
