"""The keep-alive probe in Slack, through the Bolt app over HTTP against the local stand-in
for Slack: the ``probe`` command (slash and mention), the Measure keep-alive button, and
the follow-up in the thread.

The sandbox's Kubernetes API server runs no container, so most tests inject the probe
runner; one runs the real runner through the app as far as the sandbox lets it.
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import BotConfig, ChannelConfig, ProbeConfig, RateLimits
from bot.listeners.options import Options
from bot.listeners.probe import PROBE_OFF, measure_request
from bot.policy import Policy
from bot.probe import LiveProbe, Reuse, reuse_window
from bot.render_slack import MEASURE_ACTION_ID, render_probe_result
from bot.service import CheckOutcome, Progress
from bot.slack_app import create_app, options_for
from checks.collect.probe import PROBE_IMAGE, PROBE_LABEL
from checks.collect.settings import Connection
from checks.errors import AccessError
from checks.models import Finding, LoadBalancerSummary, Report, Rung, Severity, Status, Target
from checks.probe import ProbeResult
from sandbox.kube_server import KubeApiServer
from tests.bot.test_slack_app import SECRET, mention_event, serving_app, slash
from tests.slackfake import BOT_TOKEN, BOT_USER_ID, Post, SlackFake, form, signed_post

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
CONNECTION = Connection(context="demo", cluster="demo")
THREAD_TS = "1700000000.000100"
SHOP_WEB = Target("shop", "web")

ALB = LoadBalancerSummary(
    name="k8s-shop-web-0a1b2c",
    type="application",
    dns_name="k8s-shop-web-0a1b2c.us-east-1.elb.amazonaws.com",
    scheme="internet-facing",
    serves="ingress/shop/web",
    idle_timeout_s=60,
)
KEEPALIVE = Finding(
    code="APP_KEEPALIVE_BELOW_IDLE_TIMEOUT",
    status=Status.FAIL,
    severity=Severity.HIGH,
    summary="gunicorn closes idle connections after 5 s, before the ALB stops reusing them",
    resource="deployment/shop/web",
    evidence=("--keep-alive 5 (container command)",),
)
CLOSED_AFTER_5 = ProbeResult(
    5.02, True, "GET / answered 200 (2 byte(s)); the server closed the idle connection after 5.0 s"
)
NO_REUSE = ProbeResult(
    None,
    False,
    "GET / answered 200 (2 byte(s)); the server answered with Connection: close: no reuse",
)


class ProbeChecker:
    """Answers with a report behind an ALB whose idle timeout is ``idle_s``, with a failing
    keep-alive finding; lends ``connection`` like a live checker."""

    def __init__(self, connection: Connection = CONNECTION, idle_s: int = 60) -> None:
        self.connection = connection
        self.idle_s = idle_s
        self.calls: list[Target] = []

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        self.calls.append(target)
        lb = replace(ALB, idle_timeout_s=self.idle_s)
        return CheckOutcome(Report(target=target, load_balancers=[lb], findings=[KEEPALIVE]))


class Runner:
    """A probe runner that records its calls and answers ``result`` or raises ``error``,
    once ``gate`` (if any) opens."""

    def __init__(
        self,
        result: ProbeResult = CLOSED_AFTER_5,
        error: Exception | None = None,
        gate: threading.Event | None = None,
    ) -> None:
        self.result = result
        self.error = error
        self.gate = gate
        self.calls: list[tuple[Connection, Target, float]] = []

    def __call__(self, connection: Connection, target: Target, limit_s: float) -> ProbeResult:
        self.calls.append((connection, target, limit_s))
        if self.gate is not None:
            self.gate.wait(5)
        if self.error is not None:
            raise self.error
        return self.result


def probe_options(
    runner: Callable[[Connection, Target, float], ProbeResult],
    *,
    enabled: bool = True,
    config: BotConfig | None = None,
) -> Options:
    config = config or BotConfig(rate_limits=RateLimits(per_user=0, per_channel=0))
    return Options(
        policy=Policy(config),
        progress_interval_s=None,
        charts=False,
        probe_enabled=enabled,
        probe_runner=runner,
    )


Start = Callable[[Any, Options], str]


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


@pytest.fixture
def start(fake: SlackFake, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    for name in ("EKS504_APPLY_USERS", "EKS504_APPLY_GROUPS", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    with ExitStack() as stack:

        def run(checker: Any, options: Options) -> str:
            app = create_app(
                checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url, options=options
            )
            return stack.enter_context(serving_app(app))

        yield run


def mention(url: str, text: str, ts: str, thread_ts: str | None = THREAD_TS) -> int:
    body = mention_event(f"<@{BOT_USER_ID}> {text}", ts, thread_ts)
    return signed_post(url, SECRET, body, "application/json").status


def click(url: str, fake: SlackFake, post: Post, value: str, user: str = "U1") -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0001"},
        "user": {"id": user},
        "api_app_id": "A1",
        "container": {
            "type": "message",
            "message_ts": post.ts,
            "channel_id": post.channel,
            "is_ephemeral": False,
        },
        "channel": {"id": post.channel},
        "message": {"type": "message", "ts": post.ts, "thread_ts": post.thread_ts},
        "response_url": fake.response_url(),
        "trigger_id": "123.456.measure",
        "actions": [
            {
                "type": "button",
                "action_id": MEASURE_ACTION_ID,
                "block_id": "b1",
                "value": value,
                "action_ts": "1700000300.000001",
            }
        ],
    }
    assert signed_post(url, SECRET, form(payload=json.dumps(payload))).status == 200


def measure_buttons(post: Post) -> list[dict[str, Any]]:
    return [
        element
        for block in post.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == MEASURE_ACTION_ID
    ]


def keepalive_reply(fake: SlackFake) -> Post:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        found = [p for p in fake.posts if p.text.startswith(f":red_circle: {KEEPALIVE.code} (")]
        if found:
            return found[0]
        time.sleep(0.02)
    raise AssertionError("no reply for the keep-alive finding")


def settle(fake: SlackFake, seconds: float = 0.3) -> None:
    count = -1
    while count != len(fake.calls):
        count = len(fake.calls)
        time.sleep(seconds)


# ---------------------------------------------------------------------------
# Off unless enabled


def test_probe_command_when_off_says_so_and_how_to_turn_it_on(
    fake: SlackFake, start: Start
) -> None:
    checker, runner = ProbeChecker(), Runner()
    url = start(checker, probe_options(runner, enabled=False))

    acknowledged = slash(url, fake, "probe shop/web")
    assert mention(url, "probe shop/web", "1700000100.000200") == 200
    (in_thread,) = fake.wait_for_posts(1)
    settle(fake)

    assert acknowledged.json() == {"text": PROBE_OFF, "response_type": "ephemeral"}
    assert (in_thread.text, in_thread.thread_ts) == (PROBE_OFF, THREAD_TS)
    assert "`probe: {enabled: true}`" in PROBE_OFF and "`EKS504_PROBE=1`" in PROBE_OFF
    assert runner.calls == []
    assert checker.calls == []


@pytest.mark.parametrize("enabled", [True, False])
def test_measure_button_is_on_the_keepalive_reply_only_when_the_probe_is_on(
    fake: SlackFake, start: Start, enabled: bool
) -> None:
    url = start(ProbeChecker(), probe_options(Runner(), enabled=enabled))

    slash(url, fake, "check shop/web")
    reply = keepalive_reply(fake)

    if not enabled:
        assert measure_buttons(reply) == []
        return
    (button,) = measure_buttons(reply)
    assert button["text"]["text"] == "Measure keep-alive"
    assert json.loads(button["value"]) == {
        "cluster": "default",
        "namespace": "shop",
        "service": "web",
        "reuse": {"layer": "the ALB", "seconds": 60},
    }


# ---------------------------------------------------------------------------
# The command


def test_slash_probe_announces_itself_in_the_channel_and_answers_in_that_thread(
    fake: SlackFake, start: Start
) -> None:
    checker, runner = ProbeChecker(), Runner()
    url = start(checker, probe_options(runner))

    acknowledged = slash(url, fake, "probe shop/web")
    announced, result = fake.wait_for_posts(2)

    starting = ":stopwatch: Starting the keep-alive probe of `shop/web`…"
    assert acknowledged.json()["text"] == starting
    assert (announced.channel, announced.thread_ts) == ("C1", None)
    assert "waits up to 70 s for the server to close the connection" in announced.text
    assert (result.channel, result.thread_ts) == ("C1", announced.ts)
    assert result.text == (
        ":stopwatch: `shop/web`: the server closed an idle connection after 5 s "
        "(the ALB reuses them for 60 s)."
    )
    assert ":red_circle: It closes them first" in result.all_text()
    assert runner.calls == [(CONNECTION, SHOP_WEB, 70.0)]
    assert checker.calls == [SHOP_WEB]


def test_mention_probe_in_a_thread_reports_connection_close_as_no_reuse(
    fake: SlackFake, start: Start
) -> None:
    runner = Runner(result=NO_REUSE)
    url = start(ProbeChecker(idle_s=120), probe_options(runner))

    assert mention(url, "probe web -n shop", "1700000100.000200") == 200
    announced, result = fake.wait_for_posts(2)

    assert [announced.thread_ts, result.thread_ts] == [THREAD_TS, THREAD_TS]
    assert result.text == ":stopwatch: `shop/web`: the server answered Connection: close: no reuse."
    assert "Connection: close: no reuse" in result.all_text()
    assert runner.calls == [(CONNECTION, SHOP_WEB, 130.0)]


def test_probe_that_cannot_measure_says_why_in_the_thread(fake: SlackFake, start: Start) -> None:
    error = AccessError(
        "Not allowed to start the probe pod in namespace default.",
        "RBAC `create` on `pods` in namespace default",
    )
    url = start(ProbeChecker(), probe_options(Runner(error=error)))

    mention(url, "probe shop/web", "1700000100.000200")
    _, failed = fake.wait_for_posts(2)

    assert failed.thread_ts == THREAD_TS
    assert failed.text == (
        ":warning: Could not measure the keep-alive of `shop/web`: Not allowed to start the "
        "probe pod in namespace default. Grant RBAC `create` on `pods` in namespace default "
        "and ask again."
    )


def test_second_probe_of_a_service_while_one_runs_is_told_so(fake: SlackFake, start: Start) -> None:
    gate = threading.Event()
    runner = Runner(gate=gate)
    url = start(ProbeChecker(), probe_options(runner))

    mention(url, "probe shop/web", "1700000100.000200")
    fake.wait_for_posts(1)
    mention(url, "probe shop/web", "1700000100.000300")
    _, again = fake.wait_for_posts(2)
    gate.set()
    *_, result = fake.wait_for_posts(3)

    assert again.text == (
        ":stopwatch: `shop/web` is being measured already; its result comes in the thread "
        "where it was asked."
    )
    assert result.text.startswith(":stopwatch: `shop/web`: the server closed an idle connection")
    assert len(runner.calls) == 1


def test_probe_outside_the_channels_namespaces_is_refused(fake: SlackFake, start: Start) -> None:
    config = BotConfig(
        channels={"C1": ChannelConfig(namespaces=("payments",))},
        rate_limits=RateLimits(per_user=0, per_channel=0),
    )
    checker, runner = ProbeChecker(), Runner()
    url = start(checker, probe_options(runner, config=config))

    acknowledged = slash(url, fake, "probe shop/web")
    settle(fake)

    assert acknowledged.json()["text"].startswith(
        ":no_entry: Checks from this channel are limited to the namespaces `payments`"
    )
    assert fake.posts == []
    assert runner.calls == []


# ---------------------------------------------------------------------------
# The button


def test_measure_button_probes_against_the_reports_window_in_the_findings_thread(
    fake: SlackFake, start: Start
) -> None:
    checker, runner = ProbeChecker(idle_s=120), Runner()
    url = start(checker, probe_options(runner))
    slash(url, fake, "check shop/web")
    reply = keepalive_reply(fake)
    settle(fake)
    before = len(fake.posts)

    click(url, fake, reply, measure_buttons(reply)[0]["value"])
    announced, result = fake.wait_for_posts(before + 2)[before:]

    assert reply.thread_ts is not None
    assert [announced.thread_ts, result.thread_ts] == [reply.thread_ts, reply.thread_ts]
    assert result.text == (
        ":stopwatch: `shop/web`: the server closed an idle connection after 5 s "
        "(the ALB reuses them for 120 s)."
    )
    assert runner.calls == [(CONNECTION, SHOP_WEB, 130.0)]
    assert checker.calls == [SHOP_WEB]  # the button carries the window: no second check


def test_forged_measure_button_is_refused_privately(fake: SlackFake, start: Start) -> None:
    runner = Runner()
    url = start(ProbeChecker(), probe_options(runner))
    slash(url, fake, "check shop/web")
    reply = keepalive_reply(fake)
    forged = json.dumps(
        {"namespace": "shop", "service": "web", "reuse": {"layer": "the ALB", "seconds": 99999}}
    )

    click(url, fake, reply, forged)
    settle(fake)

    assert [r.text for r in fake.responses][-1].startswith(
        ":grey_question: That button is not one of eks504's"
    )
    assert runner.calls == []


# ---------------------------------------------------------------------------
# The real runner


def test_real_runner_is_what_the_app_wires_by_default() -> None:
    config = BotConfig(probe=ProbeConfig(enabled=True, namespace="eks504", image="py:3.12"))

    served = options_for(ProbeChecker(), config, {})
    plain = options_for(ProbeChecker(), None, {})

    assert Options().probe_runner == LiveProbe()
    assert Options().probe_enabled is False
    assert (served.probe_enabled, served.probe_runner) == (
        True,
        LiveProbe(namespace="eks504", image="py:3.12"),
    )
    assert (plain.probe_enabled, plain.probe_runner) == (False, LiveProbe(image=PROBE_IMAGE))
    assert options_for(ProbeChecker(), None, {"EKS504_PROBE": "1"}).probe_enabled is True


def test_real_runner_starts_its_pod_next_to_a_ready_pod_and_removes_it(
    fake: SlackFake, start: Start, tmp_path: Path
) -> None:
    scenario = yaml.safe_load((SCENARIOS / "h0-alb-healthy.yaml").read_text(encoding="utf-8"))
    with KubeApiServer(copy.deepcopy(scenario["cluster"]), {}) as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        connection = Connection(kubeconfig=str(kubeconfig), cluster="demo")
        options = probe_options(LiveProbe(finish_timeout_s=0.3))
        url = start(ProbeChecker(connection), options)

        mention(url, "probe shop/catalog", "1700000100.000200")
        announced, failed = fake.wait_for_posts(2, timeout=15)
        requests = server.requests
        leftovers = server.objects("Pod", "default")

    assert announced.thread_ts == failed.thread_ts == THREAD_TS
    found = re.fullmatch(
        r":warning: Could not measure the keep-alive of `shop/catalog`: The probe pod "
        rf"default/({PROBE_LABEL}-[0-9a-f]{{8}}) did not finish within 0\.3 s\. .*",
        failed.text,
    )
    assert found is not None, failed.text
    assert ("GET", "/api/v1/namespaces/shop/services/catalog") in requests
    assert ("POST", "/api/v1/namespaces/default/pods") in requests
    assert ("DELETE", f"/api/v1/namespaces/default/pods/{found.group(1)}") in requests
    assert leftovers == []


# ---------------------------------------------------------------------------
# What the follow-up says, and what a button may carry


def _report(lbs: list[LoadBalancerSummary], ladder: list[Rung] | None = None) -> Report:
    return Report(target=SHOP_WEB, load_balancers=lbs, findings=[], ladder=ladder or [])


def test_reuse_window_is_the_longest_reuse_in_front_of_the_pods() -> None:
    nlb = replace(ALB, name="nlb", type="network", idle_timeout_s=350)
    nginx = Rung(
        "ingress-nginx ingress-nginx/ingress-nginx-controller",
        "upstream-keepalive-timeout",
        75.0,
        "ingress-nginx's default",
    )

    assert reuse_window(_report([ALB, nlb], [nginx])) == Reuse("ingress-nginx", 75)
    assert reuse_window(_report([ALB, nlb])) == Reuse("the ALB", 60)
    assert reuse_window(_report([replace(ALB, type="classic", idle_timeout_s=None)])) == Reuse(
        "the Classic LB", 60
    )
    assert reuse_window(_report([nlb])) is None


@pytest.mark.parametrize(
    ("result", "reuse", "headline", "verdict"),
    [
        (
            ProbeResult(75.1, True, "closed"),
            Reuse("the ALB", 60),
            "the server closed an idle connection after 75.1 s (the ALB reuses them for 60 s).",
            ":large_green_circle: It keeps idle connections longer than the ALB: no race.",
        ),
        (
            ProbeResult(60.2, True, "closed"),
            Reuse("the ALB", 60),
            "the server closed an idle connection after 60.2 s (the ALB reuses them for 60 s).",
            ":large_orange_circle: It closes them when the ALB stops reusing them: the race "
            "remains. Make the server's keep-alive longer than 60 s.",
        ),
        (
            ProbeResult(None, True, "still open"),
            Reuse("ingress-nginx", 60),
            "the server kept an idle connection open for the whole 70 s the probe waited "
            "(ingress-nginx reuses them for 60 s).",
            ":large_green_circle: It keeps idle connections longer than ingress-nginx: no race.",
        ),
        (
            ProbeResult(4.96, True, "closed"),
            None,
            "the server closed an idle connection after 5 s (nothing in front of it is known "
            "to reuse idle connections).",
            "",
        ),
    ],
)
def test_probe_follow_up_puts_the_measured_close_next_to_the_reuse_window(
    result: ProbeResult, reuse: Reuse | None, headline: str, verdict: str
) -> None:
    message = render_probe_result(SHOP_WEB, result, reuse, 70.0)

    assert message["text"] == f":stopwatch: `shop/web`: {headline}"
    section = message["blocks"][0]["text"]["text"]
    assert section == (f"{message['text']}\n{verdict}" if verdict else message["text"])
    assert message["blocks"][1]["elements"][0]["text"] == f"Probe: {result.detail}"


@pytest.mark.parametrize(
    "value",
    [
        '{"namespace": "shop", "service": "web", "reuse": {"layer": "the ALB", "seconds": 0}}',
        '{"namespace": "shop", "service": "web", "reuse": {"layer": "an NLB", "seconds": 60}}',
        '{"namespace": "shop", "service": "web", "reuse": {"layer": "the ALB", "seconds": true}}',
        '{"namespace": "shop", "service": "web", "reuse": "60"}',
        '{"namespace": "Shop", "service": "web", "reuse": null}',
        '["shop", "web"]',
        "not json",
    ],
)
def test_measure_button_value_that_is_not_ours_is_refused(value: str) -> None:
    assert measure_request(value) is None


def test_measure_button_value_round_trips() -> None:
    value = json.dumps(
        {
            "cluster": "prod",
            "namespace": "shop",
            "service": "web",
            "reuse": {"layer": "the ALB", "seconds": 60},
        }
    )

    assert measure_request(value) == (Target("shop", "web", "prod"), Reuse("the ALB", 60))
    assert measure_request(value.replace('{"layer": "the ALB", "seconds": 60}', "null")) == (
        Target("shop", "web", "prod"),
        None,
    )
