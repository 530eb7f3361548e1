"""Incident flows through the Bolt app over HTTP: threads, progress, charts, files, retries,
rate limits, channel rules and clusters; answered through the local stand-in for Slack."""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.commands import USAGE
from bot.config import BotConfig, ChannelConfig, RateLimits
from bot.listeners.options import Options
from bot.listeners.shortcut import CALLBACK_ID
from bot.policy import Policy
from bot.service import STEPS, CheckOutcome, Progress
from bot.slack_app import create_app
from checks.models import ChartData, Finding, Report, Severity, Status, Target
from tests.bot.test_slack_app import (
    PARENT_TS,
    SECRET,
    FakeChecker,
    build_report,
    mention_event,
    serving_app,
    slash,
)
from tests.slackfake import BOT_TOKEN, BOT_USER_ID, SlackFake, form, signed_post

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
INTERVAL_S = 0.2
MENTION_TS = "1700000100.000200"

CHART = ChartData(
    title="TargetResponseTime of k8s-shop-web-0a1b2c (application)",
    unit="s",
    series={"TargetResponseTime (maximum)": [1.2, 60.0, None, 60.0, 0.9]},
    timestamps=[1700000000.0 + 60 * i for i in range(5)],
    threshold=60.0,
    threshold_label="idle timeout 60 s",
    counts={"HTTPCode_ELB_504_Count": [0, 3, 0, 4, 0]},
    resource="k8s-shop-web-0a1b2c",
    codes=("IDLE_TIMEOUT_REACHED",),
)


class StepChecker(FakeChecker):
    """Reports each step running then done, ``step_s`` apart, and answers ``report``."""

    def __init__(self, report: Report | None = None, step_s: float = 0.05) -> None:
        super().__init__()
        self.report = report
        self.step_s = step_s

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        with self.lock:
            self.calls.append((target, fresh))
        for step in STEPS:
            for state in ("running", "done"):
                if progress is not None:
                    progress(step, state)
                time.sleep(self.step_s)
        report = self.report or build_report(target)
        return CheckOutcome(replace(report, target=target))


def options(
    config: BotConfig | None = None, clusters: tuple[str, ...] | None = None, **kw: object
) -> Options:
    limits = RateLimits(per_user=0, per_channel=0)
    config = config or BotConfig(rate_limits=limits)
    return Options(
        policy=Policy(config, clusters=clusters),
        progress_interval_s=kw.pop("progress_interval_s", INTERVAL_S),  # type: ignore[arg-type]
        charts=bool(kw.pop("charts", True)),
    )


Start = Callable[..., str]


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


@pytest.fixture
def start(fake: SlackFake) -> Iterator[Start]:
    with ExitStack() as stack:

        def run(checker: FakeChecker, opts: Options | None = None) -> str:
            app = create_app(
                checker,
                token=BOT_TOKEN,
                signing_secret=SECRET,
                api_url=fake.url,
                options=opts or options(),
            )
            return stack.enter_context(serving_app(app))

        yield run


def post_mention(url: str, text: str, thread_ts: str | None = PARENT_TS, **headers: str) -> int:
    body = mention_event(f"<@{BOT_USER_ID}> {text}", MENTION_TS, thread_ts)
    return signed_post(url, SECRET, body, "application/json", extra_headers=headers).status


def settle(fake: SlackFake, seconds: float = 0.3) -> int:
    """Wait until nothing new reaches the stand-in for ``seconds``; the number of calls."""
    count = -1
    while count != len(fake.calls):
        count = len(fake.calls)
        time.sleep(seconds)
    return count


# ---------------------------------------------------------------------------
# Threads and progress


