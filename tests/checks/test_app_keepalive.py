"""APP_KEEPALIVE_BELOW_IDLE_TIMEOUT on snapshots built from the bundled scenarios."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from checks.models import Finding, Status
from checks.rules import app_keepalive
from checks.snapshot import (
    HealthCheck,
    Listener,
    LoadBalancer,
    MetricSeries,
    Snapshot,
    Sysctls,
    TargetGroup,
)

SCENARIOS = Path(__file__).resolve().parents[2] / "sandbox" / "scenarios"
CODE = "APP_KEEPALIVE_BELOW_IDLE_TIMEOUT"


def _strings(values: dict[str, Any] | None) -> dict[str, str]:
    return {
        str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in (values or {}).items()
    }


def _load_balancer(name: str, spec: dict[str, Any]) -> LoadBalancer:
    """As the collector fills it from AWS: Classic attributes under their short names,
    ALB/NLB attributes under AWS keys, NLB listener attributes on the listener."""
    attributes = _strings(spec.get("attributes"))
    if spec["type"] == "classic":
        attributes = {
            "idle_timeout": attributes.get("idle_timeout", "60"),
            "cross_zone": attributes.get("cross_zone", "false"),
        }
    listeners = tuple(
        Listener(
            port=int(lst["port"]),
            protocol=str(lst["protocol"]),
            instance_port=lst.get("instance_port"),
            instance_protocol=lst.get("instance_protocol"),
            target_group_arns=(f"arn:{lst['target_group']}",) if lst.get("target_group") else (),
            attributes=_strings(lst.get("attributes")),
        )
        for lst in spec.get("listeners") or []
    )
    groups = tuple(
        TargetGroup(
            name=tg_name,
            arn=f"arn:{tg_name}",
            target_type=str(tg.get("target_type", "instance")),
            protocol=str(tg.get("protocol", "TCP")),
            port=int(tg.get("port", 0)),
            health_check=HealthCheck(
                protocol=str(tg.get("health_check", {}).get("protocol", "HTTP")),
                port="traffic-port",
            ),
            attributes=_strings(tg.get("attributes")),
            targets=(),
        )
        for tg_name, tg in (spec.get("target_groups") or {}).items()
    )
    serves = spec.get("for", "")
    return LoadBalancer(
        name=name,
        type=spec["type"],
        dns_name=f"{name}.elb.example",
        scheme=str(spec.get("scheme", "internet-facing")),
        vpc_id="vpc-1",
        subnet_ids=(),
        security_group_ids=(),
        attributes=attributes,
        listeners=listeners,
        target_groups=groups,
        serves=",".join(serves) if isinstance(serves, list) else str(serves),
    )


def _routes_to(ingress: dict[str, Any], service: str) -> bool:
    for rule in ingress.get("spec", {}).get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            if path.get("backend", {}).get("service", {}).get("name") == service:
                return True
    return False


def scenario_snapshot(stem: str) -> Snapshot:
    """The Snapshot a collector would build for the scenario's ``ask``."""
    data = yaml.safe_load((SCENARIOS / f"{stem}.yaml").read_text())
    namespace, name = data["ask"].split("/")
    objects: list[dict[str, Any]] = data["cluster"]

    def in_ns(kind: str) -> list[dict[str, Any]]:
        return [
            o for o in objects if o["kind"] == kind and o["metadata"].get("namespace") == namespace
        ]

    service = next(o for o in in_ns("Service") if o["metadata"]["name"] == name)
    selector = service["spec"].get("selector") or {}
    pods = [
        p
        for p in in_ns("Pod")
        if selector
        and all(p["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
    ]
    aws = data.get("aws") or {}
    executed = data.get("exec") or {}
    sysctls = {
        key: Sysctls(key, {str(k): int(v) for k, v in values.items()})
        for key, values in executed.items()
    }
    subjects = [f"{namespace}/{p['metadata']['name']}" for p in pods]
    subjects += [f"node/{o['metadata']['name']}" for o in objects if o["kind"] == "Node"]
    for subject in subjects:
        sysctls.setdefault(
            subject,
            Sysctls(
                subject,
                {},
                "no shell or sysctl in the container (exec failed: executable not found)",
            ),
        )
    return Snapshot(
        namespace=namespace,
        service_name=name,
        service=service,
        ingresses=[i for i in in_ns("Ingress") if _routes_to(i, name)],
        pods=pods,
        nodes=[o for o in objects if o["kind"] == "Node"],
        ingress_classes=[o for o in objects if o["kind"] == "IngressClass"],
        configmaps={c["metadata"]["name"]: c for c in in_ns("ConfigMap")},
        workloads=[o for o in in_ns("Deployment") + in_ns("StatefulSet") + in_ns("DaemonSet")],
        load_balancers=[_load_balancer(n, s) for n, s in (aws.get("load_balancers") or {}).items()],
        metrics={
            lb: {
                m: MetricSeries(m, str(series.get("stat", "Sum")), tuple(series["values"]))
                for m, series in per_lb.items()
            }
            for lb, per_lb in (aws.get("metrics") or {}).items()
        },
        sysctls=sysctls,
    )


def _ours(snapshot: Snapshot) -> list[Finding]:
    findings = app_keepalive.judge(snapshot)
    assert all(f.code == CODE for f in findings)
    return findings


def _problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (Status.FAIL, Status.WARN)]


def _with_lb_attribute(snapshot: Snapshot, key: str, value: str) -> Snapshot:
    (lb,) = snapshot.load_balancers
    changed = copy.copy(snapshot)
    changed.load_balancers = [
        LoadBalancer(**{**lb.__dict__, "attributes": {**lb.attributes, key: value}})
    ]
    return changed


def _deployment(snapshot: Snapshot) -> dict[str, Any]:
    """A Deployment owning the snapshot's pods, with their first pod's spec as template."""
    pod = snapshot.pods[0]
    labels = pod["metadata"]["labels"]
    return {
        "kind": "Deployment",
        "metadata": {"namespace": snapshot.namespace, "name": snapshot.service_name},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": copy.deepcopy(pod["spec"])},
        },
    }


