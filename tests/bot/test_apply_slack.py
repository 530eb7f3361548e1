"""One-click fixes through the Bolt app over HTTP: the Slack stand-in on one side, the local
Kubernetes API server (and, for a real check, the whole sandbox world) on the other."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.apply_policy import ApplyPolicy
from bot.cache import MemoryCache
from bot.clusters import ClusterRouter
from bot.config import BotConfig, ClusterConfig, RateLimits
from bot.listeners.apply import service_from_env
from bot.listeners.options import Options
from bot.render_slack import APPLY_ACTION_ID, UNDO_ACTION_ID
from bot.service import Checker, CheckOutcome, LiveChecker, Progress
from bot.slack_app import create_app, options_for
from checks.collect.settings import Connection
from checks.models import Finding, Fix, KubePatch, Report, Severity, Status, Target
from sandbox.kube_server import KubeApiServer
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World
from tests.bot.test_slack_app import SECRET, serving_app, slash
from tests.slackfake import BOT_TOKEN, Post, SlackFake, form, signed_post, view_submission

if TYPE_CHECKING:
    from tests.redisserver import RedisServer

pytest_plugins = ["tests.redisserver"]

SCENARIO = BUNDLED_DIR / "c25-alb-termination-race.yaml"
TRACKING = "argocd.argoproj.io/tracking-id"
PRESTOP = {
    "spec": {
        "template": {
            "spec": {
                "terminationGracePeriodSeconds": 45,
                "containers": [
                    {
                        "name": "web",
                        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}},
                    }
                ],
            }
        }
    }
}


class StaticChecker:
    """Answers every check with one finding whose fix patches deployment shop/web."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        fix = Fix(
            title="Delay SIGTERM 15 s, grace 45 s: deployment/web",
            language="shell",
            text="kubectl patch deployment --namespace shop web --type strategic ...\n",
            apply=KubePatch("Deployment", "shop", "web", "strategic", PRESTOP),
        )
        finding = Finding(
            code="TERMINATION_RACE",
            status=Status.FAIL,
            severity=Severity.HIGH,
            summary="Pods can stop serving before the load balancer stops sending to them.",
            resource="service/shop/web",
            fixes=(fix,),
        )
        return CheckOutcome(Report(target=target, load_balancers=[], findings=[finding]))


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture
def fake() -> Iterator[SlackFake]:
    with SlackFake() as running:
        yield running


def _kube(
    tmp_path: Path, annotations: dict[str, str] | None = None, cluster_name: str = "demo"
) -> KubeApiServer:
    objects = copy.deepcopy(load(SCENARIO).cluster)
    for obj in objects:
        if obj["kind"] == "Deployment" and annotations:
            obj["metadata"].setdefault("annotations", {}).update(annotations)
    return KubeApiServer(objects, {}, cluster_name=cluster_name)


Start = Callable[..., tuple[str, KubeApiServer]]


@pytest.fixture
def start(fake: SlackFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    """Starts a kube server and the app around a StaticChecker, with ``env`` set."""
    with ExitStack() as stack:

        def run(
            env: dict[str, str], annotations: dict[str, str] | None = None
        ) -> tuple[str, KubeApiServer]:
            for name in ("EKS504_APPLY_USERS", "EKS504_APPLY_GROUPS", "REDIS_URL"):
                monkeypatch.delenv(name, raising=False)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            server = stack.enter_context(_kube(tmp_path, annotations))
            kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
            checker = StaticChecker(Connection(kubeconfig=str(kubeconfig), cluster="demo"))
            app = create_app(checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url)
            return stack.enter_context(serving_app(app)), server

        yield run


# ---------------------------------------------------------------------------
# Helpers


def _until(what: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.02)
    raise TimeoutError("the condition did not hold in time")


def _settled(fake: SlackFake, quiet_s: float = 1.0, timeout: float = 10.0) -> None:
    """Wait until the app has made no Web API call for ``quiet_s`` (charts upload last)."""
    deadline = time.monotonic() + timeout
    seen, since = len(fake.calls), time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - since < quiet_s:
        time.sleep(0.05)
        if len(fake.calls) != seen:
            seen, since = len(fake.calls), time.monotonic()


def _buttons(post: Post, action_id: str) -> list[dict[str, Any]]:
    return [
        element
        for block in post.blocks
        if block.get("type") == "actions"
        for element in block["elements"]
        if element.get("action_id") == action_id
    ]


def _finding_reply(fake: SlackFake) -> Post:
    found: Post = _until(
        lambda: next((p for p in fake.posts if p.text.startswith(":red_circle: TERMINATION")), None)
    )
    return found


def _post_with(fake: SlackFake, action_id: str) -> Post:
    found: Post = _until(lambda: next((p for p in fake.posts if _buttons(p, action_id)), None))
    return found


def _click(url: str, post: Post, action_id: str, user: str, fake: SlackFake) -> None:
    (button,) = _buttons(post, action_id)[:1]
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
        "trigger_id": "123.456.click",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": button["value"],
                "action_ts": "1700000300.000001",
            }
        ],
    }
    result = signed_post(url, SECRET, form(payload=json.dumps(payload)))
    assert result.status == 200