def test_mention_in_a_thread_shows_progress_then_the_verdict_in_that_thread(
    fake: SlackFake, start: Start
) -> None:
    checker = StepChecker()
    url = start(checker, options())

    assert post_mention(url, "check shop/web") == 200
    posts = fake.wait_for_posts(4)
    settle(fake)

    parent, *replies = fake.posts
    assert [p.thread_ts for p in fake.posts] == [PARENT_TS] * 4
    assert parent.text == ":hourglass_flowing_sand: Checking shop/web… (0/4 steps)"
    updates = [u for u in fake.updates if u.ts == parent.ts]
    assert updates[-1].text == (
        ":red_circle: shop/web: 1 failing, 1 warning: IDLE_TIMEOUT_REACHED, TERMINATION_RACE"
    )
    assert fake.message(parent.ts).text == updates[-1].text
    steps_shown = [u.text for u in updates[:-1]]
    assert steps_shown, "no step was shown before the verdict"
    assert all(t.startswith(":hourglass_flowing_sand: Checking shop/web…") for t in steps_shown)
    assert ":white_check_mark: resolving" in updates[-2].all_text()
    # Eight step changes were coalesced into fewer edits, each at least the interval apart.
    assert len(updates) < 2 * len(STEPS)
    first_post = fake.calls_to("chat.postMessage")[0]
    edits = [first_post.at] + [
        c.at for c in fake.calls_to("chat.update") if c.params["ts"] == parent.ts
    ]
    gaps = [b - a for a, b in itertools.pairwise(edits)]
    assert min(gaps) >= INTERVAL_S * 0.9
    assert [r.thread_ts for r in replies] == [PARENT_TS] * 3
    assert posts[0].ts == parent.ts


def test_cached_answer_is_posted_once_without_progress_edits(fake: SlackFake, start: Start) -> None:
    url = start(FakeChecker(), options())

    slash(url, fake, "check shop/web")
    parent = fake.wait_for_posts(4)[0]
    settle(fake)

    assert parent.text.startswith(":red_circle: shop/web: 1 failing")
    assert fake.updates == []


def test_check_that_fails_turns_the_progress_message_into_the_error(
    fake: SlackFake, start: Start
) -> None:
    class Failing(StepChecker):
        def check(
            self, target: Target, *, fresh: bool = False, progress: Progress | None = None
        ) -> CheckOutcome:
            assert progress is not None
            progress("resolving", "running")
            time.sleep(0.1)
            from checks.errors import NotFoundError

            raise NotFoundError("There is no Service web in namespace shop.")

    url = start(Failing(), options())

    post_mention(url, "check shop/web")
    (parent,) = fake.wait_for_posts(1)
    settle(fake)

    assert fake.message(parent.ts).text == (
        ":warning: Could not check `shop/web`: There is no Service web in namespace shop."
    )
    assert len(fake.posts) == 1


# ---------------------------------------------------------------------------
# Charts and files


def test_metric_finding_gets_a_png_chart_uploaded_in_two_steps_into_the_thread(
    fake: SlackFake, start: Start
) -> None:
    report = replace(build_report(Target("shop", "web")), charts=[CHART])
    url = start(StepChecker(report, step_s=0.0), options())

    slash(url, fake, "check shop/web")
    (shared,) = fake.wait_for_files(1, timeout=20)

    parent = fake.posts[0]
    assert shared.data.startswith(PNG_SIGNATURE)
    assert shared.length == len(shared.data) > 1000
    assert (shared.channel, shared.thread_ts) == ("C1", parent.ts)
    assert shared.filename == "k8s-shop-web-0a1b2c-latency.png"
    assert shared.title == CHART.title
    assert "idle timeout 60 s" in shared.alt_txt
    methods = [c.method for c in fake.calls if c.method.startswith("files.")]
    assert methods == ["files.getUploadURLExternal", "files.completeUploadExternal"]
    (complete,) = fake.calls_to("files.completeUploadExternal")
    assert complete.params["thread_ts"] == parent.ts
    assert complete.params["channel_id"] == "C1"


