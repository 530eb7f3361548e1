"""The annotation rules on small hand-built snapshots, one behaviour each."""

from __future__ import annotations

from typing import Any

from checks.models import Finding, Status
from checks.registry import all_checks
from checks.rules import (
    annotation_malformed,
    annotation_out_of_range,
    annotation_unknown,
    annotation_wrong_target,
    idle_timeout_ask_problems,
    idle_timeout_not_applied,
    ingress_group_conflict,
    proxy_protocol_mismatch,
)
from checks.snapshot import HealthCheck, KubeObject, Listener, LoadBalancer, Snapshot, TargetGroup


def service(
    name: str = "web",
    kind: str = "LoadBalancer",
    annotations: dict[str, str] | None = None,
    ports: list[int] | None = None,
    **spec: Any,
) -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "shop", "name": name, "annotations": annotations or {}},
        "spec": {
            "type": kind,
            "selector": {"app": name},
            "ports": [{"port": p, "protocol": "TCP"} for p in ports or [80]],
            **spec,
        },
    }


def ingress(
    name: str = "web",
    annotations: dict[str, str] | None = None,
    backend: str = "web",
    namespace: str = "shop",
    cls: str = "alb",
) -> KubeObject:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"namespace": namespace, "name": name, "annotations": annotations or {}},
        "spec": {
            "ingressClassName": cls,
            "defaultBackend": {"service": {"name": backend, "port": {"number": 80}}},
        },
    }


def lb(kind: str, serves: str, **extra: Any) -> LoadBalancer:
    return LoadBalancer(
        name="lb-1",
        type=kind,  # type: ignore[arg-type]
        dns_name="lb-1.elb.amazonaws.com",
        scheme="internal",
        vpc_id="vpc-1",
        subnet_ids=(),
        security_group_ids=(),
        attributes=extra.pop("attributes", {}),
        listeners=extra.pop("listeners", ()),
        serves=serves,
        **extra,
    )


def problems(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.is_problem]


def lbc(version: str) -> KubeObject:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": "kube-system", "name": "aws-load-balancer-controller"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"image": f"public.ecr.aws/eks/aws-load-balancer-controller:{version}"}
                    ]
                }
            }
        },
    }


ATTRS = "alb.ingress.kubernetes.io/load-balancer-attributes"


def alb_snapshot(attributes: str, workloads: list[KubeObject] | None = None) -> Snapshot:
    return Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="ClusterIP"),
        ingresses=[ingress(annotations={ATTRS: attributes})],
        workloads=workloads or [],
        load_balancers=[
            lb("application", "ingress/shop/web", attributes={"idle_timeout.timeout_seconds": "60"})
        ],
    )


def test_trailing_comma_warns_when_the_controller_release_is_unknown() -> None:
    (finding,) = problems(
        annotation_malformed.judge(alb_snapshot("idle_timeout.timeout_seconds=600,"))
    )
    assert finding.status is Status.WARN
    assert "'600,', not an integer" in finding.summary
    assert finding.evidence[-1].startswith("controller releases read this value differently")


def test_trailing_comma_is_fine_for_a_release_that_drops_it() -> None:
    snap = alb_snapshot("idle_timeout.timeout_seconds=600,", [lbc("v2.7.2")])
    assert problems(annotation_malformed.judge(snap)) == []


def test_trailing_comma_fails_for_a_release_that_keeps_it_in_the_value() -> None:
    snap = alb_snapshot("idle_timeout.timeout_seconds=600,", [lbc("v2.14.1")])
    (finding,) = problems(annotation_malformed.judge(snap))
    assert finding.status is Status.FAIL
    assert "'600,', not an integer" in finding.summary


def test_unknown_alb_attribute_name_is_flagged_with_a_suggestion() -> None:
    (finding,) = problems(annotation_malformed.judge(alb_snapshot("idle_timeout.seconds=600")))
    assert finding.status is Status.WARN
    assert "Did you mean idle_timeout.timeout_seconds?" in finding.summary


def test_alb_idle_timeout_above_4000_is_out_of_range() -> None:
    (finding,) = problems(
        annotation_out_of_range.judge(alb_snapshot("idle_timeout.timeout_seconds=4001"))
    )
    assert "asks for 4001, but AWS accepts 1-4000" in finding.summary


def test_ingress_only_key_on_backend_service_is_wrong_target() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="NodePort", annotations={ATTRS: "idle_timeout.timeout_seconds=300"}),
        ingresses=[ingress()],
        load_balancers=[
            lb("application", "ingress/shop/web", attributes={"idle_timeout.timeout_seconds": "60"})
        ],
    )
    (wrong,) = problems(annotation_wrong_target.judge(snap))
    assert wrong.resource == "service/shop/web"
    assert "reads it only from the Ingress" in wrong.summary
    (idle,) = problems(idle_timeout_ask_problems.judge(snap))
    assert "asks for an idle timeout of 300 s" in idle.summary
    assert "kubectl annotate ingress --namespace shop web" in idle.fixes[0].text


