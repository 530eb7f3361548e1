"""TERMINATION_RACE: pre-stop delay and grace period of pods behind ip targets."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from checks.metrics_catalog import series_key
from checks.models import Finding, Status
from checks.rules import termination_race
from checks.rules.termination_race import PreStop, prestop
from checks.snapshot import Gap, MetricSeries, Snapshot, TargetHealth
from tests.checks.test_zones import (
    CASE_WORLDS,
    QUIET_WORLDS,
    assert_scenario,
    only,
    scenario_snapshot,
    tg,
    v2,
    world,
)


def container(name: str = "web", port: int | None = 8080, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "image": "registry.example/web:1", **extra}
    if port is not None:
        found["ports"] = [{"containerPort": port}]
    return found


def sleeping(seconds: int, name: str = "web", port: int | None = 8080) -> dict[str, Any]:
    return container(
        name, port, lifecycle={"preStop": {"exec": {"command": ["sleep", str(seconds)]}}}
    )


def pod_spec(containers: list[dict[str, Any]], grace: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if grace is not None:
        spec["terminationGracePeriodSeconds"] = grace
    return spec


def pod(
    name: str, ip: str, spec: dict[str, Any], owner: str = "", gated: bool = False
) -> dict[str, Any]:
    meta: dict[str, Any] = {"namespace": "ns", "name": name, "labels": {"app": "web"}}
    if owner:
        kind, _, owner_name = owner.partition("/")
        meta["ownerReferences"] = [{"kind": kind, "name": owner_name, "controller": True}]
    full = dict(spec, nodeName="n-a")
    if gated:
        full["readinessGates"] = [{"conditionType": "target-health.elbv2.k8s.aws/tg-web"}]
    return {
        "kind": "Pod",
        "metadata": meta,
        "spec": full,
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def deployment(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"namespace": "ns", "name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
        },
    }


def alb_world(
    spec: dict[str, Any],
    managed: bool = True,
    target_type: str = "ip",
    gated: bool = False,
    **fields: Any,
) -> Snapshot:
    pods = [
        pod("web-1", "10.9.11.5", spec, gated=gated),
        pod("web-2", "10.9.12.5", spec, gated=gated),
    ]
    targets = tuple(TargetHealth(p["status"]["podIP"], 8080, "healthy") for p in pods)
    fields.setdefault("workloads", [deployment(spec)] if managed else [])
    return world(
        pods=pods,
        load_balancers=[v2("application", ("subnet-pub-a", "subnet-pub-b"),
                           (tg(target_type, targets),))],
        **fields,
    )  # fmt: skip


def patch_of(finding: Finding, index: int = 0) -> dict[str, Any]:
    words = shlex.split(finding.fixes[index].text.replace("\\\n", " "))
    loaded: dict[str, Any] = json.loads(words[words.index("--patch") + 1])
    return loaded


# ------------------------------------------------------------ scenarios


@pytest.mark.parametrize("filename", QUIET_WORLDS + CASE_WORLDS)
def test_termination_race_matches_scenario_expectations(filename: str) -> None:
    assert_scenario(termination_race.CHECK, filename)


def test_rollout_race_fails_with_evidence_and_a_workload_patch() -> None:
    _, snapshot = scenario_snapshot("c25-alb-termination-race.yaml")
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.FAIL
    assert finding.evidence[:3] == (
        "deployment/web container web: no preStop hook: it gets SIGTERM at once, while the "
        "load balancer may go on sending to a pod being deregistered for up to 15 s",
        "grace period: deployment/web 30 s",
        "k8s-shop-web-80 (ip targets): deregistration delay 30 s: requests in flight get that "
        "long to finish once deregistration starts",
    )
    assert any(e.startswith("pod readiness gates: 0 of 2 pod(s)") for e in finding.evidence)
    assert (
        "k8s-shop-web-6f5e4d3c2b HTTPCode_ELB_502_Count: 78 in 2 of the last 60 minutes: bursts "
        "like these follow rollouts when pods exit early"
    ) in finding.evidence
    assert patch_of(finding, 0) == {
        "spec": {"template": {"spec": {
            "terminationGracePeriodSeconds": 45,
            "containers": [
                {"name": "web", "lifecycle": {"preStop": {"exec": {"command": ["sleep", "15"]}}}}
            ],
        }}}
    }  # fmt: skip
    assert finding.fixes[0].text.startswith("kubectl patch deployment --namespace shop web")
    assert patch_of(finding, 1)["spec"]["template"]["spec"]["containers"][0]["lifecycle"] == {
        "preStop": {"sleep": {"seconds": 15}}
    }
    assert "elbv2.k8s.aws/pod-readiness-gate-inject=enabled" in finding.fixes[2].text
    assert "kubectl rollout restart --namespace shop deployment/web" in finding.fixes[2].text


def test_healthy_world_passes_and_shows_the_hook() -> None:
    _, snapshot = scenario_snapshot("h0-alb-healthy.yaml")
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.PASS
    assert finding.evidence[0] == (
        "deployment/catalog: catalog preStop exec 'sleep 45' (45 s delay), grace 90 s"
    )
    assert "pod readiness gates: on (a rollout waits for new targets to be healthy)" in (
        finding.evidence
    )


# ------------------------------------------------------------ pre-stop parsing


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        (None, PreStop("none", None)),
        ({"sleep": {"seconds": 20}}, PreStop("sleep", 20.0)),
        ({"exec": {"command": ["sleep", "45"]}}, PreStop("exec", 45.0, ("sleep", "45"))),
        ({"exec": {"command": ["/bin/sleep", "5"]}}, PreStop("exec", 5.0, ("/bin/sleep", "5"))),
        (
            {"exec": {"command": ["/bin/sh", "-c", "sleep 10 && nginx -s quit"]}},
            PreStop("exec", 10.0, ("/bin/sh", "-c", "sleep 10 && nginx -s quit")),
        ),
        (
            {"exec": {"command": ["sh", "-c", "sleep 2m"]}},
            PreStop("exec", 120.0, ("sh", "-c", "sleep 2m")),
        ),
        ({"exec": {"command": ["sleepy", "5"]}}, PreStop("exec", None, ("sleepy", "5"))),
        ({"httpGet": {"path": "/drain", "port": 8080}}, PreStop("httpGet", None)),
    ],
)
def test_prestop_delay_is_read_from_the_hook(hook: Any, expected: PreStop) -> None:
    spec = container(lifecycle={"preStop": hook}) if hook else container()
    assert prestop(spec) == expected


# ------------------------------------------------------------ edge cases


def test_short_delay_without_symptoms_warns() -> None:
    finding = only(termination_race.judge(alb_world(pod_spec([sleeping(10)], grace=60))))
    assert finding.status is Status.WARN
    assert finding.evidence[0] == (
        "deployment/web container web: preStop exec 'sleep 10' (10 s delay), under the 15 s the "
        "load balancer may go on sending to a pod being deregistered"
    )
    assert patch_of(finding)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60


def test_short_delay_with_502s_fails() -> None:
    snapshot = alb_world(pod_spec([sleeping(5)]))
    snapshot.metrics = {
        "lb2": {
            series_key("HTTPCode_ELB_502_Count"): MetricSeries(
                "HTTPCode_ELB_502_Count", "Sum", (0.0, 12.0, 0.0)
            )
        }
    }
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.FAIL
    assert (
        "lb2 HTTPCode_ELB_502_Count: 12 in 1 of the last 60 minutes: bursts like these "
        "follow rollouts when pods exit early" in finding.evidence
    )


def test_grace_period_not_outlasting_the_delay_is_a_race() -> None:
    finding = only(termination_race.judge(alb_world(pod_spec([sleeping(20)], grace=20))))
    assert finding.status is Status.WARN
    assert finding.evidence[0] == (
        "deployment/web: terminationGracePeriodSeconds 20 s does not outlast the 20 s pre-stop "
        "delay: the kubelet kills the container before it has finished"
    )
    spec = patch_of(finding)["spec"]["template"]["spec"]
    assert spec["terminationGracePeriodSeconds"] == 50
    assert spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"] == ["sleep", "20"]


def test_default_grace_period_covers_a_long_enough_delay() -> None:
    finding = only(termination_race.judge(alb_world(pod_spec([sleeping(20)]))))
    assert finding.status is Status.PASS


def test_only_the_serving_container_counts() -> None:
    spec = pod_spec([sleeping(20), container("log-shipper", port=None)], grace=60)
    assert only(termination_race.judge(alb_world(spec))).status is Status.PASS


def test_instance_targets_are_not_judged() -> None:
    finding = only(
        termination_race.judge(alb_world(pod_spec([container()]), target_type="instance"))
    )
    assert finding.status is Status.PASS
    assert finding.summary == "No ip target group sends to ns/web: pods are reached through nodes."


def test_http_hook_of_unknown_length_is_unknown() -> None:
    spec = pod_spec(
        [container(lifecycle={"preStop": {"httpGet": {"path": "/drain", "port": 8080}}})]
    )
    finding = only(termination_race.judge(alb_world(spec)))
    assert finding.status is Status.UNKNOWN
    assert finding.evidence[0] == (
        "deployment/web container web: preStop httpGet hook of unknown duration"
    )


def test_unmanaged_pods_pass_but_name_the_latent_race() -> None:
    finding = only(termination_race.judge(alb_world(pod_spec([container()]), managed=False)))
    assert finding.status is Status.PASS
    assert finding.evidence[0] == (
        "no Deployment or StatefulSet manages web-1, web-2: no rollout replaces them while they "
        "serve"
    )
    assert finding.fixes == ()


def test_unmanaged_pods_are_unknown_when_workloads_could_not_be_listed() -> None:
    snapshot = alb_world(
        pod_spec([container()]),
        managed=False,
        gaps=[Gap("kubernetes:deployments", "deployments in ns", "cannot list deployments")],
    )
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.UNKNOWN
    assert "could not tell what manages the pods: cannot list deployments" in finding.evidence


def test_pods_of_an_uncollected_daemonset_get_a_daemonset_patch() -> None:
    snapshot = alb_world(pod_spec([container()]), workloads=[])
    for item in snapshot.pods:
        item["metadata"]["ownerReferences"] = [
            {"kind": "DaemonSet", "name": "web", "controller": True}
        ]
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.WARN
    assert finding.fixes[0].text.startswith("kubectl patch daemonset --namespace ns web")


def test_replicaset_owner_gets_no_guessed_patch() -> None:
    snapshot = alb_world(pod_spec([container()]), workloads=[])
    for item in snapshot.pods:
        item["metadata"]["ownerReferences"] = [
            {"kind": "ReplicaSet", "name": "web-5d6e7", "controller": True}
        ]
    finding = only(termination_race.judge(snapshot))
    assert finding.status is Status.WARN
    assert finding.fixes == ()


def test_existing_hook_without_sleep_keeps_its_command() -> None:
    quit_hook = {"preStop": {"exec": {"command": ["nginx", "-s", "quit"]}}}
    finding = only(termination_race.judge(alb_world(pod_spec([container(lifecycle=quit_hook)]))))
    pre = patch_of(finding)["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]
    assert pre == {"exec": {"command": ["sh", "-c", "sleep 15 && nginx -s quit"]}}
    # The sleep action cannot carry the existing command: only the exec fix and the gates.
    assert len(finding.fixes) == 2


def test_gated_pods_get_no_readiness_gate_fix() -> None:
    finding = only(termination_race.judge(alb_world(pod_spec([container()]), gated=True)))
    assert [f.title for f in finding.fixes] == [
        "Delay SIGTERM 15 s with sleep in the image, grace 45 s: deployment/web",
        "Delay SIGTERM 15 s with the sleep action (Kubernetes 1.30+), grace 45 s: deployment/web",
    ]
