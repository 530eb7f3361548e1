"""TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT on snapshots built from the bundled scenarios."""

from __future__ import annotations

from checks.models import Finding, Status
from checks.rules import tcp_keepalive
from checks.snapshot import MetricSeries, Snapshot, Sysctls
from tests.checks.test_app_keepalive import scenario_snapshot

CODE = "TCP_KEEPALIVE_ABOVE_NLB_IDLE_TIMEOUT"
KEEPALIVE = {
    "net.ipv4.tcp_keepalive_time": 7200,
    "net.ipv4.tcp_keepalive_intvl": 75,
    "net.ipv4.tcp_keepalive_probes": 9,
}


def _ours(snapshot: Snapshot) -> list[Finding]:
    findings = tcp_keepalive.judge(snapshot)
    assert all(f.code == CODE for f in findings)
    return findings


def _set_time(snapshot: Snapshot, subject: str, seconds: int) -> None:
    values = {**KEEPALIVE, "net.ipv4.tcp_keepalive_time": seconds}
    snapshot.sysctls[subject] = Sysctls(subject, values)


# ---- the scenarios ------------------------------------------------------------------------


def test_nlb_with_resets_and_default_keepalive_fails_once_for_both_pods() -> None:
    (finding,) = _ours(scenario_snapshot("s5-nlb-idle-pool-resets"))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "TCP keepalive starts after 7200 s, not before the NLB k8s-db-pgbouncer-5d4c3b2a1f "
        "forgets idle flows at 350 s, and the NLB is resetting connections"
    )
    assert finding.evidence[:2] == (
        "db/pgbouncer-a, db/pgbouncer-b: tcp_keepalive_time 7200, tcp_keepalive_intvl 75, "
        "tcp_keepalive_probes 9 (read in the pod); the NLB k8s-db-pgbouncer-5d4c3b2a1f's idle "
        "timeout of 350 s (tcp.idle_timeout.seconds).",
        "in the last 60 min: TCP_ELB_Reset_Count 23, TCP_Target_Reset_Count 5.",
    )
    # 7200 s + a margin is above the NLB's 6000 s maximum: only the sysctl fix is offered.
    (sysctl_fix,) = finding.fixes
    assert sysctl_fix.title == "Start TCP keepalive after 300 s in the pods"
    assert "allowed as safe from Kubernetes 1.29" in sysctl_fix.text
    assert "--allowed-unsafe-sysctls" in sysctl_fix.text


def test_classic_lb_values_are_evidence_only() -> None:
    (finding,) = _ours(scenario_snapshot("s2-clb-nginx-keepalive-30s"))
    assert finding.status is Status.PASS
    assert finding.evidence == (
        "web/frontend-5c8b7-q2w3e: tcp_keepalive_time 45, tcp_keepalive_intvl 75, "
        "tcp_keepalive_probes 9 (read in the pod)",
        "web/frontend-5c8b7-r4t5y: tcp_keepalive_time 45, tcp_keepalive_intvl 75, "
        "tcp_keepalive_probes 9 (read in the pod)",
        "TCP keepalive probes carry no data: they do not keep a Classic LB or ALB connection "
        "open, so these values are evidence, not a cause.",
    )


def test_alb_scenarios_report_no_problem() -> None:
    for stem in ("c14-alb-gunicorn-default-keepalive", "c16-alb-node-default-keepalive"):
        findings = _ours(scenario_snapshot(stem))
        assert [f.status for f in findings] == [Status.PASS], stem


def test_nlb_without_resets_passes() -> None:
    (finding,) = _ours(scenario_snapshot("c10-nlb-with-clb-annotation"))
    assert finding.status is Status.PASS
    assert finding.summary == "The NLB a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d6 shows no TCP resets"
    assert (
        finding.evidence[0]
        == "in the last 60 min: TCP_ELB_Reset_Count 0, TCP_Target_Reset_Count 0."
    )


# ---- the rule's edges ---------------------------------------------------------------------


def test_pod_keepalive_below_idle_timeout_passes_despite_resets() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    for pod in ("db/pgbouncer-a", "db/pgbouncer-b"):
        _set_time(snapshot, pod, 300)
    (finding,) = _ours(snapshot)
    assert finding.status is Status.PASS
    assert finding.summary == (
        "TCP keepalive starts after 300 s, before the NLB k8s-db-pgbouncer-5d4c3b2a1f forgets "
        "idle flows at 350 s"
    )


def test_keepalive_equal_to_idle_timeout_fails() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    for pod in ("db/pgbouncer-a", "db/pgbouncer-b"):
        _set_time(snapshot, pod, 350)
    (finding,) = _ours(snapshot)
    assert finding.status is Status.FAIL