def test_target_group_key_on_backend_service_is_read() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(
            kind="NodePort", annotations={"alb.ingress.kubernetes.io/healthcheck-path": "/healthz"}
        ),
        ingresses=[ingress()],
        load_balancers=[lb("application", "ingress/shop/web")],
    )
    assert problems(annotation_wrong_target.judge(snap)) == []


def test_service_lb_key_on_clusterip_service_without_ingress_warns() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(
            kind="ClusterIP",
            annotations={"service.beta.kubernetes.io/aws-load-balancer-internal": "true"},
        ),
    )
    (finding,) = problems(annotation_wrong_target.judge(snap))
    assert finding.status is Status.WARN
    assert "is of type ClusterIP" in finding.summary


def test_alb_keys_on_nginx_ingress_are_not_read() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="ClusterIP"),
        ingresses=[
            ingress(cls="nginx", annotations={"alb.ingress.kubernetes.io/scheme": "internal"})
        ],
    )
    (finding,) = problems(annotation_wrong_target.judge(snap))
    assert finding.status is Status.WARN and "class nginx" in finding.summary


def test_lbc_only_key_on_in_tree_classic_lb_is_wrong_target() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(
            annotations={"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"}
        ),
        load_balancers=[lb("classic", "service/shop/web", attributes={"idle_timeout": "60"})],
    )
    (finding,) = problems(annotation_wrong_target.judge(snap))
    assert "only the AWS Load Balancer Controller reads it" in finding.summary


def test_listener_attributes_for_a_port_the_service_lacks() -> None:
    key = "service.beta.kubernetes.io/aws-load-balancer-listener-attributes.TCP-8443"
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(
            ports=[443],
            annotations={
                "service.beta.kubernetes.io/aws-load-balancer-type": "external",
                key: "tcp.idle_timeout.seconds=900",
            },
        ),
        load_balancers=[
            lb(
                "network",
                "service/shop/web",
                listeners=(Listener(443, "TCP", attributes={"tcp.idle_timeout.seconds": "350"}),),
            )
        ],
    )
    (wrong,) = problems(annotation_wrong_target.judge(snap))
    assert "names listener TCP-8443, but the Service exposes port(s) 443" in wrong.summary
    # A well-formed ask is the other idle-timeout check's to report, once.
    assert problems(idle_timeout_ask_problems.judge(snap)) == []
    (idle,) = problems(idle_timeout_not_applied.judge(snap))
    assert "asks for an idle timeout of 900 s" in idle.summary


def test_unrendered_variable_is_malformed() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="ClusterIP"),
        ingresses=[ingress(annotations={"alb.ingress.kubernetes.io/inbound-cidrs": "${CIDRS}"})],
    )
    (finding,) = problems(annotation_malformed.judge(snap))
    assert "unrendered template variable ${CIDRS}" in finding.summary


def test_unknown_key_outside_load_balancer_prefixes_is_ignored() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(annotations={"prometheus.io/scrape": "true"}),
        load_balancers=[lb("classic", "service/shop/web")],
    )
    assert problems(annotation_unknown.judge(snap)) == []


def test_group_conflict_on_scheme() -> None:
    group = "alb.ingress.kubernetes.io/group.name"
    scheme = "alb.ingress.kubernetes.io/scheme"
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="ClusterIP"),
        ingresses=[
            ingress("web", {group: "g", scheme: "internal"}),
            ingress("api", {group: "g", scheme: "internet-facing"}, backend="api"),
            ingress("docs", {group: "g"}, backend="docs"),
        ],
    )
    (finding,) = problems(ingress_group_conflict.judge(snap))
    assert finding.evidence == (
        "ingress/shop/api: alb.ingress.kubernetes.io/scheme=internet-facing",
        "ingress/shop/docs: alb.ingress.kubernetes.io/scheme=(not set)",
        "ingress/shop/web: alb.ingress.kubernetes.io/scheme=internal",
    )


def _nginx(namespace: str = "edge") -> KubeObject:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": "nginx-1", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "image": "registry.k8s.io/ingress-nginx/controller:v1.11.2",
                    "args": ["/nginx-ingress-controller", "--configmap=$(POD_NAMESPACE)/nginx"],
                }
            ]
        },
    }


def _configmap(value: str | None) -> KubeObject:
    data = {} if value is None else {"use-proxy-protocol": value}
    return {"kind": "ConfigMap", "metadata": {"namespace": "edge", "name": "nginx"}, "data": data}


