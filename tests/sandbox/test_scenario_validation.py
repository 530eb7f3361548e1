"""`sandbox.scenario.load`: a broken scenario file is refused with the file, line and key
that are wrong, before anything starts; what still fails while seeding names the step."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from checks.errors import ScenarioError
from sandbox.scenario import BUNDLED_DIR, MAX_SERIES_POINTS, Scenario, load
from sandbox.world import World

ROOT = Path(__file__).resolve().parents[2]
BROKEN = ROOT / "tests" / "fixtures" / "broken-scenarios"
BASE = BUNDLED_DIR / "s1-alb-idle-timeout-short.yaml"
CLASSIC = BUNDLED_DIR / "s2-clb-nginx-keepalive-30s.yaml"
LB = "k8s-shop-reports-4f1e2d3c4b"


def _obj(data: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(o for o in data["cluster"] if o["kind"] == kind)


def _lb(data: dict[str, Any]) -> dict[str, Any]:
    lb: dict[str, Any] = data["aws"]["load_balancers"][LB]
    return lb


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set ``aws.subnets.public-a.az``-style ``path`` (list items as numbers)."""

    def change(data: dict[str, Any]) -> None:
        keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split("|")]
        holder: Any = data
        for key in keys[:-1]:
            holder = holder[key]
        holder[keys[-1]] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        keys = path.split("|")
        holder: Any = data
        for key in keys[:-1]:
            holder = holder[key]
        del holder[keys[-1]]

    return change


def _write(tmp_path: Path, change: Callable[[dict[str, Any]], None], base: Path = BASE) -> Path:
    data = yaml.safe_load(base.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _refusal(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load(path)
    return str(caught.value)


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "metadata-string",
        _set("cluster|0|metadata", "x"),
        "cluster object #1 (Ingress (no name)): metadata must be a mapping, not 'x'",
    ),
    (
        "annotations-list",
        _set("cluster|0|metadata|annotations", ["a"]),
        "cluster object #1 (Ingress shop/reports) has metadata.annotations as a list",
    ),
    (
        "annotation-number",
        _set("cluster|0|metadata|annotations|alb.ingress.kubernetes.io/scheme", 5),
        "cluster object #1 (Ingress shop/reports) has the annotation "
        "alb.ingress.kubernetes.io/scheme with a number as its value (5)",
    ),
    (
        "rules-string",
        _set("cluster|0|spec|rules", "x"),
        "cluster object #1 (Ingress shop/reports): spec.rules must be a list, not 'x'",
    ),
    (
        "selector-list",
        _set("cluster|1|spec|selector", ["app"]),
        "cluster object #2 (Service shop/reports): spec.selector must be a mapping of strings, "
        "not a list",
    ),
    ("null-object", _set("cluster|2", None), "cluster object #3 must be a mapping, not null"),
    ("ask-number", _set("ask", 12), "`ask` must be a string, not 12"),
    (
        "cluster-name-empty",
        _set("cluster_name", ""),
        "`cluster_name` is '': use at most 100 letters, digits, '-' or '_', starting with a "
        "letter (an EKS cluster name)",
    ),
    (
        "cluster-name-path",
        _set("cluster_name", "a b/../x"),
        "`cluster_name` is 'a b/../x': use at most 100 letters",
    ),
    ("exec-string", _set("exec", {"pod": "abc"}), "exec.pod: name a pod as NAMESPACE/POD"),
    (
        "exec-value-string",
        _set("exec|shop/reports-7f6d9-abcde", "abc"),
        "exec.shop/reports-7f6d9-abcde must be a mapping of sysctl settings",
    ),
    ("region-unknown", _set("aws|region", "mars-1"), "aws.region is 'mars-1', which is not an AWS"),
    (
        "subnets-list",
        _set("aws|subnets", ["public-a"]),
        "aws.subnets must be a mapping, not a list",
    ),
    ("subnets-string", _set("aws|subnets", "public-a"), "aws.subnets must be a mapping, not 'pub"),
    ("subnet-no-az", _delete("aws|subnets|public-a|az"), "aws.subnets.public-a has no `az`"),
    ("subnet-no-cidr", _delete("aws|subnets|nodes-a|cidr"), "aws.subnets.nodes-a has no `cidr`"),
    ("subnet-null", _set("aws|subnets|public-a", None), "aws.subnets.public-a must be a mapping"),
    (
        "sg-null",
        _set("aws|security_groups|alb", None),
        "aws.security_groups.alb must be a mapping with ingress and egress lists ({} for a "
        "group without rules), not null",
    ),
    (
        "sg-ingress-string",
        _set("aws|security_groups|alb|ingress", "all"),
        "aws.security_groups.alb.ingress must be a list, not 'all'",
    ),
    (
        "sg-ingress-strings",
        _set("aws|security_groups|alb|ingress", ["tcp 80"]),
        "aws.security_groups.alb.ingress[0] must be a mapping like {protocol: tcp, ports: 80}, "
        "not 'tcp 80'",
    ),
    (
        "sg-port-too-high",
        _set("aws|security_groups|alb|ingress|0|ports", 99999),
        "aws.security_groups.alb.ingress[0].ports is 99999: ports run 0-65535, low to high",
    ),
    (
        "sg-port-range-backwards",
        _set("aws|security_groups|alb|ingress|0|ports", "90-80"),
        "aws.security_groups.alb.ingress[0].ports is 90-80: ports run 0-65535, low to high",
    ),
    (
        "lb-attribute-not-a-number",
        _set(f"aws|load_balancers|{LB}|attributes|idle_timeout.timeout_seconds", "abc"),
        f"aws.load_balancers.{LB}.attributes.idle_timeout.timeout_seconds is 'abc', not a whole "
        "number",
    ),
    (
        "lb-attribute-too-long",
        _set(f"aws|load_balancers|{LB}|attributes|idle_timeout.timeout_seconds", "9" * 5000),
        f"aws.load_balancers.{LB}.attributes.idle_timeout.timeout_seconds is "
        "99999999999999999999\u2026 (5,000 digits), outside 1-4000",
    ),
    (
        "sg-protocol-superscript",
        _set("aws|security_groups|alb|ingress|0|protocol", "\u00b2"),
        "aws.security_groups.alb.ingress[0].protocol is '\u00b2'; use tcp, udp, icmp or all",
    ),
    (
        "exec-value-foreign-digits",
        _set("exec|shop/reports-7f6d9-abcde|net.ipv4.tcp_keepalive_time", "\u0663\u0660"),
        "exec.shop/reports-7f6d9-abcde.net.ipv4.tcp_keepalive_time is '\u0663\u0660', "
        "not a whole number",
    ),
    (
        "lb-for-missing",
        _set(f"aws|load_balancers|{LB}|for", "ingress/shop/nope"),
        f"aws.load_balancers.{LB}.for names ingress/shop/nope, which is not among the `cluster`",
    ),
    (
        "listener-port-string",
        _set(f"aws|load_balancers|{LB}|listeners|0|port", "http"),
        f"aws.load_balancers.{LB}.listeners[0].port is 'http', not a whole number",
    ),
    (
        "metric-stat",
        _set(f"aws|metrics|{LB}|TargetResponseTime|stat", "Median"),
        f"aws.metrics.{LB}.TargetResponseTime.stat is 'Median'; CloudWatch has SampleCount, ",
    ),
    (
        "metric-value-string",
        _set(f"aws|metrics|{LB}|RequestCount|values|2", "many"),
        f"aws.metrics.{LB}.RequestCount.values[2] is 'many', not a number",
    ),
    (
        "metric-too-long",
        _set(f"aws|metrics|{LB}|RequestCount|values", [1] * (MAX_SERIES_POINTS + 1)),
        f"aws.metrics.{LB}.RequestCount.values holds 20,161 points; at most 20,160",
    ),
    (
        "metric-unknown-lb",
        _set("aws|metrics|ghost", {"RequestCount": {"stat": "Sum", "values": [1]}}),
        "aws.metrics.ghost: aws.load_balancers has no 'ghost'",
    ),
]