# ---- the scenarios ------------------------------------------------------------------------


def test_classic_lb_with_nginx_closing_after_30s_fails_once_for_both_pods() -> None:
    (finding,) = _ours(scenario_snapshot("s2-clb-nginx-keepalive-30s"))
    assert finding.status is Status.FAIL
    assert finding.summary == (
        "nginx closes idle connections after 30 s, before the Classic LB "
        "a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60 stops reusing them at 60 s"
    )
    assert finding.evidence[0] == (
        "nginx in web/frontend-5c8b7-q2w3e, web/frontend-5c8b7-r4t5y (container nginx) closes "
        "idle connections after 30 s (keepalive_timeout 30s, /etc/nginx/conf.d/default.conf "
        "line 4, ConfigMap web/frontend-nginx); the Classic LB a3f9c1e7b25d4c0e8f6a1b2c3d4e5f60 "
        "reuses them for up to 60 s."
    )
    server_fix, lb_fix = finding.fixes
    assert server_fix.title == "Keep idle connections open for 65 s in nginx"
    assert "#   keepalive_timeout 65s;\n" in server_fix.text
    assert (
        "# In ConfigMap web/frontend-nginx, key default.conf, replace line 4 with:"
        in server_fix.text
    )
    assert "kubectl -n web edit configmap frontend-nginx\n" in server_fix.text
    assert lb_fix.text == (
        "kubectl -n web annotate service frontend --overwrite \\\n"
        "  service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout=25\n"
    )


def test_alb_with_gunicorn_default_keepalive_fails() -> None:
    (finding,) = _ours(scenario_snapshot("c14-alb-gunicorn-default-keepalive"))
    assert finding.status is Status.FAIL
    assert finding.evidence[0] == (
        "gunicorn in bench/results-5f6a7-aa, bench/results-5f6a7-bb (container results) closes "
        "idle connections after 2 s (gunicorn's default (2 s); worker gthread (--worker-class "
        "gthread)); the ALB k8s-bench-results-c14a1b2 reuses them for up to 60 s."
    )
    assert "fails with 502" in finding.evidence[1]
    # 2 s is too short to lower the ALB's idle timeout under: only the server fix is offered.
    (server_fix,) = finding.fixes
    assert server_fix.text == (
        "# No owning workload is known for pod/results-5f6a7-aa pod/results-5f6a7-bb: in the "
        "manifest, add\n"
        "# to container results the variable below, then re-create the pods.\n"
        "#   'GUNICORN_CMD_ARGS=--keep-alive 65'\n"
        "kubectl -n bench get pod/results-5f6a7-aa pod/results-5f6a7-bb -o yaml\n"
    )