def _nlb_with_proxy(enabled: str) -> LoadBalancer:
    tg = TargetGroup(
        "tg",
        "arn:tg",
        "ip",
        "TCP",
        80,
        HealthCheck("TCP", "traffic-port"),
        {"proxy_protocol_v2.enabled": enabled},
        (),
    )
    return lb("network", "service/edge/web", target_groups=(tg,))


def test_nlb_sends_proxy_header_that_nginx_does_not_expect() -> None:
    svc = service()
    svc["metadata"]["namespace"] = "edge"
    snap = Snapshot(
        namespace="edge",
        service_name="web",
        service=svc,
        pods=[_nginx()],
        configmaps={"nginx": _configmap(None)},
        load_balancers=[_nlb_with_proxy("true")],
    )
    (finding,) = problems(proxy_protocol_mismatch.judge(snap))
    assert "sends a PROXY protocol header but ingress-nginx does not expect" in finding.summary
    assert '"use-proxy-protocol": "true"' in finding.fixes[0].text


def test_nginx_expects_proxy_header_behind_an_alb() -> None:
    svc = service(kind="NodePort")
    svc["metadata"]["namespace"] = "edge"
    snap = Snapshot(
        namespace="edge",
        service_name="web",
        service=svc,
        pods=[_nginx()],
        configmaps={"nginx": _configmap("true")},
        load_balancers=[lb("application", "service/edge/web")],
    )
    (finding,) = problems(proxy_protocol_mismatch.judge(snap))
    assert "expects a PROXY protocol header" in finding.summary


def test_proxy_setting_unknown_when_configmaps_could_not_be_read() -> None:
    from checks.snapshot import Gap

    svc = service()
    svc["metadata"]["namespace"] = "edge"
    snap = Snapshot(
        namespace="edge",
        service_name="web",
        service=svc,
        pods=[_nginx()],
        load_balancers=[_nlb_with_proxy("false")],
        gaps=[Gap("kubernetes:configmaps", "configmaps in edge", "forbidden")],
    )
    (finding,) = proxy_protocol_mismatch.judge(snap)
    assert finding.status is Status.UNKNOWN


def test_quoted_string_value_warns() -> None:
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(kind="ClusterIP"),
        ingresses=[ingress(annotations={"alb.ingress.kubernetes.io/healthcheck-path": '"/ready"'})],
    )
    (finding,) = problems(annotation_malformed.judge(snap))
    assert finding.status is Status.WARN
    assert "alb.ingress.kubernetes.io/healthcheck-path: /ready" in finding.fixes[0].text


def _gunicorn_pod(keepalive: int) -> KubeObject:
    return {
        "kind": "Pod",
        "metadata": {"namespace": "shop", "name": "web-1", "labels": {"app": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "ex/web:1",
                    "command": ["gunicorn", "-k", "gthread", "--keep-alive", str(keepalive)],
                }
            ]
        },
    }


def test_unapplied_ask_above_the_servers_keepalive_says_it_would_turn_504s_into_502s() -> None:
    snapshot = alb_snapshot("idle_timeout.timeout_seconds=300")
    snapshot.load_balancers = [
        lb(
            "application",
            "ingress/shop/web",
            attributes={"idle_timeout.timeout_seconds": "60"},
            listeners=(Listener(port=80, protocol="HTTP"),),
        )
    ]
    snapshot.pods = [_gunicorn_pod(75)]
    [finding] = problems(idle_timeout_not_applied.judge(snapshot))
    assert finding.evidence[-1].startswith(
        "once 300 s applies, gunicorn in shop/web-1 (--keep-alive 75) closes idle connections "
        "sooner"
    )
    assert "ask for at most 70 s" in finding.evidence[-1]
    snapshot.pods = [_gunicorn_pod(320)]
    [finding] = problems(idle_timeout_not_applied.judge(snapshot))
    assert not any("once 300 s applies" in line for line in finding.evidence)


def test_a_number_too_long_to_convert_is_out_of_range_for_every_check() -> None:
    long = "9" * 5000
    snap = Snapshot(
        namespace="shop",
        service_name="web",
        service=service(
            annotations={
                "service.beta.kubernetes.io/aws-load-balancer-connection-idle-timeout": long
            }
        ),
        load_balancers=[lb("classic", "service/shop/web", attributes={"idle_timeout": "60"})],
    )
    found = [f for check in all_checks() for f in check.judge(snap) if f.is_problem]
    (out_of_range,) = [f for f in found if f.code == annotation_out_of_range.CODE]
    assert "asks for 99999999999999999999\u2026 (5,000 digits), but AWS accepts 1-4000" in (
        out_of_range.summary
    )
    assert all(long[:100] not in f.summary for f in found)
    alb = alb_snapshot(f"idle_timeout.timeout_seconds={long}")
    (alb_finding,) = problems(annotation_out_of_range.judge(alb))
    assert "timeout_seconds asks for 99999999999999999999\u2026 (5,000 digits)" in (
        alb_finding.summary
    )