def test_an_upload_the_network_drops_leaves_the_verdict_and_replies_as_posted(
    fake: SlackFake, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    fake.drop_uploads()
    report = replace(build_report(Target("shop", "web")), charts=[CHART])
    url = start(StepChecker(report, step_s=0.0), options())

    with caplog.at_level(logging.WARNING, logger="bot.listeners.delivery"):
        slash(url, fake, "check shop/web")
        fake.wait_for_calls("files.getUploadURLExternal", 1, timeout=20)
        settle(fake)

    parent = fake.message(fake.posts[0].ts)
    assert parent.text.startswith(":red_circle: shop/web")
    assert any("IDLE_TIMEOUT_REACHED" in post.all_text() for post in fake.posts[1:])
    assert fake.files == []
    assert any("file upload k8s-shop-web-0a1b2c-latency.png" in r.message for r in caplog.records)


def test_charts_off_uploads_nothing(fake: SlackFake, start: Start) -> None:
    report = replace(build_report(Target("shop", "web")), charts=[CHART])
    url = start(StepChecker(report, step_s=0.0), options(charts=False))

    slash(url, fake, "check shop/web")
    fake.wait_for_posts(4)
    settle(fake)

    assert fake.calls_to("files.getUploadURLExternal") == []


def test_evidence_too_long_for_block_kit_goes_into_the_thread_as_a_text_file(
    fake: SlackFake, start: Start
) -> None:
    lines = tuple(f"target 10.0.{i // 250}.{i % 250} reset: " + "x" * 2900 for i in range(120))
    finding = Finding(
        "BACKEND_CONNECTION_ERRORS",
        Status.FAIL,
        Severity.HIGH,
        "The load balancer failed to connect to its targets 120 times.",
        "application load balancer k8s-shop-web-0a1b2c",
        lines,
    )
    report = Report(target=Target("shop", "web"), load_balancers=[], findings=[finding])
    url = start(StepChecker(report, step_s=0.0), options())

    slash(url, fake, "check shop/web")
    (shared,) = fake.wait_for_files(1)

    parent, reply, _closing = fake.wait_for_posts(3)
    text = shared.data.decode("utf-8")
    assert shared.filename == "backend_connection_errors-evidence.txt"
    assert shared.thread_ts == parent.ts
    assert all(f"- {line}" in text for line in lines)
    assert len(reply.blocks) <= 50
    assert "all of it (120 evidence lines, 0 fixes, " in reply.all_text()
    assert "backend_connection_errors-evidence.txt" in reply.all_text()


# ---------------------------------------------------------------------------
# Retries


def test_retried_event_with_the_same_event_id_is_answered_once(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker, options())

    first = post_mention(url, "check shop/web")
    retry = post_mention(url, "check shop/web", **{"X-Slack-Retry-Num": "1"})
    fake.wait_for_posts(4)
    settle(fake)

    assert (first, retry) == (200, 200)
    assert len(checker.calls) == 1
    assert len(fake.posts) == 4
    assert len(fake.reactions) == 1


def test_retry_that_arrives_first_is_answered(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker, options())

    assert post_mention(url, "check shop/web", **{"X-Slack-Retry-Num": "2"}) == 200
    fake.wait_for_posts(4)

    assert len(checker.calls) == 1


# ---------------------------------------------------------------------------
# Message shortcut


def message_shortcut(fake: SlackFake, text: str, thread_ts: str | None = None) -> str:
    message: dict[str, object] = {"type": "message", "user": "U2", "ts": MENTION_TS, "text": text}
    if thread_ts:
        message["thread_ts"] = thread_ts
    payload = {
        "type": "message_action",
        "callback_id": CALLBACK_ID,
        "trigger_id": "123.456.ghi",
        "team": {"id": "T0001"},
        "user": {"id": "U1"},
        "channel": {"id": "C1"},
        "message_ts": MENTION_TS,
        "message": message,
        "response_url": fake.response_url(),
    }
    return form(payload=json.dumps(payload))


def test_message_shortcut_checks_the_service_the_message_names_in_its_thread(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker, options())

    body = message_shortcut(fake, "web/frontend is throwing 504s since 10:02")
    result = signed_post(url, SECRET, body)
    posts = fake.wait_for_posts(4)

    assert result.status == 200
    assert checker.calls == [(Target("web", "frontend"), False)]
    assert [p.thread_ts for p in posts] == [MENTION_TS] * 4


def test_message_shortcut_inside_a_thread_answers_in_that_thread(
    fake: SlackFake, start: Start
) -> None:
    url = start(FakeChecker(), options())

    signed_post(url, SECRET, message_shortcut(fake, "is `shop/web` down?", PARENT_TS))
    posts = fake.wait_for_posts(4)

    assert [p.thread_ts for p in posts] == [PARENT_TS] * 4


def test_message_shortcut_on_a_message_naming_no_service_explains_privately(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    url = start(checker, options())

    signed_post(url, SECRET, message_shortcut(fake, "the site is slow <!here>"))
    (response,) = fake.wait_for_responses(1)

    assert response.body["response_type"] == "ephemeral"
    assert response.text.startswith(":mag: I found no Service in that message.")
    assert checker.calls == []
    assert fake.posts == []


# ---------------------------------------------------------------------------
# Rate limits, channel rules, clusters


def test_user_over_the_rate_limit_gets_a_friendly_reply_and_no_check(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    config = BotConfig(rate_limits=RateLimits(per_user=2, per_channel=0, window_s=60))
    url = start(checker, options(config))

    answers = [slash(url, fake, "check shop/web").json()["text"] for _ in range(3)]

    assert answers[:2] == [":hourglass_flowing_sand: Checking `shop/web`…"] * 2
    assert answers[2].startswith(
        ":hourglass: You have asked for 2 checks in the last 60 s, as many as I take. "
        "Please try `shop/web` again in "
    )
    fake.wait_for_posts(8)
    settle(fake)
    assert len(checker.calls) == 2


def test_channel_over_its_rate_limit_is_told_so_in_the_thread(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    config = BotConfig(rate_limits=RateLimits(per_user=0, per_channel=1, window_s=60))
    url = start(checker, options(config))

    post_mention(url, "check shop/web")
    fake.wait_for_posts(4)
    body = mention_event(f"<@{BOT_USER_ID}> check shop/api", "1700000100.000300", PARENT_TS)
    signed_post(url, SECRET, body, "application/json")
    posts = fake.wait_for_posts(5)

    assert posts[4].thread_ts == PARENT_TS
    assert posts[4].text.startswith(":hourglass: This channel has asked for 1 checks")
    assert len(checker.calls) == 1


def test_check_outside_the_channels_namespaces_is_refused_politely(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    config = BotConfig(
        channels={"C1": ChannelConfig(namespaces=("payments", "shop-*"))},
        rate_limits=RateLimits(per_user=0, per_channel=0),
    )
    url = start(checker, options(config))

    refused = slash(url, fake, "check shop/web").json()["text"]
    allowed = slash(url, fake, "check shop-eu/web").json()["text"]

    assert refused == (
        ":no_entry: Checks from this channel are limited to the namespaces `payments`, "
        "`shop-*`, so I will not check `shop/web` here. Ask in the channel of the team that "
        "owns it, or ask whoever runs eks504 to allow it for this channel."
    )
    assert allowed == ":hourglass_flowing_sand: Checking `shop-eu/web`…"
    fake.wait_for_posts(4)
    assert checker.calls == [(Target("shop-eu", "web"), False)]


def test_unknown_cluster_is_answered_with_the_known_ones(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker, options(clusters=("prod", "staging")))

    answer = slash(url, fake, "check shop/web --cluster dev").json()["text"]

    assert answer == ":grey_question: I do not know the cluster `dev`. I know `prod`, `staging`."
    time.sleep(0.2)
    assert checker.calls == []


def test_channel_default_cluster_is_used_without_cluster_option(
    fake: SlackFake, start: Start
) -> None:
    checker = FakeChecker()
    config = BotConfig(
        channels={"C1": ChannelConfig(default_cluster="staging")},
        rate_limits=RateLimits(per_user=0, per_channel=0),
    )
    url = start(checker, options(config, clusters=("prod", "staging")))

    slash(url, fake, "check shop/web")
    slash(url, fake, "check shop/web --cluster prod")
    fake.wait_for_posts(8)

    assert sorted(t.cluster for t, _ in checker.calls) == ["prod", "staging"]


# ---------------------------------------------------------------------------
# Requests and secrets


def test_unsigned_request_is_refused(fake: SlackFake, start: Start) -> None:
    checker = FakeChecker()
    url = start(checker, options())

    body = form(command="/eks504", text="check shop/web", channel_id="C1", user_id="U1")
    result = signed_post(url, SECRET, body, signed=False)

    assert result.status == 401
    time.sleep(0.2)
    assert checker.calls == []


def test_tokens_and_signing_secret_never_reach_the_log(
    fake: SlackFake, start: Start, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        url = start(StepChecker(step_s=0.0), options())
        slash(url, fake, "check shop/web")
        post_mention(url, "check shop/web")
        fake.wait_for_posts(8)
        settle(fake)

    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
    assert "chat.postMessage" in logged
    assert BOT_TOKEN not in logged
    assert SECRET not in logged


# ---------------------------------------------------------------------------
# Any text


_words = st.sampled_from(
    ["check", "help", "-n", "--namespace", "--cluster", "shop/web", "shop", "web", "a/b/c"]
)
_texts = st.one_of(
    st.text(max_size=120),
    st.lists(st.one_of(_words, st.text(min_size=1, max_size=20)), max_size=6).map(" ".join),
    st.from_regex(
        r"check [a-zA-Z0-9_/<>&@!.-]{0,40}( --cluster [a-z0-9_-]{0,10})?", fullmatch=True
    ),
)


def test_any_command_text_gets_a_helpful_reply_and_never_an_error(
    fake: SlackFake, caplog: pytest.LogCaptureFixture
) -> None:
    checker = FakeChecker()
    app = create_app(
        checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url, options=options()
    )

    with serving_app(app) as url, caplog.at_level(logging.WARNING):

        @settings(
            max_examples=80,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(text=_texts)
        def ask(text: str) -> None:
            result = slash(url, fake, text)
            assert result.status == 200
            body = result.json()
            assert body["response_type"] == "ephemeral"
            # Either the check starts, or the reply says what is wrong and how to ask.
            checking = body["text"].startswith(":hourglass_flowing_sand: Checking `")
            assert checking or body["text"].endswith(USAGE)
            assert "Traceback" not in body["text"]

        ask()
        settle(fake, 0.5)

    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert problems == []
    assert all(call.method != "chat.postMessage" or call.params.get("text") for call in fake.calls)


def test_slow_check_blocks_no_other_request(fake: SlackFake, start: Start) -> None:
    gate = threading.Event()
    url = start(FakeChecker(gate=gate), options())

    first = slash(url, fake, "check shop/web")
    second = slash(url, fake, "help")

    assert (first.status, second.status) == (200, 200)
    assert second.elapsed_s < 2
    gate.set()
    fake.wait_for_posts(4)


def test_socket_mode_retry_attempt_of_a_taken_event_is_not_answered_again(
    fake: SlackFake,
) -> None:
    from slack_bolt.adapter.socket_mode.internals import run_bolt_app
    from slack_sdk.socket_mode.request import SocketModeRequest

    checker = FakeChecker()
    app = create_app(
        checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url, options=options()
    )
    payload = json.loads(mention_event(f"<@{BOT_USER_ID}> check shop/web", MENTION_TS))
    first = SocketModeRequest(type="events_api", envelope_id="E1", payload=payload)
    retry = SocketModeRequest(
        type="events_api",
        envelope_id="E2",
        payload=payload,
        retry_attempt=1,
        retry_reason="timeout",
    )

    statuses = [run_bolt_app(app, first).status, run_bolt_app(app, retry).status]
    fake.wait_for_posts(4)
    settle(fake)

    assert statuses == [200, 200]
    assert len(checker.calls) == 1
    assert len(fake.posts) == 4
