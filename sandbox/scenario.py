"""Loads a scenario file: one simulated EKS world (see docs/scenario-format.md).

:func:`load` checks the whole structure the sandbox relies on before anything is started,
and names each problem by file, line and key (``s.yaml:12: aws.subnets.public-a has no
`az```), so that a broken file never surfaces later as a crash inside the local AWS
endpoint or the Kubernetes API server.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from checks import numbers
from checks.errors import ScenarioError
from checks.lint import (
    YamlRefused,
    annotation_problems,
    cap,
    label,
    read_yaml,
    shape_problems,
    shown,
)
from checks.names import CLUSTER_RULE, is_cluster_name

logger = logging.getLogger(__name__)

BUNDLED_DIR = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = BUNDLED_DIR / "s2-clb-nginx-keepalive-30s.yaml"

# Fourteen days of one value a minute: CloudWatch keeps one-minute data that long.
MAX_SERIES_POINTS = 14 * 24 * 60
# How many problems one error message lists before it stops counting them out.
MAX_LISTED = 10
LB_TYPES = ("classic", "application", "network")
SCHEMES = ("internet-facing", "internal")
TARGET_TYPES = ("instance", "ip", "alb")
TARGET_STATES = ("initial", "healthy", "unhealthy", "unused", "draining", "unavailable")
INSTANCE_STATES = ("InService", "OutOfService", "Unknown")
RULE_PROTOCOLS = ("tcp", "udp", "icmp", "all", "-1")
ACL_ACTIONS = ("allow", "deny")
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
_PERCENTILE = re.compile(r"p\d{1,2}(\.\d+)?")
_SERVED_REF = re.compile(r"[a-z]+/[^/\s]+/[^/\s]+")
# Attribute keys whose values are a number of seconds, or true/false.
_SECONDS_KEY = re.compile(r"(^|[._])(timeout|seconds|idle_timeout)$|_seconds$")
_FLAG_KEY = re.compile(r"\.enabled$|^cross_zone$")


@dataclass
class Scenario:
    id: str
    summary: str
    ask: str
    cluster_name: str
    cluster: list[dict[str, Any]]
    aws: dict[str, Any]
    exec: dict[str, dict[str, Any]]
    expect_findings: list[str] = field(default_factory=list)
    expect_absent: list[str] = field(default_factory=list)
    path: Path | None = None


@cache
def known_regions() -> frozenset[str]:
    """Every region of every partition botocore knows (read from its bundled data)."""
    import boto3

    session = boto3.session.Session()
    return frozenset(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("elb", partition_name=partition)
    )


def _require_mapping(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ScenarioError(f"{where} must be a mapping, not {type(value).__name__}.")
    return value


class _Problems:
    """Collects what is wrong, each at the line of the mapping that holds it."""

    def __init__(self, lines: dict[int, int]) -> None:
        self.lines = lines
        self.found: list[tuple[int, str]] = []

    def add(self, holder: object, message: str) -> None:
        self.found.append((self.lines.get(id(holder), 0), message))

    # -- typed reads: each reports a wrong type and returns a usable value ------------------

    def mapping(self, holder: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = holder.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(holder, f"{where} must be a mapping, not {shown(value)}")
            return {}
        return value

    def items(self, holder: dict[str, Any], key: str, where: str) -> list[Any]:
        value = holder.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.add(holder, f"{where} must be a list, not {shown(value)}")
            return []
        return value

    def entries(
        self, holder: dict[str, Any], key: str, where: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """``key`` as a mapping of name -> mapping; a null or scalar entry is reported."""
        found: list[tuple[str, dict[str, Any]]] = []
        for name, value in self.mapping(holder, key, where).items():
            if not isinstance(value, dict):
                self.add(
                    holder.get(key),
                    f"{where}.{name} must be a mapping, not {shown(value)}",
                )
                continue
            found.append((str(name), value))
        return found

    def names(
        self, holder: dict[str, Any], key: str, where: str, *, single: bool = False
    ) -> list[str]:
        """``key`` as a list of names; ``single`` also takes one name written alone."""
        value = holder.get(key)
        if value is None:
            return []
        if isinstance(value, str) and single:
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            # A lone name would be read letter by letter further on: say how to write it.
            such = f", such as [{value}]" if isinstance(value, str) else ""
            self.add(holder, f"{where} must be a list of names{such}, not {shown(value)}")
            return []
        return value

    def one_of(
        self, holder: dict[str, Any], key: str, where: str, allowed: tuple[str, ...]
    ) -> None:
        value = holder.get(key)
        if value is not None and str(value) not in allowed:
            self.add(holder, f"{where} is {shown(value)}; use one of {', '.join(allowed)}")

    def integer(
        self, holder: dict[str, Any], key: str, where: str, low: int, high: int
    ) -> int | None:
        value = holder.get(key)
        if value is None:
            return None
        number = _as_int(value)
        if number is None:
            self.add(holder, f"{where} is {shown(value)}, not a whole number")
        elif not low <= number <= high:
            self.add(holder, f"{where} is {number}, outside {low}-{high}")
        return number

    def required(self, holder: dict[str, Any], keys: tuple[str, ...], where: str) -> bool:
        missing = [k for k in keys if holder.get(k) is None]
        for key in missing:
            self.add(holder, f"{where} has no `{key}`")
        return not missing


class _Names:
    """The names each `aws` table defines. A table that could not be read lacks no name, so
    that one broken section is reported once, not again at every reference into it."""

    def __init__(self) -> None:
        self.tables: dict[str, set[str]] = {}
        self.broken: set[str] = set()

    def define(self, table: str, section: object) -> None:
        if section is not None and not isinstance(section, dict):
            self.broken.add(table)
        self.tables[table] = {str(name) for name in section} if isinstance(section, dict) else set()

    def lacks(self, table: str, name: object) -> bool:
        return table not in self.broken and str(name) not in self.tables.get(table, set())


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        return numbers.whole(value.strip(), signed=True)
    return None


def _port_range(value: object) -> tuple[int, int] | None:
    """(low, high) of ``80`` or ``30000-32767``; None when it is neither."""
    if isinstance(value, bool):
        return None
    low_text, _, high_text = str(value).partition("-")
    low, high = _as_int(low_text), _as_int(high_text or low_text)
    if low is None or high is None:
        return None
    return low, high


def _network(value: object) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return None


# ---- sections ---------------------------------------------------------------------------


def _check_cluster(data: dict[str, Any], p: _Problems) -> list[dict[str, Any]]:
    cluster = data.get("cluster")
    if cluster is None:
        p.add(data, "there is no `cluster`: a scenario needs the list of its Kubernetes objects")
        return []
    if not isinstance(cluster, list):
        p.add(data, f"`cluster` must be a list of Kubernetes objects, not {shown(cluster)}")
        return []
    objects: list[dict[str, Any]] = []
    for index, obj in enumerate(cluster, start=1):
        if not isinstance(obj, dict):
            p.add(data, f"cluster object #{index} must be a mapping, not {shown(obj)}")
            continue
        subject = f"cluster object #{index} ({label(obj)})"
        problems = shape_problems(obj)
        for problem in problems:
            p.add(problem.holder, f"{subject}: {problem.message}")
        if problems:
            continue
        if not obj.get("kind") or not (obj.get("metadata") or {}).get("name"):
            p.add(obj, f"cluster object #{index} has no kind or name")
            continue
        # The API server serves annotations only as strings; anything else here would
        # reach the checks in a shape no cluster returns.
        _, malformed = annotation_problems(obj, subject)
        meta = obj.get("metadata") or {}
        holder = meta.get("annotations") if isinstance(meta.get("annotations"), dict) else meta
        for finding in malformed:
            p.add(holder, finding.summary)
        objects.append(obj)
    return objects


def _check_rule(rule: object, where: str, holder: object, known: _Names, p: _Problems) -> None:
    if not isinstance(rule, dict):
        p.add(
            holder,
            f"{where} must be a mapping like {{protocol: tcp, ports: 80}}, not {shown(rule)}",
        )
        return
    protocol = str(rule.get("protocol", "all")).lower()
    number = numbers.whole(protocol)
    if protocol not in RULE_PROTOCOLS and not (number is not None and number <= 255):
        p.add(rule, f"{where}.protocol is {shown(rule.get('protocol'))}; use tcp, udp, icmp or all")
    if rule.get("ports") is not None:
        ports = _port_range(rule["ports"])
        if ports is None:
            p.add(rule, f"{where}.ports is {shown(rule['ports'])}, not a port or a range A-B")
        elif not 0 <= ports[0] <= ports[1] <= 65535:
            p.add(
                rule, f"{where}.ports is {cap(str(rule['ports']))}: ports run 0-65535, low to high"
            )
    for key in ("from", "to", "cidr"):
        if key not in rule:
            continue
        peer = rule[key]
        if not isinstance(peer, str):
            p.add(
                rule, f"{where}.{key} must be a CIDR, sg/NAME, pl/NAME or self, not {shown(peer)}"
            )
            continue
        kind, _, name = peer.partition("/")
        if peer == "self" and key != "cidr":
            continue
        if kind in ("sg", "pl") and name and key != "cidr":
            table = "security_groups" if kind == "sg" else "prefix_lists"
            if known.lacks(table, name):
                p.add(rule, f"{where}.{key} names {peer}, but aws.{table} has no {name!r}")
            continue
        if _network(peer) is None:
            p.add(rule, f"{where}.{key} is {shown(peer)}, not a CIDR such as 10.0.0.0/16")


def _check_attributes(
    holder: dict[str, Any], where: str, p: _Problems, classic: bool = False
) -> None:
    attributes = p.mapping(holder, "attributes", f"{where}.attributes")
    for key, value in attributes.items():
        at = f"{where}.attributes.{key}"
        if isinstance(value, dict | list):
            p.add(attributes, f"{at} must be a single value, not {shown(value)}")
        elif _FLAG_KEY.search(str(key)):
            if not (isinstance(value, bool) or str(value).lower() in ("true", "false")):
                p.add(attributes, f"{at} is {shown(value)}; use true or false")
        elif _SECONDS_KEY.search(str(key)):
            low, high = (1, 4000) if classic or str(key).startswith("idle_timeout") else (0, 6000)
            p.integer(attributes, str(key), at, low, high)


def _check_targets(spec: dict[str, Any], where: str, known: _Names, p: _Problems) -> None:
    targets = p.mapping(spec, "targets", f"{where}.targets")
    for key, value in targets.items():
        at = f"{where}.targets[{key!r}]"
        target, _, port_text = str(key).rpartition(":")
        if not target:
            target, port_text = port_text, str(spec.get("port", ""))
        port = _as_int(port_text)
        if port is None or not 1 <= port <= 65535:
            p.add(targets, f"{at}: {shown(port_text)} is not a port 1-65535")
        if target.startswith("i-"):
            if known.lacks("instances", target):
                p.add(targets, f"{at} names instance {target!r}, which aws.instances lacks")
        else:
            try:
                ipaddress.ip_address(target)
            except ValueError:
                p.add(targets, f"{at}: {shown(target)} is neither an IP address nor i-INSTANCE")
        state = value.get("state", "healthy") if isinstance(value, dict) else value
        if isinstance(value, list) or str(state) not in TARGET_STATES:
            p.add(
                targets, f"{at} has the state {shown(state)}; use one of {', '.join(TARGET_STATES)}"
            )


def _check_load_balancer(
    name: str,
    spec: dict[str, Any],
    known: _Names,
    served: set[str] | None,
    p: _Problems,
) -> set[str]:
    """Problems of one load balancer; returns the names of its target groups."""
    where = f"aws.load_balancers.{name}"
    lb_type = str(spec.get("type", "classic"))
    p.one_of(spec, "type", f"{where}.type", LB_TYPES)
    p.one_of(spec, "scheme", f"{where}.scheme", SCHEMES)
    for ref in p.names(spec, "for", f"{where}.for", single=True):
        if not _SERVED_REF.fullmatch(ref):
            p.add(
                spec,
                f"{where}.for is {shown(ref)}; write KIND/NAMESPACE/NAME, such as "
                "service/shop/web or ingress/shop/web",
            )
        elif served is not None and ref not in served:
            p.add(spec, f"{where}.for names {ref}, which is not among the `cluster` objects")
    for key, table in (("subnets", "subnets"), ("security_groups", "security_groups")):
        for item in p.names(spec, key, f"{where}.{key}"):
            if known.lacks(table, item):
                p.add(spec, f"{where}.{key} names {item!r}, which aws.{table} does not define")
    _check_attributes(spec, where, p, classic=lb_type == "classic")
    raw_groups = spec.get("target_groups")
    groups = {str(tg) for tg in raw_groups} if isinstance(raw_groups, dict) else set()
    for tg_name, tg in p.entries(spec, "target_groups", f"{where}.target_groups"):
        at = f"{where}.target_groups.{tg_name}"
        p.required(tg, ("port",), at)
        p.integer(tg, "port", f"{at}.port", 1, 65535)
        p.one_of(tg, "target_type", f"{at}.target_type", TARGET_TYPES)
        check = p.mapping(tg, "health_check", f"{at}.health_check")
        for key in ("interval", "timeout", "healthy_threshold", "unhealthy_threshold"):
            p.integer(check, key, f"{at}.health_check.{key}", 1, 300)
        if check.get("port") not in (None, "traffic-port"):
            p.integer(check, "port", f"{at}.health_check.port", 1, 65535)
        _check_attributes(tg, at, p)
        _check_targets(tg, at, known, p)
    for index, listener in enumerate(p.items(spec, "listeners", f"{where}.listeners")):
        at = f"{where}.listeners[{index}]"
        if not isinstance(listener, dict):
            p.add(
                spec,
                f"{at} must be a mapping like {{port: 80, protocol: HTTP}}, not {shown(listener)}",
            )
            continue
        needs = ("port", "instance_port") if lb_type == "classic" else ("port", "target_group")
        p.required(listener, needs, at)
        p.integer(listener, "port", f"{at}.port", 1, 65535)
        p.integer(listener, "instance_port", f"{at}.instance_port", 1, 65535)
        group = listener.get("target_group")
        if group is not None and str(group) not in groups:
            p.add(
                listener,
                f"{at}.target_group names {group!r}, which {where}.target_groups does not define",
            )
        _check_attributes(listener, at, p)
    for instance, state in p.mapping(spec, "instances", f"{where}.instances").items():
        if known.lacks("instances", instance):
            p.add(spec, f"{where}.instances names {instance!r}, which aws.instances lacks")
        shown_state = state.get("state", "InService") if isinstance(state, dict) else state
        if isinstance(state, list) or str(shown_state) not in INSTANCE_STATES:
            p.add(
                spec,
                f"{where}.instances.{instance} has the state {shown(shown_state)}; "
                f"use one of {', '.join(INSTANCE_STATES)}",
            )
    return groups


def _check_metrics(
    aws: dict[str, Any], known: _Names, groups: dict[str, set[str]], p: _Problems
) -> None:
    for lb_name, series_by_metric in p.entries(aws, "metrics", "aws.metrics"):
        where = f"aws.metrics.{lb_name}"
        if known.lacks("load_balancers", lb_name):
            p.add(aws.get("metrics"), f"{where}: aws.load_balancers has no {lb_name!r}")
            continue
        for metric, series in series_by_metric.items():
            at = f"{where}.{metric}"
            if not isinstance(series, dict):
                p.add(
                    series_by_metric,
                    f"{at} must be a mapping like {{stat: Sum, values: "
                    f"[...]}}, not {shown(series)}",
                )
                continue
            stat = series.get("stat")
            if stat is not None and not (
                str(stat) in STATISTICS or _PERCENTILE.fullmatch(str(stat))
            ):
                p.add(
                    series,
                    f"{at}.stat is {shown(stat)}; CloudWatch has "
                    f"{', '.join(STATISTICS)} and percentiles such as p99",
                )
            group = series.get("target_group")
            if group is not None and lb_name in groups and str(group) not in groups[lb_name]:
                p.add(
                    series,
                    f"{at}.target_group names {group!r}, which is not a target group of {lb_name}",
                )
            values = p.items(series, "values", f"{at}.values")
            if len(values) > MAX_SERIES_POINTS:
                p.add(
                    series,
                    f"{at}.values holds {len(values):,} points; at most "
                    f"{MAX_SERIES_POINTS:,} (14 days of one a minute, what CloudWatch keeps)",
                )
                continue
            for index, value in enumerate(values):
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    p.add(
                        series,
                        f"{at}.values[{index}] is {shown(value)}, not a number "
                        "(or null for a minute without data)",
                    )
                    break
                if not math.isfinite(value):
                    p.add(
                        series,
                        f"{at}.values[{index}] is {value}; CloudWatch takes only finite numbers",
                    )
                    break


def _check_network(aws: dict[str, Any], known: _Names, p: _Problems) -> None:
    region = aws.get("region")
    region_ok = region is None or (isinstance(region, str) and region in known_regions())
    if not region_ok:
        p.add(aws, f"aws.region is {shown(region)}, which is not an AWS region (e.g. us-east-1)")
    vpc = p.mapping(aws, "vpc", "aws.vpc")
    vpc_net = _network(vpc.get("cidr", "10.0.0.0/16"))
    if vpc_net is None or vpc_net.version != 4:
        p.add(vpc, f"aws.vpc.cidr is {shown(vpc.get('cidr'))}, not an IPv4 CIDR like 10.0.0.0/16")
        vpc_net = None
    known.define("subnets", aws.get("subnets"))
    for name, subnet in p.entries(aws, "subnets", "aws.subnets"):
        where = f"aws.subnets.{name}"
        if not p.required(subnet, ("cidr", "az"), where):
            continue
        net = _network(subnet["cidr"])
        if net is None:
            p.add(subnet, f"{where}.cidr is {shown(subnet['cidr'])}, not a CIDR")
        elif isinstance(vpc_net, ipaddress.IPv4Network) and not (
            isinstance(net, ipaddress.IPv4Network) and net.subnet_of(vpc_net)
        ):
            p.add(subnet, f"{where}.cidr {net} is not inside the VPC's {vpc_net}")
        if region_ok and not str(subnet["az"]).startswith(str(region or "us-east-1")):
            p.add(subnet, f"{where}.az is {shown(subnet['az'])}, not a zone of {region}")
    known.define("prefix_lists", p.mapping(aws, "prefix_lists", "aws.prefix_lists"))
    for name, cidrs in (aws.get("prefix_lists") or {}).items():
        if not isinstance(cidrs, list) or any(_network(c) is None for c in cidrs):
            p.add(aws["prefix_lists"], f"aws.prefix_lists.{name} must be a list of CIDRs")


def _check_firewalls(aws: dict[str, Any], known: _Names, p: _Problems) -> None:
    groups = p.mapping(aws, "security_groups", "aws.security_groups")
    known.define("security_groups", aws.get("security_groups"))
    for name, rules in groups.items():
        if not isinstance(rules, dict):
            p.add(
                groups,
                f"aws.security_groups.{name} must be a mapping with ingress and "
                f"egress lists ({{}} for a group without rules), not {shown(rules)}",
            )
            continue
        for direction in ("ingress", "egress"):
            where = f"aws.security_groups.{name}.{direction}"
            for index, rule in enumerate(p.items(rules, direction, where)):
                _check_rule(rule, f"{where}[{index}]", rules, known, p)
    for name, acl in p.entries(aws, "network_acls", "aws.network_acls"):
        for subnet in p.names(acl, "subnets", f"aws.network_acls.{name}.subnets"):
            if known.lacks("subnets", subnet):
                p.add(
                    acl,
                    f"aws.network_acls.{name}.subnets names {subnet!r}, which "
                    "aws.subnets does not define",
                )
        for direction in ("inbound", "outbound"):
            where = f"aws.network_acls.{name}.{direction}"
            numbers: set[int] = set()
            for index, entry in enumerate(p.items(acl, direction, where)):
                at = f"{where}[{index}]"
                _check_rule(entry, at, acl, known, p)
                if not isinstance(entry, dict) or not p.required(entry, ("rule",), at):
                    continue
                number = p.integer(entry, "rule", f"{at}.rule", 1, 32766)
                if number is not None and number in numbers:
                    p.add(entry, f"{at}.rule {number} is used twice in {where}")
                numbers.add(number or 0)
                p.one_of(entry, "action", f"{at}.action", ACL_ACTIONS)


def _check_aws(aws: dict[str, Any], served: set[str] | None, p: _Problems) -> None:
    known = _Names()
    _check_network(aws, known, p)
    _check_firewalls(aws, known, p)
    known.define("instances", aws.get("instances"))
    for instance, facts in p.entries(aws, "instances", "aws.instances"):
        where = f"aws.instances.{instance}"
        if p.required(facts, ("subnet",), where) and known.lacks("subnets", facts["subnet"]):
            p.add(
                facts,
                f"{where}.subnet names {facts['subnet']!r}, which aws.subnets does not define",
            )
        for group in p.names(facts, "security_groups", f"{where}.security_groups"):
            if known.lacks("security_groups", group):
                p.add(
                    facts,
                    f"{where}.security_groups names {group!r}, which "
                    "aws.security_groups does not define",
                )
    known.define("load_balancers", aws.get("load_balancers"))
    target_groups: dict[str, set[str]] = {}
    for name, spec in p.entries(aws, "load_balancers", "aws.load_balancers"):
        target_groups[name] = _check_load_balancer(name, spec, known, served, p)
    _check_metrics(aws, known, target_groups, p)


def _check_exec(data: dict[str, Any], p: _Problems) -> dict[str, dict[str, Any]]:
    section = p.mapping(data, "exec", "`exec`")
    usable: dict[str, dict[str, Any]] = {}
    for target, settings in section.items():
        where = f"exec.{target}"
        if "/" not in str(target):
            p.add(section, f"{where}: name a pod as NAMESPACE/POD or a node as node/NAME")
        if settings is None:
            usable[str(target)] = {}
            continue
        if not isinstance(settings, dict):
            p.add(
                section,
                f"{where} must be a mapping of sysctl settings such as "
                f"{{net.ipv4.tcp_keepalive_time: 7200}}, not {shown(settings)}",
            )
            continue
        for key, value in settings.items():
            if _as_int(value) is None:
                p.add(settings, f"{where}.{key} is {shown(value)}, not a whole number")
        usable[str(target)] = dict(settings)
    return usable


def _check_top(data: dict[str, Any], p: _Problems) -> None:
    for key in ("ask", "summary", "cluster_name"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            p.add(data, f"`{key}` must be a string, not {shown(value)}")
    cluster_name = data.get("cluster_name")
    if isinstance(cluster_name, str) and not is_cluster_name(cluster_name):
        p.add(data, f"`cluster_name` is {shown(cluster_name)}: {CLUSTER_RULE}")
    expect = p.mapping(data, "expect", "`expect`")
    for key in ("findings", "absent"):
        p.names(expect, key, f"expect.{key}", single=True)


def _served_refs(cluster: list[dict[str, Any]]) -> set[str]:
    refs: set[str] = set()
    for obj in cluster:
        meta = obj.get("metadata") or {}
        refs.add(
            f"{str(obj.get('kind', '')).lower()}/{meta.get('namespace', 'default')}/"
            f"{meta.get('name', '')}"
        )
    return refs


def _refuse(path: Path, problems: list[tuple[int, str]]) -> ScenarioError:
    lines = [
        f"{path}:{line}: {text.rstrip('.')}" if line else f"{path}: {text.rstrip('.')}"
        for line, text in problems
    ]
    shown_lines = lines[:MAX_LISTED]
    if len(lines) > MAX_LISTED:
        shown_lines.append(f"... and {len(lines) - MAX_LISTED} more")
    if len(lines) == 1:
        return ScenarioError(f"{lines[0]}.", "Fix the scenario file and run again.")
    return ScenarioError(
        f"{path} has {len(lines)} problems:\n  " + "\n  ".join(shown_lines),
        "\nFix the scenario file and run again.",
    )


def _read(path: Path) -> tuple[Any, dict[int, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(
            f"Scenario file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at "
            f"offset {exc.start}).",
            "Save it as UTF-8; scenario files are YAML text.",
        ) from exc
    except OSError as exc:
        raise ScenarioError(
            f"Cannot read scenario file {path}: {exc.strerror or exc}.",
            "Check the path; bundled scenarios are in sandbox/scenarios/.",
        ) from exc
    try:
        documents = read_yaml(text)
    except YamlRefused as exc:
        where = f"{path}:{exc.line}" if exc.line else str(path)
        raise ScenarioError(f"{where}: {exc.reason}.") from exc
    if len(documents) > 1:
        raise ScenarioError(
            f"Scenario file {path} holds {len(documents)} YAML documents; a scenario is one."
        )
    return documents[0] if documents else (None, {})


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario file; errors say which file, line and key is wrong."""
    path = Path(path)
    data, lines = _read(path)
    if data is None:
        raise ScenarioError(
            f"Scenario file {path} is empty.",
            "A scenario needs at least `cluster`, the list of its Kubernetes objects; see "
            "docs/scenario-format.md.",
        )
    data = _require_mapping(data, f"Scenario file {path}")
    problems = _Problems(lines)
    _check_top(data, problems)
    cluster = _check_cluster(data, problems)
    aws = problems.mapping(data, "aws", "`aws`")
    # References into `cluster` are judged only when every object read well.
    served = _served_refs(cluster) if not problems.found else None
    _check_aws(aws, served, problems)
    exec_section = _check_exec(data, problems)
    if problems.found:
        raise _refuse(path, problems.found)
    expect = data.get("expect") or {}
    scenario = Scenario(
        id=str(data.get("id", path.stem)),
        summary=" ".join(str(data.get("summary", "")).split()),
        ask=str(data.get("ask", "")),
        cluster_name=str(data.get("cluster_name", "demo")),
        cluster=cluster,
        aws=aws,
        exec=exec_section,
        expect_findings=_listed(expect.get("findings")),
        expect_absent=_listed(expect.get("absent")),
        path=path,
    )
    logger.debug("loaded scenario %s from %s", scenario.id, path)
    return scenario


def _listed(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []
