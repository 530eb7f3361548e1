"""The configuration file, the policy it drives, and one checker per configured cluster."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.apply_policy import ApplyPolicy
from bot.cache import MemoryCache
from bot.cli import build_parser, main
from bot.clusters import (
    ClusterRouter,
    UnknownClusterError,
    checkers_from_config,
    connection_of,
)
from bot.config import (
    BotConfig,
    ChannelConfig,
    ClusterConfig,
    ConfigError,
    ProbeConfig,
    RateLimits,
    config_from_env,
    load_config,
    parse_config,
    probe_enabled,
)
from bot.guard import MemoryRateLimiter
from bot.listeners.apply import apply_policy
from bot.policy import Policy
from bot.service import CheckOutcome, LiveChecker, Progress
from checks.collect.settings import Connection
from checks.models import Report, Target

CONFIG = """
clusters:
  prod:
    context: arn:aws:eks:eu-west-1:111122223333:cluster/prod
    region: eu-west-1
    role_arn: arn:aws:iam::111122223333:role/eks504-reader
  staging: {context: staging, region: eu-west-1, aws_profile: stage}
default_cluster: prod
channels:
  C0SHOP:
    default_cluster: staging
    namespaces: [shop, "payments-*"]
rate_limits: {per_user: 3, per_channel: 9, window_s: 120}
apply: {users: [U1, W2], groups: [S0SRE]}
probe: {enabled: true, namespace: eks504, image: registry.example.com/python:3.12}
"""


def test_config_file_is_read_into_typed_settings(tmp_path: Path) -> None:
    path = tmp_path / "eks504.yaml"
    path.write_text(CONFIG, encoding="utf-8")

    config = load_config(path)

    assert config == BotConfig(
        clusters={
            "prod": ClusterConfig(
                name="prod",
                context="arn:aws:eks:eu-west-1:111122223333:cluster/prod",
                region="eu-west-1",
                role_arn="arn:aws:iam::111122223333:role/eks504-reader",
            ),
            "staging": ClusterConfig(
                name="staging", context="staging", region="eu-west-1", aws_profile="stage"
            ),
        },
        default_cluster="prod",
        channels={
            "C0SHOP": ChannelConfig(default_cluster="staging", namespaces=("shop", "payments-*"))
        },
        rate_limits=RateLimits(per_user=3, per_channel=9, window_s=120),
        apply=ApplyPolicy(users=frozenset({"U1", "W2"}), groups=frozenset({"S0SRE"})),
        probe=ProbeConfig(
            enabled=True, namespace="eks504", image="registry.example.com/python:3.12"
        ),
    )
    assert config_from_env({"EKS504_CONFIG": str(path)}) == config
    assert config_from_env({}) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "clusters: {prod: {region: 3}}",
            "The configuration is wrong at clusters.prod.region: expected a non-empty string, "
            "got 3.",
        ),
        (
            "clusters: {prod: {regoin: eu-west-1}}",
            "The configuration is wrong at clusters.prod: unknown key(s) regoin; expected some "
            "of aws_endpoint_url, aws_profile, context, kubeconfig, region, role_arn.",
        ),
        (
            "clusters: {prod: {role_arn: 'arn:aws:iam::1:user/me'}}",
            "The configuration is wrong at clusters.prod.role_arn: 'arn:aws:iam::1:user/me' is "
            "not an IAM role ARN.",
        ),
        (
            "clusters: {prod: {}}\nchannels: {C1: {default_cluster: dev}}",
            "The configuration is wrong at channels.C1.default_cluster: 'dev' is not one of the "
            "clusters.",
        ),
        (
            "channels: {general: {}}",
            "The configuration is wrong at channels.general: a channel is named by its ID, such "
            "as C0123456789.",
        ),
        (
            "channels: {C1: {namespaces: [Shop]}}",
            "The configuration is wrong at channels.C1.namespaces[0]: 'Shop' is not a namespace "
            "name or pattern (such as shop-*).",
        ),
        (
            "rate_limits: {per_user: -1}",
            "The configuration is wrong at rate_limits.per_user: expected a whole number of at "
            "least 0, got -1.",
        ),
        (
            "- just a list",
            "The configuration is wrong at the top level: expected a mapping, got list.",
        ),
        (
            "apply: {users: [U1, bob]}",
            "The configuration is wrong at apply.users[1]: 'bob' is not a Slack user id (such "
            "as U012AB3CD).",
        ),
        (
            "apply: {groups: S0SRE}",
            "The configuration is wrong at apply.groups: expected a list of Slack user group "
            "ids, such as [S0614TZR7].",
        ),
        (
            "apply: {allowed_users: [U1]}",
            "The configuration is wrong at apply: unknown key(s) allowed_users; expected some "
            "of groups, users.",
        ),
        (
            "probe: {enabled: yes please}",
            "The configuration is wrong at probe.enabled: expected true or false, got "
            "'yes please'.",
        ),
        (
            "probe: {namespace: Probes}",
            "The configuration is wrong at probe.namespace: 'Probes' is not a namespace name.",
        ),
    ],
)
def test_config_mistakes_say_where_and_what(text: str, message: str) -> None:
    import yaml

    with pytest.raises(ConfigError) as caught:
        parse_config(yaml.safe_load(text))

    assert caught.value.message == message


ENV_POLICY = {"EKS504_APPLY_USERS": "U9", "EKS504_APPLY_GROUPS": "S9"}


def test_apply_policy_comes_from_the_config_file_when_it_has_an_apply_section() -> None:
    config = parse_config({"apply": {"users": ["U1"], "groups": ["S0SRE"]}})

    assert apply_policy(config, ENV_POLICY) == ApplyPolicy(
        users=frozenset({"U1"}), groups=frozenset({"S0SRE"})
    )


def test_empty_apply_section_allows_nobody_whatever_the_environment_says() -> None:
    config = parse_config({"apply": {}})

    assert apply_policy(config, ENV_POLICY).allows_anyone is False


def test_apply_policy_falls_back_to_the_environment_without_an_apply_section() -> None:
    expected = ApplyPolicy(users=frozenset({"U9"}), groups=frozenset({"S9"}))

    assert parse_config({"clusters": {"prod": {}}}).apply is None
    assert apply_policy(parse_config({"clusters": {"prod": {}}}), ENV_POLICY) == expected
    assert apply_policy(None, ENV_POLICY) == expected


@pytest.mark.parametrize(
    ("config", "env", "enabled"),
    [
        (None, {}, False),
        (BotConfig(), {}, False),
        (BotConfig(probe=ProbeConfig(enabled=True)), {}, True),
        (None, {"EKS504_PROBE": "1"}, True),
        (BotConfig(), {"EKS504_PROBE": "true"}, True),
        (BotConfig(), {"EKS504_PROBE": "0"}, False),
    ],
)
def test_probe_is_on_only_where_the_config_or_the_environment_says_so(
    config: BotConfig | None, env: dict[str, str], enabled: bool
) -> None:
    assert probe_enabled(config, env) is enabled


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.yaml")

    assert caught.value.message.startswith(f"Cannot read the configuration file {tmp_path}")


def test_config_file_that_is_not_utf8_is_named_in_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "eks504.yaml"
    path.write_bytes(b"clusters: \xff\xfe\n")

    with pytest.raises(ConfigError) as caught:
        config_from_env({"EKS504_CONFIG": str(path)})

    assert caught.value.message == (
        f"The configuration file {path} is not UTF-8 text (byte 10 cannot be decoded)."
    )


def test_serve_with_a_config_file_that_is_not_utf8_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "eks504.yaml"
    path.write_bytes(b"\xff\xfeclusters: {}\n")
    monkeypatch.setenv("EKS504_CONFIG", str(path))

    assert main(["serve", "--http", "0"]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"eks504: The configuration file {path} is not UTF-8 text")
    assert "unexpected" not in err
    assert err.count("\n") == 1


def test_serve_builds_one_checker_per_configured_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("EKS504_AWS_ENDPOINT_URL", raising=False)

    config = parse_config(yaml.safe_load(CONFIG))

    router = checkers_from_config(config, MemoryCache(), ttl_s=60, window_s=1800)

    assert router.names == ("prod", "staging")
    assert router.default == "prod"
    prod = router._checkers["prod"]
    assert isinstance(prod, LiveChecker)
    assert prod.connection == Connection(
        context="arn:aws:eks:eu-west-1:111122223333:cluster/prod",
        region="eu-west-1",
        role_arn="arn:aws:iam::111122223333:role/eks504-reader",
        cluster="prod",
    )
    assert (prod.ttl_s, prod.window_s) == (60, 1800)


def test_serve_takes_a_host_and_a_free_port() -> None:
    args = build_parser().parse_args(["serve", "--http", "0", "--host", "127.0.0.1"])

    assert (args.http, args.host) == (0, "127.0.0.1")


# ---------------------------------------------------------------------------
# Routing to clusters


class Recorder:
    def __init__(self) -> None:
        self.targets: list[Target] = []

    def check(
        self, target: Target, *, fresh: bool = False, progress: Progress | None = None
    ) -> CheckOutcome:
        self.targets.append(target)
        return CheckOutcome(Report(target=target, load_balancers=[], findings=[]))


def test_router_sends_each_target_to_its_clusters_checker() -> None:
    prod, staging = Recorder(), Recorder()
    router = ClusterRouter({"prod": prod, "staging": staging}, default="prod")

    router.check(Target("shop", "web"))
    router.check(Target("shop", "web", "staging"))

    assert prod.targets == [Target("shop", "web", "prod")]
    assert staging.targets == [Target("shop", "web", "staging")]


def test_router_refuses_an_unknown_cluster() -> None:
    router = ClusterRouter({"prod": Recorder()})

    with pytest.raises(UnknownClusterError) as caught:
        router.check(Target("shop", "web", "dev"))

    assert str(caught.value) == "There is no cluster named dev. Known clusters: prod."


def test_router_lends_each_clusters_connection_and_the_default_for_default() -> None:
    config = parse_config({"clusters": {"prod": {"context": "p"}, "staging": {"context": "s"}}})
    router = checkers_from_config(
        replace(config, default_cluster="staging"), MemoryCache(), ttl_s=60
    )

    assert router.connection_for("prod").context == "p"
    assert router.connection_for("prod").cluster == "prod"
    assert router.connection_for("staging").context == "s"
    assert router.connection_for("default").cluster == "staging"
    with pytest.raises(UnknownClusterError) as caught:
        router.connection_for("dev")
    assert str(caught.value) == "There is no cluster named dev. Known clusters: prod, staging."


def test_router_without_a_connection_for_a_cluster_says_so() -> None:
    router = ClusterRouter({"prod": Recorder()})

    with pytest.raises(UnknownClusterError) as caught:
        router.connection_for("prod")

    assert str(caught.value) == "Cluster prod has no Kubernetes connection."
    assert connection_of(router, "prod") is None


def test_connection_of_a_single_checker_serves_its_cluster_and_default_only() -> None:
    connection = Connection(context="demo", cluster="demo")
    checker = LiveChecker(connection, MemoryCache())

    assert connection_of(checker, "demo") is connection
    assert connection_of(checker, "default") is connection
    assert connection_of(checker, "prod") is None


# ---------------------------------------------------------------------------
# Policy


def test_several_clusters_without_a_default_ask_which_one() -> None:
    policy = Policy(BotConfig(), clusters=("prod", "staging"))

    admission = policy.admit(Target("shop", "web"), user="U1", channel="C1")

    assert admission.target is None
    assert admission.refusal == (
        ":grey_question: Which cluster should I check `shop/web` in? Add `--cluster NAME`; "
        "I know `prod`, `staging`."
    )


def test_channel_default_cluster_beats_the_global_one_and_the_option_beats_both() -> None:
    config = BotConfig(
        clusters={"prod": ClusterConfig("prod"), "staging": ClusterConfig("staging")},
        default_cluster="prod",
        channels={"C1": ChannelConfig(default_cluster="staging")},
    )
    policy = Policy(config)

    assert policy.admit(Target("a", "b"), user=None, channel="C1").target == Target(
        "a", "b", "staging"
    )
    assert policy.admit(Target("a", "b"), user=None, channel="C2").target == Target(
        "a", "b", "prod"
    )
    assert policy.admit(Target("a", "b", "prod"), user=None, channel="C1").target == Target(
        "a", "b", "prod"
    )


def test_rate_limit_window_resets() -> None:
    now = [1000.0]
    limiter = MemoryRateLimiter(clock=lambda: now[0])
    policy = Policy(
        BotConfig(rate_limits=RateLimits(per_user=1, per_channel=0, window_s=60)), limiter
    )

    first = policy.admit(Target("a", "b"), user="U1", channel="C1")
    second = policy.admit(Target("a", "b"), user="U1", channel="C1")
    other_user = policy.admit(Target("a", "b"), user="U2", channel="C1")
    now[0] += 60
    later = policy.admit(Target("a", "b"), user="U1", channel="C1")

    assert first.target is not None and other_user.target is not None
    assert second.target is None
    assert "again in 20 s" in second.refusal
    assert later.target is not None
