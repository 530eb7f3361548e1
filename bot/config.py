"""The Slack app's configuration: clusters, channel rules and rate limits.

Read from the YAML file that ``EKS504_CONFIG`` names::

    clusters:
      prod:
        context: arn:aws:eks:eu-west-1:111122223333:cluster/prod   # kube context
        region: eu-west-1
        role_arn: arn:aws:iam::111122223333:role/eks504-reader      # assumed for AWS calls
        aws_profile: prod                                           # optional
        kubeconfig: /etc/eks504/kubeconfig                          # optional
      staging: {context: staging, region: eu-west-1}
    default_cluster: prod          # optional; with one cluster, that one
    channels:
      C0123456789:
        default_cluster: staging
        namespaces: [shop, "payments-*"]   # names or shell patterns; absent: all
    rate_limits: {per_user: 10, per_channel: 30, window_s: 60}
    apply:                         # who may apply a fix from Slack; absent: the environment
      users: [U012AB3CD]           # Slack user ids
      groups: [S0614TZR7]          # Slack user group ids
    probe:                         # the keep-alive probe, which starts a pod in the cluster
      enabled: true                # off unless enabled here or with EKS504_PROBE=1
      namespace: eks504            # where its pod runs (default: default)
      image: registry.example.com/python:3.12-alpine   # any Python 3.10+ image

Without an ``apply:`` section, ``EKS504_APPLY_USERS`` and ``EKS504_APPLY_GROUPS`` decide who
may apply (see :mod:`bot.apply_policy`); with one, even an empty one, only the file does.

Every mistake is reported with where it is (``clusters.prod.region``) and what is expected.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.apply_policy import GROUP_ID, USER_ID, ApplyPolicy
from bot.commands import invalid_cluster, invalid_name
from checks import numbers
from checks.collect.settings import Connection
from checks.errors import InputError

logger = logging.getLogger(__name__)

CONFIG_ENV = "EKS504_CONFIG"

_CHANNEL_ID = re.compile(r"[A-Z0-9]{2,30}")
_NAMESPACE_PATTERN = re.compile(r"[a-z0-9*?\[\]-]{1,63}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_CLUSTER_KEYS = frozenset(
    {"context", "region", "role_arn", "aws_profile", "kubeconfig", "aws_endpoint_url"}
)
_TOP_KEYS = frozenset({"clusters", "default_cluster", "channels", "rate_limits", "apply", "probe"})
PROBE_ENV = "EKS504_PROBE"


class ConfigError(InputError):
    """The configuration file is missing, unreadable or wrong."""


@dataclass(frozen=True)
class ClusterConfig:
    """Where one named cluster is: its kube context, AWS region, and the role to assume."""

    name: str
    context: str | None = None
    region: str | None = None
    role_arn: str | None = None
    aws_profile: str | None = None
    kubeconfig: str | None = None
    aws_endpoint_url: str | None = None

    def connection(self) -> Connection:
        return Connection(
            kubeconfig=self.kubeconfig or os.environ.get("KUBECONFIG") or None,
            context=self.context,
            region=self.region,
            aws_profile=self.aws_profile,
            role_arn=self.role_arn,
            aws_endpoint_url=self.aws_endpoint_url
            or os.environ.get("EKS504_AWS_ENDPOINT_URL")
            or None,
            cluster=self.name,
        )


@dataclass(frozen=True)
class ChannelConfig:
    """Rules for one channel: its default cluster, and the namespaces it may check (all when
    ``namespaces`` is None)."""

    default_cluster: str | None = None
    namespaces: tuple[str, ...] | None = None

    def allows(self, namespace: str) -> bool:
        if self.namespaces is None:
            return True
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)


@dataclass(frozen=True)
class RateLimits:
    """At most ``per_user`` checks by one user and ``per_channel`` in one channel within
    ``window_s`` seconds; 0 turns a limit off."""

    per_user: int = 10
    per_channel: int = 30
    window_s: int = 60


@dataclass(frozen=True)
class ProbeConfig:
    """The keep-alive probe: off unless enabled, since it starts a pod in the cluster.

    ``namespace`` None runs its pod in the connection's probe namespace; ``image`` None
    uses the probe's own default image.
    """

    enabled: bool = False
    namespace: str | None = None
    image: str | None = None


@dataclass(frozen=True)
class BotConfig:
    clusters: dict[str, ClusterConfig] = field(default_factory=dict)
    default_cluster: str | None = None
    channels: dict[str, ChannelConfig] = field(default_factory=dict)
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # Who may apply fixes from Slack; None when the file has no ``apply:`` section.
    apply: ApplyPolicy | None = None
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def channel(self, channel_id: str | None) -> ChannelConfig:
        return self.channels.get(channel_id or "", ChannelConfig())

    def cluster_for(self, channel_id: str | None) -> str | None:
        """The cluster a check without ``--cluster`` goes to in this channel, if any."""
        channel = self.channel(channel_id)
        if channel.default_cluster:
            return channel.default_cluster
        if self.default_cluster:
            return self.default_cluster
        if len(self.clusters) == 1:
            return next(iter(self.clusters))
        return None


# ---------------------------------------------------------------------------- reading


def _fail(where: str, problem: str) -> ConfigError:
    return ConfigError(
        f"The configuration is wrong at {where}: {problem}.",
        f"Fix the file that {CONFIG_ENV} names and restart eks504.",
    )


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(where, f"expected a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise _fail(where, f"keys must be strings, got {key!r}")
    return value


def _optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _count(value: Any, where: str, default: int, *, minimum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"expected a whole number of at least {minimum}, got {value!r}")
    return value


def _unknown_keys(data: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(
            where,
            f"unknown key(s) {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}",
        )


def _cluster(name: str, raw: Any) -> ClusterConfig:
    where = f"clusters.{name}"
    problem = invalid_cluster(name)
    if problem:
        raise _fail(
            where, "a cluster name uses letters, digits, '-' or '_' and starts with a letter"
        )
    data = _mapping(raw, where)
    _unknown_keys(data, _CLUSTER_KEYS, where)
    values = {key: _optional_str(data.get(key), f"{where}.{key}") for key in _CLUSTER_KEYS}
    role_arn = values["role_arn"]
    if role_arn is not None and not _ROLE_ARN.fullmatch(role_arn):
        raise _fail(f"{where}.role_arn", f"{role_arn!r} is not an IAM role ARN")
    return ClusterConfig(name=name, **values)


def _channel(channel_id: str, raw: Any, clusters: Mapping[str, ClusterConfig]) -> ChannelConfig:
    where = f"channels.{channel_id}"
    if not _CHANNEL_ID.fullmatch(channel_id):
        raise _fail(where, "a channel is named by its ID, such as C0123456789")
    data = _mapping(raw, where)
    _unknown_keys(data, frozenset({"default_cluster", "namespaces"}), where)
    default = _optional_str(data.get("default_cluster"), f"{where}.default_cluster")
    if default is not None and default not in clusters:
        raise _fail(f"{where}.default_cluster", f"{default!r} is not one of the clusters")
    raw_namespaces = data.get("namespaces")
    namespaces: tuple[str, ...] | None = None
    if raw_namespaces is not None:
        if not isinstance(raw_namespaces, list) or not raw_namespaces:
            raise _fail(f"{where}.namespaces", "expected a non-empty list of namespaces")
        for i, pattern in enumerate(raw_namespaces):
            if not isinstance(pattern, str) or not _NAMESPACE_PATTERN.fullmatch(pattern):
                raise _fail(
                    f"{where}.namespaces[{i}]",
                    f"{pattern!r} is not a namespace name or pattern (such as shop-*)",
                )
        namespaces = tuple(raw_namespaces)
    return ChannelConfig(default_cluster=default, namespaces=namespaces)


def _ids(
    value: Any, where: str, pattern: re.Pattern[str], what: str, example: str
) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise _fail(where, f"expected a list of {what}s, such as [{example}]")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not pattern.fullmatch(item):
            raise _fail(f"{where}[{i}]", f"{item!r} is not a {what} (such as {example})")
    return frozenset(value)


def _apply(raw: Any) -> ApplyPolicy:
    data = _mapping(raw, "apply")
    _unknown_keys(data, frozenset({"users", "groups"}), "apply")
    return ApplyPolicy(
        users=_ids(data.get("users"), "apply.users", USER_ID, "Slack user id", "U012AB3CD"),
        groups=_ids(
            data.get("groups"), "apply.groups", GROUP_ID, "Slack user group id", "S0614TZR7"
        ),
    )


def _probe(raw: Any) -> ProbeConfig:
    data = _mapping(raw, "probe")
    _unknown_keys(data, frozenset({"enabled", "namespace", "image"}), "probe")
    enabled = data.get("enabled", False)
    if not isinstance(enabled, bool):
        raise _fail("probe.enabled", f"expected true or false, got {enabled!r}")
    namespace = _optional_str(data.get("namespace"), "probe.namespace")
    if namespace is not None and invalid_name(namespace, "namespace"):
        raise _fail("probe.namespace", f"{namespace!r} is not a namespace name")
    image = _optional_str(data.get("image"), "probe.image")
    return ProbeConfig(enabled=enabled, namespace=namespace, image=image)


def parse_config(data: Any) -> BotConfig:
    """A :class:`BotConfig` from the file's parsed YAML; raises :class:`ConfigError`."""
    top = _mapping(data, "the top level")
    _unknown_keys(top, _TOP_KEYS, "the top level")
    clusters = {
        name: _cluster(name, raw) for name, raw in _mapping(top.get("clusters"), "clusters").items()
    }
    default = _optional_str(top.get("default_cluster"), "default_cluster")
    if default is not None and default not in clusters:
        raise _fail("default_cluster", f"{default!r} is not one of the clusters")
    channels = {
        channel_id: _channel(channel_id, raw, clusters)
        for channel_id, raw in _mapping(top.get("channels"), "channels").items()
    }
    limits = _mapping(top.get("rate_limits"), "rate_limits")
    _unknown_keys(limits, frozenset({"per_user", "per_channel", "window_s"}), "rate_limits")
    defaults = RateLimits()
    rate_limits = RateLimits(
        per_user=_count(
            limits.get("per_user"), "rate_limits.per_user", defaults.per_user, minimum=0
        ),
        per_channel=_count(
            limits.get("per_channel"), "rate_limits.per_channel", defaults.per_channel, minimum=0
        ),
        window_s=_count(
            limits.get("window_s"), "rate_limits.window_s", defaults.window_s, minimum=1
        ),
    )
    return BotConfig(
        clusters=clusters,
        default_cluster=default,
        channels=channels,
        rate_limits=rate_limits,
        apply=_apply(top["apply"]) if "apply" in top else None,
        probe=_probe(top.get("probe")),
    )