@pytest.mark.parametrize(("change", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_broken_scenario_is_refused_naming_file_line_and_key(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = _write(tmp_path, change)
    refusal = _refusal(path)
    assert re.search(rf"(^|\n  ){re.escape(str(path))}:\d+: {re.escape(message)}", refusal), refusal


CLASSIC_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "pod-ip-not-an-ip",
        _set("cluster|2|status|podIP", "not-an-ip"),
        "cluster object #3 (Pod web/frontend-5c8b7-q2w3e): status.podIP must be an IP address, "
        "not 'not-an-ip'",
    ),
    (
        "volume-configmap-string",
        _set("cluster|2|spec|volumes|0|configMap", "frontend-nginx"),
        "cluster object #3 (Pod web/frontend-5c8b7-q2w3e): spec.volumes[0].configMap must be a "
        "mapping, not 'frontend-nginx'",
    ),
    (
        "volume-mount-string",
        _set("cluster|2|spec|containers|0|volumeMounts", ["conf"]),
        "cluster object #3 (Pod web/frontend-5c8b7-q2w3e): "
        "spec.containers[0].volumeMounts[0] must be a mapping, not 'conf'",
    ),
    (
        "instance-groups-string",
        _set("aws|instances|i-0b2200000000000a1|security_groups", "nodes"),
        "aws.instances.i-0b2200000000000a1.security_groups must be a list of names, such as "
        "[nodes], not 'nodes'",
    ),
    (
        "lb-subnets-string",
        _set("aws|load_balancers|a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60|subnets", "public-a"),
        "aws.load_balancers.a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60.subnets must be a list of names, "
        "such as [public-a], not 'public-a'",
    ),
]


@pytest.mark.parametrize(
    ("change", "message"), [c[1:] for c in CLASSIC_CASES], ids=[c[0] for c in CLASSIC_CASES]
)
def test_values_the_checks_would_misread_are_refused(
    tmp_path: Path, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    path = _write(tmp_path, change, CLASSIC)
    refusal = _refusal(path)
    assert re.search(rf"(^|\n  ){re.escape(str(path))}:\d+: {re.escape(message)}", refusal), refusal


def test_a_lone_name_is_still_taken_where_the_format_allows_one(tmp_path: Path) -> None:
    path = _write(tmp_path, _set("expect|findings", "BACKEND_CONNECTION_ERRORS"), CLASSIC)
    assert load(path).expect_findings == ["BACKEND_CONNECTION_ERRORS"]


def test_classic_instance_state_and_port_are_checked(tmp_path: Path) -> None:
    def change(data: dict[str, Any]) -> None:
        (name,) = data["aws"]["load_balancers"]
        lb = data["aws"]["load_balancers"][name]
        lb["instances"] = {next(iter(data["aws"]["instances"])): "Sleeping"}
        lb["listeners"][0]["instance_port"] = 70000

    refusal = _refusal(_write(tmp_path, change, CLASSIC))
    assert refusal.startswith(f"{tmp_path / 'scenario.yaml'} has 2 problems:\n")
    assert "has the state 'Sleeping'; use one of InService, OutOfService, Unknown" in refusal
    assert "listeners[0].instance_port is 70000, outside 1-65535" in refusal


def test_one_broken_section_is_reported_once(tmp_path: Path) -> None:
    refusal = _refusal(_write(tmp_path, _set("aws|subnets", ["public-a"])))
    assert refusal == (
        f"{tmp_path / 'scenario.yaml'}:"
        f"{refusal.split(':')[1]}: aws.subnets must be a mapping, not a list. "
        "Fix the scenario file and run again."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id: caf\xe9\n", "is not UTF-8 text (byte 0xe9 at offset 7)"),
        (b"\xff\xfei\x00d\x00", "is not UTF-8 text (byte 0xff at offset 0)"),
        (b"id: x\x00\n", ":1: not valid YAML (control character #x0000"),
    ],
    ids=["latin-1", "binary", "nul"],
)
def test_unreadable_scenario_bytes_are_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(content)
    assert message in _refusal(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "Scenario file {path} is empty. A scenario needs at least `cluster`, the list"),
        ("# nothing yet\n", "Scenario file {path} is empty. A scenario needs at least"),
        ("id: x\n", "{path}:1: there is no `cluster`: a scenario needs the list of its"),
        ("cluster:\n", "{path}:1: there is no `cluster`: a scenario needs the list of its"),
    ],
    ids=["empty", "comment", "no-cluster", "null-cluster"],
)
def test_scenario_without_cluster_is_refused(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    assert _refusal(path).startswith(message.format(path=path))


def test_scenario_that_gives_a_key_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    text = BASE.read_text(encoding="utf-8")
    path.write_text(text + "cluster_name: first\ncluster_name: second\n", encoding="utf-8")
    lines = text.count("\n")
    assert _refusal(path).startswith(
        f"{path}:{lines + 2}: the key `cluster_name` is given twice in one mapping (first at "
        f"line {lines + 1}): YAML keeps only the last value"
    )


def test_latin1_fixture_is_refused() -> None:
    assert "is not UTF-8 text" in _refusal(BROKEN / "latin1.yaml")


def test_alias_bomb_in_a_scenario_is_refused_fast() -> None:
    started = time.monotonic()
    refusal = _refusal(BROKEN / "alias-bomb.yaml")
    assert time.monotonic() - started < 2.0
    assert refusal.startswith(f"{BROKEN / 'alias-bomb.yaml'}:5: too many aliases")


def test_deep_scenario_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text("cluster: " + "[" * 500 + "]" * 500 + "\n")
    assert _refusal(path).startswith(f"{path}:1: nested too deeply (more than 100 levels")


@pytest.mark.parametrize("path", sorted(BUNDLED_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_bundled_scenario_passes_validation(path: Path) -> None:
    scenario = load(path)
    assert scenario.cluster and scenario.aws


def test_failure_while_starting_names_the_scenario_and_the_step() -> None:
    good = load(BASE)
    node = copy.deepcopy(_obj({"cluster": good.cluster}, "Node"))
    node["spec"] = ["not", "a", "mapping"]
    scenario = Scenario(
        id="T1",
        summary="",
        ask="shop/reports",
        cluster_name="demo",
        cluster=[node],
        aws=good.aws,
        exec={},
        path=Path("t1.yaml"),
    )
    world = World(scenario)
    with pytest.raises(ScenarioError) as caught:
        world.start()
    assert str(caught.value).startswith(
        "Scenario T1 (t1.yaml) could not be set up while giving the `cluster` objects their "
        "AWS ids: AttributeError: "
    )
    assert world.aws.endpoint_url is None or world.kube is None
