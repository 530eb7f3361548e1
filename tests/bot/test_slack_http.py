"""The HTTP front of the Slack app: what is not a signed Slack request is refused before
Bolt parses it, with one log line and no traceback."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator

import pytest

from bot.slack_app import create_app
from tests.bot.test_slack_app import SECRET, FakeChecker, serving_app
from tests.slackfake import BOT_TOKEN, SlackFake, form

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
COMMAND = form(command="/eks504", text="check shop/web", channel_id="C1", user_id="U1").encode()


def sign(body: bytes, timestamp: str, secret: str = SECRET) -> str:
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def signed(body: bytes, content_type: str = FORM) -> tuple[bytes, dict[str, str]]:
    now = str(int(time.time()))
    return body, {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": now,
        "X-Slack-Signature": sign(body, now),
    }


def unsigned(body: bytes, content_type: str = FORM, **headers: str) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": content_type, **headers}


def with_timestamp(timestamp: str) -> tuple[bytes, dict[str, str]]:
    return unsigned(
        COMMAND,
        **{"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign(COMMAND, timestamp)},
    )


CASES = {
    "unsigned json that is not json": (unsigned(b"{not json", JSON), 401),
    "unsigned form that is not utf-8": (unsigned(b"\xff\xfe"), 401),
    "unsigned payload that is not json": (unsigned(b"payload=%7Bbad"), 401),
    "timestamp that is not a number": (with_timestamp("abc"), 401),
    "timestamp that is empty": (with_timestamp(""), 401),
    "timestamp of 400 digits": (with_timestamp("9" * 400), 401),
    "timestamp of another day": (with_timestamp(str(int(time.time()) - 86400)), 401),
    "signature that is not ascii": (
        unsigned(
            COMMAND,
            **{"X-Slack-Request-Timestamp": str(int(time.time())), "X-Slack-Signature": "v0=\xe9"},
        ),
        401,
    ),
    "signed json that is not json": (signed(b"{not json", JSON), 400),
    "signed form that is not utf-8": (signed(b"\xff\xfe"), 400),
    "signed payload that is not json": (signed(b"payload=%7Bbad"), 400),
    "signed json that is not an object": (signed(b"[1, 2]", JSON), 400),
    "signed payload that is null": (signed(b"payload=null"), 400),
}


@pytest.fixture
def events_url() -> Iterator[tuple[str, FakeChecker, SlackFake]]:
    checker = FakeChecker()
    with SlackFake() as fake:
        app = create_app(checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url)
        with serving_app(app) as url:
            yield url, checker, fake


@pytest.mark.parametrize(("request_", "status"), CASES.values(), ids=CASES.keys())
def test_request_that_is_not_a_signed_slack_request_is_refused_in_one_log_line(
    request_: tuple[bytes, dict[str, str]],
    status: int,
    events_url: tuple[str, FakeChecker, SlackFake],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    url, checker, fake = events_url
    body, headers = request_

    with caplog.at_level(logging.DEBUG):
        got, answer = post(url, body, headers)
        time.sleep(0.1)

    assert got == status
    assert json.loads(answer) == {"error": "invalid request" if status == 401 else "bad request"}
    refusals = [r for r in caplog.records if r.name == "bot.slack_http" and r.levelno > 10]
    assert len(refusals) == 1
    assert refusals[0].getMessage().endswith(f"(HTTP {status})")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert "Traceback" not in capfd.readouterr().err
    assert checker.calls == []
    assert fake.posts == []


@pytest.mark.parametrize(
    ("length", "status", "reason"),
    [
        (str(3 * 1024 * 1024), 413, "a body of 3145728 bytes is too large"),
        ("abc", 400, "Content-Length 'abc' is not a number"),
    ],
)
def test_content_length_is_judged_before_the_body_is_read(
    length: str,
    status: int,
    reason: str,
    events_url: tuple[str, FakeChecker, SlackFake],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, checker, _ = events_url
    where = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=10)
    # Only the headers and a few bytes are sent: a body this size is never waited for.
    connection.putrequest("POST", where.path)
    connection.putheader("Content-Type", FORM)
    connection.putheader("Content-Length", length)
    connection.endheaders(b"text=x")

    with caplog.at_level(logging.WARNING):
        answer = connection.getresponse()
        answer.read()
    connection.close()

    assert answer.status == status
    (refusal,) = [r for r in caplog.records if r.name == "bot.slack_http"]
    assert refusal.getMessage().endswith(f"{reason} (HTTP {status})")
    assert checker.calls == []


def test_signed_command_still_goes_through(
    events_url: tuple[str, FakeChecker, SlackFake], caplog: pytest.LogCaptureFixture
) -> None:
    url, _, fake = events_url
    body = form(
        command="/eks504",
        text="check shop/web",
        channel_id="C1",
        user_id="U1",
        response_url=fake.response_url(),
    ).encode()

    with caplog.at_level(logging.WARNING):
        got, answer = post(url, *signed(body))

    assert got == 200
    assert json.loads(answer)["text"] == ":hourglass_flowing_sand: Checking `shop/web`…"
    assert len(fake.wait_for_posts(4)) == 4
    assert [r for r in caplog.records if r.name == "bot.slack_http"] == []