def test_host_network_pod_is_judged_by_its_node() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    for pod in snapshot.pods:
        pod["spec"]["hostNetwork"] = True
    _set_time(snapshot, "db/pgbouncer-a", 60)  # ignored: the pod uses the node's namespace
    _set_time(snapshot, "node/ip-10-0-12-40.ec2.internal", 120)
    findings = _ours(snapshot)
    assert [(f.status, f.evidence[0].split(":")[0]) for f in findings] == [
        (Status.FAIL, "db/pgbouncer-a"),
        (Status.PASS, "db/pgbouncer-b"),
    ]
    assert "(read in node ip-10-0-11-20.ec2.internal (host network))" in findings[0].evidence[0]
    (node_fix,) = findings[0].fixes
    assert node_fix.text.splitlines()[2:] == [
        "sysctl -w net.ipv4.tcp_keepalive_time=300",
        "echo 'net.ipv4.tcp_keepalive_time = 300' > /etc/sysctl.d/90-tcp-keepalive.conf",
    ]


def test_unreadable_pod_is_named_in_an_unknown_finding_with_its_sysctls() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    snapshot.sysctls["db/pgbouncer-b"] = Sysctls(
        "db/pgbouncer-b",
        {},
        "no shell or sysctl in the container (exec failed: executable not found)",
    )
    snapshot.pods[1]["spec"]["securityContext"] = {
        "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "600"}]
    }
    fail, unknown = _ours(snapshot)
    assert fail.status is Status.FAIL and fail.evidence[0].startswith("db/pgbouncer-a: ")
    assert unknown.status is Status.UNKNOWN
    assert unknown.evidence[0] == (
        "db/pgbouncer-b (the pod): no shell or sysctl in the container (exec failed: executable "
        "not found); the pod's securityContext.sysctls sets net.ipv4.tcp_keepalive_time=600"
    )


def test_missing_reset_metrics_make_a_long_keepalive_unknown() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    snapshot.metrics = {}
    (finding,) = _ours(snapshot)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence[1] == (
        "no TCP reset metrics were read for the NLB k8s-db-pgbouncer-5d4c3b2a1f."
    )


def test_client_resets_alone_count() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    snapshot.metrics["k8s-db-pgbouncer-5d4c3b2a1f"] = {
        "TCP_Client_Reset_Count": MetricSeries("TCP_Client_Reset_Count", "Sum", (0, 2, None))
    }
    (finding,) = _ours(snapshot)
    assert finding.status is Status.FAIL


def test_longer_nlb_idle_timeout_offered_when_within_the_nlb_maximum() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    for pod in ("db/pgbouncer-a", "db/pgbouncer-b"):
        _set_time(snapshot, pod, 600)
    (finding,) = _ours(snapshot)
    sysctl_fix, nlb_fix = finding.fixes
    # No workload owns these pods: the fix shows the manifest change instead of a patch.
    assert sysctl_fix.text.splitlines()[2:] == [
        "# No owning workload is known for pod/pgbouncer-a pod/pgbouncer-b: in the manifest, set",
        "#   spec:",
        "#     securityContext:",
        "#       sysctls:",
        "#       - name: net.ipv4.tcp_keepalive_time",
        "#         value: '300'",
        "# then re-create the pods.",
        "kubectl -n db get pod/pgbouncer-a pod/pgbouncer-b -o yaml",
    ]
    assert nlb_fix.title == "Or give the NLB's TCP listeners an idle timeout of 660 s"
    assert nlb_fix.text.splitlines()[-2:] == [
        "kubectl -n db annotate service pgbouncer --overwrite \\",
        "  service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-5432="
        "tcp.idle_timeout.seconds=660",
    ]
    assert "TcpEstablishedTimeout" in nlb_fix.text


def test_sysctl_patch_on_a_workload_keeps_its_other_sysctls() -> None:
    snapshot = scenario_snapshot("s5-nlb-idle-pool-resets")
    labels = snapshot.pods[0]["metadata"]["labels"]
    snapshot.workloads = [
        {
            "kind": "Deployment",
            "metadata": {"namespace": "db", "name": "pgbouncer"},
            "spec": {
                "selector": {"matchLabels": labels},
                "template": {
                    "spec": {
                        "securityContext": {
                            "sysctls": [
                                {"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}
                            ]
                        },
                        "containers": [{"name": "pgbouncer"}],
                    }
                },
            },
        }
    ]
    (finding,) = _ours(snapshot)
    assert finding.resource == "deployment/db/pgbouncer"
    assert finding.fixes[0].text.splitlines()[-2:] == [
        "kubectl -n db patch deployment pgbouncer --type merge \\",
        '  -p \'{"spec": {"template": {"spec": {"securityContext": {"sysctls": '
        '[{"name": "net.ipv4.ip_local_port_range", "value": "1024 65000"}, '
        '{"name": "net.ipv4.tcp_keepalive_time", "value": "300"}]}}}}}\'',
    ]