def _submit(url: str, view: dict[str, Any], user: str) -> None:
    result = signed_post(url, SECRET, view_submission(view, user))
    assert result.status == 200
    assert result.body == ""  # an empty acknowledgement closes the modal


def _outcome(fake: SlackFake, starts: str, count: int = 1) -> list[Post]:
    found: list[Post] = _until(
        lambda: [p for p in fake.posts if p.text.startswith(starts)][count - 1 :]
    )
    return found


def _deployment(server: KubeApiServer) -> dict[str, Any]:
    (deployment,) = server.objects("Deployment", "shop")
    return deployment


# ---------------------------------------------------------------------------
# A real check in the sandbox world, applied


def test_allowed_user_applies_a_fix_from_a_real_check_and_the_audit_goes_to_redis(
    fake: SlackFake, monkeypatch: pytest.MonkeyPatch, private_redis_server: RedisServer
) -> None:
    monkeypatch.setenv("EKS504_APPLY_USERS", "U1")
    monkeypatch.setenv("REDIS_URL", private_redis_server.url)
    with World(load(SCENARIO)) as world:
        assert world.connection is not None and world.kube is not None
        checker = LiveChecker(world.connection, MemoryCache())
        app = create_app(checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url)
        with serving_app(app) as url:
            slash(url, fake, "check shop/web")
            reply = _post_with(fake, APPLY_ACTION_ID)
            assert "TERMINATION_RACE" in reply.text
            assert len(_buttons(reply, APPLY_ACTION_ID)) == 2  # exec sleep and sleep action

            _click(url, reply, APPLY_ACTION_ID, "U1", fake)
            (view,) = fake.wait_for_views(1)
            shown = json.dumps(view["blocks"])
            assert "kubectl patch deployment web --namespace shop --type strategic" in shown
            assert '\\"command\\": [\\n' in shown  # the JSON body, indented
            assert "`deployment/shop/web`" in shown
            _submit(url, view, "U1")
            (outcome,) = _outcome(fake, ":white_check_mark:")
            _settled(fake)

        (deployment,) = world.kube.objects("Deployment", "shop")
    spec = deployment["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 45
    assert spec["containers"][0]["lifecycle"] == {"preStop": {"exec": {"command": ["sleep", "15"]}}}
    assert outcome.thread_ts == reply.thread_ts
    assert outcome.text == (
        ":white_check_mark: <@U1> applied *Delay SIGTERM 15 s with sleep in the image, grace "
        "45 s: deployment/web* to `deployment/shop/web`: dry run passed, patch applied."
    )
    stream: Any = private_redis_server.client().xrange("eks504:audit", "-", "+")
    ((stream_id, fields),) = stream
    assert (fields["who"], fields["result"]) == ("U1", "applied")
    assert _buttons(outcome, UNDO_ACTION_ID)[0]["value"] == stream_id
    assert f"audit entry `{stream_id}`" in outcome.all_text()


# ---------------------------------------------------------------------------
# Who may apply


def test_user_not_allowed_gets_an_ephemeral_refusal_and_nothing_changes(
    fake: SlackFake, start: Start
) -> None:
    url, server = start({"EKS504_APPLY_USERS": "U1"})
    before = _deployment(server)
    slash(url, fake, "check shop/web")
    reply = _post_with(fake, APPLY_ACTION_ID)

    _click(url, reply, APPLY_ACTION_ID, "U2", fake)
    (refusal,) = fake.wait_for_ephemerals(1)

    assert (refusal.user, refusal.channel, refusal.thread_ts) == ("U2", "C1", reply.thread_ts)
    assert refusal.text.startswith(":no_entry: You are not allowed to apply fixes from Slack.")
    time.sleep(0.2)
    assert fake.views == []
    assert _deployment(server) == before


def test_member_of_an_allowed_user_group_gets_the_modal(fake: SlackFake, start: Start) -> None:
    fake.set_usergroup("S0SRE", ["U7"])
    url, _ = start({"EKS504_APPLY_GROUPS": "S0SRE"})
    slash(url, fake, "check shop/web")
    reply = _post_with(fake, APPLY_ACTION_ID)

    _click(url, reply, APPLY_ACTION_ID, "U7", fake)
    (view,) = fake.wait_for_views(1)

    assert view["callback_id"] == "eks504_apply_confirm"
    assert view["submit"]["text"] == "Apply"
    assert [c.params["usergroup"] for c in fake.calls_to("usergroups.users.list")] == ["S0SRE"]
    assert fake.ephemerals == []


def test_nobody_allowed_means_no_button_and_no_cluster_reads(fake: SlackFake, start: Start) -> None:
    url, server = start({})
    slash(url, fake, "check shop/web")

    reply = _finding_reply(fake)

    assert _buttons(reply, APPLY_ACTION_ID) == []
    assert "Apply" not in reply.all_text()
    assert "kubectl patch deployment" in reply.all_text()  # the copy-paste fix stays
    assert server.requests == []


# ---------------------------------------------------------------------------
# Dry run, GitOps, undo


def test_failed_dry_run_is_reported_in_the_thread_and_nothing_is_applied(
    fake: SlackFake, start: Start
) -> None:
    url, server = start({"EKS504_APPLY_USERS": "U1"})
    before = _deployment(server)
    slash(url, fake, "check shop/web")
    reply = _post_with(fake, APPLY_ACTION_ID)
    _click(url, reply, APPLY_ACTION_ID, "U1", fake)
    (view,) = fake.wait_for_views(1)
    server.forbid("patch", "deployments.apps", "shop")

    _submit(url, view, "U1")
    (outcome,) = _outcome(fake, ":x:")

    assert outcome.thread_ts == reply.thread_ts
    assert outcome.text.startswith(
        ":x: <@U1> tried to apply *Delay SIGTERM 15 s, grace 45 s: deployment/web* to "
        "`deployment/shop/web`: the server-side dry run failed, so nothing was changed. "
        "Kubernetes refused to patch deployments.apps shop/web: "
    )
    assert _buttons(outcome, UNDO_ACTION_ID) == []
    assert _deployment(server) == before


def test_argo_managed_deployment_gets_a_git_snippet_instead_of_a_button(
    fake: SlackFake, start: Start
) -> None:
    url, server = start(
        {"EKS504_APPLY_USERS": "U1"}, {TRACKING: "shop-web:apps/Deployment:shop/web"}
    )
    before = _deployment(server)
    slash(url, fake, "check shop/web")

    reply = _finding_reply(fake)

    text = reply.all_text()
    assert _buttons(reply, APPLY_ACTION_ID) == []
    assert (
        "Argo CD (application shop-web) manages deployment/shop/web: a patch applied here "
        "would be reverted at its next sync. Commit this change to Git instead:"
    ) in text
    assert "# deployment/shop/web: merge into its manifest in Git" in text
    assert "terminationGracePeriodSeconds: 45" in text
    assert _deployment(server) == before


def test_undo_from_the_audit_reply_restores_the_previous_values(
    fake: SlackFake, start: Start
) -> None:
    url, server = start({"EKS504_APPLY_USERS": "U1"})
    original = _deployment(server)["spec"]
    slash(url, fake, "check shop/web")
    reply = _post_with(fake, APPLY_ACTION_ID)
    _click(url, reply, APPLY_ACTION_ID, "U1", fake)
    _submit(url, fake.wait_for_views(1)[0], "U1")
    (applied,) = _outcome(fake, ":white_check_mark: <@U1> applied")
    assert _deployment(server)["spec"] != original

    _click(url, applied, UNDO_ACTION_ID, "U1", fake)
    undo_view = fake.wait_for_views(2)[1]
    assert (undo_view["title"]["text"], undo_view["submit"]["text"]) == ("Undo a fix", "Undo")
    assert '\\"op\\": \\"test\\"' in json.dumps(undo_view["blocks"])
    _submit(url, undo_view, "U1")
    (undone,) = _outcome(fake, ":white_check_mark: <@U1> undid")

    assert _deployment(server)["spec"] == original
    assert undone.thread_ts == reply.thread_ts
    assert undone.text == (
        ":white_check_mark: <@U1> undid *Undo: Delay SIGTERM 15 s, grace 45 s: deployment/web* "
        "to `deployment/shop/web`: dry run passed, patch applied."
    )
    assert _buttons(undone, UNDO_ACTION_ID) == []


def test_undo_by_a_user_not_allowed_is_refused(fake: SlackFake, start: Start) -> None:
    url, server = start({"EKS504_APPLY_USERS": "U1"})
    slash(url, fake, "check shop/web")
    _click(url, _post_with(fake, APPLY_ACTION_ID), APPLY_ACTION_ID, "U1", fake)
    _submit(url, fake.wait_for_views(1)[0], "U1")
    (applied,) = _outcome(fake, ":white_check_mark:")
    patched = _deployment(server)

    _click(url, applied, UNDO_ACTION_ID, "U9", fake)
    (refusal,) = fake.wait_for_ephemerals(1)

    assert refusal.user == "U9"
    time.sleep(0.2)
    assert len(fake.views) == 1
    assert _deployment(server) == patched


# ---------------------------------------------------------------------------
# Offers per app, several clusters, the policy from the configuration file


NO_LIMITS = RateLimits(per_user=0, per_channel=0)


def _cluster(stack: ExitStack, tmp_path: Path, name: str) -> tuple[StaticChecker, KubeApiServer]:
    server = stack.enter_context(_kube(tmp_path, cluster_name=name))
    kubeconfig = server.write_kubeconfig(tmp_path / f"kubeconfig-{name}")
    return StaticChecker(Connection(kubeconfig=str(kubeconfig), cluster=name)), server


def _app(stack: ExitStack, fake: SlackFake, checker: Checker, options: Options) -> str:
    app = create_app(
        checker, token=BOT_TOKEN, signing_secret=SECRET, api_url=fake.url, options=options
    )
    return stack.enter_context(serving_app(app))


def _reply_in(fake: SlackFake, channel: str) -> Post:
    found: Post = _until(
        lambda: next(
            (
                p
                for p in fake.posts
                if p.channel == channel and p.text.startswith(":red_circle: TERMINATION")
            ),
            None,
        )
    )
    return found


def test_each_app_offers_by_its_own_policy_not_by_the_last_one_created(
    fake: SlackFake, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        allowing, _ = _cluster(stack, tmp_path, "allowing")
        refusing, _ = _cluster(stack, tmp_path, "refusing")
        first = _app(
            stack,
            fake,
            allowing,
            Options(apply=service_from_env(allowing, None, {"EKS504_APPLY_USERS": "U1"})),
        )
        second = _app(stack, fake, refusing, Options(apply=service_from_env(refusing, None, {})))

        slash(first, fake, "check shop/web", channel="CA")
        slash(second, fake, "check shop/web", channel="CB")
        offered, not_offered = _reply_in(fake, "CA"), _reply_in(fake, "CB")
        _settled(fake)

    assert len(_buttons(offered, APPLY_ACTION_ID)) == 1
    assert _buttons(not_offered, APPLY_ACTION_ID) == []


def test_with_several_clusters_apply_patches_the_cluster_the_report_came_from(
    fake: SlackFake, tmp_path: Path
) -> None:
    config = BotConfig(
        clusters={"prod": ClusterConfig("prod"), "staging": ClusterConfig("staging")},
        default_cluster="prod",
        rate_limits=NO_LIMITS,
        apply=ApplyPolicy(users=frozenset({"U1"})),
    )
    with ExitStack() as stack:
        prod, prod_server = _cluster(stack, tmp_path, "prod")
        staging, staging_server = _cluster(stack, tmp_path, "staging")
        router = ClusterRouter({"prod": prod, "staging": staging}, default="prod")
        url = _app(stack, fake, router, options_for(router, config, {}))
        untouched = _deployment(prod_server)

        slash(url, fake, "check shop/web --cluster staging")
        reply = _post_with(fake, APPLY_ACTION_ID)
        _click(url, reply, APPLY_ACTION_ID, "U1", fake)
        (view,) = fake.wait_for_views(1)
        _submit(url, view, "U1")
        (outcome,) = _outcome(fake, ":white_check_mark:")
        _settled(fake)

        assert "in cluster `staging`" in json.dumps(view["blocks"])
        assert "cluster staging" in outcome.all_text()
        patched = _deployment(staging_server)["spec"]["template"]["spec"]
        assert patched["terminationGracePeriodSeconds"] == 45
        assert _deployment(prod_server) == untouched
        assert not any(method == "PATCH" for method, _ in prod_server.requests)


def test_apply_policy_in_the_config_file_beats_the_environment(
    fake: SlackFake, tmp_path: Path
) -> None:
    config = BotConfig(rate_limits=NO_LIMITS, apply=ApplyPolicy(users=frozenset({"U5"})))
    with ExitStack() as stack:
        checker, _ = _cluster(stack, tmp_path, "demo")
        options = options_for(checker, config, {"EKS504_APPLY_USERS": "U1"})
        url = _app(stack, fake, checker, options)

        slash(url, fake, "check shop/web")
        reply = _post_with(fake, APPLY_ACTION_ID)
        _click(url, reply, APPLY_ACTION_ID, "U1", fake)
        (refusal,) = fake.wait_for_ephemerals(1)
        _click(url, reply, APPLY_ACTION_ID, "U5", fake)
        (view,) = fake.wait_for_views(1)

    assert refusal.user == "U1"
    assert refusal.text.startswith(":no_entry: You are not allowed to apply fixes from Slack.")
    assert view["callback_id"] == "eks504_apply_confirm"
