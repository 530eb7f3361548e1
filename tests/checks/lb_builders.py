"""Small builders of snapshot facts for rule tests."""

from __future__ import annotations

from checks.snapshot import (
    HealthCheck,
    LbType,
    Listener,
    LoadBalancer,
    MetricSeries,
    Snapshot,
    TargetGroup,
    TargetHealth,
)


def series(name: str, stat: str, values: list[float | None]) -> MetricSeries:
    return MetricSeries(
        name=name,
        stat=stat,
        values=tuple(values),
        timestamps=tuple(60.0 * i for i in range(len(values))),
    )


def load_balancer(
    lb_type: LbType,
    *,
    idle: int | None = 60,
    serves: str = "service/shop/web",
    targets: tuple[TargetHealth, ...] = (),
    instances: tuple[TargetHealth, ...] = (),
) -> LoadBalancer:
    attributes: dict[str, str] = {}
    if idle is not None:
        key = "idle_timeout" if lb_type == "classic" else "idle_timeout.timeout_seconds"
        attributes[key] = str(idle)
    groups = (
        (
            TargetGroup(
                name="k8s-shop-web-80",
                arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:"
                "targetgroup/k8s-shop-web-80/1",
                target_type="ip",
                protocol="HTTP",
                port=8080,
                health_check=HealthCheck(protocol="HTTP", port="traffic-port", path="/healthz"),
                attributes={},
                targets=targets,
            ),
        )
        if lb_type != "classic"
        else ()
    )
    return LoadBalancer(
        name="web-lb",
        type=lb_type,
        dns_name="web-lb-1.us-east-1.elb.amazonaws.com",
        scheme="internet-facing",
        vpc_id="vpc-1",
        subnet_ids=("subnet-a",),
        security_group_ids=(),
        attributes=attributes,
        listeners=(Listener(port=80, protocol="HTTP", instance_port=31080),),
        target_groups=groups,
        instances=instances,
        arn="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-lb/1"
        if lb_type != "classic"
        else "",
        serves=serves,
    )


def snapshot_with(lb: LoadBalancer, *metrics: MetricSeries, **fields: object) -> Snapshot:
    snapshot = Snapshot("shop", "web", region="us-east-1", **fields)  # type: ignore[arg-type]
    snapshot.load_balancers = [lb]
    snapshot.metrics = {lb.name: {m.name: m for m in metrics}}
    return snapshot