def test_gunicorn_fix_sets_cmd_args_on_the_owning_deployment() -> None:
    snapshot = scenario_snapshot("c14-alb-gunicorn-default-keepalive")
    snapshot.workloads = [_deployment(snapshot)]
    (finding,) = _ours(snapshot)
    assert finding.resource == "deployment/bench/results"
    assert finding.fixes[0].text == (
        "kubectl -n bench set env deployment/results -c results \\\n"
        "  'GUNICORN_CMD_ARGS=--keep-alive 65'\n"
    )


def test_alb_with_node_default_keepalive_fails_with_node_fix() -> None:
    (finding,) = _ours(scenario_snapshot("c16-alb-node-default-keepalive"))
    assert finding.status is Status.FAIL
    assert "(Node.js http.Server default keepAliveTimeout (5 s);" in finding.evidence[0]
    (server_fix,) = finding.fixes
    assert server_fix.language == "javascript"
    assert "server.keepAliveTimeout = 65000;\n" in server_fix.text
    assert "server.headersTimeout = 66000;\n" in server_fix.text


def _passes_as_not_pooling(findings: list[Finding]) -> bool:
    return [(f.status, "does not reuse idle connections" in f.summary) for f in findings] == [
        (Status.PASS, True)
    ]


def test_nlb_gets_no_keepalive_finding() -> None:
    assert _passes_as_not_pooling(_ours(scenario_snapshot("c10-nlb-with-clb-annotation")))
    assert _passes_as_not_pooling(_ours(scenario_snapshot("s5-nlb-idle-pool-resets")))


def test_healthy_alb_with_uvicorn_above_idle_timeout_passes() -> None:
    (finding,) = _ours(scenario_snapshot("h0-alb-healthy"))
    assert finding.status is Status.PASS
    assert finding.resource == "deployment/shop/catalog"
    assert finding.summary == (
        "uvicorn keeps idle connections 130 s, longer than the ALB "
        "k8s-shop-catalog-9a8b7c6d5e reuses them (120 s)"
    )


def test_short_alb_idle_timeout_with_longer_gunicorn_keepalive_passes() -> None:
    findings = _ours(scenario_snapshot("s1-alb-idle-timeout-short"))
    assert [f.status for f in findings] == [Status.PASS]
    assert "(--keep-alive 75; worker gthread (--worker-class gthread))" in findings[0].evidence[0]


# ---- the rule's edges ---------------------------------------------------------------------


def test_equal_keepalive_and_idle_timeout_warns() -> None:
    snapshot = _with_lb_attribute(
        scenario_snapshot("s1-alb-idle-timeout-short"), "idle_timeout.timeout_seconds", "75"
    )
    (finding,) = _ours(snapshot)
    assert finding.status is Status.WARN
    assert finding.summary.endswith(
        "exactly when the ALB k8s-shop-reports-4f1e2d3c4b stops reusing them: the race remains"
    )


def test_flag_fix_patches_the_exact_command_element() -> None:
    snapshot = _with_lb_attribute(
        scenario_snapshot("s1-alb-idle-timeout-short"), "idle_timeout.timeout_seconds", "90"
    )
    snapshot.workloads = [_deployment(snapshot)]
    (finding,) = _ours(snapshot)
    assert finding.status is Status.FAIL
    server_fix, lb_fix = finding.fixes
    assert server_fix.text == (
        "kubectl -n shop patch deployment reports --type json \\\n"
        '  -p \'[{"op": "replace", "path": "/spec/template/spec/containers/0/command/10", '
        '"value": "95"}]\'\n'
    )
    assert lb_fix.text == (
        "kubectl -n shop annotate ingress reports --overwrite \\\n"
        "  alb.ingress.kubernetes.io/load-balancer-attributes=idle_timeout.timeout_seconds=70\n"
    )


def test_alb_alternative_keeps_other_attributes_in_the_annotation() -> None:
    snapshot = _with_lb_attribute(
        scenario_snapshot("h0-alb-healthy"), "idle_timeout.timeout_seconds", "300"
    )
    (finding,) = _ours(snapshot)
    assert finding.status is Status.FAIL
    server_fix, lb_fix = finding.fixes
    assert '"path": "/spec/template/spec/containers/0/command/7", "value": "305"' in server_fix.text
    assert lb_fix.text.endswith(
        "alb.ingress.kubernetes.io/load-balancer-attributes=routing.http2.enabled=true,"
        "idle_timeout.timeout_seconds=125\n"
    )


