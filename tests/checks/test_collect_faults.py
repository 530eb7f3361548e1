"""Faults on one call leave the rest of the report standing: AWS AccessDenied and
throttling injected in front of the local AWS endpoint, Kubernetes 403s from the local API
server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from checks.collect.snapshot import collect
from checks.collect.sysctls import _exec_failure
from checks.errors import AccessError
from checks.models import Report, Status
from checks.run import build_report
from checks.snapshot import Snapshot
from sandbox.scenario import BUNDLED_DIR, load
from sandbox.world import World


@pytest.fixture
def world() -> Iterator[World]:
    with World(load(BUNDLED_DIR / "s3-clb-nacl-ephemeral.yaml")) as running:
        yield running


def _report(world: World) -> Report:
    assert world.connection is not None
    return build_report(collect("api", "orders", world.connection))


def _finding(report: Report, code: str) -> tuple[Status, str]:
    found = [f for f in report.findings if f.code == code]
    assert found, f"{code} missing"
    return found[0].status, " ".join(found[0].evidence)


def test_access_denied_on_instance_health_makes_that_part_unknown(world: World) -> None:
    world.aws.inject_error("DescribeInstanceHealth", "AccessDenied", "not authorized")
    report = _report(world)
    status, evidence = _finding(report, "TARGETS_UNHEALTHY")
    assert status is Status.UNKNOWN
    assert "elasticloadbalancing:DescribeInstanceHealth" in evidence
    # The rest of the report stands.
    assert _finding(report, "BACKEND_CONNECTION_ERRORS")[0] is Status.FAIL


def test_access_denied_on_metrics_names_the_iam_action(world: World) -> None:
    world.aws.inject_error("GetMetricData", "AccessDenied", "not authorized")
    report = _report(world)
    status, evidence = _finding(report, "BACKEND_CONNECTION_ERRORS")
    assert status is Status.UNKNOWN
    assert "cloudwatch:GetMetricData" in evidence
    assert _finding(report, "NACL_BLOCKS_EPHEMERAL")[0] is Status.FAIL


NETWORK_CODES = (
    "LB_AZ_GAP",
    "LB_SUBNET_NOT_PUBLIC",
    "NACL_BLOCKS_TRAFFIC",
    "NACL_BLOCKS_EPHEMERAL",
    "NO_HEALTHY_TARGET_IN_AZ",
    "SG_BLOCKS_TRAFFIC",
)


@pytest.mark.parametrize(
    ("action", "unknown"),
    [
        ("DescribeNetworkAcls", {"NACL_BLOCKS_TRAFFIC", "NACL_BLOCKS_EPHEMERAL"}),
        ("DescribeRouteTables", {"LB_SUBNET_NOT_PUBLIC"}),
    ],
)
def test_a_refused_network_call_leaves_unknown_only_the_checks_that_need_it(
    world: World, action: str, unknown: set[str]
) -> None:
    world.aws.inject_error(action, "UnauthorizedOperation", "not authorized")
    report = _report(world)

    statuses = {code: _finding(report, code) for code in NETWORK_CODES}
    assert {code for code, (status, _) in statuses.items() if status is Status.UNKNOWN} == unknown
    for code in unknown:
        assert f"ec2:{action}" in statuses[code][1]
    # The subnets were read: the zone checks judge them.
    assert statuses["LB_AZ_GAP"][0] is Status.PASS
    assert statuses["SG_BLOCKS_TRAFFIC"][0] is Status.PASS


def test_throttling_is_retried_with_backoff(world: World) -> None:
    world.aws.inject_error("GetMetricData", "Throttling", "Rate exceeded", times=2)
    report = _report(world)
    assert _finding(report, "BACKEND_CONNECTION_ERRORS")[0] is Status.FAIL


def test_access_denied_on_finding_the_load_balancer_stops_with_the_action(
    world: World,
) -> None:
    world.aws.inject_error("DescribeLoadBalancers", "AccessDenied", "not authorized")
    assert world.connection is not None
    with pytest.raises(AccessError) as raised:
        collect("api", "orders", world.connection)
    assert "elasticloadbalancing:DescribeLoadBalancers" in str(raised.value)


def test_kubernetes_403_on_pods_is_reported_with_the_rbac_verb(world: World) -> None:
    assert world.kube is not None
    world.kube.forbid("list", "pods", "api")
    report = _report(world)
    needs = "RBAC verb `list` on `pods` in namespace api"
    saying = [f for f in report.findings if any(needs in e for e in f.evidence)]
    assert saying and all(f.status is Status.UNKNOWN for f in saying)


def test_a_part_no_check_needs_is_still_reported_as_not_read(world: World) -> None:
    world.aws.inject_error("DescribeTags", "AccessDenied", "not authorized")
    report = _report(world)
    unread = [f for f in report.findings if f.code == "NOT_READ"]
    assert [f.status for f in unread] == [Status.UNKNOWN]
    assert "elasticloadbalancing:DescribeTags" in " ".join(unread[0].evidence)


def test_kubernetes_403_on_the_service_stops_with_the_rbac_verb(world: World) -> None:
    assert world.kube is not None
    world.kube.forbid("get", "services", "api")
    assert world.connection is not None
    with pytest.raises(AccessError) as raised:
        collect("api", "orders", world.connection)
    assert "RBAC verb `get` on `services` in namespace api" in str(raised.value)


def _collect_bundled(name: str, ask: str, setup: Callable[[World], None] | None = None) -> Snapshot:
    with World(load(BUNDLED_DIR / name)) as running:
        assert running.connection is not None
        if setup is not None:
            setup(running)
        namespace, _, service = ask.partition("/")
        return collect(namespace, service, running.connection)


def test_prefix_lists_named_by_collected_groups_are_read_with_their_entries() -> None:
    snapshot = _collect_bundled("x3-alb-prefix-list-missing-subnet.yaml", "orders/api")

    [prefix_list_id] = snapshot.prefix_lists
    assert prefix_list_id.startswith("pl-")
    assert snapshot.prefix_lists[prefix_list_id] == ("10.0.1.0/24", "10.0.2.0/24")
    assert [g for g in snapshot.gaps if g.area == "prefix-lists"] == []


def test_access_denied_on_prefix_list_entries_leaves_the_rule_unknown() -> None:
    def deny(world: World) -> None:
        world.aws.inject_error("GetManagedPrefixListEntries", "UnauthorizedOperation", "denied")

    snapshot = _collect_bundled("x3-alb-prefix-list-missing-subnet.yaml", "orders/api", deny)
    report = build_report(snapshot)

    assert snapshot.prefix_lists == {}
    status, evidence = _finding(report, "SG_BLOCKS_TRAFFIC")
    assert status is Status.UNKNOWN
    assert "the IAM action `ec2:GetManagedPrefixListEntries`" in evidence


def test_security_group_policies_and_their_accounts_are_collected_with_real_ids() -> None:
    snapshot = _collect_bundled("x4-alb-pod-security-group-policy.yaml", "payments/ledger")

    [policy] = snapshot.security_group_policies
    [group_id] = policy["spec"]["securityGroups"]["groupIds"]
    assert group_id in snapshot.security_groups
    assert snapshot.security_groups[group_id].name == "ledger-pods"
    assert [a["metadata"]["name"] for a in snapshot.service_accounts] == ["ledger"]


def test_kubernetes_403_on_security_group_policies_makes_the_groups_unknown() -> None:
    def forbid(world: World) -> None:
        assert world.kube is not None
        world.kube.forbid("list", "securitygrouppolicies.vpcresources.k8s.aws", "payments")

    snapshot = _collect_bundled("x4-alb-pod-security-group-policy.yaml", "payments/ledger", forbid)
    status, evidence = _finding(build_report(snapshot), "SG_BLOCKS_TRAFFIC")

    assert status is Status.UNKNOWN
    assert "RBAC verb `list` on `securitygrouppolicies` in namespace payments" in evidence


@pytest.mark.parametrize(
    ("scenario", "namespace", "service", "code"),
    [
        ("s2-clb-nginx-keepalive-30s.yaml", "web", "frontend", "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"),
        ("s5-nlb-idle-pool-resets.yaml", "db", "pgbouncer", "TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT"),
    ],
)
def test_pods_that_cannot_be_listed_leave_the_keepalive_checks_unknown_not_silent(
    scenario: str, namespace: str, service: str, code: str
) -> None:
    with World(load(BUNDLED_DIR / scenario)) as running:
        assert running.kube is not None and running.connection is not None
        running.kube.forbid("list", "pods", namespace)
        report = build_report(collect(namespace, service, running.connection))
    status, evidence = _finding(report, code)
    assert status is Status.UNKNOWN
    assert f"RBAC verb `list` on `pods` in namespace {namespace}" in evidence


def test_kubernetes_403_on_pod_exec_names_the_rbac_permission_in_plain_words() -> None:
    def forbid(world: World) -> None:
        assert world.kube is not None
        world.kube.forbid("create", "pods/exec", "web")

    snapshot = _collect_bundled("s2-clb-nginx-keepalive-30s.yaml", "web/frontend", forbid)
    report = build_report(snapshot)

    refused = (
        "Kubernetes refused to exec in the pod: needs RBAC `create` on `pods/exec` in namespace web"
    )
    pods = {k: v for k, v in snapshot.sysctls.items() if not k.startswith("node/")}
    assert len(pods) == 2
    assert {s.error for s in pods.values()} == {refused}
    shown = " ".join(r.source for r in report.ladder) + " ".join(
        e for f in report.findings for e in f.evidence
    )
    assert refused in shown
    assert "Handshake" not in shown and "-+-+-" not in shown


def test_exec_refused_for_another_reason_shows_the_api_servers_message() -> None:
    reason = (
        "Handshake status 404 Not Found -+-+- {'content-type': 'application/json'} -+-+- "
        '{"kind": "Status", "message": "pods \\"web-1\\" not found", "code": 404}'
    )
    assert _exec_failure("web", 0, reason) == 'exec failed with HTTP 404: pods "web-1" not found'


def test_configmaps_that_cannot_be_listed_leave_a_mounted_server_config_unknown() -> None:
    with World(load(BUNDLED_DIR / "s2-clb-nginx-keepalive-30s.yaml")) as running:
        assert running.kube is not None and running.connection is not None
        running.kube.forbid("list", "configmaps", "web")
        report = build_report(collect("web", "frontend", running.connection))
    status, evidence = _finding(report, "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT")
    assert status is Status.UNKNOWN
    assert "could not be read" in evidence