def load_config(path: str | Path) -> BotConfig:
    """The configuration in the YAML file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the configuration file {path}: {exc.strerror}.",
            f"Point {CONFIG_ENV} at a readable YAML file.",
        ) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"The configuration file {path} is not UTF-8 text (byte {exc.start} cannot be "
            "decoded).",
            f"Save it as UTF-8, or point {CONFIG_ENV} at the YAML configuration file.",
        ) from exc
    try:
        data = numbers.load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"The configuration file {path} is not valid YAML: {exc}.",
            "Fix its syntax and restart eks504.",
        ) from exc
    config = parse_config(data)
    logger.info(
        "configuration from %s: %d cluster(s), %d channel rule(s)",
        path,
        len(config.clusters),
        len(config.channels),
    )
    return config


def config_from_env(env: Mapping[str, str] = os.environ) -> BotConfig | None:
    """The configuration ``EKS504_CONFIG`` names, or None when it is not set."""
    path = env.get(CONFIG_ENV, "").strip()
    return load_config(path) if path else None


def probe_enabled(config: BotConfig | None, env: Mapping[str, str] = os.environ) -> bool:
    """Whether the keep-alive probe may start pods: ``probe: {enabled: true}`` in the
    configuration, or ``EKS504_PROBE=1``."""
    from_env = env.get(PROBE_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return from_env or (config is not None and config.probe.enabled)
