"""The Slack app driven over real HTTP, answering through a local stand-in for Slack."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier

from bot.cli import main
from bot.listeners.options import Options
from bot.render_slack import RERUN_ACTION_ID
from bot.service import CheckOutcome, Progress
from bot.slack_app import create_app, serve
from bot.slack_http import http_server
from checks.errors import Eks504Error, InputError, NotFoundError
from checks.models import Finding, Fix, LoadBalancerSummary, Report, Severity, Status, Target
from tests.slackfake import (
    BOT_TOKEN,
    BOT_USER_ID,
    HttpResult,
    SlackFake,
    form,
    signed_post,
    slack_signature,
)

SECRET = "test-signing-secret"
PARENT_TS = "1700000000.000100"


# ---------------------------------------------------------------------------
# A checker that returns reports built here


def build_report(target: Target) -> Report:
    return Report(
        target=target,
        load_balancers=[
            LoadBalancerSummary(
                name="k8s-shop-web-0a1b2c",
                type="application",
                dns_name="k8s-shop-web-0a1b2c.us-east-1.elb.amazonaws.com",
                scheme="internet-facing",
                serves=f"ingress/{target.namespace}/{target.service}",
                idle_timeout_s=60,
            )
        ],
        findings=[
            Finding(
                code="IDLE_TIMEOUT_REACHED",
                status=Status.FAIL,
                severity=Severity.HIGH,
                summary="TargetResponseTime reached 60.0 s, the idle timeout, in 3 minutes",
                resource="k8s-shop-web-0a1b2c",
                evidence=("TargetResponseTime max 60.0 s at 10:04", "7 ELB 504s"),
                fixes=(
                    Fix(
                        title="Raise the idle timeout",
                        language="yaml",
                        text="alb.ingress.kubernetes.io/load-balancer-attributes: "
                        "idle_timeout.timeout_seconds=120\n",
                    ),
                ),
            ),
            Finding(
                code="TERMINATION_RACE",
                status=Status.WARN,
                severity=Severity.MEDIUM,
                summary="Pods have no pre-stop delay behind ip targets",
                fixes=(
                    Fix(title="Add a pre-stop sleep", language="yaml", text="preStop: sleep 20\n"),
                ),
            ),
            Finding(
                code="SG_BLOCKS_TRAFFIC",
                status=Status.PASS,
                severity=Severity.HIGH,
                summary="Security groups allow the path",
            ),
        ],
    )


class FakeChecker:
    """Counts calls; answers with ``build_report``, or raises ``error``; may wait on ``gate``."""

    def __init__(
        self, error: BaseException | None = None, gate: threading.Event | None = None
    ) -> None:
        self.error = error
        self.gate = gate
        self.calls: list[tuple[Target, bool]] = []
        self.lock = threading.Lock()

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        with self.lock:
            self.calls.append((target, fresh))
        if self.gate is not None:
            self.gate.wait(5)
        if self.error is not None:
            raise self.error
        return CheckOutcome(build_report(target), cache_hit=not fresh, age_s=0 if fresh else 42)


# ---------------------------------------------------------------------------
# The app on a real HTTP server, talking to the stand-in


@contextmanager
def serving(checker: FakeChecker, fake: SlackFake) -> Iterator[str]:
    app = create_app(checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url)
    with serving_app(app) as url:
        yield url


@contextmanager
def serving_app(app: App, signing_secret: str = SECRET) -> Iterator[str]:
    """``app`` behind the app's own HTTP server on 127.0.0.1, stopped on exit; yields the
    events URL."""
    server = http_server(app, "127.0.0.1", 0, signing_secret)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/slack/events"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


Start = Callable[[FakeChecker], str]


@pytest.fixture
def start(fake: SlackFake) -> Iterator[Start]:
    """Starts the app for a checker; every app started is stopped after the test."""
    with ExitStack() as stack:
        yield lambda checker: stack.enter_context(serving(checker, fake))


def slash(
    url: str, fake: SlackFake, text: str, channel: str = "C1", **overrides: object
) -> HttpResult:
    fields = {
        "command": "/eks504",
        "text": text,
        "channel_id": channel,
        "user_id": "U1",
        "team_id": "T0001",
        "response_url": fake.response_url(),
        "trigger_id": "123.456.abc",
    }
    fields.update({k: str(v) for k, v in overrides.items()})
    return signed_post(url, SECRET, form(**fields))


def block_actions(message: Mapping[str, object], channel: str, value: str, fake: SlackFake) -> str:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001"},
        "user": {"id": "U1"},
        "api_app_id": "A1",
        "container": {
            "type": "message",
            "message_ts": message["ts"],
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "channel": {"id": channel},
        "message": message,
        "response_url": fake.response_url(),
        "trigger_id": "123.456.def",
        "actions": [
            {
                "type": "button",
                "action_id": RERUN_ACTION_ID,
                "block_id": "b1",
                "value": value,
                "action_ts": "1700000300.000001",
            }
        ],
    }
    return form(payload=json.dumps(payload))


def mention_event(text: str, ts: str, thread_ts: str | None = None) -> str:
    event: dict[str, object] = {
        "type": "app_mention",
        "user": "U1",
        "text": text,
        "ts": ts,
        "channel": "C1",
        "event_ts": ts,
    }
    if thread_ts:
        event["thread_ts"] = thread_ts
    return json.dumps(
        {
            "token": "unused",
            "team_id": "T0001",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": f"Ev{ts.replace('.', '')}",
            "event_time": int(float(ts)),
            "event": event,
            "authorizations": [{"team_id": "T0001", "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def codes_in(post_text: str) -> set[str]:
    known = {"IDLE_TIMEOUT_REACHED", "TERMINATION_RACE", "SG_BLOCKS_TRAFFIC"}
    return {code for code in known if code in post_text}


# ---------------------------------------------------------------------------
# Signing helper


def test_signature_matches_slacks_documented_example() -> None:
    body = (
        "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow"
        "&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner"
        "&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2F"
        "commands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
        "&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
    )
    assert (
        slack_signature("8f742231b10e8888abcd99yyyzzz85a5", "1531420618", body)
        == "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
    )


def test_signature_is_accepted_by_slack_sdks_verifier() -> None:
    now = int(time.time())
    body = "command=%2Feks504&text=check+shop%2Fweb"
    assert SignatureVerifier(SECRET).is_valid(
        body=body, timestamp=str(now), signature=slack_signature(SECRET, str(now), body)
    )


# ---------------------------------------------------------------------------
# Slash command


def test_app_checks_its_token_with_auth_test_on_start(fake: SlackFake, start: Start) -> None:
    start(FakeChecker())

    calls = fake.calls_to("auth.test")
    assert len(calls) == 1
    assert calls[0].token == BOT_TOKEN


def test_slash_command_acks_before_the_check_finishes(fake: SlackFake, start: Start) -> None:
    gate = threading.Event()
    checker = FakeChecker(gate=gate)
    url = start(checker)

    result = slash(url, fake, "check shop/web")

    assert result.status == 200
    assert result.elapsed_s < 3
    assert result.json() == {
        "text": ":hourglass_flowing_sand: Checking `shop/web`…",
        "response_type": "ephemeral",
    }
    assert fake.posts == []
    gate.set()
    fake.wait_for_posts(4)
    assert checker.calls == [(Target(namespace="shop", service="web"), False)]


def test_burst_of_commands_is_acknowledged_at_once_while_checks_block(
    fake: SlackFake, start: Start
) -> None:
    gate = threading.Event()
    checker = FakeChecker(gate=gate)
    url = start(checker)
    results: dict[int, HttpResult] = {}

    def ask(i: int) -> None:
        results[i] = slash(url, fake, "check shop/web", user_id=f"U{i}")

    burst = [threading.Thread(target=ask, args=(i,)) for i in range(16)]
    try:
        for thread in burst:
            thread.start()
        for thread in burst:
            thread.join(10)
        # The checks of the burst are all still waiting; a help answers at once too.
        late = slash(url, fake, "help")
    finally:
        gate.set()

    assert sorted(r.status for r in results.values()) == [200] * 16
    # Slack waits 3 s; starved acknowledgements took all of it. Headroom for a busy machine.
    assert max(r.elapsed_s for r in results.values()) < 2
    assert {r.json()["text"] for r in results.values()} == {
        ":hourglass_flowing_sand: Checking `shop/web`…"
    }
    assert (late.status, late.elapsed_s < 2) == (200, True)
    assert "/eks504 check NAMESPACE/SERVICE" in late.json()["text"]
    fake.wait_for_posts(16 * 4, timeout=10)
    assert len(checker.calls) == 16


def test_slash_command_posts_parent_then_replies_in_its_thread(
    fake: SlackFake, start: Start
) -> None:
    url = start(FakeChecker())

    slash(url, fake, "check web -n shop")
    posts = fake.wait_for_posts(4)

    parent, *replies = posts
    assert len(replies) == 3
    assert parent.channel == "C1"
    assert parent.thread_ts is None
    assert parent.text == (
        ":red_circle: shop/web: 1 failing, 1 warning: IDLE_TIMEOUT_REACHED, TERMINATION_RACE"
    )
    assert "cached 42 s ago" in parent.all_text()
    assert "k8s-shop-web-0a1b2c.us-east-1.elb.amazonaws.com" in parent.all_text()
    assert [r.thread_ts for r in replies] == [parent.ts] * 3
    assert [r.channel for r in replies] == ["C1"] * 3
    assert codes_in(replies[0].all_text()) == {"IDLE_TIMEOUT_REACHED"}
    assert "idle_timeout.timeout_seconds=120" in replies[0].all_text()
    assert codes_in(replies[1].all_text()) == {"TERMINATION_RACE"}
    assert "preStop: sleep 20" in replies[1].all_text()
    assert replies[2].text == "Passed: SG_BLOCKS_TRAFFIC"
    assert all(c.token == BOT_TOKEN for c in fake.calls_to("chat.postMessage"))


def test_a_command_whose_text_says_payload_is_still_a_slash_command(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker)

    result = slash(url, fake, "check payload/web")

    assert result.status == 200
    fake.wait_for_posts(1)
    assert [target.ask for target, _ in checker.calls] == ["payload/web"]


def test_help_answers_with_usage_and_runs_no_check(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)

    result = slash(url, fake, "help")

    assert result.status == 200
    body = result.json()
    assert body["response_type"] == "ephemeral"
    assert "/eks504 check NAMESPACE/SERVICE" in body["text"]
    time.sleep(0.2)
    assert checker.calls == []
    assert fake.posts == []


def test_invalid_service_name_gets_a_specific_ephemeral_message(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker)

    result = slash(url, fake, "check shop/Web<!here>")

    body = result.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith("`Web&lt;!here&gt;` is not a valid service name: ")
    assert "<!here>" not in body["text"]
    time.sleep(0.2)
    assert checker.calls == []


def test_channel_the_bot_is_not_in_gets_an_ephemeral_answer_with_invite(
    fake: SlackFake, start: Start
) -> None:
    fake.fail_channel("C9", "not_in_channel")
    url = start(FakeChecker())

    slash(url, fake, "check shop/web", channel="C9")
    responses = fake.wait_for_responses(2)

    first = responses[0]
    assert first.body["response_type"] == "ephemeral"
    assert "/invite @eks504" in first.all_text()
    assert "1 failing, 1 warning: IDLE_TIMEOUT_REACHED, TERMINATION_RACE" in first.text
    assert codes_in(responses[1].all_text()) == {
        "IDLE_TIMEOUT_REACHED",
        "TERMINATION_RACE",
        "SG_BLOCKS_TRAFFIC",
    }
    assert fake.posts == []


@pytest.mark.parametrize("channel", [None, ""])
@pytest.mark.parametrize("text", ["check shop/web", "probe shop/web"])
def test_command_without_a_channel_is_refused_in_plain_words(
    channel: str | None,
    text: str,
    fake: SlackFake,
    caplog: pytest.LogCaptureFixture,
) -> None:
    checker = FakeChecker()
    app = create_app(
        checker,
        token=BOT_TOKEN,
        signing_secret=SECRET,
        api_url=fake.url,
        options=Options(probe_enabled=True),
    )
    fields = {"command": "/eks504", "text": text, "user_id": "U1", "team_id": "T0001"}
    fields["response_url"] = fake.response_url()
    if channel is not None:
        fields["channel_id"] = channel

    with serving_app(app) as url, caplog.at_level(logging.INFO):
        result = signed_post(url, SECRET, form(**fields))
        time.sleep(0.3)

    assert result.status == 200
    body = result.json()
    assert body["response_type"] == "ephemeral"
    assert body["text"].startswith(":warning: Slack sent this command without its channel")
    assert checker.calls == []
    assert fake.posts == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_checker_not_found_error_is_told_in_plain_words(fake: SlackFake, start: Start) -> None:
    error = NotFoundError(
        "There is no Service web in namespace shop.", "List them with `kubectl get svc -n shop`."
    )
    url = start(FakeChecker(error=error))

    slash(url, fake, "check shop/web")
    (response,) = fake.wait_for_responses(1)

    assert response.body["response_type"] == "ephemeral"
    assert response.text == (
        ":warning: Could not check `shop/web`: There is no Service web in namespace shop. "
        "List them with `kubectl get svc -n shop`."
    )
    assert "Traceback" not in response.all_text()
    assert fake.posts == []


def test_unexpected_error_is_logged_and_answered_generically(
    fake: SlackFake, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    url = start(FakeChecker(error=RuntimeError("internal detail 0xdead")))

    with caplog.at_level(logging.ERROR, logger="bot.listeners.delivery"):
        slash(url, fake, "check shop/web")
        (response,) = fake.wait_for_responses(1)

    assert response.text.startswith(":warning: Something went wrong while checking `shop/web`.")
    assert "0xdead" not in response.all_text()
    logged = [r for r in caplog.records if r.name == "bot.listeners.delivery"]
    assert [r.getMessage() for r in logged] == ["check of shop/web failed unexpectedly"]
    assert logged[0].exc_info is not None


def test_other_eks504_errors_keep_their_own_words(fake: SlackFake, start: Start) -> None:
    url = start(FakeChecker(error=Eks504Error("The cluster did not answer.")))

    slash(url, fake, "check shop/web")
    (response,) = fake.wait_for_responses(1)

    assert response.text == ":warning: Could not check `shop/web`: The cluster did not answer."


# ---------------------------------------------------------------------------
# Request verification


def test_bad_signature_is_refused_and_runs_no_check(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    body = form(command="/eks504", text="check shop/web", channel_id="C1", user_id="U1")

    result = signed_post(url, SECRET, body, signature="v0=" + "0" * 64)
    forged = signed_post(url, "another-secret", body)

    assert (result.status, forged.status) == (401, 401)
    time.sleep(0.2)
    assert checker.calls == []
    assert fake.posts == []


def test_request_older_than_five_minutes_is_refused(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    body = form(command="/eks504", text="check shop/web", channel_id="C1", user_id="U1")

    result = signed_post(url, SECRET, body, timestamp=int(time.time()) - 6 * 60)

    assert result.status == 401
    time.sleep(0.2)
    assert checker.calls == []


# ---------------------------------------------------------------------------
# Re-run button


def test_rerun_click_checks_fresh_and_answers_in_the_same_thread(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker)
    slash(url, fake, "check shop/web")
    parent = fake.wait_for_posts(4)[0]
    (button,) = [
        element
        for block in parent.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert button["action_id"] == RERUN_ACTION_ID

    message = {"type": "message", "ts": parent.ts, "text": parent.text, "blocks": parent.blocks}
    result = signed_post(url, SECRET, block_actions(message, "C1", button["value"], fake))

    assert result.status == 200
    posts = fake.wait_for_posts(8)
    assert checker.calls == [
        (Target(namespace="shop", service="web"), False),
        (Target(namespace="shop", service="web"), True),
    ]
    rerun = posts[4:]
    assert [p.thread_ts for p in rerun] == [parent.ts] * 4
    assert "checked just now" in rerun[0].all_text()
    (notice,) = fake.ephemerals
    assert (notice.user, notice.thread_ts) == ("U1", parent.ts)


def test_rerun_click_inside_a_thread_answers_in_that_thread(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    value = json.dumps({"cluster": "prod", "namespace": "shop", "service": "web"})
    message = {"type": "message", "ts": "1700000200.000300", "thread_ts": PARENT_TS}

    signed_post(url, SECRET, block_actions(message, "C1", value, fake))
    posts = fake.wait_for_posts(4)

    assert checker.calls == [(Target(namespace="shop", service="web", cluster="prod"), True)]
    assert [p.thread_ts for p in posts] == [PARENT_TS] * 4


def test_rerun_click_with_a_forged_value_runs_no_check(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    value = json.dumps({"namespace": "shop", "service": "web; rm -rf /"})
    message = {"type": "message", "ts": PARENT_TS}

    result = signed_post(url, SECRET, block_actions(message, "C1", value, fake))

    assert result.status == 200
    time.sleep(0.3)
    assert checker.calls == []
    assert fake.posts == []


# ---------------------------------------------------------------------------
# Mentions


def test_mention_in_a_thread_is_answered_in_that_thread(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    body = mention_event(f"<@{BOT_USER_ID}> check shop/web", "1700000100.000200", PARENT_TS)

    result = signed_post(url, SECRET, body, "application/json")

    assert result.status == 200
    posts = fake.wait_for_posts(4)
    assert [p.thread_ts for p in posts] == [PARENT_TS] * 4
    assert posts[0].text.startswith(":red_circle: shop/web: 1 failing")
    assert checker.calls == [(Target(namespace="shop", service="web"), False)]
    (reaction,) = fake.reactions
    assert (reaction["channel"], reaction["timestamp"]) == ("C1", "1700000100.000200")


def test_mention_outside_a_thread_starts_one_on_the_mention(fake: SlackFake, start: Start) -> None:
    url = start(FakeChecker())
    body = mention_event(f"<@{BOT_USER_ID}> check web --namespace shop", "1700000100.000200")

    signed_post(url, SECRET, body, "application/json")
    posts = fake.wait_for_posts(4)

    assert [p.thread_ts for p in posts] == ["1700000100.000200"] * 4


def test_mention_with_a_bad_name_is_answered_in_the_thread(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker)
    body = mention_event(f"<@{BOT_USER_ID}> check shop/Web_1", "1700000100.000200", PARENT_TS)

    signed_post(url, SECRET, body, "application/json")
    (post,) = fake.wait_for_posts(1)

    assert post.thread_ts == PARENT_TS
    assert post.text.startswith("`Web_1` is not a valid service name: it contains `_`")
    assert checker.calls == []


def test_mention_whose_check_fails_gets_plain_words_in_the_thread(
    fake: SlackFake, start: Start
) -> None:
    error = NotFoundError("There is no namespace shop.")
    url = start(FakeChecker(error=error))
    body = mention_event(f"<@{BOT_USER_ID}> check shop/web", "1700000100.000200", PARENT_TS)

    signed_post(url, SECRET, body, "application/json")
    (post,) = fake.wait_for_posts(1)

    assert post.thread_ts == PARENT_TS
    assert post.text == ":warning: Could not check `shop/web`: There is no namespace shop."


@pytest.mark.parametrize("missing", ["channel", "ts"])
def test_mention_without_its_channel_or_ts_is_ignored_without_an_error(
    missing: str, fake: SlackFake, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    checker = FakeChecker()
    url = start(checker)
    body = json.loads(mention_event(f"<@{BOT_USER_ID}> check shop/web", "1700000100.000200"))
    del body["event"][missing]

    with caplog.at_level(logging.INFO):
        result = signed_post(url, SECRET, json.dumps(body), "application/json")
        time.sleep(0.3)

    assert result.status == 200
    assert checker.calls == []
    assert fake.posts == []
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# ---------------------------------------------------------------------------
# Building and serving the app


def test_api_url_from_environment_gets_its_trailing_slash(
    fake: SlackFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", fake.url.rstrip("/"))

    create_app(FakeChecker(), token=BOT_TOKEN, signing_secret=SECRET)

    assert [c.method for c in fake.calls] == ["auth.test"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("not a url", "it has spaces, so it is not a URL"),
        ("file:///x", "not an http:// or https:// URL"),
        ("slack.com/api", "not an http:// or https:// URL"),
        ("https://", "the URL names no host"),
        ("http://127.0.0.1:port/api/", "not a URL (Port could not be cast"),
    ],
)
def test_api_url_that_is_not_an_http_url_is_refused_in_plain_words(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_API_URL", url)

    with pytest.raises(InputError) as caught:
        create_app(FakeChecker(), token=BOT_TOKEN, signing_secret=SECRET)

    assert caught.value.message.startswith(f"SLACK_API_URL is {url!r}: {problem}")


@pytest.mark.parametrize("url", ["not a url", "file:///x"])
def test_serve_with_a_bad_api_url_exits_2_before_starting_anything(
    url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_API_URL", url)
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SECRET)
    monkeypatch.delenv("SLACK_APP_TOKEN", raising=False)
    monkeypatch.delenv("EKS504_CONFIG", raising=False)
    started = time.monotonic()

    assert main(["serve", "--http", "0", "--scenario", "s1"]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"eks504: SLACK_API_URL is {url!r}: ")
    assert err.count("\n") == 1
    assert "unexpected" not in err
    # Refused before the sandbox (seconds to start) was started.
    assert time.monotonic() - started < 1


def test_app_built_for_process_before_response_still_acks_before_the_check(
    fake: SlackFake,
) -> None:
    gate = threading.Event()
    checker = FakeChecker(gate=gate)
    app = create_app(
        checker,
        token=BOT_TOKEN,
        signing_secret=SECRET,
        api_url=fake.url,
        process_before_response=True,
    )
    with serving_app(app) as url:
        result = slash(url, fake, "check shop/web")

        assert result.status == 200
        assert result.elapsed_s < 3
        assert fake.posts == []
        gate.set()
        assert len(fake.wait_for_posts(4)) == 4


def test_serve_without_a_bot_token_says_which_setting_is_missing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)

    with pytest.raises(Eks504Error) as caught:
        serve(FakeChecker(), http_port=0)

    assert str(caught.value) == (
        "SLACK_BOT_TOKEN is not set. Set it to the bot token (xoxb-...) of the Slack app."
    )


# ---------------------------------------------------------------------------
# The stand-in itself, through slack_sdk's client


def test_stand_in_refuses_a_wrong_token(fake: SlackFake) -> None:
    client = WebClient(token="xoxb-wrong", base_url=fake.url)

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C1", text="hi")

    assert caught.value.response["error"] == "invalid_auth"
    assert fake.posts == []


def test_stand_in_fails_configured_channels_only(fake: SlackFake) -> None:
    fake.fail_channel("C9", "channel_not_found")
    client = WebClient(token=BOT_TOKEN, base_url=fake.url)

    with pytest.raises(SlackApiError) as caught:
        client.chat_postMessage(channel="C9", text="hi")
    answer = client.chat_postMessage(channel="C1", text="hi", thread_ts=PARENT_TS)

    assert caught.value.response["error"] == "channel_not_found"
    (post,) = fake.posts
    assert (post.channel, post.ts, post.thread_ts, post.text) == (
        "C1",
        answer["ts"],
        PARENT_TS,
        "hi",
    )


def test_stand_in_takes_a_file_upload_in_two_steps(fake: SlackFake) -> None:
    client = WebClient(token=BOT_TOKEN, base_url=fake.url)

    answer = client.files_upload_v2(
        channel="C1", content="report body", filename="report.txt", title="Report"
    )

    assert answer["files"] == [{"id": "F000001", "title": "Report"}]
    assert [c.method for c in fake.calls] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