def test_sync_gunicorn_passes_because_it_does_not_reuse() -> None:
    snapshot = scenario_snapshot("c14-alb-gunicorn-default-keepalive")
    for pod in snapshot.pods:
        pod["spec"]["containers"][0]["command"] = ["gunicorn", "--bind", "0.0.0.0:5000", "a:b"]
    (finding,) = _ours(snapshot)
    assert finding.status is Status.PASS
    assert finding.summary == (
        "gunicorn does not keep connections open, so the ALB k8s-bench-results-c14a1b2 never "
        "reuses one the server has closed"
    )


def test_unrecognised_server_gives_one_unknown_finding() -> None:
    snapshot = scenario_snapshot("c14-alb-gunicorn-default-keepalive")
    for pod in snapshot.pods:
        del pod["spec"]["containers"][0]["command"]
    (finding,) = _ours(snapshot)
    assert finding.status is Status.UNKNOWN
    assert finding.evidence[0] == (
        "unknown in bench/results-5f6a7-aa, bench/results-5f6a7-bb (container results): image "
        "registry.example/results:4.0, command (the image's own); no known HTTP server in the "
        "command, image name or mounted configuration"
    )
    assert finding.evidence[1].endswith("must keep them open longer (at least 65 s).")


def test_classic_tcp_listener_is_not_judged() -> None:
    snapshot = scenario_snapshot("s2-clb-nginx-keepalive-30s")
    (lb,) = snapshot.load_balancers
    tcp = Listener(port=80, protocol="TCP", instance_port=31380, instance_protocol="TCP")
    snapshot.load_balancers = [LoadBalancer(**{**lb.__dict__, "listeners": (tcp,)})]
    assert _passes_as_not_pooling(_ours(snapshot))


def test_classic_ssl_listener_to_http_instances_is_judged() -> None:
    snapshot = scenario_snapshot("s2-clb-nginx-keepalive-30s")
    (lb,) = snapshot.load_balancers
    ssl = Listener(port=443, protocol="SSL", instance_port=31380, instance_protocol="HTTP")
    snapshot.load_balancers = [LoadBalancer(**{**lb.__dict__, "listeners": (ssl,)})]
    assert [f.status for f in _ours(snapshot)] == [Status.FAIL]


def test_sidecar_without_the_target_port_is_not_judged() -> None:
    snapshot = scenario_snapshot("h0-alb-healthy")
    for pod in snapshot.pods:
        pod["spec"]["containers"].append({"name": "logs", "image": "registry.example/fluent:2"})
    assert [f.status for f in _ours(snapshot)] == [Status.PASS]


def test_uvicorn_behind_ingress_nginx_upstream_keepalive_fails() -> None:
    (finding,) = _ours(scenario_snapshot("c17-uvicorn-behind-ingress-nginx"))
    assert finding.status is Status.FAIL
    assert finding.evidence[0] == (
        "uvicorn in science/portal-6b7c8-aa, science/portal-6b7c8-bb (container portal) closes "
        "idle connections after 5 s (uvicorn's default (5 s)); ingress-nginx (Ingress "
        "science/portal) reuses them for up to 60 s (ingress-nginx's default "
        "upstream-keepalive-timeout; the controller's ConfigMap, which may change it, was not "
        "read)."
    )
    (server_fix,) = finding.fixes
    assert "#   UVICORN_TIMEOUT_KEEP_ALIVE=65\n" in server_fix.text


def test_ingress_of_another_class_does_not_pool() -> None:
    snapshot = scenario_snapshot("c17-uvicorn-behind-ingress-nginx")
    snapshot.ingress_classes[0]["spec"]["controller"] = "example.com/other"
    assert _passes_as_not_pooling(_ours(snapshot))


def test_check_is_registered_with_its_templates() -> None:
    check = app_keepalive.CHECK
    assert (check.codes, check.step) == ((CODE,), "keep-alive")
    templates = Path(__file__).resolve().parents[2] / "templates" / "fixes"
    assert all((templates / name).is_file() for name in check.templates)
